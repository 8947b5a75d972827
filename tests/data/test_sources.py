"""A `--source` is parsed once (`data.sources.parse_source`), and every stage reads its kind from there."""

from musictf.data.sources import Source, parse_source


def test_each_kind_of_source_is_told_apart_by_its_text_alone():
    assert parse_source("music21:bach") == Source("music21:bach", "music21", "bach")
    assert parse_source("benchmark:nottingham") == Source("benchmark:nottingham", "placeholder", "nottingham")
    for published in ("jsb.json", "data/JSB.PKL", "x.pickle", "Nottingham.mat"):
        assert parse_source(published).kind == "published"
    assert parse_source("~/midi/lakh").kind == "path" and parse_source("piece.mid").kind == "path"


def test_only_a_folder_source_has_wav_files(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.wav").write_bytes(b"RIFF")
    (tmp_path / "two.mid").write_bytes(b"MThd")
    assert parse_source(str(tmp_path)).wav_files() == [tmp_path / "a" / "one.wav"]
    assert parse_source(str(tmp_path / "two.mid")).wav_files() == []
    assert parse_source("music21:bach").wav_files() == []
