"""Metrics: streaming Keras metrics on logits for training, and the numpy evaluation protocol.

Evaluation protocol (docs/evaluation-protocol.md):
- token models: cross-entropy (nats per token), perplexity, accuracy;
- roll models: frame NLL in nats per frame summed over the output flags from the model's
  Bernoulli outputs, precision / recall / F1 at the decision threshold, and Bay et al.'s frame
  accuracy TP / (TP + FP + FN);
(the count baselines are in baselines.py; what a run is summed up by, and the statistics of
samples, in quality.py).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from musictf.losses import bce_with_logits

# -- streaming Keras metrics ----------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="musictf")
class ThresholdMetric(keras.metrics.Metric):
    """Precision, recall, F1 or Bay accuracy of sigmoid(logits) >= threshold over all flags.

    Args:
        kind: "precision", "recall", "f1" or "bay_accuracy".
        threshold: decision threshold on the probability.

    Example:
        model.compile(loss=..., metrics=[ThresholdMetric("f1", 0.5, name="f1")])
    """

    KINDS = ("precision", "recall", "f1", "bay_accuracy")

    def __init__(self, kind: str = "f1", threshold: float = 0.5, name=None, **kwargs):
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        super().__init__(name=name or kind, **kwargs)
        self.kind, self.threshold = kind, threshold
        self.true_positives = self.add_variable((), initializer="zeros", name="tp")
        self.false_positives = self.add_variable((), initializer="zeros", name="fp")
        self.false_negatives = self.add_variable((), initializer="zeros", name="fn")

    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted = ops.cast(ops.sigmoid(ops.cast(y_pred, "float32")) >= self.threshold, "float32")
        actual = ops.cast(y_true, "float32")
        self.true_positives.assign_add(ops.sum(predicted * actual))
        self.false_positives.assign_add(ops.sum(predicted * (1 - actual)))
        self.false_negatives.assign_add(ops.sum((1 - predicted) * actual))

    def result(self):
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        eps = keras.backend.epsilon()
        if self.kind == "precision":
            return tp / (tp + fp + eps)
        if self.kind == "recall":
            return tp / (tp + fn + eps)
        if self.kind == "f1":
            return 2 * tp / (2 * tp + fp + fn + eps)
        return tp / (tp + fp + fn + eps)

    def get_config(self):
        return super().get_config() | {"kind": self.kind, "threshold": self.threshold}


@keras.saving.register_keras_serializable(package="musictf")
class FrameNLL(keras.metrics.Mean):
    """Frame NLL of sigmoid outputs in nats per frame, summed over the flags (streaming)."""

    def __init__(self, name="frame_nll", **kwargs):
        super().__init__(name=name, **kwargs)

    def update_state(self, y_true, y_pred, sample_weight=None):
        logits = ops.cast(y_pred, "float32")
        labels = ops.cast(y_true, "float32")
        return super().update_state(ops.reshape(ops.sum(bce_with_logits(labels, logits), axis=-1), (-1,)))


@keras.saving.register_keras_serializable(package="musictf")
def argmax_accuracy(y_true, y_pred):
    """Accuracy of the softmax argmax against the argmax of a multi-hot target (the original's)."""
    return ops.cast(ops.argmax(y_true, axis=-1) == ops.argmax(y_pred, axis=-1), "float32")


def logit(probability: float) -> float:
    return math.log(probability / (1 - probability))


# -- the evaluation protocol ----------------------------------------------------------------------


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over the last axis, in float64."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def categorical_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log p(target) in nats for each position of `targets` (any leading shape)."""
    return -np.take_along_axis(log_softmax(logits), np.asarray(targets)[..., None], axis=-1)[..., 0]


def token_metrics(logits: np.ndarray, targets: np.ndarray, unknown_id: int | None = None) -> dict[str, float]:
    """Cross-entropy, perplexity and accuracy; with `unknown_id`, also the share of targets that are
    the unknown token (tokens of the test split that the train split never had)."""
    cross_entropy = float(categorical_nll(logits, targets).mean())
    return {
        "cross_entropy_nats": cross_entropy,
        "perplexity": float(math.exp(cross_entropy)),
        "accuracy": float((logits.argmax(axis=-1) == targets).mean()),
        "predictions": len(targets),
    } | ({"unknown_target_share": float((targets == unknown_id).mean())} if unknown_id is not None else {})


def bernoulli_frame_nll(targets: np.ndarray, log_p: np.ndarray, log_not_p: np.ndarray) -> float:
    """The protocol's NLL of (frames, flags) 0/1 targets under independent Bernoulli flags: nats per
    frame, summed over the flags, averaged over the frames."""
    return float(-(targets * log_p + (1 - targets) * log_not_p).sum(axis=-1).mean())


THRESHOLDS = tuple(round(0.05 * step, 2) for step in range(1, 20))  # what `tune_threshold` chooses from


def best_f1_threshold(logits: np.ndarray, targets: np.ndarray, output: str) -> float:
    """The threshold of THRESHOLDS with the best F1 on these frames (the lower one on a tie)."""
    probabilities, _, _ = _flag_probabilities(logits, output)
    actual = targets.reshape(-1, targets.shape[-1]) > 0.5
    return max(
        THRESHOLDS,
        key=lambda threshold: (_threshold_scores(probabilities >= threshold, actual)["f1"], -threshold),
    )


def _flag_probabilities(logits: np.ndarray, output: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, log p, log(1 - p)) per flag of (frames, flags) logits. For softmax outputs the class
    probabilities stand in for Bernoulli probabilities (the original models have no better ones)."""
    logits = logits.astype(np.float64).reshape(-1, logits.shape[-1])
    if output == "sigmoid":
        log_p, log_not_p = -np.logaddexp(0, -logits), -np.logaddexp(0, logits)
        return np.exp(log_p), log_p, log_not_p
    probabilities = np.clip(np.exp(log_softmax(logits)), 1e-7, 1 - 1e-7)
    return probabilities, np.log(probabilities), np.log1p(-probabilities)


def _threshold_scores(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    tp = float((predicted & actual).sum())
    fp = float((predicted & ~actual).sum())
    fn = float((~predicted & actual).sum())
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "bay_accuracy": tp / (tp + fp + fn) if tp + fp + fn else 0.0,
    }


def roll_metrics(logits: np.ndarray, targets: np.ndarray, output: str, threshold: float) -> dict[str, float]:
    """Frame metrics; `logits` and `targets` are (frames, flags)."""
    probabilities, log_p, log_not_p = _flag_probabilities(logits, output)
    targets = targets.astype(np.float64).reshape(-1, targets.shape[-1])
    return (
        {"frame_nll_nats": bernoulli_frame_nll(targets, log_p, log_not_p)}
        | _threshold_scores(probabilities >= threshold, targets > 0.5)
        | {
            "frames": len(targets),
            "flags_per_frame": int(targets.shape[-1]),
        }
    )
