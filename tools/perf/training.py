"""Figures 2-4: input pipeline against in-memory batches, training throughput per precision, and
the same models written in PyTorch.

Every figure is the median over rounds of `steps` training steps; a round's value is the median
step time inside it (so a round's first step, which starts the iterator, never counts). Modes and
frameworks alternate round by round, and ratios are taken round by round.
"""

from __future__ import annotations

import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from musictf import config as config_module
from musictf.distribute import set_precision
from musictf.experiments import get_experiment
from musictf.experiments.base import prepare_data
from musictf.train import build_and_compile
from tools.perf.timing import interleaved, paired_ratio, summary

MODES = {
    "float32": {"precision": "float32", "jit_compile": False},
    "mixed_bfloat16": {"precision": "mixed_bfloat16", "jit_compile": False},
    "xla": {"precision": "float32", "jit_compile": True},
}


class StepTimes(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.ends = []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter())


def frames_per_sample(experiment, config) -> int:
    """Time steps the model reads per training example: tokens, roll steps, or audio samples."""
    if experiment.kind == "audio":
        return config.crop_frames * config.hop
    return config.seq_len * (2 if experiment.target == "window" else 1)


def fit_round(model, dataset, steps: int) -> float:
    """Median seconds per step over one `fit` of `steps` steps (the first step excluded)."""
    timer = StepTimes()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[timer], shuffle=False)
    return statistics.median(np.diff(timer.ends))


class Prepared:
    """Experiments' data, prepared once per benchmark run."""

    def __init__(self, preset: str):
        self.preset, self.cache = preset, {}

    def __call__(self, number: int):
        if number not in self.cache:
            experiment = get_experiment(str(number))
            config = experiment.load_config(self.preset)
            self.cache[number] = (experiment, config, prepare_data(experiment, config, progress=False))
        return self.cache[number]


