"""Pieces shared by the piano-roll experiments 2-4: the classifier head, losses, metrics, chooser."""

from __future__ import annotations

import keras

from musictf.config import RollConfig
from musictf.generate import FrameChooser
from musictf.losses import ArgmaxCrossEntropy
from musictf.metrics import FrameNLL, ThresholdMetric, argmax_accuracy, logit


def classifier_head(config: RollConfig, features: int) -> keras.Sequential:
    """Dense(dense_units) -> ReLU -> Dropout -> Dense(features) logits, as documented; sigmoid
    outputs start at `initial_flag_probability`."""
    bias = logit(config.initial_flag_probability) if config.output == "sigmoid" else 0.0
    return keras.Sequential(
        [
            keras.layers.Dense(config.dense_units, name="dense_hidden"),
            keras.layers.ReLU(),
            keras.layers.Dropout(config.dense_dropout),
            keras.layers.Dense(features, dtype="float32", bias_initializer=keras.initializers.Constant(bias),
                               name="logits"),
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
        return {"loss": ArgmaxCrossEntropy(), "metrics": [keras.metrics.MeanMetricWrapper(argmax_accuracy, name="accuracy")]}
    return {"loss": keras.losses.BinaryCrossentropy(from_logits=True), "metrics": threshold_metrics(config)}


def chooser(config: RollConfig, temperature=None, top_k=None, top_p=None) -> FrameChooser:
    return FrameChooser(
        "bernoulli" if config.output == "sigmoid" else "onehot",
        temperature=config.temperature if temperature is None else temperature,
        top_k=config.top_k if top_k is None else top_k,
        top_p=config.top_p if top_p is None else top_p,
        onset_sustain=config.roll_encoding == "onset_sustain",
    )
