"""The library entry point, called as a user's script would (Flax's train_test.py style): the data is
prepared once for training, sampling and evaluation, and a second run on the same data encodes and
renders nothing (the encoded arrays are cached beside the parse cache)."""

import json

import pytest

from musictf.data import audio, corpus
from musictf.experiments import get_experiment
from musictf.run import train_and_evaluate


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSICTF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("number", ["1", "4"])
def test_train_and_evaluate_loads_the_corpus_once_and_encodes_each_piece_once(number, tmp_path, fresh_cache, monkeypatch):
    experiment = get_experiment(number)
    config = experiment.load_config("smoke", ["transpose_range=0"])
    loads, encodes = [], []
    real_load = corpus.load_corpus
    monkeypatch.setattr(corpus, "load_corpus", lambda *args, **kwargs: loads.append(args) or real_load(*args, **kwargs))
    representation_class = type(experiment.make_representation(config))
    real_encode = representation_class.encode
    monkeypatch.setattr(representation_class, "encode", lambda self, piece: encodes.append(piece.piece_id) or real_encode(self, piece))

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


def test_experiment_5_renders_each_piece_once_and_a_second_run_renders_nothing(tmp_path, fresh_cache, monkeypatch):
    experiment = get_experiment("5")
    config = experiment.load_config("smoke")
    renders = []
    real_render = audio.render_notes
    monkeypatch.setattr(audio, "render_notes", lambda *args, **kwargs: renders.append(1) or real_render(*args, **kwargs))
    first = train_and_evaluate(experiment, config, tmp_path / "run", preset="smoke", verbose=0)
    pieces = json.loads((tmp_path / "run" / "manifest.json").read_text())["pieces"]
    assert len(renders) == sum(pieces.values())
    renders.clear()
    second = train_and_evaluate(experiment, config, tmp_path / "again", preset="smoke", verbose=0)
    assert renders == [] and second["test"] == first["test"]
    saved = json.loads((tmp_path / "again" / "representation.json").read_text())
    assert saved["renderer"] in ("fluidsynth", "numpy synth")  # remembered from the cached render


def test_a_torn_arrays_cache_entry_is_a_miss(tmp_path, fresh_cache):
    experiment = get_experiment("2")
    config = experiment.load_config("smoke")
    from musictf.experiments.base import prepare_data

    first = prepare_data(experiment, config, progress=False)
    entry = next((fresh_cache / "arrays").glob("*.npz"))
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    second = prepare_data(experiment, config, progress=False)
    assert [a.tobytes() for a in second.arrays["train"]] == [a.tobytes() for a in first.arrays["train"]]
    from musictf.data.prepared import _read_arrays

    assert _read_arrays(entry) is not None  # encoded again and written whole
