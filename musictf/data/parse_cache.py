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

import hashlib
import json
from pathlib import Path

import numpy as np

from musictf import files
from musictf.data.music import NoteColumns

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


def decode(payload: bytes, version: int) -> dict:
    """A result from `encode`'s payload; raises ValueError (or KeyError, TypeError) when it is not one."""
    newline = payload.index(b"\n")
    header = json.loads(payload[:newline])
    if header.pop("version") != version:
        raise ValueError("another version's entry")
    body = memoryview(payload)[newline + 1 + (-(newline + 1) % _ALIGN) :]
    layout = header.pop("columns")
    total = sum(piece["length"] for piece in header.get("pieces", []))
    columns = {}
    for column in COLUMNS:
        dtype, offset = np.dtype(layout[column][0]), layout[column][1]
        if dtype.kind != ("U" if column == "name" else _DTYPES[column].kind):
            raise ValueError(f"column {column} has dtype {dtype}")
        columns[column] = np.frombuffer(body, dtype=dtype, count=total, offset=offset)
    start = 0
    for piece in header.get("pieces", []):
        stop = start + piece.pop("length")
        piece["notes"] = NoteColumns(*(columns[column][start:stop] for column in COLUMNS))
        start = stop
    return header


def write_entry(path: Path, result: dict, version: int) -> None:
    """Writes an entry atomically: a reader sees the old entry, the new one, or none."""
    payload = encode(result, version)
    files.write_bytes(path, hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)


def read_entry(path: Path, version: int) -> tuple[dict | None, bool]:
    """(result, corrupt): result is None when there is no usable entry; corrupt says one was
    there but failed its checksum or could not be decoded (it is parsed again)."""
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
        return decode(payload, version), False
    except (ValueError, KeyError, TypeError, IndexError):
        return None, True
