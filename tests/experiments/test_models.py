"""Each experiment at smoke size: builds, predicts on tf.data, fits a step, saves and reloads."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from musictf.errors import ConfigError
from musictf.experiments import get_experiment
from musictf.experiments.base import prepare_data
from musictf.train import build_and_compile

EXPERIMENTS = ["1", "2", "3", "4", "5", "6"]


@pytest.fixture(scope="module")
def prepared(cache_dir):
    """Each experiment's smoke config; the roll models with independent flags, whose logits the
    stepping tests compare (the within-frame models have their own test below)."""
    result = {}
    for key in EXPERIMENTS:
        experiment = get_experiment(key)
        overrides = ["frame_autoregression=false"] if key in "234" else []
        if key == "2":  # the documented target, the step after the window (every step: its own test)
            overrides.append("every_step_loss=false")
        config = experiment.load_config("smoke", overrides)
        result[key] = (experiment, config, prepare_data(experiment, config, progress=False))
    return result


def check_model(experiment, config, data, tmp_path):
    """The shared helper: output shape, predict on tf.data, one fit step, .keras round trip, and the
    rebuild-and-load that `run.load_model` does (which keeps the model's incremental form)."""
    features = data.representation.features
    train, _, _ = experiment.make_datasets(config, data, tf.distribute.get_strategy())
    batch = 4
    dataset = train.unbatch().batch(batch, drop_remainder=True).take(2)
    model = build_and_compile(experiment, config, features, tf.distribute.get_strategy())
    inputs, targets = next(iter(dataset))
    expected = {
        "next": (batch, features),
        "window": (batch, config.seq_len, features),
        "audio": (batch, getattr(config, "crop_frames", 0) * getattr(config, "hop", 0), features),
    }[experiment.target]
    assert tuple(model(inputs).shape) == expected
    assert model.predict(dataset, verbose=0).shape == (2 * batch, *expected[1:])
    before = [weight.numpy().copy() for weight in model.trainable_weights]
    history = model.fit(dataset, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before, model.trainable_weights, strict=True))
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(reloaded(inputs).numpy(), model(inputs).numpy(), atol=1e-6)
    rebuilt = experiment.build_model(config, features)
    rebuilt.load_weights(path)
    np.testing.assert_allclose(rebuilt(inputs).numpy(), model(inputs).numpy(), atol=1e-6)
    experiment.sampler(rebuilt, config, data.representation)  # its incremental form came with it
    return model, inputs


@pytest.fixture(scope="module")
def checked(prepared, tmp_path_factory):
    """check_model once per experiment (and attention variant); returns (config, model, inputs)."""
    cache = {}

    def get(key, attention=False):
        if (key, attention) not in cache:
            experiment, config, data = prepared[key]
            if attention:
                config = dataclasses.replace(config, attention=True)
            cache[key, attention] = (
                config,
                *check_model(experiment, config, data, tmp_path_factory.mktemp("model")),
            )
        return cache[key, attention]

    return get


@pytest.mark.parametrize(
    "key", [pytest.param(key, marks=pytest.mark.slow) if key == "5" else key for key in EXPERIMENTS]
)  # experiment 5: slow here; its fast run through the CLI (tests/test_cli.py) trains, saves and reloads
def test_experiment_builds_fits_saves_and_reloads(checked, key):
    checked(key)


@pytest.mark.parametrize("key", ["1", "2"])
def test_incremental_sampling_gives_the_full_window_logits(prepared, checked, key):
    experiment, _, data = prepared[key]
    config, model, inputs = checked(key)
    sampler = experiment.sampler(model, config, data.representation)
    np.testing.assert_allclose(sampler.final_logits(inputs), model(inputs).numpy(), atol=1e-4)


@pytest.mark.parametrize("key,attention", [("3", False), ("3", True), ("4", False)])
def test_step_by_step_decoder_gives_the_full_window_logits(prepared, checked, key, attention):
    experiment, _, data = prepared[key]
    config, model, (encoder_input, decoder_input) = checked(key, attention)
    sampler = experiment.sampler(model, config, data.representation)
    stepped = sampler.stepper.teacher_forced_logits(encoder_input, decoder_input.numpy())
    np.testing.assert_allclose(stepped, model((encoder_input, decoder_input)).numpy(), atol=1e-4)


@pytest.mark.parametrize("key", ["2", "3"])
def test_input_dropout_hides_input_frames_in_training_only(prepared, key):
    """`input_dropout` drops frames the LSTMs read while training; at inference it is the identity,
    so the stepped logits still equal the full model's."""
    experiment, config, data = prepared[key]
    config = dataclasses.replace(
        config, input_dropout=0.5, lstm_dropout=0.0, dense_dropout=0.0
    )  # the only dropout
    model = experiment.build_model(config, data.representation.features)
    rng = np.random.default_rng(0)
    shape = (2, config.seq_len, data.representation.features)
    inputs = tuple((rng.random(shape) < 0.3).astype(np.float32) for _ in range(1 if key == "2" else 2))
    inputs = inputs[0] if key == "2" else inputs
    inference = model(inputs, training=False).numpy()
    assert not np.allclose(model(inputs, training=True).numpy(), inference)
    sampler = experiment.sampler(model, config, data.representation)
    if key == "2":
        stepped = sampler.final_logits(inputs)
    else:
        stepped = sampler.stepper.teacher_forced_logits(inputs[0], inputs[1])
    np.testing.assert_allclose(stepped, inference, atol=1e-4)


