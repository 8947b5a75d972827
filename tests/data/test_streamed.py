"""The stream over a shard store: every window of the in-memory pipeline once per pass, its key
shifts and padding, resume from any row, one worker's shards only; a shard cut short meanwhile is
one line."""

from __future__ import annotations

import numpy as np
import pytest

from musictf.data import shards
from musictf.data.pipeline import make_dataset
from musictf.data.streamed import streamed_dataset
from musictf.data.windows import WindowSpec, count_windows, padded


def _rows(dataset, batches=None):
    rows = []
    for x, y in dataset.take(batches) if batches else dataset:
        parts = [*(x if isinstance(x, tuple) else (x,)), y]
        rows.append(np.concatenate([part.numpy().reshape(len(y), -1) for part in parts], axis=1))
    return np.concatenate(rows)


def test_one_pass_of_the_stream_is_every_window_of_the_in_memory_pipeline_once(store):
    pieces, split, _ = store
    windows = count_windows(pieces, 8, "next", before=2)
    streamed = _rows(
        streamed_dataset(
            split, WindowSpec(seq_len=8, target="next", batch_size=1, shuffle=True, seed=3, before=2)
        )
    )
    in_memory = _rows(
        make_dataset(
            padded(pieces, 2), WindowSpec(seq_len=8, target="next", batch_size=1, shuffle=True, seed=3)
        )
    )
    assert len(streamed) == len(in_memory) == windows
    key = lambda rows: sorted(map(bytes, rows))  # noqa: E731
    assert key(streamed) == key(in_memory)
    assert not np.array_equal(streamed, in_memory)  # a different order: shard by shard


def test_a_thinned_stream_gives_the_windows_it_counts_one_of_each_block_in_each_shard(store):
    pieces, split, _ = store
    from musictf.data.streamed import count_shard_windows

    every = 3
    thinned = _rows(
        streamed_dataset(
            split, WindowSpec(seq_len=8, target="next", batch_size=5, shuffle=False, seed=3, every=every)
        )
    )
    numbers = list(range(len(split.shards)))
    assert len(thinned) == count_shard_windows(split, numbers, 9, 1, 0, every)
    assert len(thinned) == sum(-(-count_shard_windows(split, [n], 9, 1, 0) // every) for n in numbers)
    everything = {
        bytes(row)
        for row in _rows(
            make_dataset(pieces, WindowSpec(seq_len=8, target="next", batch_size=5, shuffle=False, seed=3))
        )
    }
    assert {bytes(row) for row in thinned} <= everything


def test_passes_differ_and_a_resumed_stream_goes_on_with_the_same_batches(store):
    _, split, shifts = store

    def stream(start_row=0):
        return streamed_dataset(
            split,
            WindowSpec(
                seq_len=8,
                target="window",
                batch_size=16,
                shuffle=True,
                seed=5,
                repeat=True,
                drop_remainder=True,
                key_shifts=shifts,
                start_row=start_row,
            ),
        )

    windows = count_windows(split, 8, "window")
    whole = _rows(stream(), batches=2 * windows // 16 + 4)
    assert not np.array_equal(whole[:windows], whole[windows : 2 * windows])
    for start in (16 * 3, 16 * (windows // 16 + 2)):  # inside the first pass, and in the second
        resumed = _rows(stream(start), batches=2)
        np.testing.assert_array_equal(resumed, whole[start : start + 32])


def test_each_window_is_shifted_within_the_range_and_never_off_the_keyboard(store):
    _, split, shifts = store

    def first_batch(key_shifts):
        x, _ = next(
            iter(
                streamed_dataset(
                    split,
                    WindowSpec(
                        seq_len=8, target="next", batch_size=256, shuffle=True, seed=1, key_shifts=key_shifts
                    ),
                )
            )
        )
        return x.numpy().reshape(len(x), 8, 88, 2)

    shifted, original = first_batch(shifts), first_batch(None)

    def moved(frames, shift):  # along the keys, zero-filled: nothing wraps around
        out = np.zeros_like(frames)
        if shift >= 0:
            out[:, shift:] = frames[:, : 88 - shift]
        else:
            out[:, :shift] = frames[:, -shift:]
        return out

    used = []
    for after, before in zip(shifted, original, strict=True):
        matches = [s for s in range(-3, 4) if np.array_equal(after, moved(before, s))]
        assert matches, "a window was shifted off the keyboard or beyond the range"
        used.append(matches[0])
    assert len(set(used)) > 3


def test_workers_read_disjoint_shards_that_cover_the_split(store, tmp_path, monkeypatch):
    _, split, _ = store
    log = tmp_path / "reads"
    monkeypatch.setenv(shards.READ_LOG, str(log))
    seen = []
    for worker in range(2):
        log.write_text("")
        rows = _rows(
            streamed_dataset(
                split,
                WindowSpec(seq_len=8, target="next", batch_size=4, shuffle=True, seed=1),
                worker=(worker, 2),
            )
        )
        read = {line.split()[1] for line in log.read_text().splitlines()}
        assert read == {split.shards[number]["file"] for number in split.shards_of(worker, 2)}
        seen.append(rows)
    assert len(seen[0]) + len(seen[1]) == count_windows(split, 8, "next")


def test_a_shard_cut_short_while_training_reads_it_is_one_line_saying_rerun(store, tmp_path):
    """Reliability review R9: a 60-line TensorFlow traceback."""
    import tensorflow as tf

    from musictf.errors import MusicTFError
    from musictf.train import shard_changes_explained

    _, split, _ = store
    path = split.path(0)
    path.write_bytes(path.read_bytes()[:200])
    dataset = tf.data.Dataset.range(1).map(
        lambda _: tf.numpy_function(lambda: shards.read_shard(path), [], tf.uint8)
    )
    with pytest.raises(MusicTFError) as refused, shard_changes_explained():
        list(dataset)
    message = str(refused.value)
    assert str(path) in message and "rerun the same command to resume" in message and "\n" not in message
