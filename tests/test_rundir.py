"""A run directory you can trust (reliability review D6-D10): one process at a time, checksummed
files, a history that a crash cannot tear, finished training never repeated, and every unreadable
file named in one line with what to do."""

import json
import shutil

import pytest

from musictf import rundir
from musictf.cli import main
from musictf.errors import MusicTFError
from musictf.experiments import get_experiment
from musictf.train import AtomicCheckpoint, train

SMOKE = ["--preset", "smoke", "--set", "epochs=3", "--set", "steps_per_epoch=3"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cache_dir):
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    assert main(["run", "2", *SMOKE, "--set", "statistics_samples=2", "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, cache_dir):
    """An e2 smoke run stopped in its third epoch: a backup of epoch 2, history rows 0 and 1."""
    run_dir = tmp_path_factory.mktemp("interrupted") / "run"
    experiment = get_experiment("2")
    config = experiment.load_config("smoke", ["epochs=3", "steps_per_epoch=3"])
    saves, real_save = [], AtomicCheckpoint._save

    def stopped_in_the_third_epoch(self, name):
        saves.append(name)
        if saves.count("last.keras") == 3:
            raise KeyboardInterrupt
        real_save(self, name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AtomicCheckpoint, "_save", stopped_in_the_third_epoch)
        with pytest.raises(KeyboardInterrupt):
            train(experiment, config, run_dir, "smoke", verbose=0)
    return run_dir


def _copy(run_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(rundir.LOCK_NAME))
    return copy


def _one_line(capsys, *names):
    """The one error line, naming each of `names`, and no traceback."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("musictf: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err[-3000:]
    for name in names:
        assert name in errors[0], errors
    return errors[0]


def test_a_finished_training_is_not_repeated_and_run_goes_on_to_evaluate(finished, tmp_path, capsys):
    """D6: rerunning `run` after an interrupted evaluation trained again from epoch 1."""
    run_dir = _copy(finished, tmp_path)
    (run_dir / "metrics.json").unlink()
    checkpoint = (run_dir / "checkpoints" / "last.keras").read_bytes()
    assert main(["run", "2", *SMOKE, "--set", "statistics_samples=2", "--run-dir", str(run_dir)]) == 0
    captured = capsys.readouterr()
    assert "training already complete" in captured.err and "Epoch 1/" not in captured.out + captured.err
    assert (run_dir / "metrics.json").exists()
    assert (run_dir / "checkpoints" / "last.keras").read_bytes() == checkpoint
    assert main(["train", "2", *SMOKE, "--run-dir", str(run_dir)]) == 0
    assert (run_dir / "checkpoints" / "last.keras").read_bytes() == checkpoint


def test_a_second_process_on_a_run_directory_is_refused_and_a_dead_ones_lock_is_taken_over(
    finished, tmp_path, capsys
):
    """D7: two `train` processes on one run directory both ran, and history.csv got two headers."""
    import subprocess
    import sys

    run_dir = _copy(finished, tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from musictf import rundir\nwith rundir.lock(sys.argv[1], 'training "
                "e2_roll_seq2one'):\n    print('held', flush=True); time.sleep(60)"
            ),
            str(run_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        for command in (["train", "2", *SMOKE], ["run", "2", *SMOKE]):
            assert main([*command, "--run-dir", str(run_dir)]) == 2
            _one_line(capsys, str(run_dir), f"in use by process {holder.pid} (training e2_roll_seq2one)")
        assert main(["evaluate", str(run_dir)]) == 2
        _one_line(capsys, f"process {holder.pid}")
    finally:
        holder.kill()
        holder.wait()
    with rundir.lock(run_dir, "a test"):  # the dead holder's lock is free at once
        with rundir.lock(run_dir, "the same process again"):
            pass
        assert (run_dir / rundir.LOCK_NAME).exists()
    assert not (run_dir / rundir.LOCK_NAME).exists()  # released: the run directory is as it was


def test_a_history_cut_mid_row_is_repaired_on_resume(interrupted, tmp_path):
    """D8: the resumed run's first row was glued onto a row cut short by a crash."""
    run_dir = _copy(interrupted, tmp_path)
    history = run_dir / "history.csv"
    whole = history.read_text()
    assert [row["epoch"] for row in rundir.read_history(history)[0]] == [0, 1]
    history.write_text(whole[: len(whole) - len(whole.splitlines()[-1]) // 2 - 1])  # row 1 cut in the middle
    rows, problem = rundir.read_history(history)
    assert [row["epoch"] for row in rows] == [0] and problem == "the last line is cut short"
    assert main(["train", "2", *SMOKE, "--run-dir", str(run_dir)]) == 0
    rows, problem = rundir.read_history(history)
    assert problem is None and [row["epoch"] for row in rows] == [
        0,
        2,
    ]  # epoch 1's row was lost, not invented
    assert all(
        isinstance(value, float) and 0 <= value
        for row in rows
        for key, value in row.items()
        if key != "epoch"
    )
    assert history.read_text().count("epoch") == 1


def test_a_garbled_but_finite_backup_is_refused(interrupted, tmp_path, capsys):
    """D10: a backup with one weight changed was resumed without a word."""
    run_dir = _copy(interrupted, tmp_path)
    metadata = json.loads((run_dir / "backup" / "training_metadata.json").read_text())
    weights = run_dir / "backup" / metadata["weights"]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x40  # one bit, somewhere in the weights
    weights.write_bytes(bytes(data))
    assert main(["train", "2", *SMOKE, "--run-dir", str(run_dir)]) == 2
    _one_line(capsys, str(weights), "changed since it was written", "delete")


def test_a_changed_json_file_fails_its_checksum(finished, tmp_path):
    run_dir = _copy(finished, tmp_path)
    path = run_dir / "metrics.json"
    value = json.loads(path.read_text())
    assert rundir.read_json(path, "x") == {k: v for k, v in value.items() if k != rundir.CHECKSUM_KEY}
    value["test"]["frame_nll_nats"] = 1.0  # valid JSON, but not what was written
    path.write_text(json.dumps(value))
    with pytest.raises(MusicTFError, match="checksum does not match"):
        rundir.read_json(path, "x")


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garble(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(
        byte ^ 0x5A for byte in data[middle : middle + 64]
    )  # every byte changed
    path.write_bytes(bytes(data))


FINISHED_CASES = [
    # (file, how it is broken, the commands that read it)
    ("config.json", _truncate, ["evaluate", "generate", "train", "report"]),
    ("config.json", lambda p: p.write_text('{"experiment": "e2_roll_seq2one"}'), ["evaluate", "generate"]),
    ("config.json", lambda p: p.write_text("[]"), ["evaluate"]),
    ("representation.json", _truncate, ["evaluate", "generate"]),
    ("manifest.json", _truncate, ["evaluate"]),
    ("state.json", _truncate, ["train"]),
    ("metrics.json", _truncate, ["report"]),
    ("metrics.json", lambda p: p.write_text("{}"), ["report"]),
    ("samples/samples.json", _truncate, ["report"]),
    ("checkpoints/best.keras", _truncate, ["evaluate", "generate"]),
    ("checkpoints/best.keras", lambda p: p.write_bytes(b""), ["evaluate"]),
    ("checkpoints/best.keras", _garble, ["evaluate"]),
]


@pytest.mark.parametrize("name,breaks,commands", FINISHED_CASES)
def test_an_unreadable_run_file_is_named_in_one_line(name, breaks, commands, finished, tmp_path, capsys):
    """D9: each of these gave a traceback."""
    run_dir = _copy(finished, tmp_path)
    breaks(run_dir / name)
    argv = {
        "evaluate": ["evaluate", str(run_dir)],
        "generate": ["generate", str(run_dir), "--num", "1"],
        "train": ["train", "2", *SMOKE, "--run-dir", str(run_dir)],
        "report": ["report", str(run_dir), "--out", str(tmp_path / "report")],
    }
    for command in commands:
        assert main(argv[command]) == 2, command
        _one_line(capsys, str(run_dir / name))


def test_a_garbled_last_checkpoint_is_named_too(finished, tmp_path, capsys):
    run_dir = _copy(finished, tmp_path)
    _garble(run_dir / "checkpoints" / "last.keras")
    assert main(["evaluate", str(run_dir), "--checkpoint", "last"]) == 2
    _one_line(capsys, "last.keras", "unreadable checkpoint", "--checkpoint best")


BACKUP_CASES = [
    ("backup/training_metadata.json", _truncate),
    ("backup/training_metadata.json", lambda p: p.write_text('{"epoch": 2}')),
    ("checkpoints/best.json", _truncate),
    ("backup/WEIGHTS", _truncate),
    ("backup/WEIGHTS", lambda p: p.unlink()),
]


@pytest.mark.parametrize("name,breaks", BACKUP_CASES)
def test_an_unreadable_backup_is_named_in_one_line_with_the_way_out(
    name, breaks, interrupted, tmp_path, capsys
):
    run_dir = _copy(interrupted, tmp_path)
    if "WEIGHTS" in name:
        name = f"backup/{json.loads((run_dir / 'backup' / 'training_metadata.json').read_text())['weights']}"
    breaks(run_dir / name)
    assert main(["train", "2", *SMOKE, "--run-dir", str(run_dir)]) == 2
    _one_line(capsys, str(run_dir / name))


def test_a_torn_or_garbled_history_is_drawn_up_to_its_last_whole_row(finished, tmp_path, capsys):
    run_dir = _copy(finished, tmp_path)
    history = run_dir / "history.csv"
    history.write_text(history.read_text().replace(",", ",zero,", 1).replace("\n1,", "\n1,x,", 1))
    rows, problem = rundir.read_history(history)
    assert rows == [] and problem.startswith("line 2:")
    assert main(["report", str(run_dir), "--out", str(tmp_path / "report")]) == 0
    assert f"{history}: line 2" in capsys.readouterr().err


def test_a_lock_that_is_a_folder_is_named_in_one_line(finished, tmp_path, capsys):
    """Reliability review R15: an IsADirectoryError traceback."""
    run_dir = _copy(finished, tmp_path)
    (run_dir / rundir.LOCK_NAME).mkdir()
    assert main(["evaluate", str(run_dir)]) == 2
    assert "remove it if no musictf process is running" in _one_line(capsys, str(run_dir / rundir.LOCK_NAME))


def test_a_hand_edited_config_says_how_to_recover_and_a_changed_config_names_the_field(
    finished, tmp_path, capsys
):
    """Reliability review R13 and its note: the only advice was "start a new run", and a refused
    config did not say which field differed."""
    run_dir = _copy(finished, tmp_path)
    path = run_dir / "config.json"
    original = path.read_text()
    path.write_text(original.replace('"epochs": 3', '"epochs": 4'))
    assert main(["evaluate", str(run_dir)]) == 2
    assert "undo the edit" in _one_line(capsys, str(path))
    path.write_text(original)
    assert main(["train", "2", *SMOKE, "--set", "units=8", "--run-dir", str(run_dir)]) == 2
    assert "units 16 (now 8)" in _one_line(capsys, str(run_dir))


def test_a_report_passes_over_a_damaged_run_and_reports_the_rest(finished, tmp_path, capsys):
    """Reliability review R11: one torn metrics.json stopped the whole report."""
    good, bad = _copy(finished, tmp_path / "good"), _copy(finished, tmp_path / "bad")
    _truncate(bad / "metrics.json")
    assert main(["report", str(bad), str(good), "--out", str(tmp_path / "report")]) == 0
    err = capsys.readouterr().err
    assert f"passed over: {bad / 'metrics.json'}" in err and "Traceback" not in err
    assert "e2_roll_seq2one" in (tmp_path / "report" / "tables" / "comparison.md").read_text()
