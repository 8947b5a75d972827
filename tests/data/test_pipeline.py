import numpy as np
import pytest
import tensorflow as tf

from musictf.data.pianoroll import NUM_KEYS
from musictf.data.pipeline import make_dataset, table_rows
from musictf.data.representation import RollKeyShifts
from musictf.data.windows import WindowSpec, count_windows, global_batch_size
from musictf.errors import MusicTFError


def test_next_token_windows_are_shifted_by_one_and_stay_in_one_piece():
    arrays = [np.arange(10, dtype=np.int32), np.arange(100, 107, dtype=np.int32)]
    dataset = make_dataset(
        arrays, WindowSpec(seq_len=4, target="next", batch_size=100, shuffle=False, seed=0)
    )
    x, y = next(iter(dataset))
    assert x.dtype == tf.int32 and x.shape == (6 + 3, 4) and y.shape == (9,)
    np.testing.assert_array_equal(x.numpy()[:, 1:], x.numpy()[:, :-1] + 1)
    assert {int(row[0]) for row in x.numpy()} == {0, 1, 2, 3, 4, 5, 100, 101, 102}
    np.testing.assert_array_equal(y.numpy(), x.numpy()[:, -1] + 1)
    assert count_windows(arrays, 4, "next") == 9


def test_window_targets_give_teacher_forced_decoder_inputs():
    frames = np.arange(12 * 176, dtype=np.uint8).reshape(12, 176) % 2
    dataset = make_dataset(
        [frames],
        WindowSpec(seq_len=4, target="window", batch_size=2, shuffle=True, seed=3, drop_remainder=True),
    )
    (encoder_input, decoder_input), target = next(iter(dataset))
    assert encoder_input.shape == decoder_input.shape == target.shape == (2, 4, 176)
    assert encoder_input.dtype == tf.float32
    np.testing.assert_array_equal(decoder_input[:, 1:], target[:, :-1])
    np.testing.assert_array_equal(decoder_input[:, 0], encoder_input[:, -1])


def test_transposition_keeps_notes_on_the_keyboard_and_changes_keys():
    roll = np.zeros((40, NUM_KEYS, 2), np.uint8)
    roll[:, 2, :] = 1  # a key near the bottom: shifts down are limited to 2
    dataset = make_dataset(
        [roll.reshape(40, -1)],
        WindowSpec(
            seq_len=8,
            target="next",
            batch_size=64,
            shuffle=True,
            seed=5,
            key_shifts=RollKeyShifts(transpose_range=6, channels=2),
        ),
    )
    x, _ = next(iter(dataset))
    keys = x.numpy().reshape(-1, 8, NUM_KEYS, 2).any(axis=(1, 3)).argmax(axis=1)
    assert keys.min() >= 0 and keys.max() <= 8 and len(set(keys)) > 3
    assert x.numpy().reshape(-1, 8, NUM_KEYS, 2).sum() == roll.reshape(40, -1)[:8].sum() * len(keys)


def test_global_batch_is_per_replica_times_replicas():
    assert global_batch_size(16) == 16 * tf.distribute.get_strategy().num_replicas_in_sync


def test_too_short_pieces_are_a_clear_error():
    with pytest.raises(MusicTFError, match="long enough"):  # the CLI's one-line error, not a traceback
        make_dataset(
            [np.arange(3)], WindowSpec(seq_len=8, target="next", batch_size=2, shuffle=False, seed=0)
        )


def test_shuffled_passes_are_seeded_permutations_that_differ_between_passes():
    column = np.arange(20)

    def passes(seed):
        rows = [int(row[0]) for row in table_rows((column,), shuffle=True, seed=seed, repeat=True).take(60)]
        return [rows[i : i + 20] for i in (0, 20, 40)]

    first = passes(7)
    assert all(sorted(one_pass) == list(range(20)) for one_pass in first)
    assert first[0] != first[1] != first[2] and first[0] != list(range(20))
    assert passes(7) == first and passes(8) != first


def test_a_table_smaller_than_one_static_batch_is_tiled_to_fill_it():
    rows = [
        int(row[0]) for row in table_rows((np.arange(3),), shuffle=False, seed=0, repeat=False, min_rows=8)
    ]
    assert rows == [0, 1, 2, 0, 1, 2, 0, 1]


