"""The library entry point, called as a user's script would (Flax's train_test.py style): the data is
prepared once for training, sampling and evaluation, and a second run on the same data encodes and
renders nothing (the encoded arrays are cached beside the parse cache)."""

import json

import numpy as np
import pytest

from musictf.data import audio, corpus
from musictf.experiments import get_experiment
from musictf.run import train_and_evaluate


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICTF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize(
    "number", ["1", pytest.param("4", marks=pytest.mark.slow)]
)  # keeps `make test` under 10 min
def test_train_and_evaluate_loads_the_corpus_once_and_encodes_each_piece_once(
    number, tmp_path, fresh_cache, monkeypatch
):
    experiment = get_experiment(number)
    config = experiment.load_config("smoke", ["transpose_range=0"])
    loads, encodes = [], []
    real_load = corpus.load_corpus
    monkeypatch.setattr(
        corpus, "load_corpus", lambda *args, **kwargs: loads.append(args) or real_load(*args, **kwargs)
    )
    representation_class = type(experiment.make_representation(config))
    real_encode = representation_class.encode
    monkeypatch.setattr(
        representation_class,
        "encode",
        lambda self, piece: encodes.append(piece.piece_id) or real_encode(self, piece),
    )

    result = train_and_evaluate(experiment, config, tmp_path / "run", preset="smoke", verbose=0)
    assert len(loads) == 1
    pieces = json.loads((tmp_path / "run" / "manifest.json").read_text())["pieces"]
    assert len(encodes) == sum(pieces.values()) and len(set(encodes)) == len(encodes)
    assert len(result["history"]["loss"]) == config.epochs
    assert result["test"] and result["baseline"] and len(result["sample_files"]) == config.num_samples
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"] == result["test"]

    encodes.clear()
    again = train_and_evaluate(experiment, config, tmp_path / "again", preset="smoke", verbose=0)
    assert encodes == [] and len(loads) == 2
    assert again["test"] == result["test"]  # the same seed on the same (cached) arrays


@pytest.mark.slow  # a minute on 2 cores; keeps `make test` under 10 minutes
def test_experiment_5_renders_each_piece_once_and_a_second_run_renders_nothing(
    tmp_path, fresh_cache, monkeypatch
):
    experiment = get_experiment("5")
    config = experiment.load_config("smoke")
    renders = []
    real_render = audio.render_notes
    monkeypatch.setattr(
        audio, "render_notes", lambda *args, **kwargs: renders.append(1) or real_render(*args, **kwargs)
    )
    first = train_and_evaluate(experiment, config, tmp_path / "run", preset="smoke", verbose=0)
    pieces = json.loads((tmp_path / "run" / "manifest.json").read_text())["pieces"]
    assert len(renders) == sum(pieces.values())
    renders.clear()
    second = train_and_evaluate(experiment, config, tmp_path / "again", preset="smoke", verbose=0)
    assert renders == [] and second["test"] == first["test"]
    saved = json.loads((tmp_path / "again" / "representation.json").read_text())
    assert saved["renderer"] in ("fluidsynth", "numpy synth")  # remembered from the cached render


def test_a_torn_arrays_cache_entry_is_a_miss(tmp_path, fresh_cache):
    """Token and roll arrays are a shard store: a torn shard, or a store whose index never got
    written (a killed writer leaves only its temporary folder), is encoded again and written whole."""
    experiment = get_experiment("2")
    config = experiment.load_config("smoke")
    from musictf.data import shards
    from musictf.experiments.base import prepare_data

    first = prepare_data(experiment, config, progress=False)
    store = next((fresh_cache / "arrays").glob("*.shards"))
    shard = next(store.glob("train-*.npy"))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    assert shards.open_store(store) is None
    second = prepare_data(experiment, config, progress=False)
    assert [a.tobytes() for a in second.arrays["train"]] == [a.tobytes() for a in first.arrays["train"]]
    assert shards.open_store(store) is not None  # encoded again and written whole
    flipped = bytearray(shard.read_bytes())
    flipped[-1] ^= 1  # same size, other content: the checksum catches it
    shard.write_bytes(bytes(flipped))
    assert shards.open_store(store) is None
    (store / "index.json").unlink()
    third = prepare_data(experiment, config, progress=False)
    assert [a.tobytes() for a in third.arrays["train"]] == [a.tobytes() for a in first.arrays["train"]]


