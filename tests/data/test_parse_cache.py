import numpy as np
import pytest

from musictf.data import parse_cache
from musictf.data.music import Note, NoteColumns, Piece

RESULT = {
    "pieces": [
        {
            "index": 0,
            "title": "Wachet auf",
            "notes": [[60, 0.0, 1.0, "C4"], [63, 0.5, 0.25, "E-4"], [66, 1.0, 2.0, "F#4"]],
        },
        {"index": 2, "title": "", "notes": [[21, 0.0, 1 / 3, "A0"], [108, 1 / 3, 1 / 3, "C8"]]},
    ],
    "counts": {"out_of_range": 1, "unreleased": 0},
    "multi": True,
}


def test_an_entry_round_trips_exactly(tmp_path):
    path = tmp_path / "entry.notes"
    parse_cache.write_entry(path, parse_cache.with_columns(RESULT), version=7)
    result, corrupt = parse_cache.read_entry(path, version=7)
    assert not corrupt
    assert result["counts"] == RESULT["counts"] and result["multi"] is True
    assert [(piece["index"], piece["title"]) for piece in result["pieces"]] == [(0, "Wachet auf"), (2, "")]
    for read, written in zip(result["pieces"], RESULT["pieces"], strict=True):
        assert isinstance(read["notes"], NoteColumns)
        assert [list(note) for note in read["notes"]] == written["notes"]  # floats bit for bit
        assert read["notes"] == tuple(Note(*row) for row in written["notes"])


def test_an_error_result_round_trips(tmp_path):
    path = tmp_path / "entry.notes"
    parse_cache.write_entry(path, {"error": "unreadable: ValueError: bad"}, version=7)
    assert parse_cache.read_entry(path, version=7) == ({"error": "unreadable: ValueError: bad"}, False)


def test_every_torn_or_tampered_entry_is_a_miss(tmp_path):
    path = tmp_path / "entry.notes"
    parse_cache.write_entry(path, parse_cache.with_columns(RESULT), version=7)
    whole = path.read_bytes()
    for cut in range(0, len(whole), 7):
        path.write_bytes(whole[:cut])
        assert parse_cache.read_entry(path, version=7) == (None, True), cut
    for position in (0, 70, len(whole) // 2, len(whole) - 1):
        tampered = bytearray(whole)
        tampered[position] ^= 0x01
        path.write_bytes(bytes(tampered))
        assert parse_cache.read_entry(path, version=7) == (None, True), position
    path.write_bytes(whole)
    assert parse_cache.read_entry(path, version=8) == (None, True)  # another version's layout
    assert parse_cache.read_entry(tmp_path / "absent.notes", version=7) == (None, False)


def test_a_hit_builds_no_notes_until_they_are_read(tmp_path):
    path = tmp_path / "entry.notes"
    parse_cache.write_entry(path, parse_cache.with_columns(RESULT), version=7)
    columns = parse_cache.read_entry(path, version=7)[0]["pieces"][0]["notes"]
    assert columns._notes is None and len(columns) == 3
    piece = Piece("a", "a", "A", columns)
    assert piece.length_quarters == 3.0 and columns._notes is None
    assert np.array_equal(columns.pitch, [60, 63, 66])
    assert columns[1] == Note(63, 0.5, 0.25, "E-4") and columns._notes is not None
    assert piece == Piece("a", "a", "A", tuple(columns)) and hash(piece) == hash(
        Piece("a", "a", "A", tuple(columns))
    )


def test_notes_left_on_disk_are_read_when_used_and_let_go_by_release(tmp_path):
    """A large corpus costs a small object per piece until its notes are used (issue 26)."""
    from musictf.errors import MusicTFError

    path = tmp_path / "entry.notes"
    parse_cache.write_entry(path, parse_cache.with_columns(RESULT), version=7)
    result, corrupt = parse_cache.read_entry(path, version=7, notes_stay_on_disk=True)
    assert not corrupt and [len(piece["notes"]) for piece in result["pieces"]] == [3, 2]
    second = result["pieces"][1]["notes"]
    assert [list(note) for note in second] == RESULT["pieces"][1]["notes"]  # the second piece's own rows
    second.release()
    first = result["pieces"][0]["notes"]
    assert [list(note) for note in first] == RESULT["pieces"][0]["notes"]
    path.unlink()
    assert first.pitch.tolist() == [60, 63, 66]  # held until released
    first.release()
    with pytest.raises(MusicTFError, match="went away"):
        first.pitch  # noqa: B018 - released, so read from the entry again, which is gone
    with pytest.raises(MusicTFError, match="went away"):
        list(second)


def test_columns_refuse_ragged_lengths():
    with pytest.raises(ValueError, match="one length"):
        NoteColumns(np.zeros(2, np.int16), np.zeros(2), np.zeros(1), np.array(["C4", "D4"]))
