"""The parse cache's entries: one file's parse result, its notes stored as numpy columns.

An entry is a line with the SHA-256 of the rest, then the payload: one line of JSON (the result
without its notes, and where each column lies), zero padding to 8 bytes, and the columns' raw bytes
(pitch int16, onset and duration float64, the spelled name as fixed-width UTF-32), every piece of
the file one after another. Reading an entry hashes its bytes and takes array views of them, so a
cache hit builds no per-note objects: pieces hold `NoteColumns`, whose `Note` tuples are built
when first used. A torn or tampered entry fails its checksum and reads as a miss.

Example:
    write_entry(path, with_columns(parse_file(source)), version=5)
    result, corrupt = read_entry(path, version=5)  # result["pieces"][0]["notes"] is a NoteColumns
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from musictf import files
from musictf.data.music import NoteColumns
from musictf.errors import MusicTFError

COLUMNS = ("pitch", "onset", "duration", "name")
_DTYPES = {"pitch": np.dtype("<i2"), "onset": np.dtype("<f8"), "duration": np.dtype("<f8")}
_ALIGN = 8


def columns_from_rows(rows: list) -> NoteColumns:
    """The [pitch, onset, duration, name] rows parse_file returns, as columns."""
    if not rows:
        return NoteColumns(np.zeros(0, np.int16), np.zeros(0), np.zeros(0), np.zeros(0, "<U1"))
    pitch, onset, duration, name = zip(*rows, strict=True)
    return NoteColumns(
        np.array(pitch, np.int16),
        np.array(onset, np.float64),
        np.array(duration, np.float64),
        np.array(name, dtype=str),
    )


def with_columns(result: dict) -> dict:
    """A parse_file result whose pieces' notes are rows, with NoteColumns in their place."""
    if "pieces" not in result:
        return result
    pieces = [
        {key: value for key, value in piece.items() if key != "notes"}
        | {"notes": columns_from_rows(piece["notes"])}
        for piece in result["pieces"]
    ]
    return result | {"pieces": pieces}


def encode(result: dict, version: int) -> bytes:
    """The payload of an entry for `result`, in with_columns's form."""
    pieces = result.get("pieces", [])
    arrays = {
        column: [np.ascontiguousarray(getattr(piece["notes"], column)) for piece in pieces]
        for column in COLUMNS
    }
    name_width = max((array.dtype.itemsize // 4 for array in arrays["name"]), default=1) or 1
    name_dtype = np.dtype(f"<U{name_width}")
    layout, chunks, offset = {}, [], 0
    for column in COLUMNS:
        dtype = name_dtype if column == "name" else _DTYPES[column]
        data = b"".join(array.astype(dtype, copy=False).tobytes() for array in arrays[column])
        layout[column] = [dtype.str, offset]
        chunks.append(data)
        offset += len(data)
        padding = -offset % _ALIGN
        chunks.append(b"\0" * padding)
        offset += padding
    header = {key: value for key, value in result.items() if key != "pieces"}
    header |= {"version": version, "columns": layout}
    if "pieces" in result:
        header["pieces"] = [
            {key: value for key, value in piece.items() if key != "notes"} | {"length": len(piece["notes"])}
            for piece in pieces
        ]
    line = json.dumps(header, separators=(",", ":")).encode() + b"\n"
    line += b"\0" * (-len(line) % _ALIGN)
    return line + b"".join(chunks)


def decode(payload: bytes, version: int, stored_at: Path | None = None) -> dict:
    """A result from `encode`'s payload; raises ValueError (or KeyError, TypeError) when it is not one.
    With `stored_at` (the entry's path) the notes stay in the file until used (`NoteColumns.stored`)."""
    newline = payload.index(b"\n")
    header = json.loads(payload[:newline])
    if header.pop("version") != version:
        raise ValueError("another version's entry")
    body_start = newline + 1 + (-(newline + 1) % _ALIGN)
    body = memoryview(payload)[body_start:]
    layout = header.pop("columns")
    total = sum(piece["length"] for piece in header.get("pieces", []))
    dtypes = {}
    for column in COLUMNS:
        dtype, offset = np.dtype(layout[column][0]), layout[column][1]
        if dtype.kind != ("U" if column == "name" else _DTYPES[column].kind):
            raise ValueError(f"column {column} has dtype {dtype}")
        if offset + total * dtype.itemsize > len(body):
            raise ValueError(f"column {column} runs past the entry")
        dtypes[column] = (dtype, offset)
    start = 0
    for piece in header.get("pieces", []):
        stop = start + piece.pop("length")
        if stored_at is None:
            piece["notes"] = NoteColumns(
                *(
                    np.frombuffer(body, dtype=d, count=stop - start, offset=o + start * d.itemsize)
                    for d, o in dtypes.values()
                )
            )
        else:
            where = (stored_at, _HASH_LINE + body_start, dtypes, start, stop)
            piece["notes"] = NoteColumns.stored(stop - start, functools.partial(_read_columns, *where))
        start = stop
    return header


_HASH_LINE = 65  # the SHA-256 in hex and its newline


def _read_columns(path: Path, body_start: int, dtypes: dict, start: int, stop: int) -> tuple:
    """One piece's four columns, read from its (already verified) entry."""
    columns = []
    try:
        with open(path, "rb") as handle:
            for dtype, offset in dtypes.values():
                handle.seek(body_start + offset + start * dtype.itemsize)
                data = handle.read((stop - start) * dtype.itemsize)
                if len(data) != (stop - start) * dtype.itemsize:
                    raise OSError("the entry is shorter than when it was checked")
                columns.append(np.frombuffer(data, dtype=dtype))
    except OSError as error:
        raise MusicTFError(
            f"{path}: this parse cache entry changed or went away while the run was using it ({error}); "
            "run the command again"
        ) from None
    return tuple(columns)


def write_entry(path: Path, result: dict, version: int) -> None:
    """Writes an entry atomically: a reader sees the old entry, the new one, or none."""
    payload = encode(result, version)
    files.write_bytes(path, hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


def read_entry(path: Path, version: int, notes_stay_on_disk: bool = False) -> tuple[dict | None, bool]:
    """(result, corrupt): result is None when there is no usable entry; corrupt says one was
    there but failed its checksum or could not be decoded (it is parsed again). With
    `notes_stay_on_disk` the checked entry's notes are read again from it when first used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, False
    except OSError:
        return None, True
    payload = data[65:]
    if data[64:65] != b"\n" or hashlib.sha256(payload).hexdigest().encode() != data[:64]:
        return None, True
    try:
        return decode(payload, version, path if notes_stay_on_disk else None), False
    except (ValueError, KeyError, TypeError, IndexError):
        return None, True
