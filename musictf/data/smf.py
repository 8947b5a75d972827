"""The chunk layer of a Standard MIDI File, read to its published specification.

The MIDI 1.0 "Standard MIDI Files" specification (MMA, RP-001) says:
- a file is a series of chunks, each a 4-byte ASCII type, a 32-bit big-endian length, then that
  many bytes;
- the first chunk is the header `MThd`: format (0, 1 or 2), number of track chunks, and the
  division: ticks per quarter note, or (top bit set) SMPTE frames per second and ticks per frame;
  its length is 6 today, and readers must honour a longer one and skip the rest;
- track chunks are `MTrk`; chunks of any other type ("alien" chunks) must be skipped;
- the RIFF form (RMID, used by some Windows tools) wraps the same bytes in a RIFF `data` chunk.

music21's reader follows none of the last three, and reads a chunk whose length runs past the end
of the file as if it were whole: a truncated file becomes a silently shorter piece. This module
finds the chunks, says exactly what is wrong with a file that breaks the specification, and hands
the track chunks on.

Example:
    layout = read_chunks(Path("piece.mid").read_bytes())
    layout.ticks_per_quarter, len(layout.tracks), layout.truncated  # 480.0, 4, None
"""

from __future__ import annotations

import dataclasses
import struct


class MIDIFormatError(ValueError):
    """A file that is not a Standard MIDI File, or one whose header the reader cannot use."""


HEADER_BYTES = 14  # "MThd", length, format, tracks, division


@dataclasses.dataclass(frozen=True)
class MIDILayout:
    """The parts of a Standard MIDI File a reader needs.

    Args:
        format: 0 (one track) or 1 (simultaneous tracks).
        ticks_per_quarter: from the division; SMPTE timing is converted at the specification's
            default tempo of 120 bpm (a quarter note is half a second).
        tracks: the data of each `MTrk` chunk, in file order.
        truncated: why the file ends early (a chunk longer than what is left, or fewer track chunks
            than the header announces), or None for a whole file. The last track is then partial.
        alien_chunks: how many chunks of other types were skipped.
    """

    format: int
    ticks_per_quarter: float
    tracks: tuple[bytes, ...]
    truncated: str | None = None
    alien_chunks: int = 0


def _unwrap_riff(data: bytes) -> bytes:
    """The SMF inside a RIFF RMID file, found by walking the RIFF chunks to the `data` chunk."""
    if data[8:12] != b"RMID":
        raise MIDIFormatError(
            "not a MIDI file: a RIFF file, but of form " + repr(data[8:12].decode("latin-1"))
        )
    position = 12
    while position + 8 <= len(data):
        kind, length = (
            data[position : position + 4],
            struct.unpack("<I", data[position + 4 : position + 8])[0],
        )
        if kind == b"data":
            return data[position + 8 : position + 8 + length]
        position += 8 + length + (length & 1)  # RIFF chunks are padded to even lengths
    raise MIDIFormatError("not a MIDI file: a RIFF RMID file with no data chunk")


def read_chunks(data: bytes) -> MIDILayout:
    """The header and track chunks of `data`; raises MIDIFormatError for what no reader can use."""
    if data[:4] == b"RIFF":
        data = _unwrap_riff(data)
    if len(data) < 4 or data[:4] != b"MThd":
        if b"MThd".startswith(data[:4]) and len(data) < 4:
            raise MIDIFormatError(
                f"truncated: the file ends inside its MIDI header ({len(data)} of {HEADER_BYTES} bytes)"
            )
        raise MIDIFormatError("not a MIDI file: it does not start with MThd")
    if len(data) < HEADER_BYTES:
        raise MIDIFormatError(
            f"truncated: the file ends inside its MIDI header ({len(data)} of {HEADER_BYTES} bytes)"
        )
    header_length = struct.unpack(">I", data[4:8])[0]
    if header_length < 6:
        raise MIDIFormatError(
            f"corrupt MIDI header: its length field says {header_length} bytes, at least 6 are needed"
        )
    midi_format, announced, division = struct.unpack(">HHH", data[8:14])
    if midi_format == 2:
        raise MIDIFormatError("unsupported: MIDI format 2 (independent sequences, not one piece)")
    if midi_format > 2:
        raise MIDIFormatError(
            f"corrupt MIDI header: format {midi_format} (the specification defines 0, 1 and 2)"
        )
    if division & 0x8000:
        frames_per_second = 256 - (division >> 8)
        frames_per_second = 29.97 if frames_per_second == 29 else frames_per_second
        ticks_per_quarter = frames_per_second * (division & 0xFF) / 2
    else:
        ticks_per_quarter = float(division)
    if ticks_per_quarter <= 0:
        raise MIDIFormatError("corrupt MIDI header: the division gives no ticks per quarter note")

    tracks, alien, truncated = [], 0, None
    position = 8 + header_length
    if position > len(data):
        truncated = f"truncated: the header claims {header_length} bytes, the file ends first"
    while truncated is None and len(tracks) < announced:
        if position + 8 > len(data):
            truncated = f"truncated: {len(tracks)} of the {announced} track chunks the header announces"
            break
        kind, length = (
            data[position : position + 4],
            struct.unpack(">I", data[position + 4 : position + 8])[0],
        )
        body = data[position + 8 : position + 8 + length]
        if len(body) < length:
            truncated = (
                f"truncated: chunk {len(tracks) + alien + 1} claims {length:,} bytes, the file ends after "
                f"{len(body):,}"
            )
        if kind == b"MTrk":
            tracks.append(body)
        elif not all(32 < byte < 127 for byte in kind):
            raise MIDIFormatError(
                f"corrupt: bytes {position}-{position + 3} should start a chunk, got {kind!r}"
            )
        else:
            alien += 1
        position += 8 + length
    return MIDILayout(midi_format, ticks_per_quarter, tuple(tracks), truncated, alien)


def variable_length_quantity(value: int) -> bytes:
    """`value` as the specification's variable-length quantity: 7 bits per byte, most significant
    first, the top bit set on every byte but the last (delta times, meta event lengths)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))
