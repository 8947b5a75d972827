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
