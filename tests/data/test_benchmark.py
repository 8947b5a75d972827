"""The BL2012 benchmark files (pickle and JSON) read to their published layout, and split folders."""

import json
import os
import pickle

import numpy as np
import pytest

from musictf.cli import main
from musictf.data.benchmark import frames_to_notes, read_benchmark_file
from musictf.data.pianoroll import LOWEST_PITCH, NUM_KEYS, notes_to_roll, write_midi
from musictf.experiments import get_experiment
from musictf.experiments.base import prepare_data

SPLITS = {
    "train": [[[60, 64, 67], [60, 64, 67], [62, 65], []], [[48], [48, 55], [55]], [[72], [74], [76], [77]]],
    "valid": [[[57, 60], [57], [59]]],
    "test": [[[], [60.0, 64.0], [60.0, 65.0], [60.0]]],  # floats, and a silent first frame
}


def _active_roll(frames):
    roll = np.zeros((len(frames), NUM_KEYS), np.uint8)
    for index, frame in enumerate(frames):
        for pitch in frame:
            roll[index, int(pitch) - LOWEST_PITCH] = 1
    return roll


@pytest.fixture(params=["pickle", "json"])
def benchmark_file(request, tmp_path):
    path = tmp_path / f"tiny.{request.param}"
    if request.param == "pickle":
        path.write_bytes(pickle.dumps(SPLITS, protocol=2))
    else:
        path.write_text(json.dumps(SPLITS))
    return path


def test_a_benchmark_file_loads_with_its_own_split_and_its_frames_round_trip(benchmark_file, tmp_path, monkeypatch):
    splits = read_benchmark_file(benchmark_file)
    assert [len(splits[name]) for name in ("train", "valid", "test")] == [3, 1, 1]
    for sequences in SPLITS.values():
        for sequence in sequences:
            notes = frames_to_notes([[int(p) for p in frame] for frame in sequence])
            roll = notes_to_roll(notes, 1, "active")
            expected = _active_roll(sequence)
            # the roll ends with the last sounding frame; trailing silent frames have no notes
            np.testing.assert_array_equal(roll, expected[: len(roll)])
            assert not expected[len(roll):].any()
    held = frames_to_notes(SPLITS["train"][0])
    assert [(note.pitch, note.onset, note.duration) for note in held] == [(60, 0, 2), (64, 0, 2), (67, 0, 2), (62, 2, 1), (65, 2, 1)]

    monkeypatch.setenv("MUSICTF_CACHE_DIR", str(tmp_path / "cache"))
    experiment = get_experiment("2")
    config = experiment.load_config("smoke", [f"source={benchmark_file}", "seq_len=1", "steps_per_quarter=1",
                                              "roll_encoding=active"])
    data = prepare_data(experiment, config, progress=False)
    assert {name: len(pieces) for name, pieces in data.splits.items()} == {"train": 3, "valid": 1, "test": 1}
    assert [piece.piece_id for piece in data.splits["test"]] == ["test/0000"]


def test_a_pickle_that_names_a_class_or_function_is_refused_in_one_line_and_never_run(tmp_path, capsys):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    hostile = tmp_path / "hostile.pickle"
    hostile.write_bytes(pickle.dumps({"train": [Payload()], "valid": [], "test": []}))
    from collections import OrderedDict

    classy = tmp_path / "classy.pkl"
    classy.write_bytes(pickle.dumps({"train": [OrderedDict()], "valid": [], "test": []}))
    for path, named in ((hostile, "system"), (classy, "collections.OrderedDict")):
        status = main(["data", "--source", str(path)])
        err = capsys.readouterr().err.strip()
        assert status == 2 and str(path) in err and named in err and len(err.splitlines()) == 1, err
    assert not marker.exists()


@pytest.mark.parametrize("content,reason", [
    ({"train": [[[60]]], "valid": []}, "holds a dict with train, valid and test"),
    ({"train": [[[20]]], "valid": [], "test": []}, "off the piano"),
    ({"train": [[[60.5]]], "valid": [], "test": []}, "is not a MIDI note number"),
    ({"train": [], "valid": [], "test": []}, "the train split holds no sequences"),
])
def test_a_malformed_benchmark_file_gets_its_reason(tmp_path, content, reason, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    assert main(["data", "--source", str(path)]) == 2
    assert reason in capsys.readouterr().err
    assert main(["data", "--source", str(tmp_path / "missing.pickle")]) == 2
    assert "no such file (the run expects a benchmark file here" in capsys.readouterr().err


def test_a_folder_of_split_subfolders_keeps_its_split(tmp_path, monkeypatch):
    from musictf.data.music import Note

    for split, count in (("train", 4), ("valid", 1), ("test", 2)):
        (tmp_path / "music" / split).mkdir(parents=True)
        for index in range(count):
            write_midi([Note(60 + (i + index) % 7, i * 0.5, 0.5, "C4") for i in range(40)],
                       tmp_path / "music" / split / f"{split}{index}.mid")
    monkeypatch.setenv("MUSICTF_CACHE_DIR", str(tmp_path / "cache"))
    experiment = get_experiment("2")
    data = prepare_data(experiment, experiment.load_config("smoke", [f"source={tmp_path / 'music'}"]), progress=False)
    assert {name: sorted(piece.file_id.split("/")[0] for piece in pieces) for name, pieces in data.splits.items()} == {
        "train": ["train"] * 4, "valid": ["valid"], "test": ["test"] * 2}
