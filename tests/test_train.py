"""The training engine's guarantees: an interrupted run resumes as if it never stopped, a diverged
run leaves no NaN checkpoint, and a run that cannot start leaves nothing behind."""

import csv
import json

import keras
import numpy as np
import pytest

from musictf import train as train_module
from musictf.cli import main
from musictf.experiments import get_experiment
from musictf.train import AtomicBackupAndRestore, AtomicCheckpoint, train


def _history_epochs(run_dir):
    with open(run_dir / "history.csv") as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


def _weights(run_dir):
    return keras.saving.load_model(run_dir / "checkpoints" / "last.keras").get_weights()


@pytest.mark.parametrize(
    "arrays,averaged",
    [
        ("in memory", False),
        # slow: keeps `make test` under 10 minutes on 2 cores; CI runs them (make test-slow)
        pytest.param("streamed from shards", False, marks=pytest.mark.slow),
        pytest.param("in memory", True, marks=pytest.mark.slow),
    ],
    ids=["in-memory", "streamed", "averaged-weights"],
)
def test_a_kill_during_the_checkpoint_save_resumes_exactly_as_the_uninterrupted_run(
    arrays, averaged, tmp_path, cache_dir, monkeypatch
):
    experiment = get_experiment("2")
    streamed = ["stream_above_megabytes=0", "shard_megabytes=0.05"] if arrays != "in memory" else []
    averaging = ["ema_momentum=0.8"] if averaged else []
    config = experiment.load_config(
        "smoke", ["epochs=3", "steps_per_epoch=5", *streamed, *averaging]
    )  # with dropout
    train(experiment, config, tmp_path / "whole", "smoke", verbose=0)

    saves = []
    real_save = AtomicCheckpoint._save

    def killed_in_the_second_save(self, name):
        saves.append(name)
        if saves.count("last.keras") == 2:
            raise KeyboardInterrupt  # stands in for SIGKILL: nothing after this point of the epoch runs
        real_save(self, name)

    monkeypatch.setattr(AtomicCheckpoint, "_save", killed_in_the_second_save)
    interrupted = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train(experiment, config, interrupted, "smoke", verbose=0)
    # The second epoch was not recorded as done: its history row and checkpoint were not written.
    assert AtomicBackupAndRestore.completed_epochs(interrupted / "backup") == 1
    assert _history_epochs(interrupted) == [0]
    stale = interrupted / "checkpoints" / ".last.keras.x1y2z3.keras"
    stale.write_bytes(b"half a checkpoint")

    monkeypatch.setattr(AtomicCheckpoint, "_save", real_save)
    train(experiment, config, interrupted, "smoke", verbose=0)
    assert json.loads((interrupted / "manifest.json").read_text())["arrays"] == arrays
    assert _history_epochs(interrupted) == [0, 1, 2]
    assert not stale.exists()
    for resumed, whole in zip(_weights(interrupted), _weights(tmp_path / "whole"), strict=True):
        np.testing.assert_array_equal(resumed, whole)  # the same batches, dropout masks and optimizer steps


@pytest.mark.parametrize(
    "experiment_number,settings", [("2", []), ("2", ["stream_above_megabytes=0"]), ("5", [])]
)
def test_a_resumed_data_stream_starts_where_the_uninterrupted_one_was(experiment_number, settings, cache_dir):
    import tensorflow as tf

    from musictf.experiments.base import prepare_data

    experiment = get_experiment(experiment_number)
    config = experiment.load_config("smoke", ["steps_per_epoch=3", *settings])
    data = prepare_data(experiment, config, progress=False)
    strategy = tf.distribute.get_strategy()
    datasets = experiment.make_datasets

    def epoch_hashes(stream, epochs, steps):
        batches = iter(stream)
        hashes = []
        for _ in range(epochs):
            digest = []
            for _ in range(steps):
                inputs, targets = next(batches)
                parts = (
                    list(inputs.values())
                    if isinstance(inputs, dict)
                    else list(inputs)
                    if isinstance(inputs, tuple)
                    else [inputs]
                )
                digest.append(hash(tuple(np.asarray(part).tobytes() for part in [*parts, targets])))
            hashes.append(hash(tuple(digest)))
        return hashes

    whole, _, steps = datasets(config, data, strategy)
    resumed, _, _ = datasets(config, data, strategy, initial_epoch=2)
    uninterrupted = epoch_hashes(whole, 4, steps)
    assert len(set(uninterrupted)) == 4
    assert epoch_hashes(resumed, 2, steps) == uninterrupted[2:]


