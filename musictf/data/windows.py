"""Windows over per-piece sequences: the arithmetic both pipelines share (the in-memory one,
pipeline.py, and the one streamed from shards, streamed.py): spans and starts, counts from the
pieces' lengths, padding, evaluation windows, global batches, and the step that turns a batch of
windows into model inputs and targets (key shifts, cast, split).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from musictf.errors import MusicTFError

TARGETS = ("next", "window")


@dataclasses.dataclass(frozen=True)
class WindowSpec:
    """How a split becomes batches of windows, for arrays in memory (`pipeline.make_dataset`) and
    arrays streamed from shards (`streamed.streamed_dataset`) alike.

    Args:
        seq_len, target: the window (`window_span`) and what of it is the target ("next", "window").
        batch_size: the global batch (or one worker's share of it, streamed); see `global_batch_size`.
        seed: the shuffle's and the key shifts' seed.
        shuffle: a fresh order every pass.
        stride, every: windows `stride` steps apart within a piece, one of each `every` of them across
            the pieces (`window_starts`; an evaluation's come from `evaluation_windows`).
        before: zero steps before each piece (`start_padding`: with `pad_start`, every step a target).
        drop_remainder: static batch shapes, which TPUs and multi-worker runs need.
        key_shifts: transposition augmentation, the representation's `key_shifts(range)`: each window
            shifted by a random key within +-range, drawn afresh every pass from (seed, position),
            never off the keyboard. The one place where any representation is augmented.
        repeat: passes without end (training).
        start_row: windows an uninterrupted stream would already have given (a resumed run).
        target_as_input: the target is also the inputs' last part, for models that read it
            (`config.target_is_input`: teacher forcing within a frame).
    """

    seq_len: int
    target: str
    batch_size: int
    seed: int
    shuffle: bool = False
    stride: int = 1
    every: int = 1
    before: int = 0
    drop_remainder: bool = False
    key_shifts: object = None
    repeat: bool = False
    start_row: int = 0
    target_as_input: bool = False

    @property
    def span(self) -> int:
        return window_span(self.seq_len, self.target)


def window_span(seq_len: int, target: str) -> int:
    if target == "next":
        return seq_len + 1
    if target == "window":
        return 2 * seq_len
    raise ValueError(f"target must be one of {TARGETS}, got {target!r}")


def needs_static_batches(strategy) -> bool:
    """TPUs need static shapes; multi-worker evaluation needs every worker to run the same steps."""
    return isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.MultiWorkerMirroredStrategy))


THINNING_SEED = 20121  # `window_starts`' draw of the windows a thinned evaluation scores


def global_batch_size(per_replica_batch: int, strategy: tf.distribute.Strategy | None = None) -> int:
    """The per-replica batch times the number of replicas of `strategy` (or the active one)."""
    strategy = strategy or tf.distribute.get_strategy()
    return per_replica_batch * strategy.num_replicas_in_sync


def window_starts(lengths: list[int], span: int, stride: int, every: int = 1) -> np.ndarray:
    """Start offsets, into the concatenation of the sequences, of every window inside one piece,
    `stride` steps apart within a piece; with `every`, one of each `every` consecutive such windows
    (counted across the pieces), drawn at random from a fixed seed: the same sample every time.

    A thinning must neither favour each piece's first window (as a stride within each piece did,
    over-weighting the openings) nor keep every every-th window: that aliases with the metre (on
    eighth-note frames of pieces whose lengths are whole bars, every 6th window is always on the
    same beat parity; validation on such a sample read 0.2 nats lower than the whole split).
    One random window from each block of `every` is unbiased and still spread over the split."""
    starts, offset = [], 0
    for length in lengths:
        if length >= span:
            starts.append(np.arange(offset, offset + length - span + 1, stride, dtype=np.int64))
        offset += length
    if not starts:
        return np.zeros((0,), np.int64)
    starts = np.concatenate(starts)
    if every == 1:
        return starts
    block_starts = np.arange(0, len(starts), every)
    block_sizes = np.minimum(every, len(starts) - block_starts)
    picks = np.random.default_rng(THINNING_SEED).random(len(block_starts))
    return starts[block_starts + (picks * block_sizes).astype(np.int64)]


def lengths_of(arrays) -> list[int]:
    """Each piece's length in steps: a sharded split (shards.ShardedSplit) knows them without reading."""
    stored = getattr(arrays, "lengths", None)
    return [int(length) for length in stored] if stored is not None else [len(array) for array in arrays]


def count_windows(arrays, seq_len: int, target: str, stride: int = 1, before: int = 0) -> int:
    """Windows over `arrays` (each preceded by `before` padding steps), counted from the lengths."""
    lengths = [length + before for length in lengths_of(arrays)]
    return len(window_starts(lengths, window_span(seq_len, target), stride))


def padded(arrays: list[np.ndarray], before: int, after_multiple_of: int = 1) -> list[np.ndarray]:
    """Each array preceded by `before` zero steps (silent frames, <pad> tokens) and followed by as
    few zero steps as make its own length a multiple of `after_multiple_of` (the arrays themselves
    where there is nothing to add)."""
    if before == 0 and after_multiple_of == 1:
        return list(arrays)
    result = []
    for array in arrays:
        after = -len(array) % after_multiple_of
        result.append(np.pad(array, [(before, after)] + [(0, 0)] * (array.ndim - 1)))
    return result


def start_padding(config) -> int:
    """Zero steps before each piece: `seq_len` with `pad_start` (every step a target), else none."""
    return config.seq_len if config.pad_start else 0


def evaluation_windows(
    target: str, config, arrays, before: int = 0, each_epoch: bool = False
) -> tuple[int, int]:
    """(stride, every) of the windows an evaluation scores: every frame predicted once (window
    targets step by a window), and one of each `every` such windows across the split, as few as keep within
    max_eval_windows (with `each_epoch`, the validation after each epoch: epoch_eval_windows where
    set); `before`: padding steps each piece will get."""
    stride = config.seq_len if target == "window" else 1
    windows = count_windows(arrays, config.seq_len, target, stride, before)
    limit = (each_epoch and config.epoch_eval_windows) or config.max_eval_windows
    every = math.ceil(windows / limit) if limit and windows > limit else 1
    return stride, every


def require_windows(arrays: list[np.ndarray], windows: int, seq_len: int, target: str, split: str) -> None:
    """One MusicTFError, before any training, when `split` has no window (`windows` == 0): it
    could not be validated or scored."""
    if windows == 0:
        longest = max(lengths_of(arrays), default=0)
        raise MusicTFError(
            f"the {split} split has no piece long enough for a window of {window_span(seq_len, target)} "
            f"steps (seq_len={seq_len}); its longest has {longest}: lower seq_len, or give the {split} split "
            "longer pieces"
        )


def shape_batch(windows, positions, lows, highs, spec: WindowSpec):
    """A batch of windows (batch, span, ...) made model inputs and targets: each window shifted by its
    own key (drawn from (seed, position): the same in every batching), cast, split into inputs and
    targets as `spec.target` says."""
    seq_len, key_shifts = spec.seq_len, spec.key_shifts
    is_tokens = windows.shape.rank == 2

    def draw_shift(position, low, high):
        return tf.random.stateless_uniform(
            [],
            seed=tf.stack([tf.cast(spec.seed, tf.int64), position]),
            minval=low,
            maxval=high + 1,
            dtype=tf.int32,
        )

    if key_shifts is not None:
        shifts = tf.map_fn(
            lambda row: draw_shift(*row), (positions, lows, highs), fn_output_signature=tf.int32
        )
        windows = key_shifts.apply(windows, shifts)
    windows = tf.cast(windows, tf.int32 if is_tokens else tf.float32)
    if spec.target == "next":
        inputs, following = (windows[:, :seq_len],), windows[:, seq_len]
    else:
        inputs, following = (
            (windows[:, :seq_len], windows[:, seq_len - 1 : 2 * seq_len - 1]),
            windows[:, seq_len:],
        )
    if spec.target_as_input:
        inputs += (following,)
    return (inputs[0] if len(inputs) == 1 else inputs), following
