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


def test_the_protocol_scores_every_frame_of_the_synthetic_file_beside_hand_computed_baselines(tmp_path, monkeypatch):
    """The published protocol on a file small enough to score by hand. On the canonical JSB file the
    same two baselines are 11.06 (independent Bernoulli) and 10.47 (first-order Markov) nats per
    frame; those figures belong to that file and are not in the code."""
    import math

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(SPLITS))
    monkeypatch.setenv("MUSICTF_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["run", "2", "--preset", "smoke", "--source", str(path), "--run-dir", str(run), "--set", "seq_len=2",
                 "--set", "steps_per_quarter=1", "--set", "roll_encoding=active", "--set", "sampled_frames=true",
                 "--set", "pad_start=true", "--set", "max_eval_windows=0", "--set", "transpose_range=0"]) == 0
    result = json.loads((run / "metrics.json").read_text())
    assert result["test"]["frames"] == 4, "every frame of the test sequence, its silent first frame included"
    # independent Bernoulli: 11 train frames (the trailing silent one counted); keys 60, 64, 67, 48, 55
    # sound in 2 of them, keys 62, 65, 72, 74, 76, 77 in 1, the other 77 keys in none (p clipped to 1e-6)
    two, one, off = math.log(2 / 11), math.log(1 / 11), 77 * math.log1p(-1e-6)
    not_two, not_one = math.log(9 / 11), math.log(10 / 11)
    frames = [  # {}, {60, 64}, {60, 65}, {60}
        5 * not_two + 6 * not_one,
        2 * two + 3 * not_two + 6 * not_one,
        two + one + 4 * not_two + 5 * not_one,
        two + 4 * not_two + 6 * not_one,
    ]
    expected_independent = -(sum(frames) / 4 + off)
    assert result["baseline"]["independent_bernoulli_nll_nats"] == pytest.approx(expected_independent, rel=1e-9)
    # first-order Markov, add-one smoothed, each train sequence preceded by one silent frame.
    # Per key: n[a][b] transitions from state a to b over the 3 padded train sequences.
    train = [[set(), *map(set, sequence)] for sequence in SPLITS["train"]]
    test = [set(), *({int(p) for p in frame} for frame in SPLITS["test"][0])]
    nll = 0.0
    for key in range(21, 109):
        counts = {(a, b): 1 for a in (0, 1) for b in (0, 1)}
        for sequence in train:
            for before, after in zip(sequence, sequence[1:], strict=False):
                counts[key in before, key in after] = counts[key in before, key in after] + 1
        for before, after in zip(test, test[1:], strict=False):
            state = int(key in before)
            nll -= math.log(counts[state, int(key in after)] / (counts[state, 0] + counts[state, 1]))
    assert result["baseline"]["markov_nll_nats"] == pytest.approx(nll / 4, rel=1e-9)


def test_transpose_to_c_is_refused_for_a_benchmark_file_already_in_c(benchmark_file, capsys):
    status = main(["data", "--source", str(benchmark_file), "--transpose-to-c"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "already in C" in err and len(err.splitlines()) == 1
