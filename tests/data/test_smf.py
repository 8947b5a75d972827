"""MIDI files read to the Standard MIDI File specification: truncation, RMID, alien chunks, SMPTE."""

import struct

import pytest

from musictf.data import smf
from musictf.data.corpus import load_corpus
from musictf.data.music import Note
from musictf.data.parse import notes_from_midi_file, parse_file
from musictf.data.pianoroll import write_midi

QUARTER = 480


def _track(events: list[tuple[int, bytes]]) -> bytes:
    """An MTrk chunk from (delta ticks, event bytes) pairs, ended by End of Track."""
    body = (
        b"".join(smf.variable_length_quantity(delta) + event for delta, event in events) + b"\x00\xff\x2f\x00"
    )
    return b"MTrk" + struct.pack(">I", len(body)) + body


def _header(tracks: int, division: int = QUARTER, midi_format: int = 1, extra: bytes = b"") -> bytes:
    body = struct.pack(">HHH", midi_format, tracks, division) + extra
    return b"MThd" + struct.pack(">I", len(body)) + body


def _scale(pitches=(60, 62, 64, 65)) -> bytes:
    events = []
    for pitch in pitches:
        events += [(0, bytes([0x90, pitch, 80])), (QUARTER, bytes([0x80, pitch, 0]))]
    return _track(events)


def _real_file(tmp_path):
    notes = [Note(48 + (i * 7) % 36, i * 0.5, 0.5 + (i % 3) * 0.25, "C4") for i in range(300)]
    return write_midi(notes, tmp_path / "long.mid").read_bytes()


@pytest.mark.parametrize("fraction", [0.05, 0.4, 0.67])
def test_a_file_whose_data_ends_early_is_truncated_not_a_shorter_piece(tmp_path, fraction):
    whole = _real_file(tmp_path)
    path = tmp_path / "cut.mid"
    path.write_bytes(whole[: int(len(whole) * fraction)])
    result = parse_file(path)
    assert result["error"].startswith("truncated: ") and "keep_truncated_midi" in result["error"]
    assert result["cacheable"] is False  # the verdict depends on keep_truncated_midi


def test_a_track_length_that_claims_two_gigabytes_is_truncated(tmp_path):
    chunk = _scale()
    path = tmp_path / "claims.mid"
    path.write_bytes(_header(1) + b"MTrk" + struct.pack(">I", 2**31) + chunk[8:])
    assert parse_file(path)["error"].startswith("truncated: chunk 1 claims 2,147,483,648 bytes")


@pytest.mark.parametrize("head", [b"MTh", b"MThd\x00\x00\x00\x06\x00"])
def test_a_very_short_head_names_the_real_cause(tmp_path, head):
    path = tmp_path / "head.mid"
    path.write_bytes(head)
    error = parse_file(path)["error"]
    assert error.startswith("truncated: the file ends inside its MIDI header") and "IndexError" not in error


def test_keep_truncated_midi_uses_the_part_that_is_there_and_records_it(tmp_path, cache_dir):
    folder = tmp_path / "songs"
    folder.mkdir()
    whole = _real_file(tmp_path)
    (folder / "cut.mid").write_bytes(whole[: len(whole) * 2 // 3])
    (folder / "whole.mid").write_bytes(whole)
    strict = load_corpus(str(folder), cache_dir=cache_dir, progress=False)
    assert [piece.file_id for piece in strict.pieces] == ["whole.mid"]
    assert strict.report.skipped[0]["reason"].startswith("truncated")
    kept = load_corpus(str(folder), cache_dir=cache_dir, progress=False, keep_truncated_midi=True)
    pieces = {piece.file_id: piece for piece in kept.pieces}
    assert 0 < len(pieces["cut.mid"].notes) < len(pieces["whole.mid"].notes)
    assert [item["file"].split("/")[-1] for item in kept.report.truncated] == ["cut.mid"]
    assert "used 1 truncated MIDI files in part" in kept.report.summary()


def test_rmid_alien_chunks_and_a_longer_header_are_read_as_the_specification_says(tmp_path):
    plain = _header(1) + _scale()
    expected, _ = notes_from_midi_file(_write(tmp_path / "plain.mid", plain))
    assert [note.pitch for note in expected] == [60, 62, 64, 65]
    alien = b"XFIH" + struct.pack(">I", 5) + b"hello"
    variants = {
        "alien.mid": _header(1) + alien + _scale(),
        "long_header.mid": _header(1, extra=b"\x00\x00\x00\x00") + _scale(),
        "wrapped.mid": b"RIFF"
        + struct.pack("<I", 12 + len(plain))
        + b"RMID"
        + b"data"
        + struct.pack("<I", len(plain))
        + plain,
    }
    for name, data in variants.items():
        notes, counts = notes_from_midi_file(_write(tmp_path / name, data))
        assert notes == expected, name
        assert "truncated" not in counts


def test_smpte_division_is_converted_at_the_default_tempo():
    # 25 frames per second x 40 ticks per frame = 1000 ticks per second; a quarter is 0.5 s.
    division = ((256 - 25) << 8) | 40
    layout = smf.read_chunks(_header(1, division=division) + _scale())
    assert layout.ticks_per_quarter == 500.0


def test_format_2_and_non_midi_files_get_their_own_reasons(tmp_path):
    assert parse_file(_write(tmp_path / "f2.mid", _header(1, midi_format=2) + _scale()))["error"].startswith(
        "unsupported: MIDI format 2"
    )
    assert parse_file(_write(tmp_path / "text.mid", b"hello, this is not MIDI at all"))["error"].startswith(
        "not a MIDI file"
    )


def test_note_ons_never_released_are_counted_in_the_ingest_report(tmp_path, cache_dir):
    stuck = _track(
        [(0, b"\x90\x3c\x50"), (QUARTER, b"\x80\x3c\x00"), (0, b"\x90\x40\x50"), (0, b"\x90\x43\x50")]
    )
    folder = tmp_path / "stuck"
    folder.mkdir()
    _write(folder / "stuck.mid", _header(1) + stuck)
    corpus = load_corpus(str(folder), cache_dir=cache_dir, progress=False)
    assert [note.pitch for note in corpus.pieces[0].notes] == [60]
    assert corpus.report.notes_unreleased == 2
    assert "dropped 2 MIDI notes never released" in corpus.report.summary()


def _write(path, data: bytes):
    path.write_bytes(data)
    return path
