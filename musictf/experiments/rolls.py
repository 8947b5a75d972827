"""Pieces shared by the piano-roll experiments 2-4: the representation, the classifier head,
losses, metrics, the chooser, and the slots every roll experiment fills the same way."""

from __future__ import annotations

import keras
import numpy as np

from musictf.baselines import roll_ngram_samples
from musictf.config import RollConfig
from musictf.data import pianoroll
from musictf.data.pipeline import window_datasets
from musictf.data.prepared import prepare_symbolic_data
from musictf.data.representation import RollRepresentation
from musictf.evaluate import roll_test_metrics
from musictf.generate import FrameChooser, within_frame_draw
from musictf.layers import FrameAutoregression, FrameNADE
from musictf.losses import ArgmaxCrossEntropy
from musictf.metrics import FrameNLL, ThresholdMetric, argmax_accuracy, logit
from musictf.samples import midi_sample_statistics, write_midi_samples


def classifier_head(config: RollConfig, features: int) -> keras.Sequential:
    """Dense(dense_units) -> ReLU -> Dropout -> Dense(features) logits, as documented; sigmoid
    outputs start at `initial_flag_probability`. With a NADE within the frame (`nade_units`), the
    last layer gives the NADE's hidden biases too: features + nade_units values per step."""
    bias = logit(config.initial_flag_probability) if config.output == "sigmoid" else 0.0
    bias = np.concatenate([np.full(features, bias, np.float32), np.zeros(config.nade_units, np.float32)])
    return keras.Sequential(
        [
            keras.layers.Dense(config.dense_units, name="dense_hidden"),
            keras.layers.ReLU(),
            keras.layers.Dropout(config.dense_dropout),
            keras.layers.Dense(
                features + config.nade_units,
                dtype="float32",
                bias_initializer=keras.initializers.Constant(bias),
                name="logits",
            ),
        ],
        name="head",
    )


def threshold_metrics(config: RollConfig) -> list:
    return [
        keras.metrics.BinaryAccuracy(threshold=logit(config.threshold), name="accuracy"),
        ThresholdMetric("precision", config.threshold, name="precision"),
        ThresholdMetric("recall", config.threshold, name="recall"),
        ThresholdMetric("f1", config.threshold, name="f1"),
        FrameNLL(),
    ]


def compile_arguments(config: RollConfig) -> dict:
    if config.output == "softmax":
        return {
            "loss": ArgmaxCrossEntropy(),
            "metrics": [keras.metrics.MeanMetricWrapper(argmax_accuracy, name="accuracy")],
        }
    return {"loss": keras.losses.BinaryCrossentropy(from_logits=True), "metrics": threshold_metrics(config)}


def frame_logits(config: RollConfig, logits, target_frames, previous_frames) -> tuple:
    """(the head's logits with the within-frame term on the target frames, the within-frame layer):
    linear (`FrameAutoregression`, with its voice terms, which also read the frame before each
    target) or a NADE (`FrameNADE`, with `nade_units`). A builder with `frame_autoregression`
    attaches the layer to its model, for sampling."""
    if config.nade_units:
        layer = FrameNADE(config.nade_units, name="frame_autoregression")
        return layer([logits, target_frames]), layer
    layer = FrameAutoregression(
        config.voice_bins,
        config.voice_change_bins,
        pianoroll.channels(config.roll_encoding),
        name="frame_autoregression",
    )
    term = layer([target_frames, previous_frames] if layer.reads_previous_frame else target_frames)
    return keras.layers.Add(name="frame_logits")([logits, term]), layer


def chooser(config: RollConfig, model) -> FrameChooser:
    """Draws for a roll model; flag by flag through `model.frame_autoregression` where it has one."""
    autoregression = None
    if config.frame_autoregression:
        autoregression = within_frame_draw(model.frame_autoregression)
    return FrameChooser(
        "bernoulli" if config.output == "sigmoid" else "onehot",
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        onset_sustain=config.roll_encoding == "onset_sustain",
        autoregression=autoregression,
        candidates=config.frame_candidates,
    )


def representation(config: RollConfig) -> RollRepresentation:
    return RollRepresentation(config.steps_per_quarter, config.roll_encoding, config.sampled_frames)


# The slots experiments 2-4 share: `Experiment(..., **rolls.SLOTS)`.
SLOTS = {
    "kind": "pianoroll",
    "make_representation": representation,
    "prepare": prepare_symbolic_data,
    "make_datasets": window_datasets,
    "compile_arguments": compile_arguments,
    "test_metrics": roll_test_metrics,
    "write_samples": write_midi_samples,
    "sample_statistics": midi_sample_statistics,
    "baseline_samples": roll_ngram_samples,
}
