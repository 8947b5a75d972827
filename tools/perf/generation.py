"""Figures 5 and 6: generation speed.

5. Experiments 1-4: the incremental compiled loop (`StackSampler`, `Seq2SeqSampler`: LSTM cells
   stepped inside one tf.function) against the original's approach, `model.predict` over the whole
   window for every new step. Tokens (experiment 1) or frames (2-4) per second, batch 1.
6. WaveNet: fast cached generation against the naive reference (the whole stack rerun over the
   receptive field for each sample), at three receptive fields; samples/s and the real-time factor.

Models are freshly initialised: speed does not depend on training.
"""

from __future__ import annotations

import keras
import numpy as np

from musictf import config as config_module
from musictf.train import build_and_compile
from tools.perf.timing import interleaved, paired_ratio, seconds, summary


def _draw_flags(model, logits: np.ndarray, rng) -> np.ndarray:
    """Bernoulli flags from a frame's logits; for a model with the within-frame term, drawn one flag
    at a time, each given those below it (numpy, as a per-step loop would)."""
    layer = getattr(model, "frame_autoregression", None)
    if layer is None:
        return (rng.random(logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    kernel = np.asarray(layer.masked_kernel())
    frame, logits = np.zeros_like(logits, dtype=np.float32), logits.astype(np.float32).copy()
    for k in range(logits.shape[-1]):
        frame[:, k] = rng.random(len(logits)) < 1 / (1 + np.exp(-logits[:, k]))
        logits += frame[:, k : k + 1] * kernel[k]
    return frame


def _with_target(model, inputs: list, target_shape: tuple):
    """The model's inputs; a within-frame model also reads the frames it predicts, and zeros there
    give the logits before the within-frame term (which `_draw_flags` adds flag by flag)."""
    if getattr(model, "frame_autoregression", None) is not None:
        inputs = [*inputs, np.zeros(target_shape, np.float32)]
    return inputs[0] if len(inputs) == 1 else inputs


def _naive_stack(model, primes: np.ndarray, steps: int, token_input: bool, rng) -> None:
    """The original loop: predict on the window, draw the next step, slide the window."""
    window = primes.copy()
    for _ in range(steps):
        logits = model.predict(_with_target(model, [window], (len(window), window.shape[-1])), verbose=0)
        if token_input:
            probabilities = np.exp(logits - logits.max(-1, keepdims=True))
            probabilities /= probabilities.sum(-1, keepdims=True)
            drawn = np.array([[rng.choice(len(row), p=row) for row in probabilities]])
        else:
            drawn = _draw_flags(model, logits, rng)[:, None]
        window = np.concatenate([window[:, 1:], drawn.reshape(window[:, :1].shape)], axis=1)


def _naive_seq2seq(model, primes: np.ndarray, steps: int, rng) -> None:
    """The original's per-step use of a window model: for each new frame, predict the whole decoder
    window from the frames drawn so far (zeros after them) and keep the next one."""
    window = primes.copy()
    decoder = np.zeros_like(window)
    decoder[:, 0] = window[:, -1]
    seq_len = window.shape[1]
    for t in range(steps):
        position = t % seq_len
        logits = model.predict(_with_target(model, [window, decoder], decoder.shape), verbose=0)[:, position]
        drawn = _draw_flags(model, logits, rng)
        if position + 1 < seq_len:
            decoder[:, position + 1] = drawn
        else:
            window, decoder = decoder, np.zeros_like(decoder)
            decoder[:, 0] = drawn


BATCHED_STREAMS = 64  # pieces generated at once for the batched-generation throughput


def generation_figures(prepared, numbers: list[int], fast_steps: int, naive_steps: int, repeats: int) -> dict:
    results = {
        str(number): _generation_entry(prepared, number, fast_steps, naive_steps, repeats)
        for number in numbers
    }
    return {"experiments": results, "goal": {"speedup": 300.0, "incremental_per_second": 20000.0}}


def _generation_entry(prepared, number: int, fast_steps: int, naive_steps: int, repeats: int) -> dict:
    import tensorflow as tf

    from musictf.samples import primer_arrays

    experiment, config, data = prepared(number)
    model = build_and_compile(experiment, config, data.representation.features, tf.distribute.get_strategy())
    sampler = experiment.sampler(model, config, data.representation)
    primes, _ = primer_arrays(data, config.seq_len, 1)
    token_input = experiment.kind == "tokens"
    primes = primes.astype(np.int32 if token_input else np.float32)
    streams = np.repeat(primes, BATCHED_STREAMS, axis=0)  # many pieces at once, one loop
    rng = np.random.default_rng(0)

    def naive():
        if experiment.target == "window":
            return seconds(lambda: _naive_seq2seq(model, primes, naive_steps, rng)) / naive_steps
        return seconds(lambda: _naive_stack(model, primes, naive_steps, token_input, rng)) / naive_steps

    def incremental():
        return seconds(lambda: sampler.generate(primes, fast_steps, seed=0)) / fast_steps

    def batched():  # seconds per step of all streams together
        return seconds(lambda: sampler.generate(streams, fast_steps, seed=0)) / fast_steps

    times = interleaved(
        {"incremental": incremental, "predict_per_step": naive, "batched": batched}, repeats=repeats, warmup=1
    )
    keras.backend.clear_session()
    return {
        "unit": "tokens" if token_input else "frames",
        "preset": prepared.preset,
        "seq_len": config.seq_len,
        "incremental_steps": fast_steps,
        "predict_steps": naive_steps,
        "incremental_per_second": summary([1 / t for t in times["incremental"]]),
        "predict_per_step_per_second": summary([1 / t for t in times["predict_per_step"]]),
        "speedup": paired_ratio(times["predict_per_step"], times["incremental"]),
        "batched_streams": BATCHED_STREAMS,
        "batched_steps_per_second": summary([BATCHED_STREAMS / t for t in times["batched"]]),
        "batched_over_batch_1": paired_ratio(
            [t / BATCHED_STREAMS for t in times["batched"]], times["incremental"]
        ),
    }


def wavenet_figures(
    prepared, layer_counts: list[int], fast_samples: int, naive_samples: int, repeats: int
) -> dict:
    """`layer_counts`: layers per stack, with the preset's stacks (cpu: 2): receptive field
    1 + stacks (2^L - 1)."""
    results = {}
    for layers in layer_counts:
        entry = _wavenet_entry(prepared, layers, fast_samples, naive_samples, repeats)
        results[str(entry["receptive_field"])] = entry
    return {"receptive_fields": results, "goal": {"speedup_at_2047": 20.0, "fast_samples_per_second": 2000.0}}


def _wavenet_entry(prepared, layers: int, fast_samples: int, naive_samples: int, repeats: int) -> dict:
    import tensorflow as tf

    from musictf.experiments.e5_wavenet import WaveNetSampler

    experiment, base_config, data = prepared(5)
    config = config_module.replace(base_config, {"layers_per_stack": layers}, origin="bench")
    model = build_and_compile(experiment, config, data.representation.features, tf.distribute.get_strategy())
    sampler = WaveNetSampler(model, config)
    field = config.receptive_field
    roll = np.zeros((1, (field + fast_samples) // config.hop + 2, 88), np.float32)
    # A primer as long as the receptive field, so that every naive step sees a full field.
    primer = np.random.default_rng(0).integers(0, 256, (1, field)).astype(np.int32)

    def fast():
        return (
            seconds(lambda: sampler.generate(roll=roll, program=0, length=fast_samples, seed=0))
            / fast_samples
        )

    def naive():
        return (
            seconds(lambda: sampler.generate_naive(primer, naive_samples, roll=roll, program=0))
            / naive_samples
        )

    times = interleaved({"fast": fast, "naive": naive}, repeats=repeats, warmup=1)
    keras.backend.clear_session()
    fast_rate = [1 / t for t in times["fast"]]
    return {
        "receptive_field": field,
        "stacks": config.stacks,
        "layers_per_stack": layers,
        "residual_channels": config.residual_channels,
        "sample_rate": config.sample_rate,
        "fast_samples": fast_samples,
        "naive_samples": naive_samples,
        "fast_samples_per_second": summary(fast_rate),
        "naive_samples_per_second": summary([1 / t for t in times["naive"]]),
        "speedup": paired_ratio(times["naive"], times["fast"]),
        "real_time_factor": summary([rate / config.sample_rate for rate in fast_rate]),
    }