def training_figures(
    prepared: Prepared,
    numbers: list[int],
    steps: dict[int, int],
    repeats: int,
    torch_numbers: tuple[int, ...] = (2, 4),
) -> dict:
    """Per experiment, in rounds that alternate: the float32, mixed_bfloat16 and XLA models on the
    real pipeline, the float32 model on the same batches held in memory, and for `torch_numbers`
    the float32 model compiled without metrics and the PyTorch model on those batches. Gives
    samples/s and frames/s per mode and the ratios."""
    from tools.perf import pytorch

    results = {}
    for number in numbers:
        experiment, base_config, data = prepared(number)
        strategy, count = tf.distribute.get_strategy(), steps[number]
        keras.utils.set_random_seed(base_config.seed)
        train, _, _ = experiment.make_datasets(base_config, data, strategy)
        in_memory = train.take(count + 1).cache().repeat()
        for _ in in_memory.take(count + 1):  # fills the cache
            pass
        models, failures = {}, {}
        for mode, fields in MODES.items():
            config = config_module.replace(base_config, fields, origin=f"bench mode {mode}")
            set_precision(config.precision)
            models[mode] = build_and_compile(experiment, config, data.representation.features, strategy)
        set_precision("float32")
        with_torch = number in torch_numbers and pytorch.available()
        if with_torch:  # like for like with the PyTorch loop, which computes the loss only
            loss_only = build_and_compile(experiment, base_config, data.representation.features, strategy)
            loss_only.compile(optimizer=loss_only.optimizer, loss=loss_only.loss)
        measures = {mode: _round(model, train, count) for mode, model in models.items()}
        measures["in_memory"] = _round(models["float32"], in_memory, count)
        for variant, change in LSTM_VARIANTS.items():
            copy = lstm_variant(experiment, base_config, models["float32"], strategy, change)
            if isinstance(copy, str):
                failures[variant] = copy
            elif copy is not None:
                measures[variant] = _round(copy, train, count)
        doubled = config_module.replace(
            base_config, {"batch_size": 2 * base_config.batch_size}, origin="bench batch"
        )
        measures["double_batch"] = _round(
            models["float32"], experiment.make_datasets(doubled, data, strategy)[0], count
        )
        if with_torch:
            measures["loss_only"] = _round(loss_only, train, count)
            batches = [
                tf.nest.map_structure(np.array, batch) for batch in train.take(count + 1).as_numpy_iterator()
            ]
            trainer = pytorch.Trainer(number, base_config, data.representation.features)
            measures["torch"] = lambda trainer=trainer, batches=batches: trainer.round(batches)
        times = interleaved(measures, repeats=repeats, warmup=1)

        batch, frames = base_config.batch_size, frames_per_sample(experiment, base_config)
        entry = {
            "preset": prepared.preset,
            "batch": batch,
            "frames_per_sample": frames,
            "steps_per_round": count,
            "modes": {},
        }
        for mode in MODES:
            samples = [batch / t for t in times[mode]]
            entry["modes"][mode] = {
                "seconds_per_step": summary(times[mode]),
                "samples_per_second": summary(samples),
                "frames_per_second": summary([s * frames for s in samples]),
                "speedup_over_float32": paired_ratio(times["float32"], times[mode]),
            }
        entry["pipeline_over_in_memory"] = paired_ratio(times["float32"], times["in_memory"])
        for variant in LSTM_VARIANTS:  # > 1: the variant is faster than Keras's LSTM
            if variant in times:
                entry[f"{variant}_speedup"] = paired_ratio(times["float32"], times[variant])
            elif variant in failures:
                entry[f"{variant}_failed"] = failures[variant]
        # samples/s at twice the per-replica batch over samples/s at the preset's batch
        entry["double_batch_throughput"] = summary(
            [2 * one / two for one, two in zip(times["float32"], times["double_batch"], strict=True)]
        )
        if "torch" in times:
            entry["torch_samples_per_second"] = summary([batch / t for t in times["torch"]])
            entry["musictf_over_torch"] = paired_ratio(times["torch"], times["float32"])
            entry["loss_only_samples_per_second"] = summary([batch / t for t in times["loss_only"]])
            entry["musictf_loss_only_over_torch"] = paired_ratio(times["torch"], times["loss_only"])
        results[str(number)] = entry
        models.clear()
        keras.backend.clear_session()
    return {
        "experiments": results,
        "goal": {"pipeline_over_in_memory": 1.05, "musictf_over_torch": 1.0},
        "torch": pytorch.available(),
    }


# The LSTM variants tried (issue #16): the input projection hoisted out of the recurrence
# (layers.LSTM), and Keras's LSTM unrolled over the window.
LSTM_VARIANTS = {"hoisted_lstm": "hoisted", "unrolled_lstm": "unroll"}


def lstm_variant(experiment, config, model, strategy, change: str):
    """`model` with each keras.layers.LSTM replaced by a variant on the same weights, compiled alike;
    None for a model without LSTMs (experiment 5); a one-line reason where the variant cannot be built."""
    from tools.perf.lstm import LSTM as HoistedLSTM

    def swap(layer):
        if type(layer) is not keras.layers.LSTM:
            return layer.__class__.from_config(layer.get_config())
        if change == "hoisted":
            return HoistedLSTM.from_config(layer.get_config())
        return keras.layers.LSTM.from_config(layer.get_config() | {"unroll": True})

    if not any(type(layer) is keras.layers.LSTM for layer in model.layers):  # clone_model swaps these
        return None
    try:
        with strategy.scope():
            clone = keras.models.clone_model(model, clone_function=swap)
            clone.set_weights(model.get_weights())
            optimizer = model.optimizer.__class__.from_config(model.optimizer.get_config())
            clone.compile(optimizer=optimizer, **experiment.compile_arguments(config))
    except (ValueError, TypeError, NotImplementedError) as error:
        return f"{type(error).__name__}: {' '.join(str(error).split())[:160]}"
    return clone


def _round(model, dataset, steps: int):
    return lambda: fit_round(model, dataset, steps)
