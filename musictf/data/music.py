"""The domain types: a note and a piece. No I/O; every stage after parsing speaks in these.

Example:
    piece = Piece("chorale.mxl", "chorale.mxl", "Chorale", (Note(60, 0.0, 1.0, "C4"),))
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

LOWEST_PITCH = 21  # A0, the lowest piano key.
HIGHEST_PITCH = 108  # C8, the highest piano key.


class Note(NamedTuple):
    pitch: int  # MIDI number
    onset: float  # quarter notes from the start of the piece
    duration: float  # quarter notes
    name: str  # spelled pitch with octave, e.g. "F#4"


class NoteColumns(Sequence):
    """A piece's notes as four numpy columns, read as a sequence of `Note`.

    The parse cache stores notes this way, so a cache hit costs a few array views rather than
    building a tuple per note. The `Note` tuples are built once, on first access by index or
    iteration; code that can work on the columns reads `pitch`, `onset`, `duration` and `name`.

    `NoteColumns.stored(length, load)` holds no notes at all until they are used: `load()` reads
    the four columns (from the parse cache entry), and `release()` lets them go again, so a corpus
    of any size costs a small object per piece until its pieces are encoded, one at a time.
    """

    __slots__ = ("_columns", "_load", "_length", "_notes")

    def __init__(self, pitch: np.ndarray, onset: np.ndarray, duration: np.ndarray, name: np.ndarray):
        if not len(pitch) == len(onset) == len(duration) == len(name):
            raise ValueError("note columns must have one length")
        self._columns: tuple | None = (pitch, onset, duration, name)
        self._load = None
        self._length = len(pitch)
        self._notes: tuple[Note, ...] | None = None

    @classmethod
    def stored(cls, length: int, load) -> NoteColumns:
        """`length` notes whose columns `load()` returns (pitch, onset, duration, name) when first used."""
        columns = cls.__new__(cls)
        columns._columns, columns._load, columns._length, columns._notes = None, load, length, None
        return columns

    def _loaded(self) -> tuple:
        if self._columns is None:
            self._columns = self._load()
        return self._columns

    @property
    def pitch(self) -> np.ndarray:
        return self._loaded()[0]

    @property
    def onset(self) -> np.ndarray:
        return self._loaded()[1]

    @property
    def duration(self) -> np.ndarray:
        return self._loaded()[2]

    @property
    def name(self) -> np.ndarray:
        return self._loaded()[3]

    def notes(self) -> tuple[Note, ...]:
        if self._notes is None:
            self._notes = tuple(
                map(
                    Note._make,
                    zip(
                        self.pitch.tolist(),
                        self.onset.tolist(),
                        self.duration.tolist(),
                        self.name.tolist(),
                        strict=True,
                    ),
                )
            )
        return self._notes

    def release(self) -> None:
        """Drops the `Note` tuples built from the columns, and a stored piece's columns (both
        rebuilt when next used): encoding a large corpus piece by piece then holds one at a time."""
        self._notes = None
        if self._load is not None:
            self._columns = None

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index):
        return self.notes()[index]

    def __iter__(self) -> Iterator[Note]:
        return iter(self.notes())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(self.notes())

    def __repr__(self) -> str:
        return f"NoteColumns({len(self)} notes)"


@dataclasses.dataclass(frozen=True)
class Piece:
    """One piece of music: its notes sorted by onset, and where it came from."""

    piece_id: str  # `file_id`, plus `#k` for the k-th piece of a file holding several
    file_id: str  # the file's path relative to the source; the split is made on this
    title: str
    notes: Sequence[Note]  # a tuple, or NoteColumns from the parse cache
    # Where the piece ends, in quarters, when silence follows its last note (a benchmark file's
    # trailing silent frames); 0 means it ends with its last note.
    end: float = 0.0

    @property
    def length_quarters(self) -> float:
        notes = self.notes
        if isinstance(notes, NoteColumns):
            return max(self.end, float((notes.onset + notes.duration).max(initial=0.0)))
        return max(self.end, max((note.onset + note.duration for note in notes), default=0.0))


@functools.lru_cache(maxsize=65536)
def transposed_name(name: str, semitones: int) -> str:
    """A spelled pitch name moved by `semitones`, spelled as music21 spells it."""
    from music21 import pitch  # music21 only where a transposed note is spelled

    return pitch.Pitch(name).transpose(semitones).nameWithOctave


def transpose_notes(notes: Sequence[Note], semitones: int) -> tuple[Note, ...] | None:
    """The notes moved by `semitones`, or None if any would leave the keyboard."""
    if any(not LOWEST_PITCH <= note.pitch + semitones <= HIGHEST_PITCH for note in notes):
        return None
    return tuple(
        note._replace(pitch=note.pitch + semitones, name=transposed_name(note.name, semitones))
        for note in notes
    )
