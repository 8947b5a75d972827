import numpy as np
import pytest

from musictf.data import pianoroll
from musictf.data.music import Note


@pytest.mark.parametrize("steps_per_quarter", [1, 2, 4])
def test_notes_roll_notes_is_exact_on_the_grid(steps_per_quarter):
    step = 1 / steps_per_quarter
    notes = [
        Note(60, 0.0, 2 * step, "C4"),
        Note(60, 2 * step, step, "C4"),
        Note(64, 0.0, 3 * step, "E4"),
        Note(21, step, step, "A0"),
        Note(108, 4 * step, 2 * step, "C8"),
    ]
    roll = pianoroll.notes_to_roll(notes, steps_per_quarter)
    assert roll.shape == (6, 88, 2) and roll.dtype == np.uint8
    decoded = pianoroll.roll_to_notes(roll, steps_per_quarter)
    assert sorted((n.pitch, n.onset, n.duration) for n in decoded) == sorted(
        (n.pitch, n.onset, n.duration) for n in notes
    )


@pytest.mark.parametrize("steps_per_quarter", [1, 2, 4])
def test_roll_to_midi_to_roll_on_chorales(bach_small, tmp_path, steps_per_quarter):
    for piece in bach_small.pieces[:3]:
        roll = pianoroll.notes_to_roll(piece.notes, steps_per_quarter)
        path = pianoroll.write_midi(pianoroll.roll_to_notes(roll, steps_per_quarter), tmp_path / "piece.mid")
        assert path.read_bytes()[:4] == b"MThd"
        again = pianoroll.notes_to_roll(pianoroll.read_midi(path), steps_per_quarter)
        np.testing.assert_array_equal(again, roll)


def test_active_encoding_is_the_sustain_channel_and_merges_repeats():
    notes = [Note(60, 0.0, 1.0, "C4"), Note(60, 1.0, 1.0, "C4")]
    active = pianoroll.notes_to_roll(notes, 1, "active")
    np.testing.assert_array_equal(active, pianoroll.notes_to_roll(notes, 1)[:, :, 1])
    assert [(n.onset, n.duration) for n in pianoroll.roll_to_notes(active, 1)] == [(0.0, 2.0)]


def test_notes_off_the_keyboard_are_dropped():
    roll = pianoroll.notes_to_roll([Note(20, 0, 1, "G#0"), Note(60, 0, 1, "C4")], 4)
    assert roll[:, :, 1].sum() == 4 and roll[0, 60 - 21, 0] == 1


def test_sampled_frames_hold_what_sounds_at_each_step_start():
    notes = [
        Note(60, 0.0, 2.0, "C4"),
        Note(62, 0.5, 0.5, "D4"),
        Note(64, 0.75, 0.5, "E4"),
        Note(67, 2.0, 1.0, "G4"),
    ]
    sampled = pianoroll.notes_to_roll(notes, 1, "active", sampled=True)
    assert sampled.shape == (3, pianoroll.NUM_KEYS)
    on = {step: sorted(np.flatnonzero(row) + pianoroll.LOWEST_PITCH) for step, row in enumerate(sampled)}
    assert on == {0: [60], 1: [60, 64], 2: [67]}, "the passing D between beats is in no frame"
    rounded = pianoroll.notes_to_roll(notes, 1, "active")
    assert rounded[0, 62 - pianoroll.LOWEST_PITCH] == 1, "rounding keeps every note at least one step"
