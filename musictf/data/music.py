"""The domain types: a note and a piece. No I/O; every stage after parsing speaks in these.

Example:
    piece = Piece("chorale.mxl", "chorale.mxl", "Chorale", (Note(60, 0.0, 1.0, "C4"),))
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

LOWEST_PITCH = 21  # A0, the lowest piano key.
HIGHEST_PITCH = 108  # C8, the highest piano key.


class Note(NamedTuple):
    pitch: int  # MIDI number
    onset: float  # quarter notes from the start of the piece
    duration: float  # quarter notes
    name: str  # spelled pitch with octave, e.g. "F#4"


@dataclasses.dataclass(frozen=True)
class Piece:
    """One piece of music: its notes sorted by onset, and where it came from."""

    piece_id: str  # `file_id`, plus `#k` for the k-th piece of a file holding several
    file_id: str  # the file's path relative to the source; the split is made on this
    title: str
    notes: tuple[Note, ...]
    # Where the piece ends, in quarters, when silence follows its last note (a benchmark file's
    # trailing silent frames); 0 means it ends with its last note.
    end: float = 0.0

    @property
    def length_quarters(self) -> float:
        return max(self.end, max((note.onset + note.duration for note in self.notes), default=0.0))
