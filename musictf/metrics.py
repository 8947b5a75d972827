"""Metrics: streaming Keras metrics on logits for training, and the numpy evaluation protocol.

Evaluation protocol (docs/evaluation-protocol.md):
- token models: cross-entropy (nats per token), perplexity, accuracy;
- roll models: frame NLL in nats per frame summed over the output flags from the model's
  Bernoulli outputs, precision / recall / F1 at the decision threshold, and Bay et al.'s frame
  accuracy TP / (TP + FP + FN);
- samples: pitch-class entropy, polyphony, scale consistency, empty-beat rate, repeated-note
  ratio and note density, each next to the same statistic on the test split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from musictf.data.music import Note
from musictf.data.pianoroll import SIXTEENTH_GRID, notes_to_roll
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


def unigram_log_probabilities(train_ids: list[np.ndarray], classes: int) -> np.ndarray:
    """Log-probabilities of the train split's id frequencies, add-one smoothed."""
    counts = np.bincount(np.concatenate(train_ids).astype(np.int64), minlength=classes).astype(np.float64) + 1
    return np.log(counts / counts.sum())


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


def token_baseline(
    train_ids: list[np.ndarray], targets: np.ndarray, vocabulary_size: int
) -> dict[str, float]:
    """Unigram model of the train split (add-one smoothed), scored on the same targets."""
    log_probabilities = unigram_log_probabilities(train_ids, vocabulary_size)
    return {
        "unigram_cross_entropy_nats": float(-log_probabilities[targets].mean()),
        "unigram_accuracy": float((targets == log_probabilities.argmax()).mean()),
    }


BIGRAM_WEIGHTS = tuple(np.round(np.arange(0.0, 1.0, 0.05), 2))  # the grid the validation split chooses from


def _bigram_and_unigram(
    train_ids: list[np.ndarray], vocabulary_size: int, previous: np.ndarray, following: np.ndarray
):
    """For each (previous, following) pair: the train split's maximum-likelihood bigram probability
    (None where `previous` never occurs in training, marked by NaN) and the add-one unigram of
    `following`. Pairs are counted sparsely, so a large vocabulary costs no V x V table."""
    unigram = np.exp(unigram_log_probabilities(train_ids, vocabulary_size))
    train_previous = np.concatenate([ids[:-1] for ids in train_ids]).astype(np.int64)
    train_following = np.concatenate([ids[1:] for ids in train_ids]).astype(np.int64)
    codes, counts = np.unique(train_previous * vocabulary_size + train_following, return_counts=True)
    totals = np.bincount(train_previous, minlength=vocabulary_size).astype(np.float64)
    wanted = previous.astype(np.int64) * vocabulary_size + following.astype(np.int64)
    pair_counts = np.zeros(len(wanted))
    if len(codes):
        found = np.minimum(np.searchsorted(codes, wanted), len(codes) - 1)
        pair_counts = np.where(codes[found] == wanted, counts[found], 0)
    context = totals[previous.astype(np.int64)]
    bigram = np.divide(pair_counts, context, out=np.full(len(wanted), np.nan), where=context > 0)
    return bigram, unigram[following.astype(np.int64)]


def _interpolated_nll(bigram: np.ndarray, unigram: np.ndarray, weight: float) -> np.ndarray:
    mixed = np.where(np.isnan(bigram), unigram, weight * np.nan_to_num(bigram) + (1 - weight) * unigram)
    return -np.log(mixed)


def bigram_weight(train_ids: list[np.ndarray], valid_ids: list[np.ndarray], vocabulary_size: int) -> float:
    """The interpolation weight of `BIGRAM_WEIGHTS` that scores best on the validation split's
    consecutive ids (0.5 without a validation split)."""
    pairs = [(ids[:-1], ids[1:]) for ids in valid_ids if len(ids) > 1]
    if not pairs:
        return 0.5
    valid = _bigram_and_unigram(
        train_ids, vocabulary_size, *(np.concatenate(part) for part in zip(*pairs, strict=True))
    )
    return min(BIGRAM_WEIGHTS, key=lambda w: _interpolated_nll(*valid, w).mean())