def test_generation_feeds_the_decoder_its_own_frames(prepared, checked):
    experiment, _, data = prepared["3"]
    config, model, (encoder_input, _) = checked("3")
    sampler = experiment.sampler(model, config, data.representation)
    first = sampler.generate(encoder_input.numpy(), 2 * config.seq_len, seed=1)
    again = sampler.generate(encoder_input.numpy(), 2 * config.seq_len, seed=1)
    other = sampler.generate(encoder_input.numpy(), 2 * config.seq_len, seed=2)
    assert first.shape == (4, 2 * config.seq_len, data.representation.features)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    onsets, sustains = first.reshape(4, -1, 88, 2)[..., 0], first.reshape(4, -1, 88, 2)[..., 1]
    assert (sustains >= onsets).all()


@pytest.mark.parametrize("key", ["1", "2", "3", "4", "6"])
def test_every_preset_keeps_keras_on_the_cudnn_lstm_path(key):
    """On a GPU, Keras runs an LSTM with cuDNN only with tanh/sigmoid activations, a bias, no
    unrolling and no recurrent dropout (keras/src/layers/rnn/lstm.py); a mask must be right-padded,
    and no experiment masks. Every preset of every LSTM experiment must keep all of them."""
    import tomllib

    import keras

    experiment = get_experiment(key)
    presets = tomllib.loads(experiment.experiment_file.read_text())["presets"]
    for preset in presets:
        config = experiment.load_config(preset)
        features = (
            40 if experiment.kind == "tokens" else experiment.make_representation(config).features
        )  # 40: any vocabulary
        model = experiment.build_model(config, features)
        lstms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.LSTM)]
        assert lstms, preset
        for layer in lstms:
            where = f"{experiment.slug} [{preset}] {layer.name}"
            assert layer.activation is keras.activations.tanh, where
            assert layer.recurrent_activation is keras.activations.sigmoid, where
            assert layer.use_bias and not layer.unroll and layer.recurrent_dropout == 0, where
            assert layer.use_cudnn in ("auto", True), where
        assert not any(getattr(layer, "mask_zero", False) for layer in model._flatten_layers()), preset


@pytest.mark.parametrize("key", ["2", "3", "4"])
def test_frame_autoregression_models_read_their_target_fit_reload_and_sample(prepared, tmp_path, key):
    """With `frame_autoregression` the model's inputs end with the target frames; its logits are the
    head's plus the within-frame term; it trains, reloads, and samples flag by flag."""
    experiment, config, data = prepared[key]
    config = dataclasses.replace(config, frame_autoregression=True, pad_start=True)
    model, inputs = check_model(experiment, config, data, tmp_path)
    targets = inputs[-1]
    layer = model.get_layer("frame_autoregression")
    layer.kernel.assign(np.full(layer.kernel.shape, 0.5, np.float32))
    changed = tf.concat(
        [targets[..., :1] * 0 + 1 - targets[..., :1], targets[..., 1:]], axis=-1
    )  # flip flag 0
    difference = (model([*inputs[:-1], changed]) - model(inputs)).numpy()
    np.testing.assert_array_equal(difference[..., 0], 0.0)  # flag 0 never reads itself
    assert np.abs(difference[..., 1:]).min() > 0.4  # every flag above it does (by W[0, k] = 0.5)
    sampler = experiment.sampler(model, config, data.representation)
    primes = np.stack([data.arrays["train"][0][: config.seq_len]] * 2).astype(np.float32)
    frames = sampler.generate(primes, length=6, seed=3)
    assert frames.shape == (2, 6, data.representation.features) and set(np.unique(frames)) <= {0.0, 1.0}


@pytest.mark.parametrize("key", [pytest.param("2", marks=pytest.mark.slow), "3"])
def test_nade_within_frame_models_fit_reload_and_sample(prepared, tmp_path, key):
    """With `nade_units` the within-frame term is a FrameNADE: the head gives its hidden biases too,
    flag 0's logit never reads the target frame while the others do, and it samples flag by flag."""
    experiment, config, data = prepared[key]
    config = dataclasses.replace(config, frame_autoregression=True, pad_start=True, nade_units=5)
    model, inputs = check_model(experiment, config, data, tmp_path)
    layer = model.get_layer("frame_autoregression")
    assert layer.units == 5 and model.get_layer("head").output.shape[-1] == data.representation.features + 5
    layer.input_kernel.assign(np.full(layer.input_kernel.shape, 2.0, np.float32))
    layer.output_kernel.assign(np.full(layer.output_kernel.shape, 3.0, np.float32))
    targets = inputs[-1]
    changed = tf.concat([1 - targets[..., :1], targets[..., 1:]], axis=-1)  # flip flag 0
    difference = (model([*inputs[:-1], changed]) - model(inputs)).numpy()
    np.testing.assert_array_equal(difference[..., 0], 0.0)
    assert np.abs(difference[..., 1:]).max() > 1e-3  # how much depends on the trained hidden biases
    sampler = experiment.sampler(model, config, data.representation)
    primes = np.stack([data.arrays["train"][0][: config.seq_len]] * 2).astype(np.float32)
    frames = sampler.generate(primes, length=6, seed=3)
    assert frames.shape == (2, 6, data.representation.features) and set(np.unique(frames)) <= {0.0, 1.0}