def test_a_diverged_run_keeps_no_nan_checkpoint_and_a_nan_checkpoint_is_refused(tmp_path, capsys, cache_dir):
    run_dir = tmp_path / "run"
    status = main(
        [
            "train",
            "2",
            "--preset",
            "smoke",
            "--set",
            "learning_rate=1e30",
            "--set",
            "clipnorm=0",
            "--set",
            "epochs=2",
            "--run-dir",
            str(run_dir),
        ]
    )
    err = capsys.readouterr().err
    assert status == 2 and "training diverged" in err
    for path in (run_dir / "checkpoints").glob("*.keras"):
        assert all(np.isfinite(weights).all() for weights in keras.saving.load_model(path).get_weights()), (
            path
        )

    good = tmp_path / "good"
    assert main(["train", "2", "--preset", "smoke", "--run-dir", str(good)]) == 0
    model = keras.saving.load_model(good / "checkpoints" / "best.keras")
    model.set_weights([np.full_like(weights, np.nan) for weights in model.get_weights()])
    model.save(good / "checkpoints" / "best.keras")
    capsys.readouterr()
    for command in (["evaluate", str(good)], ["generate", str(good), "--num", "1", "--length", "4"]):
        status = main(command)
        err = capsys.readouterr().err.strip()
        assert status == 2 and "NaN or infinite weights" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "experiment,setting,message",
    [
        ("2", "seq_len=100000", "no piece is long enough"),
        ("1", "units=0", "units must be at least 1"),
        ("1", "learning_rate=-1", "learning_rate must be positive"),
        ("4", "dense_dropout=nan", "dense_dropout must be a finite number"),
    ],
)
def test_a_run_that_cannot_start_says_so_in_one_line_and_leaves_no_run_directory(
    experiment, setting, message, tmp_path, capsys, cache_dir
):
    run_dir = tmp_path / "run"
    status = main(["run", experiment, "--preset", "smoke", "--set", setting, "--run-dir", str(run_dir)])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("musictf: error")]
    assert status == 2 and len(errors) == 1 and message in errors[0] and "Traceback" not in err, err
    assert not run_dir.exists()
    # and the --run-dir is not blocked: the same place takes a run that can start
    assert main(["train", experiment, "--preset", "smoke", "--run-dir", str(run_dir)]) == 0
    assert json.loads((run_dir / "state.json").read_text())["training"] == "complete"


def test_weights_are_finite_sees_nan():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert train_module.weights_are_finite(model)
    model.set_weights([np.full((2, 1), np.nan), np.zeros(1)])
    assert not train_module.weights_are_finite(model)


@pytest.mark.slow
@pytest.mark.parametrize(
    "leave_kilobytes,what", [(700, "the checkpoint last.keras"), (2600, "the epoch backup")]
)
def test_a_full_disk_is_one_line_never_a_crash_and_the_rerun_resumes(
    leave_kilobytes, what, tmp_path, small_disk, cache_dir
):
    """D1 and D2: a full disk during the epoch backup crashed the process (h5py, a segmentation
    fault), and during a checkpoint gave a traceback."""
    import os
    import subprocess
    import sys

    from conftest import fill_disk

    disk = small_disk(6 * 1024)
    fill_disk(disk, leave_kilobytes)
    run_dir = disk / "run"
    command = [
        sys.executable,
        "-c",
        "import sys; from musictf.cli import main; sys.exit(main(sys.argv[1:]))",
        "train",
        "2",
        "--preset",
        "smoke",
        "--run-dir",
        str(run_dir),
    ]
    failed = subprocess.run(
        command, capture_output=True, text=True, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    )
    errors = [line for line in failed.stderr.splitlines() if line.startswith("musictf: error")]
    assert failed.returncode == 2, failed.stderr[-2000:]
    assert (
        len(errors) == 1
        and what in errors[0]
        and "free some space" in errors[0]
        and "Traceback" not in failed.stderr
    )
    assert not [path for path in run_dir.rglob(".*") if path.name != ".lock"], "no temp file is left"
    (disk / "filler").unlink()
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run_dir / "state.json").read_text())["training"] == "complete"


