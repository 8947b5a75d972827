"""The evaluation protocol's numbers: streaming Keras metrics agree with the numpy protocol, and
the sample statistics equal hand counts (muspy's tests/test_metrics.py style)."""

import math

import numpy as np
import pytest

from musictf.baselines import token_baseline
from musictf.data.music import Note
from musictf.metrics import FrameNLL, ThresholdMetric, categorical_nll, roll_metrics, token_metrics
from musictf.quality import piece_quality

rng = np.random.default_rng(7)
LOGITS = rng.normal(-2.0, 2.0, (64, 176)).astype("float32")
TARGETS = (rng.random((64, 176)) < 0.08).astype("float32")


@pytest.mark.parametrize("threshold", [0.3, 0.5])
def test_streaming_metrics_agree_with_the_numpy_protocol(threshold):
    protocol = roll_metrics(LOGITS, TARGETS, "sigmoid", threshold)
    nll = FrameNLL()
    for start in range(0, 64, 16):  # streamed in batches, as during fit
        nll.update_state(TARGETS[start : start + 16], LOGITS[start : start + 16])
    assert float(nll.result()) == pytest.approx(protocol["frame_nll_nats"], rel=1e-5)
    for kind in ("precision", "recall", "f1", "bay_accuracy"):
        metric = ThresholdMetric(kind, threshold)
        for start in range(0, 64, 16):
            metric.update_state(TARGETS[start : start + 16], LOGITS[start : start + 16])
        assert float(metric.result()) == pytest.approx(protocol[kind], rel=1e-5), kind


def test_token_metrics_and_unigram_baseline_by_hand():
    logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]]))
    targets = np.array([0, 2])
    result = token_metrics(logits, targets, unknown_id=2)
    expected = -(math.log(0.5) + math.log(0.1)) / 2
    assert result["cross_entropy_nats"] == pytest.approx(expected)
    assert result["perplexity"] == pytest.approx(math.exp(expected))
    assert result["accuracy"] == 0.5 and result["unknown_target_share"] == 0.5
    # train ids 0, 0, 1: counts 2, 1, 0, add-one 3, 2, 1 over 6
    baseline = token_baseline([np.array([0, 0, 1])], targets, 3)
    assert baseline["unigram_cross_entropy_nats"] == pytest.approx(-(math.log(3 / 6) + math.log(1 / 6)) / 2)
    assert categorical_nll(logits, targets) == pytest.approx([-math.log(0.5), -math.log(0.1)])


def _notes(*items):
    return [Note(pitch, onset, duration, "C4") for pitch, onset, duration in items]


def test_piece_quality_equals_hand_counts():
    # C E G held for a whole note (beat 1-4), then silence for beat 5-8, then D twice (beat 9, 10)
    notes = _notes((60, 0, 4), (64, 0, 4), (67, 0, 4), (62, 8, 1), (62, 9, 1))
    quality = piece_quality(notes)
    assert quality["polyphony"] == pytest.approx(
        (16 * 3 + 8 * 1) / 24
    )  # sounding sixteenths: 16 with 3, 8 with 1
    assert quality["empty_beat_rate"] == pytest.approx(4 / 10)  # 10 beats, 4 silent
    assert quality["repeated_note_ratio"] == pytest.approx(1 / 2)  # onset groups {C,E,G}, {D}, {D}
    assert quality["note_density_per_quarter"] == pytest.approx(3 / 10)  # 3 onset groups over 10 quarters
    assert quality["scale_consistency"] == 1.0  # C, D, E, G all in C major
    assert quality["mean_note_quarters"] == pytest.approx((4 * 3 + 1 + 1) / 5)
    assert quality["short_note_share"] == 0.0  # no note below an eighth
    assert piece_quality(_notes((60, 0, 0.25), (62, 0.25, 0.5), (64, 0.75, 0.25)))[
        "short_note_share"
    ] == pytest.approx(2 / 3)
    pitch_classes = np.array([1, 1, 1, 2]) / 5  # C, E, G once, D twice
    assert quality["pitch_class_entropy_bits"] == pytest.approx(
        -(pitch_classes * np.log2(pitch_classes)).sum()
    )


def test_scale_consistency_by_hand():
    # C D E F G A B C#: 7 of 8 notes fit C major (or a mode of it); no scale fits all 8
    notes = _notes(*[(pitch, index, 1) for index, pitch in enumerate([60, 62, 64, 65, 67, 69, 71, 61])])
    assert piece_quality(notes)["scale_consistency"] == pytest.approx(7 / 8)


def test_first_order_markov_baseline_by_hand():
    from musictf.baselines import markov_roll_baseline

    # flag 0: off off off on on on on -> after off: on once in 3; after on: on 3 times in 3 (add-one:
    # 2/5 and 4/5); flag 1 never sounds -> after off: 1/8, after on: never seen, 1/2
    frames = np.array([[0, 0], [0, 0], [0, 0], [1, 0], [1, 0], [1, 0], [1, 0]], np.uint8)
    previous = np.array([[0, 0], [1, 0]])
    targets = np.array([[1, 0], [1, 0]])
    expected = (-math.log(0.4) - math.log(1 - 1 / 8) - math.log(0.8) - math.log(1 - 1 / 8)) / 2
    assert markov_roll_baseline([frames], previous, targets)["markov_nll_nats"] == pytest.approx(expected)


