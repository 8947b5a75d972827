"""The polyphonic benchmark files of Boulanger-Lewandowski, Vincent and Bengio (ICML 2012).

JSB Chorales, Nottingham, MuseData and Piano-midi.de are published as a Python pickle (and, for
JSB, as JSON in the czhuang/JSB-Chorales-dataset repository) holding `{"train": [...], "valid":
[...], "test": [...]}`: each split a list of sequences, each sequence a list of frames, each frame
a list of the MIDI note numbers sounding in it (21-108; `60` or `60.0`; an empty list is silence).
JSB's frames are quarter notes, its chorales transposed to C major or C minor.

A pickle runs code when it is loaded, so it is read with an unpickler that allows plain containers
and numbers only and refuses any pickle that names a class or a function; `pickle.load` is never
called on a user's file. The file's split is kept. A pitch sounding in consecutive frames becomes
one held note: the files do not tell a held note from a repeated one, so a repeated note becomes
one long note too (the 88-key active roll of a sequence equals its frames exactly).

Example:
    splits = read_benchmark_file("JSB Chorales.pickle")  # {"train": [[[60, 64, 67], ...], ...], ...}
    notes = frames_to_notes(splits["test"][0])
"""

from __future__ import annotations

import io
import json
import math
import pickle
from pathlib import Path

from musictf.data.music import HIGHEST_PITCH, LOWEST_PITCH, Note
from musictf.errors import MusicTFError

BENCHMARK_EXTENSIONS = (".pickle", ".pkl", ".json")
BENCHMARK_SPLITS = ("train", "valid", "test")
FRAME_QUARTERS = 1.0  # one frame, one quarter note: the JSB grid (the files themselves do not say)


class _PlainDataUnpickler(pickle.Unpickler):
    """Builds lists, tuples, dicts, strings and numbers; a pickle that names any class or function
    (the only way a pickle runs code) stops here, before anything is called."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"it names {module}.{name}, and only plain lists, dicts and numbers are read")


def _load(path: Path) -> object:
    data = path.read_bytes()
    if path.suffix.lower() == ".json":
        return json.loads(data)
    # latin1: the published pickles were written by Python 2
    return _PlainDataUnpickler(io.BytesIO(data), encoding="latin1").load()


def _pitch(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value):
        raise ValueError(f"{where}: {value!r} is not a MIDI note number")
    if not LOWEST_PITCH <= int(value) <= HIGHEST_PITCH:
        raise ValueError(f"{where}: MIDI note {int(value)} is off the piano (21-108)")
    return int(value)


def read_benchmark_file(path: str | Path) -> dict[str, list[list[list[int]]]]:
    """split -> sequences -> frames -> sorted MIDI note numbers; one MusicTFError naming the file
    and the reason for anything else."""
    path = Path(path)
    try:
        loaded = _load(path)
    except FileNotFoundError:
        raise MusicTFError(f"{path}: no such file (the run expects a benchmark file here: pickle or JSON)") from None
    except (pickle.UnpicklingError, json.JSONDecodeError, UnicodeDecodeError, EOFError, ValueError, TypeError,
            AttributeError, IndexError, KeyError) as error:
        raise MusicTFError(f"{path}: not a readable benchmark file: {' '.join(str(error).split()) or type(error).__name__}") from None
    if not isinstance(loaded, dict) or not set(BENCHMARK_SPLITS) <= set(loaded):
        keys = sorted(map(str, loaded)) if isinstance(loaded, dict) else type(loaded).__name__
        raise MusicTFError(f"{path}: a benchmark file holds a dict with train, valid and test; this one holds {keys}")
    splits = {}
    try:
        for split in BENCHMARK_SPLITS:
            if not isinstance(loaded[split], (list, tuple)):
                raise ValueError(f"{split} is a {type(loaded[split]).__name__}, not a list of sequences")
            splits[split] = [
                [sorted({_pitch(value, f"{split}[{s}][{f}]") for value in frame}) for f, frame in enumerate(sequence)]
                for s, sequence in enumerate(loaded[split])
            ]
    except (TypeError, ValueError) as error:
        raise MusicTFError(f"{path}: {' '.join(str(error).split())}") from None
    if not splits["train"]:
        raise MusicTFError(f"{path}: the train split holds no sequences")
    return splits


def frames_to_notes(frames: list[list[int]], frame_quarters: float = FRAME_QUARTERS) -> tuple[Note, ...]:
    """Notes of a sequence: a pitch sounding in consecutive frames is one held note."""
    from music21 import pitch

    notes, started = [], {}
    for index, frame in enumerate([*frames, []]):  # a silent frame at the end closes every note
        sounding = set(frame)
        for key in [key for key in started if key not in sounding]:
            start = started.pop(key)
            notes.append(Note(key, start * frame_quarters, (index - start) * frame_quarters,
                              pitch.Pitch(midi=key).nameWithOctave))
        for key in sounding:
            started.setdefault(key, index)
    return tuple(sorted(notes, key=lambda note: (note.onset, note.pitch)))
