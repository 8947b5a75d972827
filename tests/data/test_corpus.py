import json
import shutil

import pytest

from musictf.cli import main
from musictf.data import corpus as corpus_module
from musictf.data.corpus import Note, load_corpus, split_files, split_pieces
from musictf.data.pianoroll import write_midi
from musictf.errors import MusicTFError

TWO_TUNES_ABC = """X:1
T:Tune one
M:4/4
L:1/4
K:C
CDEF|GABc|

X:2
T:Tune two
M:3/4
L:1/4
K:G
GAB|dcB|
"""

MELODY = [Note(60 + step, float(step), 1.0, name) for step, name in enumerate(["C4", "C#4", "D4", "E-4"])]


def _mixed_folder(root):
    good = root / "good"
    good.mkdir(parents=True)
    write_midi(MELODY, good / "melody.mid")
    (good / "tunes.abc").write_text(TWO_TUNES_ABC)
    shutil.copy(corpus_module._music21_files("bach")[1][0], good / "chorale.mxl")
    bad = root / "bad"
    bad.mkdir()
    whole = (good / "melody.mid").read_bytes()
    (bad / "truncated.mid").write_bytes(whole[: len(whole) // 2])
    (bad / "random.mid").write_bytes(bytes(range(256)) * 3)
    (bad / "empty.mid").write_bytes(b"")
    (bad / "text.mid").write_text("this is not a MIDI file\n")
    (bad / "broken.musicxml").write_text('<?xml version="1.0"?><score-partwise><part-list><score-part id="P1">')
    (bad / "x.mid").mkdir()
    header = b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + (480).to_bytes(2, "big")
    (bad / "absurd.mid").write_bytes(header + b"MTrk" + (0x7FFFFFF0).to_bytes(4, "big") + b"\x00\xff\x2f\x00")
    return root


def test_mixed_folder_keeps_every_good_piece_and_names_every_bad_file(tmp_path, capsys):
    root = _mixed_folder(tmp_path / "music")
    corpus = load_corpus(str(root), cache_dir=tmp_path / "cache", workers=2, progress=False)
    ids = sorted(piece.piece_id for piece in corpus.pieces)
    assert ids == ["good/chorale.mxl", "good/melody.mid", "good/tunes.abc#0", "good/tunes.abc#1"]
    skipped = {item["file"].split("/")[-1]: item["reason"] for item in corpus.report.skipped}
    assert set(skipped) == {"truncated.mid", "random.mid", "empty.mid", "text.mid", "broken.musicxml", "x.mid", "absurd.mid"}
    assert skipped["empty.mid"].startswith("empty file")
    assert skipped["x.mid"].startswith("is a directory")
    melody = next(piece for piece in corpus.pieces if piece.piece_id == "good/melody.mid")
    assert [(note.pitch, note.onset, note.duration) for note in melody.notes] == [
        (note.pitch, note.onset, note.duration) for note in MELODY
    ]
    report = json.loads(corpus.report_path.read_text())
    assert len(report["skipped"]) == 7 and report["pieces"] == 4

    assert main(["data", "--source", str(root), "--workers", "2"]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    for name in skipped:
        assert name in out


def test_folder_where_nothing_parses_exits_2_with_one_line(tmp_path, capsys, cache_dir):
    (tmp_path / "junk.mid").write_text("not midi")
    (tmp_path / "empty.abc").write_text("")
    assert main(["data", "--source", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no usable pieces" in err and "Traceback" not in err


def test_second_run_hits_the_cache_and_a_corrupt_entry_is_rebuilt(tmp_path):
    root = tmp_path / "music"
    root.mkdir()
    write_midi(MELODY, root / "a.mid")
    (root / "tunes.abc").write_text(TWO_TUNES_ABC)
    first = load_corpus(str(root), cache_dir=tmp_path / "cache", progress=False)
    assert first.report.files_parsed == 2
    second = load_corpus(str(root), cache_dir=tmp_path / "cache", progress=False)
    assert second.report.files_parsed == 0 and second.report.files_from_cache == 2
    assert second.pieces == first.pieces

    entries = sorted((tmp_path / "cache" / "parsed").rglob("*.json"))
    entries[0].write_text(entries[0].read_text()[:40])
    third = load_corpus(str(root), cache_dir=tmp_path / "cache", progress=False)
    assert third.report.corrupt_cache_entries == 1 and third.report.files_parsed == 1
    assert third.pieces == first.pieces
    assert not list((tmp_path / "cache").rglob(".*.tmp"))


def test_size_limit_and_unknown_source():
    with pytest.raises(MusicTFError, match="no such composer"):
        load_corpus("music21:no-such-composer-anywhere", progress=False)


def test_too_large_file_is_skipped(tmp_path):
    write_midi(MELODY, tmp_path / "a.mid")
    (tmp_path / "b.abc").write_text(TWO_TUNES_ABC * 200)
    corpus = load_corpus(str(tmp_path), cache_dir=tmp_path / "cache", max_file_megabytes=0.005, progress=False)
    assert [item["reason"].split(":")[0] for item in corpus.report.skipped] == ["too large"]


def test_split_is_deterministic_and_stable_when_files_are_added():
    files = [f"piece{i}.mid" for i in range(200)]
    first = split_files(files, seed=7, valid_fraction=0.1, test_fraction=0.1)
    assert first == split_files(list(reversed(files)), seed=7, valid_fraction=0.1, test_fraction=0.1)
    grown = split_files(files + [f"new{i}.mid" for i in range(50)], seed=7, valid_fraction=0.1, test_fraction=0.1)
    assert all(grown[name] == first[name] for name in files)
    counts = {split: list(first.values()).count(split) for split in ("train", "valid", "test")}
    assert 130 < counts["train"] < 190 and counts["valid"] > 5 and counts["test"] > 5
    assert first != split_files(files, seed=8, valid_fraction=0.1, test_fraction=0.1)


def test_bach_slice_splits_by_file(bach_small):
    splits = split_pieces(bach_small.pieces, seed=1234, valid_fraction=0.1, test_fraction=0.1)
    assert all(splits[name] for name in ("train", "valid", "test"))
    file_sets = [{piece.file_id for piece in pieces} for pieces in splits.values()]
    assert sum(len(s) for s in file_sets) == len(set().union(*file_sets)) == 12


def test_atomic_writes_leave_no_temporary_files_and_the_usual_mode(tmp_path):
    from musictf import files

    files.write_json(tmp_path / "a.json", {"x": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~files._umask()
    with pytest.raises(RuntimeError):
        with files.atomic_path(tmp_path / "b.bin") as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert not (tmp_path / "b.bin").exists() and [p.name for p in tmp_path.iterdir()] == ["a.json"]