def test_arrays_above_the_threshold_stay_on_disk_and_train_streams_them(tmp_path, fresh_cache):
    experiment = get_experiment("2")
    config = experiment.load_config("smoke", ["stream_above_megabytes=0"])
    from musictf.data import shards
    from musictf.experiments.base import prepare_data

    streamed = prepare_data(experiment, config, progress=False)
    in_memory = prepare_data(experiment, experiment.load_config("smoke"), progress=False)
    assert isinstance(streamed.arrays["train"], shards.ShardedSplit)
    assert isinstance(in_memory.arrays["train"], list)
    for split, items in in_memory.arrays.items():  # the same pieces, in the split's order
        assert [a.tobytes() for a in streamed.arrays[split]] == [a.tobytes() for a in items]
    assert streamed.manifest()["steps"] == in_memory.manifest()["steps"]
    assert streamed.manifest()["arrays"] == "streamed from shards"
    history = train_and_evaluate(experiment, config, tmp_path / "run", preset="smoke", verbose=0)["history"]
    assert len(history["loss"]) == config.epochs and all(np.isfinite(history["loss"]))


def test_evaluate_reads_nothing_from_disk_that_train_and_evaluate_handed_it(
    tmp_path, fresh_cache, monkeypatch
):
    """Issue 24: `evaluate` re-read config.json, representation.json, manifest.json and the data."""
    from musictf import files, rundir
    from musictf import run as run_module

    experiment = get_experiment("2")
    config = experiment.load_config("smoke", ["statistics_samples=2"])
    reads, evaluating = [], []

    def counted(name, function):
        def wrapper(*args, **kwargs):
            if evaluating:
                reads.append(name)
            return function(*args, **kwargs)

        return wrapper

    for module, name in (
        (rundir, "read_json"),
        (rundir, "read_run_files"),
        (rundir, "load_checkpoint_weights"),
        (files, "read_json"),
        (run_module, "prepare_data"),
        (run_module, "load_model"),
    ):
        monkeypatch.setattr(module, name, counted(name, getattr(module, name)))
    real_evaluate = run_module.evaluate

    def tracked_evaluate(*args, **kwargs):
        evaluating.append(True)
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(run_module, "evaluate", tracked_evaluate)
    result = run_module.train_and_evaluate(experiment, config, tmp_path / "run", preset="smoke", verbose=0)
    assert evaluating and reads == []
    assert result["test"]["frame_nll_nats"] > 0 and len(result["sample_files"]) == config.num_samples


def _folder_of_melodies(folder, count=14):
    from music21 import pitch

    from musictf.data.music import Note
    from musictf.data.pianoroll import write_midi

    folder.mkdir(parents=True)
    for index in range(count):
        pitches = [60 + (step * (index + 1)) % 12 for step in range(48)]
        notes = [
            Note(p, step * 0.5, 0.5, pitch.Pitch(midi=p).nameWithOctave) for step, p in enumerate(pitches)
        ]
        write_midi(notes, folder / f"melody{index:02d}.mid")
    return folder


