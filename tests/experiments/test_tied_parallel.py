"""Experiment 6, the tied-parallel LSTMs: a frame's probability is an exact product over its keys,
each key reading only the keys below it; the key-by-key draw scores frames as the model does."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from musictf.errors import ConfigError
from musictf.experiments import get_experiment
from musictf.experiments.e6_tied_parallel import TiedParallelConfig
from musictf.layers import KeyNeighbourhood

FEATURES = 176


def _model(**changes):
    experiment = get_experiment("6")
    config = dataclasses.replace(experiment.load_config("smoke"), lstm_dropout=0.0, **changes)
    model = experiment.build_model(config, FEATURES)
    # weights away from their start, so the coupling within a key and the pitch axis both matter
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.5, weight.shape).astype(np.float32))
    return experiment, config, model


def _window(batch=3, steps=8, seed=1):
    rng = np.random.default_rng(seed)
    sustain = (rng.random((batch, steps + 1, 88)) < 0.08).astype(np.float32)
    onset = sustain * (rng.random(sustain.shape) < 0.5)
    frames = np.stack([onset, sustain], axis=-1).reshape(batch, steps + 1, FEATURES)
    return frames[:, :-1], frames[:, -1]


def _log_probability(logits, frame):
    return -np.sum(np.logaddexp(0, np.where(frame > 0.5, -logits, logits)), axis=-1)


def test_each_key_reads_only_the_keys_below_it_and_its_own_earlier_channel():
    _, _, model = _model()
    window, frame = _window()
    key = 40
    changed = frame.copy()
    changed[:, 2 * key : 2 * key + 2] = 1 - changed[:, 2 * key : 2 * key + 2]
    difference = (model((window, changed)) - model((window, frame))).numpy()
    np.testing.assert_array_equal(difference[:, : 2 * key + 1], 0.0)  # below it, and its own onset
    assert np.abs(difference[:, 2 * key + 1]).min() > 0  # its sustain reads its onset
    assert np.abs(difference[:, 2 * key + 2 :]).max() > 1e-3  # the keys above read it


def test_without_the_keys_below_only_a_keys_own_onset_informs_it():
    _, _, model = _model(frame_autoregression=False)
    window, frame = _window()
    changed = 1 - frame
    difference = (model((window, changed)) - model((window, frame))).numpy()
    np.testing.assert_array_equal(difference[:, 0::2], 0.0)  # onsets read nothing of the frame
    assert np.abs(difference[:, 1::2]).max() > 0


def test_the_key_by_key_draw_scores_its_frame_as_the_model_does():
    """The stepper's time axis plus the pitch axis's draw at temperature 1 give each drawn frame the
    log-probability the full model gives it as the frame after the window."""
    experiment, config, model = _model()
    window, _ = _window(batch=4)
    sampler = experiment.sampler(model, config, None)
    stepper = sampler.stepper
    features, _ = stepper.step(tf.constant(window[:, -1]), stepper.initial_state(tf.constant(window)))
    frame, log_probability = sampler.chooser.autoregression(
        features,
        tf.constant([7, 0], tf.int64),
        1.0,
        log_probability=True,
        previous=tf.constant(window[:, -1]),
    )
    frame = frame.numpy()
    logits = model((window, frame)).numpy()
    np.testing.assert_allclose(log_probability.numpy(), _log_probability(logits, frame), rtol=1e-4, atol=1e-4)
    keys = frame.reshape(4, 88, 2)
    assert (keys[..., 1] >= keys[..., 0]).all()  # an onset sounds
    held = window[:, -1].reshape(4, 88, 2)[..., 1]
    assert not (keys[..., 1] * (1 - keys[..., 0]) * (1 - held)).any()  # a sustain continues a note


def test_generation_is_seeded_and_keeps_onset_sustain_rolls_valid():
    experiment, config, model = _model()
    window, _ = _window(batch=2)
    sampler = experiment.sampler(model, config, None)
    first = sampler.generate(window, 6, seed=1)
    np.testing.assert_array_equal(first, sampler.generate(window, 6, seed=1))
    assert not np.array_equal(first, sampler.generate(window, 6, seed=2))
    keys = first.reshape(2, 6, 88, 2)
    assert first.shape == (2, 6, FEATURES) and (keys[..., 1] >= keys[..., 0]).all()


def test_scoring_spends_the_pitch_axis_on_the_last_step_only_and_training_on_every_step():
    _, _, model = _model()
    window, frame = _window()
    inference = model((window, frame), training=False).numpy()
    training = model((window, frame), training=True).numpy()  # no dropout: the same last step
    np.testing.assert_allclose(training, inference, atol=1e-5)
    assert model.losses  # the other steps' loss is added in training


def test_key_inputs_are_relative_in_pitch():
    """A key's vicinity is the same flags wherever they sit on the keyboard; the pitch classes are
    counted from its own."""
    layer = KeyNeighbourhood(channels=1, reach=2)
    frame = np.zeros((1, 88), np.float32)
    frame[0, [30, 34]] = 1  # a major third
    shifted = np.roll(frame, 5, axis=1)
    inputs, moved = layer(frame).numpy()[0], layer(shifted).numpy()[0]
    np.testing.assert_array_equal(inputs[30, :5], [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(inputs[32, :5], [1, 0, 0, 0, 1])
    np.testing.assert_array_equal(moved[37, :5], inputs[32, :5])
    np.testing.assert_array_equal(moved[35, 5:17], inputs[30, 5:17])  # the classes from its own
    assert inputs[30, 5] == 1 and inputs[30, 5 + 4] == 1  # itself and a third above it
    np.testing.assert_array_equal(inputs[:, -3], 2.0)  # the frame's sounding keys, given to every key
    np.testing.assert_array_equal(inputs[[20, 30, 32, 34, 40], -2:], [[0, 2], [0, 1], [1, 1], [1, 0], [2, 0]])
    assert layer(np.zeros((2, 3, 88), np.float32)).shape == (2, 3, 88, layer.features)


@pytest.mark.parametrize(
    "changes,field",
    [({"nade_units": 8}, "nade_units"), ({"voice_bins": 3}, "voice"), ({"output": "softmax"}, "sigmoid")],
)
def test_the_other_families_within_frame_settings_are_refused(changes, field):
    with pytest.raises(ConfigError, match=field):
        dataclasses.replace(TiedParallelConfig(), **changes).validate()


@pytest.mark.slow  # the contract's fast checks are in test_models.py; this one runs every stage
def test_a_smoke_run_trains_scores_samples_and_sets_its_samples_beside_the_music(cache_dir, tmp_path):
    """The whole contract through the command line: trained, scored beside the count baselines,
    sampled key by key into MIDI, and its samples given the set-level tests."""
    import json

    from musictf.cli import main

    run_dir = tmp_path / "run"
    assert main(["run", "6", "--preset", "smoke", "--run-dir", str(run_dir)]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["frame_nll_nats"]) and metrics["baseline"]["ngram_nll_nats"] > 0
    tests = metrics["set_level"]  # at smoke size too few pieces for the classifier: its slots, named
    assert {"c2st", "overlap", "realism"} <= set(tests) and {"model", "floor", "anchor"} <= set(tests["c2st"])
    assert tests["c2st"]["anchor_name"] == "per-key N-gram"
    assert len(list((run_dir / "samples").glob("sample_*.mid"))) >= 2
