"""WaveNet: mu-law, causality, fast == naive generation, and conditioning that is followed."""

import dataclasses
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from musictf.data.audio import AudioRepresentation, mu_law_decode, mu_law_encode
from musictf.data.music import Note
from musictf.data.pipeline import audio_dataset
from musictf.experiments import get_experiment
from musictf.experiments.e5_wavenet import WaveNetConfig, WaveNetSampler, build_model
from musictf.layers import WaveNetBlock
from musictf.train import build_and_compile

TINY = WaveNetConfig(
    layers_per_stack=3, stacks=2, residual_channels=8, skip_channels=8, conditioning_channels=4
)


def test_mu_law_round_trips_exactly_on_the_256_levels():
    codes = np.arange(256)
    np.testing.assert_array_equal(mu_law_encode(mu_law_decode(codes)), codes)
    assert mu_law_encode(np.array([0.0]))[0] == 128 and mu_law_encode(np.array([-1.0, 1.0])).tolist() == [
        0,
        255,
    ]


def test_changing_the_input_at_t_never_changes_an_earlier_output():
    model = build_model(TINY)
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (1, 3000)).astype("int32")
    inputs = {
        "codes": codes,
        "roll": (rng.random((1, 3, 88)) < 0.1).astype("float32"),
        "program": np.array([1]),
    }
    before = model(inputs).numpy()
    changed = codes.copy()
    changed[:, 1234:] = rng.integers(0, 256, (1, 3000 - 1234))
    after = model(inputs | {"codes": changed}).numpy()
    np.testing.assert_array_equal(before[:, :1234], after[:, :1234])
    assert np.abs(before[:, 1234:] - after[:, 1234:]).max() > 0
    assert TINY.receptive_field == 15


@pytest.mark.parametrize("dilation", [1, 4, 16])
def test_the_convolution_training_form_equals_conv1d_and_the_step_form(dilation):
    rng = np.random.default_rng(dilation)
    x = rng.normal(size=(2, 50, 8)).astype("float32")
    local, global_ = rng.normal(size=(2, 50, 4)).astype("float32"), rng.normal(size=(2, 3)).astype("float32")
    block = WaveNetBlock(8, 6, dilation, local_channels=4, global_channels=3)
    block.build(None)
    for weight in block.weights:  # the biases start at zero; make every term count
        weight.assign(rng.normal(size=weight.shape).astype("float32") * 0.3)
    residual, skip = (tensor.numpy() for tensor in block([x, local, global_]))

    conv = keras.layers.Conv1D(16, 2, padding="causal", dilation_rate=dilation, use_bias=False)
    conv.build((None, None, 8))
    conv.kernel.assign(np.stack([block.kernel_past.numpy(), block.kernel_now.numpy()]))
    np.testing.assert_allclose(block.causal_convolution(x).numpy(), conv(x).numpy(), rtol=1e-5, atol=1e-5)

    steps = []  # the generation form: one sample at a time, x[t - dilation] from the past (zeros before 0)
    for t in range(x.shape[1]):
        past = x[:, t - dilation] if t >= dilation else np.zeros_like(x[:, 0])
        steps.append([tensor.numpy() for tensor in block.gate(past, x[:, t], local[:, t], global_)])
    np.testing.assert_allclose(np.stack([step[0] for step in steps], 1), residual, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.stack([step[1] for step in steps], 1), skip, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("local,global_", [(True, True), (False, False)])
def test_fast_generation_equals_naive_sample_for_sample(local, global_):
    config = dataclasses.replace(TINY, local_conditioning=local, global_conditioning=global_)
    sampler = WaveNetSampler(build_model(config), config)
    roll = (np.random.default_rng(1).random((2, 4, 88)) < 0.08).astype("float32") if local else None
    primer = np.array([[128, 131, 126], [128, 120, 140]])
    fast = sampler.generate(primer, 80, 7, roll=roll, program=np.array([0, 2]), batch=2)
    naive = sampler.generate_naive(primer, 80, 7, roll=roll, program=np.array([0, 2]), batch=2)
    np.testing.assert_array_equal(fast, naive)
    assert fast.shape == (2, 83) and len(set(fast[0, 3:].tolist())) > 5
    assert not np.array_equal(
        fast, sampler.generate(primer, 80, 8, roll=roll, program=np.array([0, 2]), batch=2)
    )


@pytest.mark.slow
def test_conditioning_on_a_roll_puts_the_dominant_frequency_on_its_notes(monkeypatch):
    """Overfit a tiny WaveNet on two held notes, then generate from each note's roll alone. The
    notes are rendered by the numpy synth wherever FluidSynth is installed too: a SoundFont flute's
    strong upper partials make what 250 steps learn depend on the machine's renderer."""
    monkeypatch.setattr("musictf.data.audio.fluidsynth_available", lambda: False)
    config = WaveNetConfig(
        layers_per_stack=7,
        stacks=1,
        residual_channels=24,
        skip_channels=32,
        conditioning_channels=8,
        global_conditioning=False,
        programs="flute",
        segment_frames=2,
        learning_rate=0.01,
    )
    representation = AudioRepresentation(config.sample_rate, ["flute"], config.tempo_bpm, 8.0)
    notes = {69: Note(69, 0.0, 4.0, "A4"), 76: Note(76, 0.0, 4.0, "E5")}
    items = [representation.encode_notes([note], 0) for note in notes.values()]
    keras.utils.set_random_seed(0)
    model = build_and_compile(get_experiment("5"), config, 256, tf.distribute.get_strategy())
    dataset = audio_dataset(items, config, 8, shuffle=True, repeat=True)
    model.fit(dataset, steps_per_epoch=250, epochs=1, verbose=0, shuffle=False)
    sampler = WaveNetSampler(model, config, temperature=0.7)
    for pitch, (_, roll, _) in zip(notes, items, strict=True):
        generated = mu_law_decode(sampler.generate(length=4000, seed=1, roll=roll[:6])[0, 1000:])
        spectrum = np.abs(np.fft.rfft(generated * np.hanning(len(generated))))
        peak = np.fft.rfftfreq(len(generated), 1 / config.sample_rate)[spectrum.argmax()]
        expected = 440 * 2 ** ((pitch - 69) / 12)
        assert abs(12 * math.log2(peak / expected)) < 0.6, (pitch, peak, expected)