@pytest.mark.slow
def test_the_validation_schedule_halves_the_learning_rate_and_stops_when_validation_stalls(
    tmp_path, cache_dir
):
    """`reduce_lr_patience` and `early_stopping_patience` on a smoke run whose validation loss can
    only stall (a learning rate of 1e-9): the rate is halved after each stalled pair of epochs, training
    stops after three, and history.csv records each epoch's rate and wall seconds."""
    config = get_experiment("2").load_config(
        "smoke",
        ["epochs=8", "learning_rate=1e-9", "reduce_lr_patience=1", "early_stopping_patience=2"],
    )
    run_dir = tmp_path / "run"
    train(get_experiment("2"), config, run_dir, preset="smoke", verbose=0)
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    assert len(rows) < 8  # stopped early
    rates = [float(row["learning_rate"]) for row in rows]
    assert rates[-1] < rates[0] and min(rates) >= 1e-9 / 64 * 0.999
    assert all(float(row["seconds"]) > 0 for row in rows)
    machine = json.loads((run_dir / "state.json").read_text())["machine"]
    assert machine["cores"] >= 1 and machine["cpu"]


def test_weight_decay_shrinks_every_weight_apart_from_the_gradient(cache_dir):
    import tensorflow as tf

    from musictf.train import build_and_compile

    experiment = get_experiment("2")
    config = experiment.load_config("smoke", ["weight_decay=0.5", "learning_rate=0.1"])
    model = build_and_compile(experiment, config, 176, tf.distribute.get_strategy())
    before = [variable.numpy().copy() for variable in model.trainable_variables]
    model.optimizer.apply_gradients([(tf.zeros_like(v), v) for v in model.trainable_variables])
    for old, variable in zip(before, model.trainable_variables, strict=True):
        np.testing.assert_allclose(variable.numpy(), old * (1 - 0.5 * 0.1), rtol=1e-5, atol=1e-7)


def test_averaged_weights_are_what_validation_scores_and_the_checkpoints_hold(tmp_path, cache_dir):
    import tensorflow as tf

    from musictf.experiments.base import prepare_data

    experiment = get_experiment("2")
    common = ["epochs=2", "steps_per_epoch=6", "learning_rate=0.01"]
    scores = {}
    for name, settings in {"raw": common, "averaged": [*common, "ema_momentum=0.9"]}.items():
        config = experiment.load_config("smoke", settings)
        data = prepare_data(experiment, config)
        run_dir = tmp_path / name
        train(experiment, config, run_dir, "smoke", data=data, verbose=0)
        with open(run_dir / "history.csv") as handle:
            recorded = float(list(csv.DictReader(handle))[-1]["val_loss"])
        _, valid, _ = experiment.make_datasets(config, data, tf.distribute.get_strategy())
        last = keras.saving.load_model(run_dir / "checkpoints" / "last.keras")
        scored = last.evaluate(valid, verbose=0, return_dict=True)["loss"]
        assert scored == pytest.approx(recorded, rel=1e-4)  # the checkpoint is the model validation scored
        scores[name] = (recorded, last.get_weights())
    # The same seed and batches: the raw run's weights are the averaged run's trained weights, so the
    # averaged run's checkpoint and score differ from them.
    assert scores["averaged"][0] != pytest.approx(scores["raw"][0], rel=1e-4)
    assert any(not np.allclose(a, r) for a, r in zip(scores["averaged"][1], scores["raw"][1], strict=True))


def test_a_loss_that_grows_without_bound_is_said_to_have_diverged():
    """Reliability review, note on row 73: loss 1.9e35 and frame_nll inf ended without a word."""
    from musictf.train import divergence_warning

    assert divergence_warning({"loss": [0.5, 0.3, 0.2], "frame_nll": [9.0, 7.0, 6.0]}) is None
    warning = divergence_warning({"loss": [0.5, 3e4, 1.9e35], "frame_nll": [9.0, 1e30, float("inf")]})
    assert warning.startswith("training diverged: the loss went from 0.5 to 1.9e+35 (frame_nll not finite)")
