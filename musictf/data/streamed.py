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
    dataset = streamed_dataset(splits["train"], WindowSpec(32, "next", 64, seed=1, shuffle=True, repeat=True))
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from musictf.data import shards as shards_module
from musictf.data.windows import WindowSpec, padded, shape_batch, window_starts
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


def streamed_dataset(split, spec: WindowSpec, worker: tuple[int, int] = (0, 1)) -> tf.data.Dataset:
    """Batches of windows streamed from a sharded split, as `pipeline.make_dataset` makes them from
    arrays in memory. `worker` = (index, count): read only that worker's shards
    (`ShardedSplit.shards_of`); `spec.batch_size` is then that worker's share of the global batch."""
    span = spec.span
    numbers = split.shards_of(*worker)
    windows = count_shard_windows(split, numbers, span, spec.stride, spec.before, spec.every)
    if windows == 0:
        raise MusicTFError(
            f"no piece is long enough for a window of {span} steps (seq_len={spec.seq_len}): lower seq_len"
        )
    first_pass, offset = divmod(spec.start_row, windows) if spec.repeat else (0, spec.start_row)
    rows = streamed_rows(
        split,
        span=span,
        shuffle=spec.shuffle,
        seed=spec.seed,
        stride=spec.stride,
        every=spec.every,
        before=spec.before,
        repeat=spec.repeat,
        shard_numbers=numbers,
        first_pass=first_pass,
    )
    if not spec.repeat and spec.drop_remainder and windows < spec.batch_size:
        rows = rows.repeat().take(spec.batch_size)  # one static batch, as `table_rows` tiles a short table
    rows = rows.skip(offset).enumerate(start=spec.start_row)

    def make_batch(positions, rows):
        windows_, lows, highs = rows
        positions = positions * worker[1] + worker[0]  # each worker's windows draw their own key shifts
        return shape_batch(windows_, positions, lows, highs, spec)

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = rows.batch(spec.batch_size, drop_remainder=spec.drop_remainder)
    dataset = dataset.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if not spec.repeat:  # a finite stream says how long it is, as one from a table does (Keras reads it)
        rows_left = max(windows, spec.batch_size if spec.drop_remainder else 0) - offset
        batches = rows_left // spec.batch_size if spec.drop_remainder else -(-rows_left // spec.batch_size)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(max(batches, 0)))
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def streamed_train_dataset(split, spec: WindowSpec, strategy) -> tf.data.Dataset:
    """The training stream of `pipeline.window_datasets` for arrays on disk. Under
    MultiWorkerMirroredStrategy each worker streams only its own shards
    (`strategy.distribute_datasets_from_function`), in its share of the global batch, and resumes
    where its share of an uninterrupted stream would be. (Validation reads every shard on every
    worker and keeps its share of each batch: every worker must run the same validation steps.)"""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return streamed_dataset(split, spec)
    global_batch, steps_done = spec.batch_size, spec.start_row // spec.batch_size

    def per_worker(context):  # batches of one replica; the worker's replicas take them in turn
        per_replica = context.get_per_replica_batch_size(global_batch)
        local_replicas = strategy.num_replicas_in_sync // context.num_input_pipelines
        worker_spec = dataclasses.replace(
            spec, batch_size=per_replica, start_row=steps_done * per_replica * local_replicas
        )
        return streamed_dataset(
            split, worker_spec, worker=(context.input_pipeline_id, context.num_input_pipelines)
        )

    return strategy.distribute_datasets_from_function(per_worker)