@pytest.mark.parametrize("target", ["next", "window"])
def test_with_pad_start_every_frame_is_scored_once_from_each_piece_first(target):
    """The published polyphonic protocol: every frame of every sequence is a target exactly once, in
    order, the first predicted from silence; padding at either end is never scored."""
    import types

    from musictf.data.pipeline import scoring_windows

    rng = np.random.default_rng(0)
    pieces = [rng.integers(0, 2, (length, 6)).astype(np.uint8) for length in (7, 3, 12)]
    config = types.SimpleNamespace(seq_len=4, pad_start=True, max_eval_windows=0)
    windows_of, (stride, every), scored = scoring_windows(pieces, config, target)
    assert every == 1
    dataset = make_dataset(
        windows_of, WindowSpec(seq_len=4, target=target, batch_size=8, shuffle=False, seed=0, stride=stride)
    )
    batches = list(dataset)
    targets = np.concatenate([y.numpy().reshape(-1, 6) for _, y in batches])
    np.testing.assert_array_equal(targets[scored], np.concatenate(pieces))
    first_inputs = batches[0][0][0] if target == "window" else batches[0][0]
    assert not first_inputs[0].numpy().any(), "the first frame is predicted from silence"
    unpadded = types.SimpleNamespace(seq_len=4, pad_start=False, max_eval_windows=0)
    _, _, scored_without = scoring_windows(pieces, unpadded, target)
    assert scored_without.all() and len(scored_without) < len(np.concatenate(pieces))


def test_a_thinned_evaluation_draws_one_window_of_each_block_neither_openings_nor_one_beat():
    """Thinning keeps one window, drawn at random, of each block of `every` consecutive ones: a
    stride within each piece kept every piece's first window (its hardest frame under pad_start),
    and every every-th window aliased with the metre (here: only even positions within a piece)."""
    import types

    from musictf.data.windows import evaluation_windows, window_starts

    lengths = [10] * 40  # 8 windows of 3 steps in each piece, 320 in all
    config = types.SimpleNamespace(seq_len=2, max_eval_windows=160, epoch_eval_windows=0)
    pieces = [np.zeros((length, 2), np.uint8) for length in lengths]
    assert evaluation_windows("next", config, pieces) == (1, 2)
    every_window = window_starts(lengths, 3, 1)
    starts = window_starts(lengths, 3, 1, every=2)
    index = np.searchsorted(every_window, starts)
    np.testing.assert_array_equal(index // 2, np.arange(160))  # one from each block of two
    positions = starts % 10  # within its piece
    assert 0.35 < np.mean(positions % 2) < 0.65, "both parities, not one beat"
    assert 10 <= np.sum(positions == 0) <= 30, "about half the openings, not all 40"
    np.testing.assert_array_equal(starts, window_starts(lengths, 3, 1, every=2))  # the same every time
    assert len(window_starts(lengths[:3], 3, 1, every=5)) == 5  # 24 windows: four blocks of 5, one of 4


def test_training_windows_with_left_padding_start_at_each_piece_beginning():
    from musictf.data.windows import padded

    arrays = [np.arange(1, 6, dtype=np.int32)]
    dataset = make_dataset(
        padded(arrays, 3), WindowSpec(seq_len=3, target="next", batch_size=100, shuffle=False, seed=0)
    )
    x, y = next(iter(dataset))
    np.testing.assert_array_equal(y.numpy(), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(x.numpy()[0], [0, 0, 0])


def test_a_seeded_stream_gives_the_batches_the_per_window_pipeline_gave():
    """golden/batches.npz was written by the pipeline before it batched first and mapped once per
    batch (golden/make_batches.py): the same window order, shuffles, key shifts and targets."""
    import importlib.util
    from pathlib import Path

    golden = Path(__file__).parent / "golden"
    spec = importlib.util.spec_from_file_location("make_batches", golden / "make_batches.py")
    make_batches = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_batches)
    expected = np.load(golden / "batches.npz")
    produced = {
        f"{name}/{batch}/{part}": array
        for name, batches in make_batches.streams().items()
        for batch, parts in enumerate(batches)
        for part, array in enumerate(parts)
    }
    assert sorted(produced) == sorted(expected.files)
    for key, array in produced.items():
        assert array.dtype == expected[key].dtype, key
        np.testing.assert_array_equal(array, expected[key], err_msg=key)
