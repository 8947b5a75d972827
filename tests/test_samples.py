"""Run-level sample writing: files, listing, the real excerpt, and options a writer refuses."""

import json

import pytest

from musictf.cli import main
from musictf.data.music import Note
from musictf.data.pianoroll import read_midi, write_midi
from musictf.samples import primer_arrays


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, cache_dir):
    run_dir = tmp_path_factory.mktemp("samples") / "run"
    assert main(["run", "2", "--preset", "smoke", "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_the_listing_names_every_file_and_the_midi_holds_the_counted_notes(smoke_run):
    listing = json.loads((smoke_run / "samples" / "samples.json").read_text())
    assert (smoke_run / "samples" / listing["real_excerpt"]).read_bytes()[:4] == b"\x89PNG"
    for item in listing["samples"]:
        assert len(read_midi(smoke_run / "samples" / item["midi"])) == item["notes"]
        primed = read_midi(smoke_run / "samples" / item["primed_midi"])
        assert len(primed) >= item["notes"]


def test_the_statistics_measure_their_own_written_continuations_beside_as_many_of_the_baseline(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    config = json.loads((smoke_run / "config.json").read_text())["config"]
    measured = sorted((smoke_run / "samples" / "measured").glob("sample_*.mid"))
    assert len(measured) == config["statistics_samples"] == metrics["samples"]["pieces"]
    assert metrics["baseline_samples"]["pieces"] == config["statistics_samples"]
    from musictf.quality import sample_quality

    assert sample_quality([read_midi(path) for path in measured]) == metrics["samples"]


def test_a_new_evaluation_leaves_only_the_continuations_it_measured(smoke_run):
    stale = smoke_run / "samples" / "measured" / "sample_99.mid"
    stale.write_bytes((smoke_run / "samples" / "measured" / "sample_1.mid").read_bytes())
    assert main(["evaluate", str(smoke_run)]) == 0
    measured = sorted((smoke_run / "samples" / "measured").glob("sample_*.mid"))
    assert (
        not stale.exists()
        and len(measured) == json.loads((smoke_run / "metrics.json").read_text())["samples"]["pieces"]
    )


def test_a_symbolic_writer_refuses_audio_options_in_one_line(smoke_run, tmp_path, capsys):
    roll = write_midi([Note(60, 0.0, 1.0, "C4")], tmp_path / "roll.mid")
    for flags, flag in ((["--roll", str(roll)], "--roll"), (["--program", "organ"], "--program")):
        status = main(["generate", str(smoke_run), *flags, "--out", str(tmp_path / "g")])
        err = capsys.readouterr().err.strip()
        assert (
            status == 2
            and err.startswith(f"musictf: error: {flag}: only experiment 5")
            and len(err.splitlines()) == 1
        )


def test_primers_come_from_the_test_split_first(cache_dir):
    from musictf.experiments import get_experiment
    from musictf.experiments.base import prepare_data

    experiment = get_experiment("2")
    data = prepare_data(experiment, experiment.load_config("smoke"), progress=False)
    primes, sources = primer_arrays(data, 8, 2)
    test_ids = [piece.piece_id for piece in data.splits["test"]]
    assert primes.shape == (2, 8, 176) and sources[0] == test_ids[0]
    assert (primes[0] == data.arrays["test"][0][:8]).all()


def test_the_measured_primers_cycle_through_the_evaluation_split_alone(cache_dir):
    from musictf.experiments import get_experiment
    from musictf.experiments.base import prepare_data

    experiment = get_experiment("2")
    data = prepare_data(experiment, experiment.load_config("smoke"), progress=False)
    test_ids = [
        piece.piece_id
        for piece, array in zip(data.splits["test"], data.arrays["test"], strict=True)
        if len(array) >= 8
    ]
    primes, sources = primer_arrays(data, 8, 2 * len(test_ids) + 1, only_split="test")
    assert sources == [test_ids[index % len(test_ids)] for index in range(2 * len(test_ids) + 1)]
    assert (primes[len(test_ids)] == primes[0]).all()


def test_samples_can_be_measured_on_the_valid_split_with_other_settings_beside_the_runs_own(
    smoke_run, capsys
):
    """Sampling settings are chosen on the valid split: `evaluate --split valid --set temperature=…`
    writes its result beside metrics.json, which stays as it was; a field that would change the
    model is refused in one line."""
    own = (smoke_run / "metrics.json").read_bytes()
    assert main(["evaluate", str(smoke_run), "--split", "valid", "--set", "temperature=0.5"]) == 0
    written = [path for path in smoke_run.glob("metrics-*.json") if "valid_split" in path.name]
    assert len(written) == 1 and (smoke_run / "metrics.json").read_bytes() == own
    result = json.loads(written[0].read_text())
    assert result["split"] == "valid" and result["config"]["temperature"] == 0.5
    assert "set_level" in result and "verdict" in capsys.readouterr().out
    assert main(["evaluate", str(smoke_run), "--set", "units=8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--set units: evaluate changes only how samples are drawn and measured" in err
    assert len(err.splitlines()) == 1


def test_the_set_level_tests_are_in_metrics_json_and_the_verdict(smoke_run):
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    tests = metrics["set_level"]
    assert tests["excerpt_quarters"] == 2.0 and tests["excerpts"]["model"] >= 2
    if "unavailable" not in tests:  # a smoke split may hold too few pieces for folds by piece
        assert set(tests["c2st"]) >= {"model", "floor", "anchor"} and "overlap" in tests
