import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from musictf.cli import main
from musictf.data import corpus as corpus_module
from musictf.data.corpus import load_corpus
from musictf.data.music import Note
from musictf.data.pianoroll import write_midi
from musictf.data.split import split_files, split_pieces
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
    (bad / "broken.musicxml").write_text(
        '<?xml version="1.0"?><score-partwise><part-list><score-part id="P1">'
    )
    (bad / "x.mid").mkdir()
    header = (
        b"MThd"
        + (6).to_bytes(4, "big")
        + (0).to_bytes(2, "big")
        + (1).to_bytes(2, "big")
        + (480).to_bytes(2, "big")
    )
    (bad / "absurd.mid").write_bytes(header + b"MTrk" + (0x7FFFFFF0).to_bytes(4, "big") + b"\x00\xff\x2f\x00")
    return root


def test_mixed_folder_keeps_every_good_piece_and_names_every_bad_file(tmp_path, capsys):
    root = _mixed_folder(tmp_path / "music")
    corpus = load_corpus(str(root), cache_dir=tmp_path / "cache", workers=2, progress=False)
    ids = sorted(piece.piece_id for piece in corpus.pieces)
    assert ids == ["good/chorale.mxl", "good/melody.mid", "good/tunes.abc#0", "good/tunes.abc#1"]
    skipped = {item["file"].split("/")[-1]: item["reason"] for item in corpus.report.skipped}
    assert set(skipped) == {
        "truncated.mid",
        "random.mid",
        "empty.mid",
        "text.mid",
        "broken.musicxml",
        "x.mid",
        "absurd.mid",
    }
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

    entries = sorted((tmp_path / "cache" / "parsed").rglob("*.notes"))
    entries[0].write_bytes(entries[0].read_bytes()[:40])
    third = load_corpus(str(root), cache_dir=tmp_path / "cache", progress=False)
    assert third.report.corrupt_cache_entries == 1 and third.report.files_parsed == 1
    assert third.pieces == first.pieces
    assert not list((tmp_path / "cache").rglob(".*.tmp"))


def test_an_unknown_music21_source_is_one_clear_error():
    with pytest.raises(MusicTFError, match="no such composer"):
        load_corpus("music21:no-such-composer-anywhere", progress=False)


def test_too_large_file_is_skipped(tmp_path):
    write_midi(MELODY, tmp_path / "a.mid")
    (tmp_path / "b.abc").write_text(TWO_TUNES_ABC * 200)
    corpus = load_corpus(
        str(tmp_path), cache_dir=tmp_path / "cache", max_file_megabytes=0.005, progress=False
    )
    assert [item["reason"].split(":")[0] for item in corpus.report.skipped] == ["too large"]


def test_split_is_deterministic_and_stable_when_files_are_added():
    files = [f"piece{i}.mid" for i in range(200)]
    first = split_files(files, seed=7, valid_fraction=0.1, test_fraction=0.1)
    assert first == split_files(list(reversed(files)), seed=7, valid_fraction=0.1, test_fraction=0.1)
    grown = split_files(
        files + [f"new{i}.mid" for i in range(50)], seed=7, valid_fraction=0.1, test_fraction=0.1
    )
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