def test_changed_source_files_never_overwrite_the_runs_own_results(tmp_path, fresh_cache, capsys):
    """D11 and D12: `evaluate` on changed files overwrote metrics.json silently, and `evaluate
    --source OTHER` overwrote the run's own measured samples."""
    from musictf.cli import main

    source = _folder_of_melodies(tmp_path / "source")
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "2",
                "--preset",
                "smoke",
                "--source",
                str(source),
                "--run-dir",
                str(run_dir),
                "--set",
                "statistics_samples=2",
            ]
        )
        == 0
    )
    own = (run_dir / "metrics.json").read_bytes()
    measured = {path.name: path.read_bytes() for path in (run_dir / "samples" / "measured").iterdir()}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    test_file = next(name for name, entry in manifest["files"].items() if entry["split"] == "test")
    train_file = next(name for name, entry in manifest["files"].items() if entry["split"] == "train")
    (source / test_file).write_bytes((source / train_file).read_bytes())  # other music in a test file
    capsys.readouterr()
    assert main(["evaluate", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "no longer holds the files this run was trained on" in out
    assert (run_dir / "metrics.json").read_bytes() == own
    beside = [path for path in run_dir.glob("metrics-*.json")]
    assert len(beside) == 1 and json.loads(beside[0].read_text())["data_hash"] != manifest["data_hash"]

    other = _folder_of_melodies(tmp_path / "other", count=6)
    assert main(["evaluate", str(run_dir), "--source", str(other)]) == 0
    assert {path.name: path.read_bytes() for path in (run_dir / "samples" / "measured").iterdir()} == measured
    assert len(list((run_dir / "samples").glob("measured-*"))) == 2  # the changed source's and the other's
    assert (run_dir / "metrics.json").read_bytes() == own


def test_an_evaluation_split_no_window_fits_is_refused_before_training(tmp_path, fresh_cache, capsys):
    """D3: found only after the whole training, with advice that blamed the train split."""
    from musictf.cli import main

    root = tmp_path / "split"
    _folder_of_melodies(root / "train", count=6)
    _folder_of_melodies(root / "valid", count=1)
    from musictf.data.music import Note
    from musictf.data.pianoroll import write_midi

    (root / "test").mkdir()
    for index in range(2):  # 4 quarter notes: 16 steps, short of a 17-step window
        write_midi(
            [Note(60 + index + step, float(step), 1.0, "C4") for step in range(4)],
            root / "test" / f"s{index}.mid",
        )
    run_dir = tmp_path / "run"
    assert main(["run", "2", "--preset", "smoke", "--source", str(root), "--run-dir", str(run_dir)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("musictf: error")]
    assert len(errors) == 1 and "the test split has no piece long enough" in errors[0]
    assert not run_dir.exists()


def test_an_interrupted_generate_keeps_the_old_set_whole(tmp_path, fresh_cache, monkeypatch):
    """D20: an interrupted `generate` mixed new and old samples under the old samples.json."""
    from musictf import run as run_module
    from musictf import samples

    experiment = get_experiment("2")
    config = experiment.load_config("smoke", ["statistics_samples=2"])
    run_module.train_and_evaluate(experiment, config, tmp_path / "run", preset="smoke", verbose=0)
    folder = tmp_path / "run" / "samples"
    before = {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}
    real_write = samples.write_midi
    written = []

    def interrupted_at_the_second_sample(notes, path, *args, **kwargs):
        written.append(path)
        if len(written) == 3:
            raise KeyboardInterrupt
        return real_write(notes, path, *args, **kwargs)

    monkeypatch.setattr(samples, "write_midi", interrupted_at_the_second_sample)
    run = run_module.open_run(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        run_module.generate(run, {"seed": 7, "generate_length": 40})
    assert {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()} == before
    assert not list(folder.parent.glob(".samples.staging-*"))
    monkeypatch.setattr(samples, "write_midi", real_write)
    out_dir, listed = run_module.generate(run, {"seed": 7, "generate_length": 40, "num_samples": 2})
    listing = json.loads((folder / "samples.json").read_text())
    assert listing["seed"] == 7 and listing["length"] == 40 and len(listing["samples"]) == 2
    assert not (folder / "sample_3.mid").exists()  # the old set's third sample went with it