def test_interpolated_bigram_baseline_by_hand():
    from musictf.baselines import token_bigram_baseline

    # train 2 3 2 3 4: unigram (add-one over 5 ids) 1,1,3,3,2 / 10; bigram P(3|2) = 1, P(2|3) = P(4|3) = 1/2.
    # The validation pairs (2,3), (3,4) favour the bigram: the largest weight of the grid, 0.95.
    result = token_bigram_baseline(
        [np.array([2, 3, 2, 3, 4])],
        [np.array([2, 3, 4])],
        previous=np.array([2, 4]),
        targets=np.array([3, 2]),
        vocabulary_size=5,
    )
    assert result["bigram_weight"] == 0.95
    # (2, 3): 0.95 * 1 + 0.05 * 0.3; (4, 2): id 4 never precedes anything in training, so the unigram 0.3
    expected = -(math.log(0.95 + 0.05 * 0.3) + math.log(0.3)) / 2
    assert result["bigram_cross_entropy_nats"] == pytest.approx(expected)


def test_the_verdict_says_when_a_model_is_not_below_its_strongest_baseline():
    from musictf.quality import verdict

    assert "has not learned more than that count table yet" in verdict(
        {"frame_nll_nats": 11.98}, {"independent_bernoulli_nll_nats": 17.3, "markov_nll_nats": 11.95}
    )
    assert verdict(
        {"cross_entropy_nats": 4.0}, {"unigram_cross_entropy_nats": 6.0, "bigram_cross_entropy_nats": 5.0}
    ).startswith("cross_entropy_nats 4: 1 below the interpolated bigram baseline")


def test_the_per_flag_ngram_counts_each_flags_own_history_and_chooses_its_order_on_valid():
    from musictf.baselines import (
        NGRAM_MAX_ORDER,
        _flag_histories,
        ngram_counts,
        ngram_order,
        ngram_roll_baseline,
    )
    from musictf.data.windows import padded

    # flag 0 is on every third frame, flag 1 always off
    piece = np.zeros((30, 2), np.uint8)
    piece[2::3, 0] = 1
    on, seen = ngram_counts(padded([piece], 2), 2)
    # history codes: bit 0 the frame before, bit 1 the one before it; the piece starts after two
    # silent frames. After (off, off): frames 0 and 1 (off) and 2, 5, ..., 29 (on); after an on
    # frame, or two frames after one: off, 9 times each
    assert (on[0, 0], seen[0, 0]) == (10, 12) and (on[0, 1], seen[0, 1]) == (0, 9)
    assert (on[0, 2], seen[0, 2]) == (0, 9) and seen[1].sum() == 30 and on[1].sum() == 0
    # three: two frames of history cannot tell the silence before the piece from the rest after a note
    assert ngram_order(padded([piece] * 3, NGRAM_MAX_ORDER), padded([piece], NGRAM_MAX_ORDER)) == 3
    histories = np.concatenate([_flag_histories(frames, 2) for frames in padded([piece], 2)])
    result = ngram_roll_baseline(padded([piece], 2), histories, piece, 2)
    # add-one: P(on | off, off) = 11/14, P(on | any other history) = 1/11; flag 1 off with 31/32
    expected = -(10 * np.log(11 / 14) + 2 * np.log(3 / 14) + 18 * np.log(10 / 11) + 30 * np.log(31 / 32))
    assert result["ngram_order"] == 2 and result["ngram_nll_nats"] * 30 == pytest.approx(expected)


@pytest.mark.parametrize("experiment_key", ["2", "3"])
def test_the_ngram_histories_of_the_scored_frames_are_the_pieces_own(experiment_key):
    """`scored_histories` reads each scored frame's history from the protocol's windows (target
    next, and seq2seq windows); with pad_start it equals the history read off the padded pieces."""
    from musictf.baselines import _flag_histories
    from musictf.data.windows import padded
    from musictf.evaluate import scored_histories
    from musictf.experiments import get_experiment

    experiment = get_experiment(experiment_key)
    config = experiment.load_config(
        "smoke",
        ["pad_start=true", "max_eval_windows=0", "roll_encoding=active", "frame_autoregression=false"],
    )
    rng = np.random.default_rng(1)
    pieces = [(rng.random((length, 88)) < 0.2).astype(np.uint8) for length in (13, 20, 9)]
    order = 5
    histories = scored_histories(experiment.target, config, pieces, order)
    expected = np.concatenate([_flag_histories(piece, order) for piece in padded(pieces, order)])
    np.testing.assert_array_equal(histories, expected)
