"""tf.data over a sharded store (shards.py): windows streamed from disk, never the whole split in memory.

The in-memory pipeline (`pipeline.make_dataset`) shuffles one table of every window start. Here
the order is two-level, as with sharded TFRecords: each pass visits this worker's shards in a
stateless random order of (seed, pass), and reads `CYCLE` (4) of them at a time, taking one
window from each in turn; within a shard the windows come in a stateless random order of (seed,
pass, shard). A shard is a random sample of its split's pieces (the store writes them so), so a
batch mixes pieces from across the corpus. Memory holds `CYCLE` shards, whatever the corpus size.

Everything else is the in-memory pipeline's: windows inside one piece, `pad_start` zero steps,
the key shift of each window drawn from (seed, position) (`windows.shape_batch`), and a resumed
stream that starts where an uninterrupted one would be after `start_row` windows (it skips within
the pass it starts in; the windows it skips are read, not trained on).

Example:
    dataset = streamed_dataset(splits["train"], seq_len=32, target="next", batch_size=64,
                               shuffle=True, seed=1, repeat=True)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from musictf.data import shards as shards_module
from musictf.data.windows import (
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

CYCLE = 4  # shards read at a time when shuffling


def _shard_windows(split, number: int, span: int, stride: int, before: int, every: int = 1):
    """(frames, starts, lows, highs) of shard `number`: its pieces each preceded by `before` zero
    steps, and every window of `span` steps inside one piece (one of each `every` of them across the
    shard's pieces), with that piece's key-shift bounds."""
    shard = split.shards[number]
    stored = shards_module.read_shard(split.path(number))
    lengths = np.asarray(shard["lengths"], np.int64)
    if before:
        stored = np.concatenate(padded(np.split(stored, np.cumsum(lengths)[:-1]), before))
        lengths = lengths + before
    starts = window_starts(lengths.tolist(), span, stride, every)
    piece = np.searchsorted(np.cumsum(lengths), starts, side="right")
    bounds = np.asarray(shard["bounds"], np.int32).reshape(-1, 2)
    return stored, starts, bounds[piece, 0].copy(), bounds[piece, 1].copy()


def count_shard_windows(split, shard_numbers, span: int, stride: int, before: int, every: int = 1) -> int:
    """Windows in the given shards, from the index alone (thinned shard by shard, as read)."""
    total = 0
    for number in shard_numbers:
        lengths = [length + before for length in split.shards[number]["lengths"]]
        total += len(window_starts(lengths, span, stride, every))
    return total


def streamed_rows(
    split,
    *,
    span: int,
    shuffle: bool,
    seed: int,
    stride: int = 1,
    every: int = 1,
    before: int = 0,
    repeat: bool = False,
    shard_numbers: list[int] | None = None,
    first_pass: int = 0,
) -> tf.data.Dataset:
    """(window, low, high) elements, one per window of the given shards (all, by default), passes
    from `first_pass` on when repeating."""
    numbers = np.asarray(shard_numbers if shard_numbers is not None else range(len(split.shards)), np.int64)
    if len(numbers) == 0:
        raise MusicTFError("this worker has no shard to read: write the store with more shards than workers")
    dtype = tf.as_dtype(np.dtype(split.shards[0]["dtype"]))
    feature_shape = list(split.shards[0]["shape"])

    def load(number):
        return _shard_windows(split, int(number), span, stride, before, every)

    def windows_of_shard(number, pass_index):
        frames, starts, lows, highs = tf.numpy_function(
            load, [number], [dtype, tf.int64, tf.int32, tf.int32], stateful=False
        )
        frames = tf.ensure_shape(frames, [None, *feature_shape])
        starts, lows, highs = (tf.ensure_shape(column, [None]) for column in (starts, lows, highs))
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(
                tf.range(tf.shape(starts, out_type=tf.int64)[0]),
                seed=tf.stack([tf.cast(seed, tf.int64), pass_index * 1_000_003 + number]),
            )
            starts, lows, highs = (tf.gather(column, order) for column in (starts, lows, highs))
        offsets = tf.range(span, dtype=tf.int64)

        def gather(window_starts_, low, high):
            return tf.gather(frames, window_starts_[:, None] + offsets[None, :]), low, high

        return tf.data.Dataset.from_tensor_slices((starts, lows, highs)).batch(256).map(gather).unbatch()

    def one_pass(pass_index):
        order = tf.constant(numbers)
        if shuffle:
            order = tf.gather(
                order,
                tf.random.experimental.stateless_shuffle(
                    tf.range(len(numbers), dtype=tf.int64),
                    seed=tf.stack([tf.cast(seed, tf.int64), pass_index]),
                ),
            )
        return tf.data.Dataset.from_tensor_slices(order).interleave(
            lambda number: windows_of_shard(number, pass_index),
            cycle_length=CYCLE if shuffle else 1,
            block_length=1,
        )

    passes = tf.data.Dataset.counter(start=first_pass) if repeat else tf.data.Dataset.range(1)
    return passes.flat_map(one_pass)


def streamed_dataset(
    split,
    *,
    seq_len: int,
    target: str,
    batch_size: int,
    shuffle: bool,
    seed: int,
    stride: int = 1,
    every: int = 1,
    before: int = 0,
    drop_remainder: bool = False,
    key_shifts=None,
    repeat: bool = False,
    start_row: int = 0,
    target_as_input: bool = False,
    worker: tuple[int, int] = (0, 1),
) -> tf.data.Dataset:
    """Batches of windows streamed from a sharded split, as `pipeline.make_dataset` makes them from
    arrays in memory. `worker` = (index, count): read only that worker's shards
    (`ShardedSplit.shards_of`); `batch_size` is then that worker's share of the global batch."""
    span = window_span(seq_len, target)
    numbers = split.shards_of(*worker)
    windows = count_shard_windows(split, numbers, span, stride, before, every)
    if windows == 0:
        raise MusicTFError(
            f"no piece is long enough for a window of {span} steps (seq_len={seq_len}): lower seq_len"
        )
    first_pass, offset = divmod(start_row, windows) if repeat else (0, start_row)
    rows = streamed_rows(
        split, span=span, shuffle=shuffle, seed=seed, stride=stride, every=every, before=before,
        repeat=repeat, shard_numbers=numbers, first_pass=first_pass,
    )  # fmt: skip
    if not repeat and drop_remainder and windows < batch_size:
        rows = rows.repeat().take(batch_size)  # one static batch, as `table_rows` tiles a short table
    rows = rows.skip(offset).enumerate(start=start_row)

    def make_batch(positions, rows):
        windows_, lows, highs = rows
        positions = positions * worker[1] + worker[0]  # each worker's windows draw their own key shifts
        return shape_batch(
            windows_, positions, lows, highs, seq_len=seq_len, target=target, seed=seed,
            key_shifts=key_shifts, target_as_input=target_as_input,
        )  # fmt: skip

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = rows.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if not repeat:  # a finite stream says how long it is, as one from a table does (Keras reads it)
        rows_left = max(windows, batch_size if drop_remainder else 0) - offset
        batches = rows_left // batch_size if drop_remainder else -(-rows_left // batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(max(batches, 0)))
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def streamed_window_datasets(experiment, config, data, strategy, initial_epoch: int = 0):
    """`pipeline.window_datasets` for arrays on disk: (train, valid, steps_per_epoch), streamed.

    Under MultiWorkerMirroredStrategy each worker streams only its own shards of the train split
    (`strategy.distribute_datasets_from_function`), in its share of the global batch. Validation
    reads every shard on every worker and keeps its share of each batch (every worker must run the
    same validation steps)."""
    target, seq_len = experiment.target, config.seq_len
    batch = global_batch_size(config.batch_size, strategy)
    key_shifts = (
        data.representation.key_shifts(config.transpose_range) if config.transpose_range > 0 else None
    )
    before = start_padding(config)
    train_split = data.arrays["train"]
    windows = count_windows(train_split, seq_len, target, before=before)
    steps_per_epoch = config.steps_per_epoch or max(1, windows // batch)

    def train_stream(worker: int, workers: int, stream_batch: int, rows_per_step: int) -> tf.data.Dataset:
        return streamed_dataset(
            train_split, seq_len=seq_len, target=target, batch_size=stream_batch, shuffle=True,
            seed=config.seed, before=before, drop_remainder=True, key_shifts=key_shifts, repeat=True,
            start_row=initial_epoch * steps_per_epoch * rows_per_step, target_as_input=config.target_is_input,
            worker=(worker, workers),
        )  # fmt: skip

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):

        def per_worker(context):  # batches of one replica; the worker's replicas take them in turn
            per_replica = context.get_per_replica_batch_size(batch)
            local_replicas = strategy.num_replicas_in_sync // context.num_input_pipelines
            return train_stream(
                context.input_pipeline_id,
                context.num_input_pipelines,
                per_replica,
                per_replica * local_replicas,
            )

        train = strategy.distribute_datasets_from_function(per_worker)
    else:
        train = train_stream(0, 1, batch, batch)
    validated = data.validation_split()
    valid_split = data.arrays[validated] if validated == "valid" else train_split
    for split, items in (
        (validated, valid_split),
        (data.evaluation_split(), data.arrays[data.evaluation_split()]),
    ):
        require_windows(items, count_windows(items, seq_len, target, before=before), seq_len, target, split)
    stride, every = evaluation_windows(target, config, valid_split, before, each_epoch=True)
    valid = streamed_dataset(
        valid_split, seq_len=seq_len, target=target, batch_size=batch, shuffle=False, seed=config.seed,
        stride=stride, every=every, before=before,
        drop_remainder=needs_static_batches(strategy), target_as_input=config.target_is_input,
    )  # fmt: skip
    return train, valid, steps_per_epoch
