"""Losses on logits: focal loss, BCE plus focal, and the original's cross-entropy on the argmax."""

from __future__ import annotations

import keras
from keras import ops


def bce_with_logits(y_true, logits):
    """Elementwise binary cross-entropy of sigmoid(logits), in nats, computed stably."""
    return ops.maximum(logits, 0) - logits * y_true + ops.log1p(ops.exp(-ops.abs(logits)))


def categorical_compile_arguments(config=None) -> dict:
    """Loss and metrics of a softmax over ids (note tokens, mu-law samples): cross-entropy on logits."""
    return {
        "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    }


@keras.saving.register_keras_serializable(package="musictf")
class FocalLoss(keras.losses.Loss):
    """Binary focal loss on logits (Lin et al. 2017): alpha_t (1 - p_t)^gamma BCE.

    Args:
        alpha: weight of positive flags (negatives get 1 - alpha); None disables the weighting.
        gamma: focusing exponent; 0 with alpha=None is plain BCE.

    Example:
        FocalLoss(alpha=0.75, gamma=2.0)(targets, logits)
    """

    def __init__(self, alpha: float | None = 0.25, gamma: float = 2.0, name="focal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.alpha = alpha
        self.gamma = gamma

    def call(self, y_true, y_pred):
        logits = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "float32")
        loss = bce_with_logits(y_true, logits)
        if self.gamma:
            probabilities = ops.sigmoid(logits)
            p_t = y_true * probabilities + (1 - y_true) * (1 - probabilities)
            loss = loss * ops.power(1 - p_t, self.gamma)
        if self.alpha is not None:
            loss = loss * (y_true * self.alpha + (1 - y_true) * (1 - self.alpha))
        return ops.mean(loss, axis=-1)

    def get_config(self):
        return super().get_config() | {"alpha": self.alpha, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="musictf")
class BCEPlusFocal(keras.losses.Loss):
    """bce_weight * BCE + focal_weight * focal loss, both on logits (experiment 4).

    Args:
        alpha, gamma: the focal term's parameters.
        bce_weight, focal_weight: the mixture.
    """

    def __init__(
        self,
        alpha: float = 0.75,
        gamma: float = 2.0,
        bce_weight: float = 1.0,
        focal_weight: float = 1.0,
        name="bce_plus_focal",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.alpha, self.gamma, self.bce_weight, self.focal_weight = alpha, gamma, bce_weight, focal_weight
        self.focal = FocalLoss(alpha, gamma)
        self.bce = FocalLoss(None, 0.0)

    def call(self, y_true, y_pred):
        return self.bce_weight * self.bce.call(y_true, y_pred) + self.focal_weight * self.focal.call(
            y_true, y_pred
        )

    def get_config(self):
        return super().get_config() | {
            "alpha": self.alpha,
            "gamma": self.gamma,
            "bce_weight": self.bce_weight,
            "focal_weight": self.focal_weight,
        }


@keras.saving.register_keras_serializable(package="musictf")
class ArgmaxCrossEntropy(keras.losses.Loss):
    """The original experiments 2-3: softmax cross-entropy against the argmax of a multi-hot target.

    Only the lowest active flag counts and a silent step counts as flag 0; kept for the `paper`
    preset, because it is what the documented experiments did.
    """

    def __init__(self, name="argmax_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        labels = ops.argmax(y_true, axis=-1)
        return keras.losses.sparse_categorical_crossentropy(
            labels, ops.cast(y_pred, "float32"), from_logits=True
        )
