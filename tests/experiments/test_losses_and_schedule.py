import keras
import numpy as np
import pytest

from musictf.baselines import roll_baseline, token_baseline
from musictf.experiments.e4_polyphonic import teacher_forcing_ratio
from musictf.layers import ScheduledSampling
from musictf.losses import BCEPlusFocal, FocalLoss
from musictf.metrics import roll_metrics

rng = np.random.default_rng(0)
TARGETS = (rng.random((8, 176)) < 0.1).astype("float32")
LOGITS = rng.normal(size=(8, 176)).astype("float32") * 3


def test_focal_loss_with_gamma_zero_is_bce():
    bce = keras.losses.BinaryCrossentropy(from_logits=True)(TARGETS, LOGITS)
    np.testing.assert_allclose(FocalLoss(alpha=None, gamma=0.0)(TARGETS, LOGITS), bce, rtol=1e-5)
    np.testing.assert_allclose(FocalLoss(alpha=0.5, gamma=0.0)(TARGETS, LOGITS), 0.5 * bce, rtol=1e-5)
    assert float(FocalLoss(alpha=None, gamma=2.0)(TARGETS, LOGITS)) < float(bce)


def test_bce_plus_focal_is_the_weighted_sum():
    bce = float(keras.losses.BinaryCrossentropy(from_logits=True)(TARGETS, LOGITS))
    focal = float(FocalLoss(0.75, 2.0)(TARGETS, LOGITS))
    np.testing.assert_allclose(
        float(BCEPlusFocal(0.75, 2.0, 1.0, 2.0)(TARGETS, LOGITS)), bce + 2 * focal, rtol=1e-5
    )


def test_teacher_forcing_schedule_takes_the_documented_values():
    # the documented schedule initial * (1 - epoch / epochs)^2, worked out by hand for 4 epochs
    assert [teacher_forcing_ratio(0.5, epoch, 4) for epoch in range(4)] == pytest.approx(
        [0.5, 0.28125, 0.125, 0.03125]
    )
    assert teacher_forcing_ratio(1.0, 0, 1) == 1.0


def test_scheduled_sampling_mixes_only_in_training():
    teacher = np.ones((4, 6, 10), "float32")
    confident_silence = np.full((4, 6, 10), -50.0, "float32")
    layer = ScheduledSampling(initial_ratio=0.0, seed=1)
    np.testing.assert_array_equal(layer([teacher, confident_silence], training=False), teacher)
    mixed = np.asarray(layer([teacher, confident_silence], training=True))
    np.testing.assert_array_equal(mixed[:, 0], teacher[:, 0])
    assert mixed[:, 1:].sum() == 0
    layer.ratio.assign(1.0)
    np.testing.assert_array_equal(layer([teacher, confident_silence], training=True), teacher)


def test_baselines_score_train_frequencies():
    result = token_baseline([np.array([2, 2, 3])], np.array([2, 3]), vocabulary_size=4)
    assert result["unigram_cross_entropy_nats"] == pytest.approx(-(np.log(3 / 7) + np.log(2 / 7)) / 2)
    assert result["unigram_accuracy"] == 0.5
    frames = [np.array([[1, 0], [0, 0]], "float32")]
    expected = -(np.log(0.5) + np.log1p(-1e-6))
    assert roll_baseline(frames, np.array([[1, 0]], "float32"))[
        "independent_bernoulli_nll_nats"
    ] == pytest.approx(expected)


def test_roll_metrics_against_hand_counts():
    targets = np.array([[1, 0, 1, 0]], "float32")
    logits = np.array([[5.0, 5.0, -5.0, -5.0]], "float32")
    result = roll_metrics(logits, targets, "sigmoid", 0.5)
    assert (result["precision"], result["recall"], result["bay_accuracy"]) == (0.5, 0.5, pytest.approx(1 / 3))
    expected_nll = 2 * np.log1p(np.exp(-5.0)) + 2 * np.log1p(np.exp(5.0))
    assert result["frame_nll_nats"] == pytest.approx(expected_nll)
