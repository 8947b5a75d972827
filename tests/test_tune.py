"""Keras Tuner searches at smoke size: results, a best preset that trains, and resuming."""

import csv
from types import SimpleNamespace

import pytest

from musictf.errors import ConfigError, MusicTFError
from musictf.experiments import get_experiment
from musictf.tune import load_search_space, tune


@pytest.mark.parametrize(
    "key,objective", [("1", "val_loss"), pytest.param("4", "val_f1", marks=pytest.mark.slow)]
)
def test_smoke_search_writes_results_and_a_best_preset_and_resumes(key, objective, tmp_path, cache_dir):
    experiment = get_experiment(key)
    config = experiment.load_config("smoke")
    run_dir = tmp_path / "search"
    result = tune(
        experiment, config, "smoke", run_dir, "random", max_trials=2, objective=objective, verbose=0
    )
    assert result["trials_run_now"] == 2
    scores = [row["score"] for row in result["rows"]]
    assert len(scores) == 2 and all(score is not None for score in scores)
    assert scores == sorted(scores, reverse=objective == "val_f1")
    with open(run_dir / "results.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2
    assert "| rank | trial |" in (run_dir / "results.md").read_text()

    best = experiment.load_config("best", preset_file=run_dir / "best_preset.toml")
    assert best == result["best_config"]
    space = load_search_space(experiment, "smoke")
    assert {name: getattr(best, name) for name in space} == {name: result["rows"][0][name] for name in space}

    again = tune(experiment, config, "smoke", run_dir, "random", max_trials=2, objective=objective, verbose=0)
    assert again["trials_run_now"] == 0
    assert [row["trial"] for row in again["rows"]] == [row["trial"] for row in result["rows"]]
    more = tune(experiment, config, "smoke", run_dir, "random", max_trials=3, objective=objective, verbose=0)
    assert more["trials_run_now"] == 1 and len(more["rows"]) == 3


def test_search_refuses_a_changed_search_in_the_same_directory(tmp_path, cache_dir):
    experiment = get_experiment("1")
    config = experiment.load_config("smoke")
    tune(experiment, config, "smoke", tmp_path, "random", max_trials=1, verbose=0)
    with pytest.raises(MusicTFError, match="another tuner"):
        tune(experiment, config, "smoke", tmp_path, "bayesian", max_trials=1, verbose=0)


def test_search_space_keys_must_be_config_fields(tmp_path):
    for key in ("1", "2", "3", "4"):
        assert load_search_space(get_experiment(key), "default")
    fake = SimpleNamespace(experiment_file=tmp_path / "e.toml", config_class=get_experiment("2").config_class)
    fake.experiment_file.write_text("[search.x]\nunits = [1]\n")
    with pytest.raises(ConfigError, match=r"no \[search.nope\]"):
        load_search_space(fake, "nope")
    fake.experiment_file.write_text("[search.default]\nunitz = [1, 2]\n")
    with pytest.raises(ConfigError, match="not a config field"):
        load_search_space(fake, "default")


def test_a_damaged_or_missing_search_json_and_a_second_search_are_refused_in_one_line(tmp_path, cache_dir):
    """Reliability review R12 and R6: a torn search.json gave a traceback, a missing one let another
    experiment adopt the search, and two searches on one folder both ran every trial."""
    import shutil
    import subprocess
    import sys

    experiment = get_experiment("1")
    config = experiment.load_config("smoke")
    searched = tmp_path / "searched"
    tune(experiment, config, "smoke", searched, "random", max_trials=1, verbose=0)
    torn, missing = tmp_path / "torn", tmp_path / "missing"
    shutil.copytree(searched, torn)
    shutil.copytree(searched, missing)
    (torn / "search.json").write_text((searched / "search.json").read_text()[:40])
    with pytest.raises(MusicTFError, match="search.json: unreadable"):
        tune(experiment, config, "smoke", torn, "random", max_trials=1, verbose=0)
    (missing / "search.json").unlink()
    other = get_experiment("3")
    with pytest.raises(MusicTFError, match="holds a search without its search.json"):
        tune(other, other.load_config("smoke"), "smoke", missing, "random", max_trials=1, verbose=0)
    assert not (missing / "best_preset.toml").read_text().count("e3")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from musictf import rundir\n"
            "with rundir.lock(sys.argv[1], 'tuning e1_note_lstm'):\n"
            "    print('held', flush=True); time.sleep(60)",
            str(searched),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(MusicTFError, match=f"in use by process {holder.pid}"):
            tune(experiment, config, "smoke", searched, "random", max_trials=2, verbose=0)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_ctrl_c_in_a_trial_stops_the_search_and_leaves_no_trial_failed(tmp_path, cache_dir):
    """Reliability review R5: a Ctrl-C raised inside TensorFlow's C code became a SystemError, which
    Keras Tuner recorded as a FAILED trial (never run again) before it went on with the next trials."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "search"
    command = [sys.executable, "-m", "musictf", "tune", "2", "--preset", "smoke", "--max-trials", "3"]
    process = subprocess.Popen(
        [*command, "--set", "epochs=40", "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    output = []
    for line in process.stdout:
        output.append(line)
        if "Running Trial #2" in line:
            time.sleep(3)
            process.send_signal(signal.SIGINT)
            break
    output.append(process.stdout.read())
    assert process.wait(timeout=120) == 130, "".join(output)[-3000:]
    statuses = [
        json.loads(path.read_text())["status"] for path in (run_dir / "search").glob("*/trial_*/trial.json")
    ]
    assert "FAILED" not in statuses and "SystemError" not in "".join(output), statuses
