"""tf.data pipelines: windows over per-piece arrays, with the targets each experiment needs.

Windows never cross a piece boundary. Targets:
- `next`: x = w[0:L], y = w[L] (next token, or next time step);
- `window`: x = (w[0:L], w[L-1:2L-1]), y = w[L:2L] (encoder input, teacher-forced decoder
  input that is the target shifted right by one step, and the next window);
- audio crops (`audio_dataset`): codes, the aligned roll and the program, the codes shifted by one
  sample for targets.

An experiment's `make_datasets` slot names one of `window_datasets` or `audio_datasets`: (train,
valid, steps_per_epoch) for a config, its data and a strategy.

Each pipeline orders a table of window starts (`table_rows`: a stateless shuffle per pass), batches
the starts, then builds the whole batch in one map: one gather of every window, the key shifts by
one gather, the targets by slicing. Building window by window gave the same batches (a golden file
the per-window pipeline wrote pins them) at one small graph call per window.

Example:
    dataset = make_dataset(arrays, WindowSpec(seq_len=32, target="next", batch_size=64, seed=1, shuffle=True))
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from musictf.data import streamed
from musictf.data.windows import (
    WindowSpec,
    count_windows,
    evaluation_windows,
    global_batch_size,
    needs_static_batches,
    padded,
    require_windows,
    shape_batch,
    start_padding,
    window_span,
    window_starts,
)
from musictf.errors import MusicTFError


def scoring_windows(
    arrays: list[np.ndarray], config, target: str
) -> tuple[list[np.ndarray], tuple[int, int], np.ndarray]:
    """(arrays to window, (stride, every), scored) for evaluation: every real step of every piece
    predicted once, thinned to max_eval_windows. With `pad_start` the pieces are padded at both ends so that
    windows reach each piece's first and last step, and `scored` (bool, one per predicted step, in
    the order `make_dataset` gives them) leaves the padding out."""
    before = start_padding(config)
    whole_windows = config.seq_len if before and target == "window" else 1  # the last window reaches the end
    windows_of = padded(arrays, before, whole_windows)
    real = padded([np.ones(len(array), bool) for array in arrays], before, whole_windows)
    stride, every = evaluation_windows(target, config, windows_of)
    starts = window_starts(
        [len(array) for array in windows_of], window_span(config.seq_len, target), stride, every
    )
    offsets = np.arange(config.seq_len) if target == "window" else np.zeros(1, np.int64)
    scored = np.concatenate(real)[(starts[:, None] + config.seq_len + offsets[None, :]).reshape(-1)]
    return windows_of, (stride, every), scored


def table_rows(
    columns: tuple, *, shuffle: bool, seed: int, repeat: bool, min_rows: int = 0, start_row: int = 0
) -> tf.data.Dataset:
    """The rows of a table of equal-length numpy columns, one pass or repeated, each pass in a fresh
    order when shuffling. A table shorter than `min_rows` is tiled up to it, so that a split smaller
    than one batch still gives one full batch when batches must be static (TPU, multi-worker).

    The order of pass `e` is a stateless function of (seed, e), not a `Dataset.shuffle` buffer, so it
    is the same on one device, under MirroredStrategy's pipeline rewrite and on every worker of a
    multi-worker run (whose shards then add up to the single-device global batch). It is also the
    same in every process: `start_row` starts the stream where an uninterrupted one would be after
    that many rows, which is how a resumed run goes on with the data it had not seen yet.
    """
    if len(columns[0]) < min_rows:
        columns = tuple(np.resize(column, (min_rows, *column.shape[1:])) for column in columns)
    first_pass, offset = divmod(start_row, len(columns[0])) if repeat else (0, start_row)
    columns = tuple(tf.convert_to_tensor(column) for column in columns)
    if not shuffle:
        rows = tf.data.Dataset.from_tensor_slices(columns)
        return (rows.repeat() if repeat else rows).skip(start_row)
    size = tf.shape(columns[0], out_type=tf.int64)[0]

    def one_pass(index):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(size), seed=tf.stack([tf.cast(seed, tf.int64), index])
        )
        return tf.data.Dataset.from_tensor_slices(tuple(tf.gather(column, order) for column in columns))

    passes = tf.data.Dataset.counter(start=first_pass) if repeat else tf.data.Dataset.range(1)
    return passes.flat_map(one_pass).skip(offset)


def batched(dataset: tf.data.Dataset, batch_size: int, drop_remainder: bool, make_batch) -> tf.data.Dataset:
    """Rows into global batches, then `make_batch` once per batch (one gather for the whole batch,
    not one small graph per row), prefetched. A multi-worker run splits the batches between its
    workers by data (in-memory data has no files to shard by)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def gather_windows(data: tf.Tensor, starts: tf.Tensor, span: int) -> tf.Tensor:
    """data[start : start + span] for each start, stacked: (batch, span, ...) in one gather."""
    return tf.gather(data, starts[:, None] + tf.range(span, dtype=starts.dtype)[None, :])