@pytest.mark.parametrize("within_frame", [False, True], ids=["independent", "within-frame"])
def test_every_step_loss_trains_on_every_step_and_scores_the_step_after_the_window(
    prepared, tmp_path, within_frame
):
    """Experiment 2's `every_step_loss`: the output is still the step after the window (what the
    stepper gives and validation scores), while the training loss is the mean BCE over every step of
    the window, each step's target the frame after it; outside training nothing is added."""
    experiment, config, data = prepared["2"]
    config = dataclasses.replace(
        config,
        every_step_loss=True,
        frame_autoregression=within_frame,
        pad_start=True,
        lstm_dropout=0.0,
        dense_dropout=0.0,  # training=True is then deterministic
    )
    model, (window, next_frame) = check_model(experiment, config, data, tmp_path)
    sampler = experiment.sampler(model, config, data.representation)
    if not within_frame:  # independent flags: the stepper's logits are the model's
        np.testing.assert_allclose(
            sampler.final_logits(window), model((window, next_frame)).numpy(), atol=1e-4
        )
    step_logits = keras.Model(model.inputs, model.get_layer("every_step_loss").input[0])
    every_step = step_logits((window, next_frame), training=True).numpy()  # (B, L, F)
    following = np.concatenate([window.numpy()[:, 1:], next_frame.numpy()[:, None]], axis=1)
    bce = np.maximum(every_step, 0) - every_step * following + np.log1p(np.exp(-np.abs(every_step)))
    output = model((window, next_frame), training=True).numpy()
    np.testing.assert_allclose(output, every_step[:, -1], atol=1e-6)
    compiled = bce[:, -1].mean()
    added = float(sum(loss.numpy() for loss in model.losses))
    assert abs(added) > 1e-4  # the earlier steps are not scored like the last
    np.testing.assert_allclose(compiled + added, bce.mean(), rtol=1e-5)
    model((window, next_frame), training=False)
    assert not model.losses
    with pytest.raises(ConfigError, match="every_step_loss"):
        dataclasses.replace(config, frame_autoregression=False, output="softmax").validate()


def test_the_hoisted_lstm_equals_keras_lstm_and_shares_its_weights(tmp_path):
    """HoistedLSTM (one GEMM for every step's input projection) gives LSTM's outputs, states and
    gradients from the same weights, and a checkpoint of either loads into the other."""
    from tools.perf.lstm import LSTM as HoistedLSTM

    x = np.random.default_rng(0).normal(size=(4, 9, 6)).astype("float32")

    def build(layer_class):
        inputs = keras.Input((None, 6))
        sequence, hidden, carry = layer_class(5, return_sequences=True, return_state=True, name="lstm_a")(
            inputs
        )
        last = layer_class(3, name="lstm_b")(sequence)
        return keras.Model(inputs, [sequence, hidden, carry, last])

    keras_model, hoisted = build(keras.layers.LSTM), build(HoistedLSTM)
    hoisted.set_weights(keras_model.get_weights())
    for expected, got in zip(keras_model(x), hoisted(x), strict=True):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-6)

    def gradients(model):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x)[-1] ** 2)
        return tape.gradient(loss, model.trainable_weights)

    for expected, got in zip(gradients(keras_model), gradients(hoisted), strict=True):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-5)
    keras_model.save_weights(tmp_path / "keras.weights.h5")
    reloaded = build(HoistedLSTM)
    reloaded.load_weights(tmp_path / "keras.weights.h5")
    np.testing.assert_allclose(reloaded(x)[-1].numpy(), keras_model(x)[-1].numpy(), atol=1e-6)


def test_experiment_1_draws_pitches_and_rhythm_tokens_at_their_own_temperatures():
    from musictf.data.tokens import Vocabulary
    from musictf.experiments.e1_note_lstm import token_temperatures

    experiment = get_experiment("1")
    vocabulary = Vocabulary(["shift_1/2", "C4", "dur_1", "G#3"])
    config = dataclasses.replace(experiment.load_config("smoke"), temperature=0.7, rhythm_temperature=1.2)
    temperatures = dict(zip(vocabulary.tokens, token_temperatures(config, vocabulary), strict=True))
    assert temperatures["shift_1/2"] == temperatures["dur_1"] == pytest.approx(1.2)
    assert temperatures["C4"] == temperatures["G#3"] == temperatures["<pad>"] == pytest.approx(0.7)
    assert token_temperatures(dataclasses.replace(config, rhythm_temperature=0.0), vocabulary) == 0.7