def token_bigram_baseline(
    train_ids: list[np.ndarray],
    valid_ids: list[np.ndarray],
    previous: np.ndarray,
    targets: np.ndarray,
    vocabulary_size: int,
) -> dict[str, float]:
    """A bigram interpolated with the unigram, P = w * bigram + (1 - w) * unigram (the unigram alone
    after a previous id training never had), with the weight w of `BIGRAM_WEIGHTS` that scores best
    on the validation split's consecutive ids, scored on the same (previous, target) pairs."""
    weight = bigram_weight(train_ids, valid_ids, vocabulary_size)
    nll = _interpolated_nll(*_bigram_and_unigram(train_ids, vocabulary_size, previous, targets), weight)
    return {"bigram_cross_entropy_nats": float(nll.mean()), "bigram_weight": float(weight)}


def markov_flag_probabilities(train_frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per flag, P(on | off one frame before) and P(on | on one frame before), from the train
    split's consecutive frames, add-one smoothed."""
    ones = np.ones(train_frames[0].shape[-1])
    on_after = [ones.copy(), ones.copy()]  # [after off, after on]: frames where the flag is on
    seen_after = [2 * ones, 2 * ones]
    for frames in train_frames:
        before, after = frames[:-1].astype(bool), frames[1:].astype(bool)
        for state in (0, 1):
            where = before == bool(state)
            on_after[state] = on_after[state] + (after & where).sum(axis=0)
            seen_after[state] = seen_after[state] + where.sum(axis=0)
    return on_after[0] / seen_after[0], on_after[1] / seen_after[1]


def markov_roll_baseline(
    train_frames: list[np.ndarray], previous: np.ndarray, targets: np.ndarray
) -> dict[str, float]:
    """First-order Markov chain per flag: P(flag on | it was on or off one frame before), from the
    train split's consecutive frames (add-one smoothed), scored on the same frames, given the frames
    before them. NLL in nats per frame, summed over the flags."""
    p_after_off, p_after_on = markov_flag_probabilities(train_frames)
    previous = previous.reshape(-1, previous.shape[-1]) > 0.5
    targets = targets.reshape(-1, targets.shape[-1]).astype(np.float64)
    p = np.where(previous, p_after_on, p_after_off)
    return {"markov_nll_nats": bernoulli_frame_nll(targets, np.log(p), np.log1p(-p))}


NGRAM_MAX_ORDER = 16  # the longest history the per-flag N-gram is offered (N = order + 1)


def _flag_histories(frames: np.ndarray, order: int) -> np.ndarray:
    """Each flag's previous `order` states packed as bits (bit i - 1: i frames before), for every
    frame from `order` on: (frames - order, flags) int64."""
    frames = np.asarray(frames).astype(np.int64)
    return sum(frames[order - i : len(frames) - i] << (i - 1) for i in range(1, order + 1))


def ngram_counts(train_frames: list[np.ndarray], order: int) -> tuple[np.ndarray, np.ndarray]:
    """Per flag and history of `order` states: (times on, times seen) over the train split's frames
    from the `order`-th on (so each piece is preceded by `order` silent frames: the context before
    a piece starts is "off"), (flags, 2 ** order) each."""
    flags = train_frames[0].shape[-1]
    width = 1 << order
    on, seen = np.zeros(flags * width), np.zeros(flags * width)
    offsets = np.arange(flags, dtype=np.int64) * width
    for frames in train_frames:
        if len(frames) <= order:
            continue
        index = (_flag_histories(frames, order) + offsets).ravel()
        on += np.bincount(
            index, weights=np.asarray(frames[order:], np.float64).ravel(), minlength=flags * width
        )
        seen += np.bincount(index, minlength=flags * width)
    return on.reshape(flags, width), seen.reshape(flags, width)


def _ngram_nll(counts, histories: np.ndarray, targets: np.ndarray) -> float:
    """Nats per frame, summed over the flags, of `targets` given their `histories` (add-one)."""
    on, seen = counts
    flags = np.arange(targets.shape[-1])[None, :]
    p = (on[flags, histories] + 1) / (seen[flags, histories] + 2)
    targets = targets.astype(np.float64)
    return bernoulli_frame_nll(targets, np.log(p), np.log1p(-p))


def ngram_order(train_frames: list[np.ndarray], valid_frames: list[np.ndarray]) -> int:
    """The history length of 1 to NGRAM_MAX_ORDER whose per-flag N-gram scores best on every valid
    frame; both splits preceded by NGRAM_MAX_ORDER silent frames (`windows.padded`). 1 (the Markov
    chain's) without a valid split. Each longer history adds one bit to the shorter one's codes."""
    if not valid_frames:
        return 1
    flags, start = train_frames[0].shape[-1], NGRAM_MAX_ORDER

    def shifted(frames_list, back: int) -> np.ndarray:  # each target's state `back` frames before
        return np.concatenate([np.asarray(f[start - back : len(f) - back], np.int64) for f in frames_list])

    train_targets, valid_targets = shifted(train_frames, 0), shifted(valid_frames, 0)
    train_codes, valid_codes = np.zeros_like(train_targets), np.zeros_like(valid_targets)
    offsets = np.arange(flags, dtype=np.int64)
    best, best_nll = 1, math.inf
    for order in range(1, NGRAM_MAX_ORDER + 1):
        train_codes += shifted(train_frames, order) << (order - 1)
        valid_codes += shifted(valid_frames, order) << (order - 1)
        width = 1 << order
        index = (train_codes + offsets * width).ravel()
        on = np.bincount(index, weights=train_targets.ravel().astype(np.float64), minlength=flags * width)
        seen = np.bincount(index, minlength=flags * width)
        counts = (on.reshape(flags, width), seen.reshape(flags, width))
        nll = _ngram_nll(counts, valid_codes, valid_targets)
        if nll < best_nll:
            best, best_nll = order, nll
    return best


def ngram_roll_baseline(
    train_frames: list[np.ndarray], histories: np.ndarray, targets: np.ndarray, order: int
) -> dict[str, float]:
    """BL2012's "Note N-Gram": each flag's own model of its state given its previous `order` states,
    add-one smoothed, fitted on the train split (each piece preceded by `order`
    silent frames, `windows.padded`) and scored on the same frames as the model, given their
    `histories` (`evaluate.scored_histories`). Nats per frame, summed over the flags."""
    targets = targets.reshape(-1, targets.shape[-1])
    nll = _ngram_nll(ngram_counts(train_frames, order), histories, targets)
    return {"ngram_nll_nats": nll, "ngram_order": order}


def bernoulli_frame_nll(targets: np.ndarray, log_p: np.ndarray, log_not_p: np.ndarray) -> float:
    """The protocol's NLL of (frames, flags) 0/1 targets under independent Bernoulli flags: nats per
    frame, summed over the flags, averaged over the frames."""
    return float(-(targets * log_p + (1 - targets) * log_not_p).sum(axis=-1).mean())


# The test metrics a run is summed up by (printed, and in the report), in this order, where it has them.
HEADLINE_METRICS = (
    "cross_entropy_nats",
    "perplexity",
    "nll_bits_per_sample",
    "nll_nats_per_sample",
    "frame_nll_nats",
    "nll_nats_per_quarter",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "bay_accuracy",
)

# (test metric, the strongest baseline of the same unit, its name): a model is judged against these
STRONGEST_BASELINES = (
    ("cross_entropy_nats", "bigram_cross_entropy_nats", "interpolated bigram"),
    ("frame_nll_nats", "ngram_nll_nats", "per-flag N-gram"),
    ("frame_nll_nats", "markov_nll_nats", "first-order Markov per flag"),
    ("nll_bits_per_sample", "unigram_nll_bits_per_sample", "unigram of the codes"),
)


def verdict(test: dict, baseline: dict) -> str | None:
    """One line: how far the model is below its strongest baseline, or that it is not below it yet."""
    for metric, reference, name in STRONGEST_BASELINES:
        if metric in test and reference in baseline:
            margin = baseline[reference] - test[metric]
            if margin > 0:
                return (
                    f"{metric} {test[metric]:.4g}: {margin:.3g} below the {name} baseline "
                    f"({baseline[reference]:.4g})"
                )
            return (
                f"{metric} {test[metric]:.4g} is not below the {name} baseline ({baseline[reference]:.4g}): "
                "the model has not learned more than that count table yet"
            )
    return None


def roll_baseline(train_frames: list[np.ndarray], targets: np.ndarray) -> dict[str, float]:
    """Independent Bernoulli per flag with the train split's frequencies, scored on the same frames."""
    frames = np.concatenate(train_frames).astype(np.float64)
    p = np.clip(frames.mean(axis=0), 1e-6, 1 - 1e-6)
    targets = targets.reshape(-1, targets.shape[-1]).astype(np.float64)
    return {"independent_bernoulli_nll_nats": bernoulli_frame_nll(targets, np.log(p), np.log1p(-p))}


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


# -- sample quality -------------------------------------------------------------------------------

MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
QUALITY_KEYS = (
    "pitch_class_entropy_bits",
    "polyphony",
    "scale_consistency",
    "empty_beat_rate",
    "repeated_note_ratio",
    "note_density_per_quarter",
    "mean_note_quarters",
    "short_note_share",
)
SHORT_NOTE_QUARTERS = 0.5  # `short_note_share`: notes shorter than an eighth


def piece_quality(notes: Sequence[Note]) -> dict[str, float]:
    """Sample-quality statistics of one piece (all computed on a sixteenth-note grid)."""
    if not notes:
        return {
            "pitch_class_entropy_bits": 0.0,
            "polyphony": 0.0,
            "scale_consistency": 0.0,
            "empty_beat_rate": 1.0,
            "repeated_note_ratio": 0.0,
            "note_density_per_quarter": 0.0,
            "mean_note_quarters": 0.0,
            "short_note_share": 0.0,
        }
    histogram = np.bincount([note.pitch % 12 for note in notes], minlength=12).astype(float)
    distribution = histogram / histogram.sum()
    nonzero = distribution[distribution > 0]
    scales = [(MAJOR + tonic) % 12 for tonic in range(12)] + [(MINOR + tonic) % 12 for tonic in range(12)]
    sounding = notes_to_roll(notes, SIXTEENTH_GRID, "active").astype(bool)
    voices = sounding.sum(axis=1)
    beats = sounding[: len(sounding) // SIXTEENTH_GRID * SIXTEENTH_GRID].reshape(
        -1, SIXTEENTH_GRID, sounding.shape[1]
    )
    beats = beats.any(axis=(1, 2))
    onsets: dict[float, frozenset] = {}
    for note in notes:
        onsets[note.onset] = onsets.get(note.onset, frozenset()) | {note.pitch}
    groups = [onsets[onset] for onset in sorted(onsets)]
    repeats = sum(a == b for a, b in zip(groups, groups[1:], strict=False))
    length = max(note.onset + note.duration for note in notes)
    return {
        "pitch_class_entropy_bits": float(-(nonzero * np.log2(nonzero)).sum()),
        "polyphony": float(voices[voices > 0].mean()) if (voices > 0).any() else 0.0,
        "scale_consistency": float(max(histogram[scale].sum() for scale in scales) / histogram.sum()),
        "empty_beat_rate": float(1 - beats.mean()) if len(beats) else 0.0,
        "repeated_note_ratio": repeats / (len(groups) - 1) if len(groups) > 1 else 0.0,
        "note_density_per_quarter": float(len(groups) / length) if length else 0.0,
        "mean_note_quarters": float(np.mean([note.duration for note in notes])),
        "short_note_share": float(np.mean([note.duration < SHORT_NOTE_QUARTERS - 1e-9 for note in notes])),
    }


def closer_statistics(samples: dict, split: dict, baseline: dict) -> tuple[int, int]:
    """(on how many sample statistics the model's samples are closer to the split than the
    baseline's samples are, how many statistics there are)."""
    closer = sum(abs(samples[key] - split[key]) < abs(baseline[key] - split[key]) for key in QUALITY_KEYS)
    return int(closer), len(QUALITY_KEYS)


def sample_quality(pieces: Sequence[Sequence[Note]]) -> dict[str, float]:
    """The mean of each statistic over pieces."""
    rows = [piece_quality(notes) for notes in pieces]
    return {key: float(np.mean([row[key] for row in rows])) for key in QUALITY_KEYS} | {"pieces": len(rows)}


def audio_quality(waveforms: Sequence[np.ndarray], sample_rate: int) -> dict[str, float]:
    """Loudness, silence and how stuck a waveform is, averaged over pieces."""
    rows = []
    for waveform in waveforms:
        frame = max(1, sample_rate // 50)  # 20 ms
        usable = waveform[: len(waveform) // frame * frame].reshape(-1, frame)
        rms = np.sqrt((usable**2).mean(axis=1)) if len(usable) else np.zeros(1)
        changes = np.flatnonzero(np.diff(waveform) != 0)
        runs = np.diff(np.concatenate([[-1], changes, [len(waveform) - 1]]))
        rows.append(
            {
                "rms": float(np.sqrt((waveform**2).mean())) if len(waveform) else 0.0,
                "silent_frame_rate": float((rms < 0.01).mean()),
                "longest_constant_run_rate": float(runs.max() / max(1, len(waveform))),
            }
        )
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]} | {"pieces": len(rows)}