def _key_shift_bounds(arrays: list[np.ndarray], starts: np.ndarray, key_shifts):
    """Per window, the lowest and highest key shift that keeps its piece on the keyboard."""
    ends = np.cumsum([len(array) for array in arrays])
    bounds = np.asarray([key_shifts.bounds(array) for array in arrays], np.int32).reshape(-1, 2)
    piece = np.searchsorted(ends, starts, side="right")
    return bounds[piece, 0], bounds[piece, 1]


def make_dataset(arrays: list[np.ndarray], spec: WindowSpec) -> tf.data.Dataset:
    """Batches of windows over `arrays` (token ids, or (T, features) roll frames) held in memory: one
    table of every window start, shuffled per pass (`table_rows`)."""
    arrays = padded(arrays, spec.before)
    span = spec.span
    starts = window_starts([len(array) for array in arrays], span, spec.stride, spec.every)
    if len(starts) == 0:
        longest = max((len(array) for array in arrays), default=0)
        raise MusicTFError(
            f"no piece is long enough for a window of {span} steps (seq_len={spec.seq_len}); the longest "
            f"has {longest}: lower seq_len"
        )
    data = tf.constant(np.concatenate(arrays))
    if spec.key_shifts is not None:
        lows, highs = _key_shift_bounds(arrays, starts, spec.key_shifts)
    else:
        lows = highs = np.zeros(len(starts), np.int32)
    dataset = table_rows(
        (starts, lows, highs),
        shuffle=spec.shuffle,
        seed=spec.seed,
        repeat=spec.repeat,
        min_rows=spec.batch_size if spec.drop_remainder else 0,
        start_row=spec.start_row,
    )
    # after shuffling: a window gets a fresh key shift each epoch
    dataset = dataset.enumerate(start=spec.start_row)

    def make_batch(positions, rows):
        starts, lows, highs = rows
        windows = gather_windows(data, starts, span)  # in the arrays' own dtype: uint8 for rolls
        return shape_batch(windows, positions, lows, highs, spec)

    return batched(dataset, spec.batch_size, spec.drop_remainder, make_batch)


# -- the datasets of a run ------------------------------------------------------------------------


def window_datasets(config, data, strategy, initial_epoch: int = 0):
    """(train, valid, steps_per_epoch) of windows over token ids or roll frames, each training window
    transposed by a random key within `transpose_range` (the representation's `key_shifts`). The
    training stream starts where epoch `initial_epoch` of an uninterrupted run starts, so a resumed
    run sees exactly the batches it would have seen. Arrays in memory are batched from a table of
    windows (`make_dataset`), arrays on disk (a `ShardedSplit`) streamed from their shards
    (`streamed.streamed_train_dataset`, `streamed.streamed_dataset`); everything else is decided here,
    once, for both."""
    target, seq_len = config.TARGET, config.seq_len
    batch = global_batch_size(config.batch_size, strategy)
    before = start_padding(config)  # with pad_start, each piece's first steps are targets too
    train_items = data.arrays["train"]
    in_memory = isinstance(train_items, list)
    steps_per_epoch = config.steps_per_epoch or max(
        1, count_windows(train_items, seq_len, target, before=before) // batch
    )
    train_spec = WindowSpec(
        seq_len,
        target,
        batch,
        config.seed,
        shuffle=True,
        before=before,
        drop_remainder=True,
        key_shifts=(
            data.representation.key_shifts(config.transpose_range) if config.transpose_range > 0 else None
        ),
        repeat=True,
        start_row=initial_epoch * steps_per_epoch * batch,
        target_as_input=config.target_is_input,
    )
    if in_memory:  # first: a window no training piece can fill is the first thing to say
        train = make_dataset(train_items, train_spec)
    else:
        train = streamed.streamed_train_dataset(train_items, train_spec, strategy)
    validated, evaluated = data.validation_split(), data.evaluation_split()
    valid_items, evaluated_items = data.arrays[validated], data.arrays[evaluated]
    require_windows(
        valid_items, count_windows(valid_items, seq_len, target, before=before), seq_len, target, validated
    )
    scorable = (
        scoring_windows(evaluated_items, config, target)[2].size
        if in_memory
        else count_windows(evaluated_items, seq_len, target, before=before)
    )
    require_windows(evaluated_items, scorable, seq_len, target, evaluated)
    stride, every = evaluation_windows(target, config, valid_items, before, each_epoch=True)
    valid_spec = dataclasses.replace(
        train_spec,
        shuffle=False,
        stride=stride,
        every=every,
        drop_remainder=needs_static_batches(strategy),
        key_shifts=None,
        repeat=False,
        start_row=0,
    )
    valid = (
        make_dataset(valid_items, valid_spec)
        if in_memory
        else streamed.streamed_dataset(valid_items, valid_spec)
    )
    return train, valid, steps_per_epoch


