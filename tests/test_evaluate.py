"""The protocol's bookkeeping: every frame scored once, the warm-up skipped, results kept apart."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from musictf import config as config_module
from musictf import metrics
from musictf.data.pipeline import audio_datasets, window_datasets
from musictf.data.windows import count_windows, evaluation_windows
from musictf.evaluate import audio_test_metrics, metrics_path, predict_split, roll_test_metrics
from musictf.experiments import get_experiment
from musictf.experiments.base import prepare_data
from musictf.run import Run, evaluate
from musictf.train import build_and_compile


@pytest.fixture(scope="module")
def roll_run(cache_dir):
    experiment = get_experiment("3")
    config = experiment.load_config("smoke", ["max_eval_windows=0"])
    data = prepare_data(experiment, config, progress=False)
    return (
        experiment,
        config,
        data,
        build_and_compile(experiment, config, data.representation.features, tf.distribute.get_strategy()),
    )


def test_window_targets_score_every_frame_exactly_once(roll_run):
    experiment, config, data, model = roll_run
    arrays = data.arrays["test"]
    assert evaluation_windows("window", config, arrays) == (config.seq_len, 1)
    logits, targets, previous = predict_split(model, experiment.target, config, arrays)
    windows = count_windows(arrays, config.seq_len, "window", config.seq_len)
    assert (
        logits.shape
        == targets.shape
        == previous.shape
        == (windows * config.seq_len, data.representation.features)
    )
    np.testing.assert_array_equal(
        previous.reshape(windows, config.seq_len, -1)[:, 1:],
        targets.reshape(windows, config.seq_len, -1)[:, :-1],
    )
    assert targets.sum() > 0 and set(np.unique(targets)) <= {0.0, 1.0}


def test_epoch_eval_windows_thins_each_epochs_validation_and_the_whole_valid_split_is_scored_after(
    roll_run, tmp_path
):
    experiment, config, data, model = roll_run
    windows = count_windows(data.arrays["valid"], config.seq_len, "window", config.seq_len)
    assert windows >= 4
    sampled = config_module.replace(config, {"epoch_eval_windows": 2}, "--set")
    every = -(-windows // 2)
    assert evaluation_windows("window", sampled, data.arrays["valid"], each_epoch=True) == (
        config.seq_len,
        every,
    )
    assert evaluation_windows("window", sampled, data.arrays["valid"]) == (
        config.seq_len,
        1,
    )  # the final score: all
    _, valid, _ = window_datasets(sampled, data, tf.distribute.get_strategy())
    scored = sum(int(targets.shape[0]) for _, targets in valid)
    assert scored == 2 < windows  # the same two windows every epoch

    run = Run(tmp_path / "sampled", experiment, "smoke", sampled, data.representation, data=data, model=model)
    result = evaluate(run)
    logits, targets, _ = predict_split(model, experiment.target, config, data.arrays["valid"])
    whole = metrics.roll_metrics(logits, targets, config.output, config.threshold)
    assert result["valid"]["frames"] == whole["frames"] == windows * config.seq_len
    assert result["valid"]["frame_nll_nats"] == pytest.approx(whole["frame_nll_nats"], rel=1e-6)
    assert result["test"]["frames"] == roll_test_metrics(run, data, model, "test")[0]["frames"]
    unsampled = Run(
        tmp_path / "all", experiment, "smoke", config, data.representation, data=data, model=model
    )
    assert "valid" not in evaluate(unsampled)  # its epochs scored the whole split already


def test_audio_nll_skips_the_warm_up_of_every_crop(cache_dir):
    experiment = get_experiment("5")
    config = experiment.load_config("smoke")
    data = prepare_data(experiment, config, progress=False)
    model = build_and_compile(experiment, config, 256, tf.distribute.get_strategy())
    run = Run(Path("unused"), experiment, "smoke", config, data.representation)
    result, baseline = audio_test_metrics(run, data, model, "test")
    crops = min(
        config.max_eval_windows,
        count_windows(
            [item[1] for item in data.arrays["test"]], config.crop_frames - 1, "next", config.crop_frames
        ),
    )
    per_crop = config.crop_frames * config.hop - (config.receptive_field - 1)
    assert result["samples_scored"] == crops * per_crop
    assert 0 < result["nll_bits_per_sample"] < 9 and 0 < baseline["unigram_nll_bits_per_sample"] <= 8


def test_audio_validation_after_each_epoch_scores_epoch_eval_windows_crops(cache_dir):
    experiment = get_experiment("5")
    crops = {}
    for limit in (0, 1):
        config = experiment.load_config("smoke", [f"epoch_eval_windows={limit}"])
        data = prepare_data(experiment, config, progress=False)
        _, valid, _ = audio_datasets(config, data, tf.distribute.get_strategy())
        crops[limit] = sum(int(targets.shape[0]) for _, targets in valid)
    assert crops[0] > 1 and crops[1] == 1  # max_eval_windows' crops, then the one sampled


def test_metrics_of_another_source_go_beside_the_runs_own(tmp_path):
    assert metrics_path(tmp_path) == tmp_path / "metrics.json"
    assert metrics_path(tmp_path, "/data/jazz midi/").name.startswith("metrics-data_jazz_midi-")
    assert metrics_path(tmp_path, "music21:mozart").name.startswith("metrics-music21_mozart-")
    assert metrics_path(tmp_path, "a/b") != metrics_path(tmp_path, "a_b")  # same readable name, apart
