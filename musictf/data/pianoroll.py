"""Notes <-> piano rolls, and notes <-> music21 streams and MIDI files.

A roll has one row per time step on a grid of `steps_per_quarter` and one column per piano key,
A0 (MIDI 21) to C8 (MIDI 108). Two encodings:
- `onset_sustain`, shape (T, 88, 2): channel 0 is 1 where a note starts, channel 1 where it sounds
  (the onset step included). Repeated notes stay distinct, so notes -> roll -> notes is exact for
  notes on the grid.
- `active`, shape (T, 88): only the sounding flag, as in the classic JSB-chorales tables. A run of
  ones decodes to one note, so repeated notes merge.

Example:
    roll = notes_to_roll(piece.notes, steps_per_quarter=4)
    write_midi(roll_to_notes(roll, steps_per_quarter=4), "piece.mid")
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musictf import files
from musictf.data.music import HIGHEST_PITCH, LOWEST_PITCH, Note
from musictf.data.parse import notes_from_midi_file

NUM_KEYS = HIGHEST_PITCH - LOWEST_PITCH + 1
# Steps per quarter note of the sixteenth-note grid that sample statistics, piano-roll figures and
# WaveNet's local conditioning use, whatever grid a model trains on.
SIXTEENTH_GRID = 4
ENCODINGS = ("onset_sustain", "active")
ONSET, SUSTAIN = 0, 1


def channels(encoding: str) -> int:
    if encoding not in ENCODINGS:
        raise ValueError(f"roll encoding must be one of {ENCODINGS}, got {encoding!r}")
    return 2 if encoding == "onset_sustain" else 1


def notes_to_roll(
    notes: Sequence[Note], steps_per_quarter: int, encoding: str = "onset_sustain", sampled: bool = False
) -> np.ndarray:
    """A uint8 roll; notes off the keyboard are dropped. Notes are rounded to the grid, and one
    shorter than a step lasts one step; or, `sampled`, a key is on at step t where a note sounds at
    the step's start time t / steps_per_quarter (how the JSB benchmark's quarter-note frames were
    made: a passing eighth between two beats is not in any frame)."""
    channels(encoding)
    spans = []
    for note in notes:
        if not LOWEST_PITCH <= note.pitch <= HIGHEST_PITCH:
            continue
        if sampled:  # the steps t with onset <= t / steps_per_quarter < onset + duration
            start = math.ceil(note.onset * steps_per_quarter - 1e-9)
            end = math.ceil((note.onset + note.duration) * steps_per_quarter - 1e-9)
            if end <= start:
                continue
        else:
            start = int(round(note.onset * steps_per_quarter))
            end = max(start + 1, int(round((note.onset + note.duration) * steps_per_quarter)))
        spans.append((note.pitch - LOWEST_PITCH, start, end))
    length = max((end for _, _, end in spans), default=0)
    roll = np.zeros((length, NUM_KEYS, 2), dtype=np.uint8)
    for key, start, end in sorted(spans, key=lambda span: span[1]):
        roll[start:end, key, SUSTAIN] = 1
        roll[start, key, ONSET] = 1
    return roll if encoding == "onset_sustain" else roll[:, :, SUSTAIN].copy()


def roll_to_notes(roll: np.ndarray, steps_per_quarter: int) -> list[Note]:
    """Notes from a (T, 88, 2) or (T, 88) roll. A sustain flag with no note sounding starts one."""
    from music21 import pitch

    roll = np.asarray(roll)
    if roll.ndim == 2:
        sounding = roll > 0
        onsets = sounding & ~np.vstack([np.zeros((1, NUM_KEYS), bool), sounding[:-1]])
    elif roll.ndim == 3 and roll.shape[2] == 2:
        onsets, sounding = roll[:, :, ONSET] > 0, (roll[:, :, SUSTAIN] > 0) | (roll[:, :, ONSET] > 0)
    else:
        raise ValueError(f"roll must have shape (T, 88) or (T, 88, 2), got {roll.shape}")
    if roll.shape[1] != NUM_KEYS:
        raise ValueError(f"roll must have {NUM_KEYS} keys, got {roll.shape[1]}")
    notes = []
    steps = roll.shape[0]
    for key in range(NUM_KEYS):
        start = None
        for step in range(steps + 1):
            is_sounding = step < steps and sounding[step, key]
            starts_here = step < steps and (onsets[step, key] or (is_sounding and start is None))
            if start is not None and (not is_sounding or starts_here):
                notes.append((key, start, step))
                start = None
            if starts_here:
                start = step
    names = {key: pitch.Pitch(midi=key + LOWEST_PITCH).nameWithOctave for key, _, _ in notes}
    result = [
        Note(key + LOWEST_PITCH, start / steps_per_quarter, (end - start) / steps_per_quarter, names[key])
        for key, start, end in notes
    ]
    return sorted(result, key=lambda note: (note.onset, note.pitch))


def unflatten(frames: np.ndarray, encoding: str) -> np.ndarray:
    frames = np.asarray(frames)
    if encoding == "active":
        return frames.reshape(frames.shape[0], NUM_KEYS)
    return frames.reshape(frames.shape[0], NUM_KEYS, channels(encoding))


def notes_to_stream(notes: Sequence[Note], title: str = "musictf", tempo_bpm: float = 90.0, program: int = 0):
    """A one-part music21 Score in GM `program`; simultaneous notes with equal length become chords."""
    from music21 import chord, instrument, metadata, note, stream, tempo

    part = stream.Part()
    part.insert(0, instrument.instrumentFromMidiProgram(program))
    part.insert(0, tempo.MetronomeMark(number=tempo_bpm))
    groups: dict[tuple[float, float], list[Note]] = {}
    for item in notes:
        groups.setdefault((item.onset, item.duration), []).append(item)
    for (onset, duration), members in sorted(groups.items()):
        if len(members) == 1:
            element = note.Note(members[0].name)
        else:
            element = chord.Chord([member.name for member in sorted(members, key=lambda m: m.pitch)])
        element.quarterLength = duration
        element.volume.velocity = 80
        part.insert(onset, element)
    score = stream.Score([part])
    score.insert(0, metadata.Metadata(title=title))
    return score


def write_midi(
    notes: Sequence[Note], path: str | Path, title: str = "musictf", tempo_bpm: float = 90.0, program: int = 0
) -> Path:
    """Writes a playable standard MIDI file atomically."""
    from music21 import midi

    midi_file = midi.translate.streamToMidiFile(notes_to_stream(notes, title, tempo_bpm, program))
    files.write_bytes(path, midi_file.writestr())
    return Path(path)


def read_midi(path: str | Path) -> list[Note]:
    notes, _ = notes_from_midi_file(Path(path))
    return notes