def audio_dataset(
    items,
    config,
    batch_size: int,
    shuffle: bool,
    stride: int = 1,
    max_windows: int = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
    start_row: int = 0,
) -> tf.data.Dataset:
    """Crops of `config.crop_frames` roll steps that start on a step, over (codes, roll, program)
    items; the codes are shifted by one sample for targets. The crop table is `window_starts` over
    the rolls, so crops never cross a piece boundary."""
    hop, frames = config.hop, config.crop_frames
    rolls = [item[1] for item in items]
    roll_starts = window_starts([len(roll) for roll in rolls], frames, stride)
    if len(roll_starts) == 0:
        raise MusicTFError(f"no piece is long enough for a training crop of {frames} roll steps")
    piece = np.searchsorted(np.cumsum([len(roll) for roll in rolls]), roll_starts, side="right")
    # each piece's codes are one hop longer than its roll, so piece p's codes start p hops later
    table = np.stack(
        [(roll_starts + piece) * hop, roll_starts, np.asarray([item[2] for item in items])[piece]], axis=1
    )
    if max_windows and len(table) > max_windows:
        table = table[np.linspace(0, len(table) - 1, max_windows).astype(int)]
    codes = tf.constant(np.concatenate([item[0] for item in items]).astype(np.int32))
    roll_frames = tf.constant(np.concatenate(rolls).astype(np.float32))
    length = frames * hop

    def crops(rows):  # rows: (batch, 3) of code start, roll start, program
        windows = gather_windows(codes, rows[:, 0], length + 1)
        inputs = {"codes": windows[:, :-1]}
        if config.local_conditioning:
            inputs["roll"] = gather_windows(roll_frames, rows[:, 1], frames)
        if config.global_conditioning:
            inputs["program"] = tf.cast(rows[:, 2], tf.int32)
        return inputs, windows[:, 1:]

    drop_remainder = drop_remainder or repeat
    dataset = table_rows(
        (table.astype(np.int64),),
        shuffle=shuffle,
        seed=config.seed,
        repeat=repeat,
        min_rows=batch_size if drop_remainder else 0,
        start_row=start_row,
    )
    return batched(dataset, batch_size, drop_remainder, crops)


def audio_datasets(config, data, strategy, initial_epoch: int = 0):
    """(train, valid, steps_per_epoch) of audio crops; an epoch of audio is `steps_per_epoch` steps, a
    checkpoint interval (WaveNetConfig refuses 0: a pass over every crop start is millions)."""
    batch = global_batch_size(config.batch_size, strategy)
    steps_per_epoch = config.steps_per_epoch
    split = data.evaluation_split()
    if not window_starts([len(item[1]) for item in data.arrays[split]], config.crop_frames, 1).size:
        raise MusicTFError(
            f"the {split} split has no piece long enough for a crop of {config.crop_frames} roll steps: "
            "lower crop_frames, or give it longer pieces"
        )
    train = audio_dataset(
        data.arrays["train"],
        config,
        batch,
        shuffle=True,
        repeat=True,
        start_row=initial_epoch * steps_per_epoch * batch,
    )
    valid = audio_dataset(
        data.arrays[data.validation_split()],
        config,
        batch,
        shuffle=False,
        stride=config.crop_frames,
        max_windows=config.epoch_eval_windows or config.max_eval_windows,  # each epoch's sample
        drop_remainder=needs_static_batches(strategy),
    )
    return train, valid, steps_per_epoch
