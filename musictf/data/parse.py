"""Music files -> notes: music21 for MusicXML, ABC and kern; the SMF chunk reader and music21's event
reader for MIDI. Runs in the corpus stage's worker processes; each file gives plain data (pieces of
[pitch, onset, duration, name] rows) or one reason why it cannot be used.

Example:
    result = parse_file(Path("chorale.mxl"))  # {"pieces": [...], "counts": {...}, "multi": False}
    notes = read_notes("primer.mid", "prime_file")
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from musictf.data import smf
from musictf.data.music import HIGHEST_PITCH, LOWEST_PITCH, Note
from musictf.errors import FieldError


class _ParseTimeout(BaseException):
    """Raised by SIGALRM. A BaseException, so that music21's and our own `except Exception` cannot
    turn it into an "unreadable" verdict that would be cached as a property of the file."""


def _raise_timeout(signum, frame):
    raise _ParseTimeout()


def notes_from_stream(music) -> tuple[list[Note], int]:
    """Every sounding note of a music21 stream with ties merged; returns (notes, out_of_range)."""
    from music21 import chord, note

    notes: list[list] = []
    open_ties: dict[int, int] = {}  # pitch -> index of the note a tie continues
    out_of_range = 0
    for element in music.flatten().notes:
        if element.duration.isGrace or element.quarterLength <= 0:
            continue
        if isinstance(element, note.Note):
            members = [(element.pitch, element.tie)]
        elif isinstance(element, chord.Chord):
            members = [(member.pitch, member.tie or element.tie) for member in element.notes]
        else:  # unpitched percussion
            continue
        onset = float(element.offset)
        duration = float(element.quarterLength)
        for pitch, tie in members:
            midi = int(round(pitch.ps))
            if not LOWEST_PITCH <= midi <= HIGHEST_PITCH:
                out_of_range += 1
                continue
            tie_type = tie.type if tie is not None else None
            if tie_type in ("stop", "continue") and midi in open_ties:
                held = notes[open_ties[midi]]
                held[2] = max(held[2], onset + duration - held[1])
                if tie_type == "stop":
                    del open_ties[midi]
                continue
            notes.append([midi, onset, duration, pitch.nameWithOctave])
            if tie_type == "start":
                open_ties[midi] = len(notes) - 1
    notes.sort(key=lambda item: (item[1], item[0]))
    return [Note(*item) for item in notes], out_of_range


# What an exception with no message of its own means while reading a file.
_BARE_ERROR_MEANINGS = {
    EOFError: "the file ends early",
    IndexError: "the file ends early (index out of range)",
    PermissionError: "permission denied",
}


def describe_error(error: BaseException) -> str:
    """`Type: message` on one line, with a meaning where the exception carries no message."""
    text = " ".join(str(error).split())
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    if not text or (isinstance(error, IndexError) and "out of range" in text):
        text = next(
            (meaning for kind, meaning in _BARE_ERROR_MEANINGS.items() if isinstance(error, kind)),
            "no detail",
        )
    return f"{type(error).__name__}: {text}"[:200]


def notes_from_midi_file(path: Path, keep_truncated: bool = False) -> tuple[list[Note], dict]:
    """Every note of a Standard MIDI File, drums (channel 10) excluded, and counts of what was left out.

    The chunks are found by `smf.read_chunks`, to the specification; a file that ends early raises
    MIDIFormatError unless `keep_truncated`, which keeps the notes of the part that is there and
    says so under "truncated". Each track's events come from music21's event reader, and notes are
    paired from note-on and note-off events (music21's score-level import gives every note of a
    chord one duration). Counts: "out_of_range" (outside A0..C8) and "unreleased" (a note-on with
    no note-off before its track ends: dropped, and counted in the ingest report).
    """
    from music21 import midi, pitch

    layout = smf.read_chunks(Path(path).read_bytes())
    if layout.truncated and not keep_truncated:
        raise smf.MIDIFormatError(
            f"{layout.truncated} (--set keep_truncated_midi=true uses the part that is there)"
        )
    ticks_per_quarter = layout.ticks_per_quarter
    notes, counts = [], {"out_of_range": 0, "unreleased": 0}
    for index, data in enumerate(layout.tracks):
        track = midi.MidiTrack(index)
        try:
            track.read(b"MTrk" + len(data).to_bytes(4, "big") + data)
        except Exception:
            if not layout.truncated or index != len(layout.tracks) - 1:
                raise
            # the partial last track of a kept truncated file: its events up to the break
        tick = 0
        sounding: dict[tuple[int, int], list[int]] = {}
        for event in track.events:
            if isinstance(event, midi.DeltaTime):
                tick += event.time
                continue
            if event.channel == 10 or not (event.isNoteOn() or event.isNoteOff()):
                continue
            key = (event.channel, event.pitch)
            if event.isNoteOn():
                sounding.setdefault(key, []).append(tick)
            elif sounding.get(key):
                start = sounding[key].pop(0)
                if not LOWEST_PITCH <= event.pitch <= HIGHEST_PITCH:
                    counts["out_of_range"] += 1
                elif tick > start:
                    name = pitch.Pitch(midi=event.pitch).nameWithOctave
                    notes.append(
                        Note(event.pitch, start / ticks_per_quarter, (tick - start) / ticks_per_quarter, name)
                    )
        counts["unreleased"] += sum(len(starts) for starts in sounding.values())
    notes.sort(key=lambda item: (item.onset, item.pitch))
    if layout.truncated:
        counts["truncated"] = layout.truncated
    return notes, counts


def parse_file(path: Path, keep_truncated_midi: bool = False) -> dict:
    """Parses one file into plain data: {"pieces": [...], "counts": {...}} or {"error": reason}.

    "cacheable" says whether the outcome is a property of the file's bytes alone: a truncated MIDI
    file's outcome depends on `keep_truncated_midi`, so it is not cached.
    """
    from music21 import converter, stream

    counts = {"out_of_range": 0, "unreleased": 0}
    try:
        if path.suffix.lower() in (".mid", ".midi"):
            notes, counts = notes_from_midi_file(path, keep_truncated_midi)
            scores = [(notes, counts)]
        else:
            parsed = converter.parse(str(path), forceSource=True)
            scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    except smf.MIDIFormatError as error:
        return {"error": str(error), "cacheable": not str(error).startswith("truncated")}
    except Exception as error:  # music21 raises many types for malformed input
        return {"error": f"unreadable: {describe_error(error)}", "cacheable": True}
    pieces = []
    for index, score in enumerate(scores):
        if isinstance(score, tuple):
            notes = score[0]
        else:
            notes, dropped = notes_from_stream(score)
            counts["out_of_range"] += dropped
        if not notes:
            continue
        metadata = getattr(score, "metadata", None)
        title = getattr(metadata, "title", None) if metadata is not None else None
        pieces.append({"index": index, "title": title or "", "notes": [list(note) for note in notes]})
    if not pieces:
        return {
            "error": "no notes: the file parsed but holds no pitched notes",
            "cacheable": "truncated" not in counts,
        }
    return {
        "pieces": pieces,
        "counts": counts,
        "multi": len(scores) > 1,
        "cacheable": "truncated" not in counts,
    }


def notes_from_rows(rows) -> tuple[Note, ...]:
    """Notes from the plain [pitch, onset, duration, name] rows that parse_file returns (already
    int, float, float, str)."""
    return tuple(map(Note._make, rows))


def read_notes(path: str | Path, field: str) -> tuple[Note, ...]:
    """The first piece of one music file (a primer, a roll to render), or one FieldError naming
    `field` (the argument that gave the path), the file and the reason."""
    path = Path(path)
    parsed = parse_file(path) if path.is_file() else {"error": "no such file"}
    if "error" in parsed:
        raise FieldError(field, parsed["error"], path)
    return notes_from_rows(parsed["pieces"][0]["notes"])


def parse_with_timeout(job: tuple[str, float, bool]) -> tuple[str, dict]:
    path, timeout, keep_truncated_midi = job
    use_alarm = threading.current_thread() is threading.main_thread() and timeout > 0
    if use_alarm:
        previous = signal.signal(signal.SIGALRM, _raise_timeout)
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return path, parse_file(Path(path), keep_truncated_midi)
    except _ParseTimeout:
        # Not a property of the file: never cached, so a larger parse_timeout parses it next time.
        return path, {
            "error": f"timeout: parsing took longer than the {timeout:g} s limit "
            "(raise it with --set parse_timeout=...)",
            "cacheable": False,
        }
    except Exception as error:
        return path, {"error": f"unreadable: {describe_error(error)}", "cacheable": True}
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