def test_an_unreadable_file_or_folder_is_skipped_with_its_reason(tmp_path, capsys, cache_dir, monkeypatch):
    # Root reads everything whatever its mode, so the operating system's refusal is injected where
    # it would come from: opening the file (hashing it), and listing the folder.
    from musictf import files

    folder = tmp_path / "music"
    (folder / "locked").mkdir(parents=True)
    write_midi(MELODY, folder / "open.mid")
    write_midi(MELODY, folder / "secret.mid")
    write_midi(MELODY, folder / "locked" / "inside.mid")
    real_hash, real_scandir = files.sha256_file, os.scandir

    def refuse_secret(path, *args):
        if str(path).endswith("secret.mid"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_hash(path, *args)

    def refuse_locked(path="."):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(files, "sha256_file", refuse_secret)
    monkeypatch.setattr(os, "scandir", refuse_locked)
    status = main(["data", "--source", str(folder)])
    out = capsys.readouterr().out
    assert status == 0
    assert "secret.mid: unreadable: PermissionError: Permission denied" in out
    assert "locked: unreadable folder: PermissionError: Permission denied" in out
    assert "1 pieces from" in out


def test_a_parse_timeout_is_reported_with_its_limit_and_never_cached(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(corpus_module._music21_files("bach")[1][0], folder / "chorale.mxl")
    cache = tmp_path / "cache"
    with pytest.raises(MusicTFError, match="timeout: 1"):  # the one file timed out: nothing usable
        load_corpus(str(folder), cache_dir=cache, timeout=0.001, workers=1, progress=False)
    report = json.loads(next((cache / "ingest").glob("*.json")).read_text())
    assert report["skipped"][0]["reason"].startswith("timeout: parsing took longer than the 0.001 s limit")
    patient = load_corpus(str(folder), cache_dir=cache, timeout=60, workers=1, progress=False)
    assert len(patient.pieces) == 1 and patient.report.files_parsed == 1


def test_a_killed_writers_temporary_files_are_removed(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    write_midi(MELODY, folder / "melody.mid")
    cache = tmp_path / "cache"
    load_corpus(str(folder), cache_dir=cache, progress=False)
    entry = next((cache / "parsed").rglob("*.notes"))
    stale = entry.parent / f".{entry.name}.abc123.tmp"
    fresh = entry.parent / f".{entry.name}.def456.tmp"  # another process writing right now
    stale.write_bytes(b"half an entry")
    fresh.write_bytes(b"being written")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    load_corpus(str(folder), cache_dir=cache, progress=False)
    assert not stale.exists() and fresh.exists()


def test_a_warm_read_only_cache_is_read_and_a_cold_one_still_parses(tmp_path, read_only, capsys):
    folder = tmp_path / "one"
    folder.mkdir()
    write_midi(MELODY, folder / "melody.mid")
    warm = tmp_path / "warm"
    load_corpus(str(folder), cache_dir=warm, progress=False)
    read_only(warm)
    corpus = load_corpus(str(folder), cache_dir=warm, progress=False)
    assert corpus.report.files_from_cache == 1 and corpus.report_path is None
    assert "cannot be written; reading it only" in capsys.readouterr().err
    cold = tmp_path / "cold"
    cold.mkdir()
    read_only(cold)
    assert len(load_corpus(str(folder), cache_dir=cold, progress=False).pieces) == 1


def test_parser_processes_exit_when_their_parent_is_killed(tmp_path):
    # Files of 200 ABC tunes keep both parsers busy for about 17 s each: long enough that a parser
    # which only noticed its parent's death when it next asked for work would outlive it.
    folder = tmp_path / "long"
    folder.mkdir()
    tune = "X:{i}\nT:T{i}\nM:4/4\nL:1/8\nK:D\n" + "|".join(["defg abag fedc BAGF"] * 16) + "|\n\n"
    for name in ("a.abc", "b.abc", "c.abc"):  # more than 2 files: 2 or fewer are parsed in-process
        (folder / name).write_text("".join(tune.format(i=i) for i in range(1, 201)))
    script = (
        "import sys; from musictf.data.corpus import load_corpus; load_corpus(sys.argv[1], "
        "cache_dir=sys.argv[2], workers=2, progress=False)"
    )
    parent = subprocess.Popen([sys.executable, "-c", script, str(folder), str(tmp_path / "cache")])
    children: set[int] = set()
    deadline = time.time() + 60
    while len(children) < 2 and time.time() < deadline:  # the two parsers
        children = _children(parent.pid)
        time.sleep(0.1)
    assert len(children) >= 2, "the parser pool never started"
    time.sleep(2.0)  # both parsers are now deep inside music21
    parent.kill()
    parent.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(_alive(pid) for pid in children):
        time.sleep(0.2)
    survivors = [pid for pid in children if _alive(pid)]
    for pid in survivors:
        os.kill(pid, 9)
    assert not survivors, "parser processes outlived their parent"


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_a_source_without_a_single_note_is_described_not_a_traceback(tmp_path, capsys, cache_dir):
    """Reliability review D17: `musictf data` on a source of silent frames ended in min()."""
    path = tmp_path / "silent.json"
    path.write_text(json.dumps({"train": [[[]] * 40] * 5, "valid": [[[]] * 40], "test": [[[]] * 40]}))
    assert main(["data", "--source", str(path), "--representation", "pianoroll"]) == 0
    assert "pitch range: none (no notes" in capsys.readouterr().out


def test_symlinked_sub_folders_are_followed_once_and_loops_are_not(tmp_path, cache_dir):
    """Reliability review D19: a linked sub-folder's files were left out without a word."""
    source, elsewhere = tmp_path / "source", tmp_path / "elsewhere"
    source.mkdir()
    elsewhere.mkdir()
    write_midi(MELODY, source / "own.mid")
    write_midi(MELODY[::-1], elsewhere / "linked.mid")
    (source / "linked_sub").symlink_to(elsewhere, target_is_directory=True)
    (source / "second_link").symlink_to(elsewhere, target_is_directory=True)  # the same folder again
    (source / "loop").symlink_to(source, target_is_directory=True)  # a loop back to the root
    corpus = load_corpus(str(source), cache_dir=cache_dir, workers=1, progress=False)
    assert sorted(piece.file_id for piece in corpus.pieces) == ["linked_sub/linked.mid", "own.mid"]
    skipped = {item["file"]: item["reason"] for item in corpus.report.skipped}
    assert (
        "already read" in skipped[str(source / "second_link")]
        and "already read" in skipped[str(source / "loop")]
    )


def test_a_full_cache_is_said_once_and_the_run_goes_on_uncached(tmp_path, small_disk, capsys):
    """Reliability review D2: a full cache folder made every later run fail with a traceback."""
    from conftest import fill_disk

    folder = tmp_path / "music"
    folder.mkdir()
    for index in range(4):
        write_midi([Note(60 + index, float(step), 1.0, "C4") for step in range(8)], folder / f"m{index}.mid")
    cache = small_disk(256)
    fill_disk(cache)
    corpus = load_corpus(str(folder), cache_dir=cache, workers=1, progress=False)
    assert len(corpus.pieces) == 4 and corpus.report.files_parsed == 4 and corpus.report_path is None
    err = capsys.readouterr().err
    assert err.count("going on without caching") == 1 and "No space left on device" in err
    assert not [path for path in cache.rglob("*") if path.name.startswith(".")], "no temp file is left"


@pytest.mark.slow
def test_ctrl_c_stops_a_parse_at_once_and_keeps_what_was_parsed(tmp_path):
    """Reliability review D4: Ctrl-C waited for the whole parse, then cached nothing."""
    import signal

    folder = tmp_path / "long"
    folder.mkdir()
    tune = "X:{i}\nT:T{i}\nM:4/4\nL:1/8\nK:D\n" + "|".join(["defg abag fedc BAGF"] * 8) + "|\n\n"
    for index in range(40):  # each file about a second of music21; 20 s on two parsers
        (folder / f"f{index:02d}.abc").write_text(
            "".join(tune.format(i=i) for i in range(index + 1, index + 13))
        )
    cache = tmp_path / "cache"
    command = [
        sys.executable,
        "-c",
        "import sys; from musictf.cli import main; sys.exit(main(sys.argv[1:]))",
        "data",
        "--source",
        str(folder),
        "--workers",
        "2",
    ]
    process = subprocess.Popen(
        command,
        env=os.environ | {"MUSICTF_CACHE_DIR": str(cache)},
        start_new_session=True,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, first_cached = time.time() + 60, None
    while (cached := len(list(cache.rglob("*.notes")))) < 3 and time.time() < deadline:
        if cached and first_cached is None:
            first_cached = time.time()
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    interrupted = time.time()
    _, err = process.communicate(timeout=60)
    stopped_after = time.time() - interrupted
    kept = len(list(cache.rglob("*.notes")))
    assert process.returncode == 130 and "interrupted" in err
    # "at once", against this machine's own pace (a loaded machine is slower at both): the files
    # after the first were cached at some pace; the rest of the parse would take (40 - kept) times it
    pace = (interrupted - (first_cached or interrupted)) / max(cached - 1, 1)
    assert stopped_after < max(2.0, (40 - kept) * pace / 4), f"took {stopped_after:.1f} s to stop"
    assert 3 <= kept < 40
    corpus = load_corpus(str(folder), cache_dir=cache, workers=2, progress=False)
    assert corpus.report.files_from_cache == kept and len(corpus.pieces) == 40 * 12
