"""One training engine for every experiment: `train(experiment, config, run_dir, ...)`.

Writes the run directory (see rundir.py) and fits inside the strategy's scope with: atomic best
and last checkpoints, BackupAndRestore at every epoch (rerunning the same command after a kill
resumes from the last finished epoch), CSV and TensorBoard logs, and a NaN stop with a message.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import sys
import time
from pathlib import Path

import keras
import numpy as np

from musictf import config as config_module
from musictf import distribute, files, host, keras_internals, multiworker, rundir
from musictf.data.prepared import PreparedData
from musictf.data.shards import UNREADABLE_SHARD
from musictf.data.windows import global_batch_size
from musictf.errors import MusicTFError
from musictf.experiments.base import Experiment, prepare_data
from musictf.files import remove_stale_temporaries
from musictf.rundir import weights_are_finite


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves `last.keras` every epoch and `best.keras` when `monitor` improves, each atomically.
    The best value is kept in best.json so a resumed run does not forget it."""

    def __init__(self, directory: Path, monitor: str = "val_loss"):
        super().__init__()
        self.directory, self.monitor = Path(directory), monitor
        self.record_path = self.directory / "best.json"

    def _save(self, name: str) -> None:
        path = self.directory / name
        # a new copy is written beside the old one: room for the larger of the two, and a margin
        needed = max(path.stat().st_size if path.exists() else 0, 3 * weight_bytes(self.model)) + (1 << 20)
        rundir.require_free_space(self.directory, needed, f"the checkpoint {name}")
        with rundir.disk_full_explained(self.directory, f"the checkpoint {name}"):
            with files.atomic_path(path, suffix=".keras") as temporary:
                self.model.save(temporary)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if not weights_are_finite(self.model):
            return  # a diverged epoch: keep the last finite checkpoints (the NaN stop says why)
        self._save("last.keras")
        if self.monitor not in logs:
            raise MusicTFError(
                f"the checkpoint monitor {self.monitor} is not among this run's metrics "
                f"({', '.join(sorted(logs))})"
            )
        value = logs[self.monitor]
        best = math.inf
        if self.record_path.exists():
            best = rundir.read_json(
                self.record_path,
                "it holds the best checkpoint's score: delete it, and the next epoch's checkpoint becomes "
                "the best",
                required=("value",),
            )["value"]
        if math.isfinite(value) and value < best:
            self._save("best.keras")
            rundir.write_json(
                self.record_path, {"epoch": epoch + 1, "monitor": self.monitor, "value": float(value)}
            )


def weight_bytes(model) -> int:
    return sum(int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize for variable in model.weights)


def random_states(model) -> list:
    """The model's variables that are not weights: the states of its layers' seed generators
    (dropout masks). `save_weights` leaves them out, so a backup keeps them itself."""
    weights = {id(variable) for variable in model.weights}
    return [variable for variable in model.variables if id(variable) not in weights]


BACKUP_ADVICE = (
    "delete {backup} to train this run again from epoch 1, or start a new run (--fresh, or another --run-dir)"
)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore at every epoch whose backup is always a consistent pair: the weights go to
    `epoch-N.weights.h5`, then `training_metadata.json` (naming that file, and holding the dropout
    seed states that weights files leave out) is replaced atomically, then older weights are
    removed. A kill at any moment leaves the previous or the new epoch, and resuming continues
    exactly as the uninterrupted run would have (the data stream too: see `make_datasets`).

    Only the writer (the chief) saves and deletes; every worker of a multi-worker run restores from
    the same backup, so a restart resumes all of them at the same epoch. The backup directory must
    therefore be shared by the workers, as with any tf.distribute multi-worker checkpoint.
    """

    def __init__(self, backup_dir: Path, writer: bool = True):
        keras_internals.require("atomic backup")  # it overrides BackupAndRestore's private methods
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=writer)
        self.directory, self.writer = Path(backup_dir), writer

    def _load_model(self):
        metadata = self.read_metadata(self.directory)
        if metadata is None:
            return
        if not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        weights = self.directory / metadata["weights"]
        if not weights.is_file() or files.sha256_file(weights) != metadata.get(
            "sha256", files.sha256_file(weights)
        ):
            raise MusicTFError(
                f"{weights}: the epoch backup is "
                f"{'changed since it was written' if weights.is_file() else 'missing'}; "
                f"{BACKUP_ADVICE.format(backup=self.directory)}"
            )
        try:
            self.model.load_weights(weights)
        except Exception as error:  # h5py's OSError for a torn file, ValueError for another model's
            reason = " ".join(str(error).split())[:120] or type(error).__name__
            raise MusicTFError(
                f"{weights}: unreadable epoch backup ({reason}); "
                f"{BACKUP_ADVICE.format(backup=self.directory)}"
            ) from None
        for variable, state in zip(
            random_states(self.model), metadata.get("random_states", []), strict=False
        ):
            variable.assign(np.asarray(state, variable.dtype))
        self.model._initial_epoch = metadata["epoch"]

    @staticmethod
    def read_metadata(backup_dir: Path) -> dict | None:
        """The backup's training_metadata.json (None without one), checked."""
        path = Path(backup_dir) / "training_metadata.json"
        if not path.exists():
            return None
        metadata = rundir.read_json(
            path, BACKUP_ADVICE.format(backup=backup_dir), required=("epoch", "weights")
        )
        if not isinstance(metadata["epoch"], int) or metadata["epoch"] < 0:
            raise MusicTFError(
                f"{path}: unreadable (epoch {metadata['epoch']!r}); {BACKUP_ADVICE.format(backup=backup_dir)}"
            )
        return metadata

    @classmethod
    def completed_epochs(cls, backup_dir: Path) -> int:
        """Epochs the backup in `backup_dir` holds (0 without one): where a resumed run starts."""
        metadata = cls.read_metadata(backup_dir)
        return metadata["epoch"] if metadata else 0

    def _save_model(self):
        if not self.writer or not weights_are_finite(self.model):
            return
        name = f"epoch-{self._current_epoch}.weights.h5"
        path = self.directory / name
        self.directory.mkdir(parents=True, exist_ok=True)
        # h5py crashes the process (a segmentation fault) when the disk fills during a save
        rundir.require_free_space(
            self.directory, 2 * weight_bytes(self.model) + (1 << 20), "the epoch backup"
        )
        with rundir.disk_full_explained(self.directory, "the epoch backup"):
            with files.atomic_path(path, suffix=".weights.h5") as temporary:
                self.model.save_weights(temporary)
            rundir.write_json(
                self.directory / "training_metadata.json",
                {
                    "epoch": self._current_epoch,
                    "weights": name,
                    "sha256": files.sha256_file(path),
                    "random_states": [
                        np.asarray(variable).tolist() for variable in random_states(self.model)
                    ],
                },
            )
        for old in self.directory.glob("epoch-*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def on_train_end(self, logs=None):
        if self.writer:
            super().on_train_end(logs)


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """TerminateOnNaN that remembers where, so the engine can say so in one line."""

    def __init__(self):
        super().__init__()
        self.where = None
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            self.where = (self.epoch + 1, batch + 1)
            self.model.stop_training = True


@contextlib.contextmanager
def shard_changes_explained():
    """A shard of the store that streamed training reads, cut short or removed meanwhile (another
    run rebuilding the store, a cache cleaner), is one line: the backup keeps the finished epochs."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as error:
        message = " ".join(str(error.message).split())
        if UNREADABLE_SHARD not in message:
            raise
        where = message[message.index(UNREADABLE_SHARD) :].split(")")[0] + ")"
        raise MusicTFError(
            f"{where}; rerun the same command to resume from the last finished epoch"
        ) from None


def fit_verbosity(verbose: str | int) -> str | int:
    """Keras's progress bar on a terminal; one line per epoch in a log file (no carriage returns)."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose


def build_and_compile(experiment: Experiment, config, features: int, strategy):
    """The model, optimizer and metrics, all created inside `strategy.scope()`."""
    with strategy.scope():
        model = experiment.build_model(config, features)
        optimizer_class = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[
            config.optimizer
        ]
        optimizer = optimizer_class(
            learning_rate=config.learning_rate,
            clipnorm=config.clipnorm or None,
            weight_decay=config.weight_decay or None,
            use_ema=config.ema_momentum > 0,
            ema_momentum=config.ema_momentum or 0.99,
        )
        model.compile(
            optimizer=optimizer, jit_compile=config.jit_compile, **experiment.compile_arguments(config)
        )
    return model


class AtomicHistory(keras.callbacks.Callback):
    """history.csv, one row per finished epoch (its metrics and its wall seconds, validation included),
    rewritten whole and atomically after each epoch: a
    kill or a full disk leaves the previous file, never a torn row. A resumed run keeps the rows of
    the epochs its backup holds and drops any later ones (an epoch that was cut short)."""

    def __init__(self, path: Path, completed_epochs: int):
        super().__init__()
        self.path = Path(path)
        self.rows = [row for row in rundir.read_history(self.path)[0] if row["epoch"] < completed_epochs]

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = round(time.perf_counter() - self.epoch_started, 2)  # training and validation
        self.rows.append(
            {
                "epoch": epoch,
                **{key: float(value) for key, value in sorted((logs or {}).items())},
                "seconds": seconds,
            }
        )
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        with rundir.disk_full_explained(self.path.parent, "history.csv"):
            files.write_text(self.path, buffer.getvalue())


def train(
    experiment: Experiment,
    config,
    run_dir: Path,
    preset: str,
    strategy_name: str = "default",
    data: PreparedData | None = None,
    verbose: str | int = "auto",
    chief: bool | None = None,
) -> dict:
    """Trains into `run_dir`, resuming from its backup if an earlier attempt was interrupted; a run
    whose training finished is not trained again (its history is returned). `chief` is whether this
    process writes (None: `multiworker.is_chief` decides, from the strategy and the cluster).

    The run directory is held by this process while it trains (`rundir.lock`). Under `multiworker`
    every worker runs this with the same arguments and the same `run_dir`; only the chief writes
    (and locks), and every worker resumes from the chief's backup (see AtomicBackupAndRestore).
    """
    run_dir = Path(run_dir)
    # first: a multi-worker strategy must precede other TF work
    strategy = distribute.get_strategy(strategy_name)
    chief = multiworker.is_chief(strategy_name) if chief is None else chief
    with contextlib.ExitStack() as held:
        if chief:
            files.require_writable_dir(run_dir, "run directory", create=False)
            if run_dir.exists():  # a new run directory is locked once the checks below have passed
                held.enter_context(rundir.lock(run_dir, f"training {experiment.slug}"))
        if (run_dir / "config.json").exists():
            saved = rundir.read_config_file(run_dir)
            if saved["experiment"] != experiment.slug:
                raise MusicTFError(
                    f"{run_dir}: holds a run of {saved['experiment']}, not {experiment.slug}; use a new "
                    "--run-dir"
                )
            differing = config_module.differing_fields(saved["config"], config_module.to_dict(config))
            if differing:
                raise MusicTFError(f"{run_dir}: holds a run with {differing}; use a new --run-dir")
            if rundir.training_complete(run_dir):
                print(
                    f"{run_dir}: training already complete ({config.epochs} epochs); not trained again",
                    file=sys.stderr,
                )
                return rundir.completed_history(run_dir)
        completed_epochs = AtomicBackupAndRestore.completed_epochs(run_dir / "backup")
        data = data or prepare_data(experiment, config)
        print(data.corpus.report.summary(), file=sys.stderr)

        # Everything that can refuse the data or the config runs before the run directory is written.
        keras.utils.set_random_seed(config.seed)
        distribute.set_precision(config.precision)
        train_ds, valid_ds, steps_per_epoch = experiment.make_datasets(
            config, data, strategy, initial_epoch=completed_epochs
        )
        model = build_and_compile(experiment, config, data.representation.features, strategy)
        if chief:
            held.enter_context(rundir.lock(run_dir, f"training {experiment.slug}"))
            with rundir.disk_full_explained(run_dir, "the run's files"):
                rundir.save_run_files(
                    run_dir, experiment.slug, preset, config, data.representation, data.manifest()
                )
                rundir.write_json(run_dir / "ingest.json", data.corpus.report.to_dict())
                rundir.write_state(run_dir, training="running", strategy=strategy_name, machine=host.cpu())
            for folder in (run_dir / "checkpoints", run_dir / "backup"):
                remove_stale_temporaries(folder, older_than=0)  # a killed save's; no other writer is running
        job = TrainingJob(
            experiment, config, run_dir, preset, strategy, strategy_name, chief, completed_epochs, verbose
        )
        history = _fit(job, model, (train_ds, valid_ds, steps_per_epoch))
        if chief:
            rundir.write_state(run_dir, training="complete", epochs=config.epochs)
        return history


class AveragedWeights(keras.callbacks.SwapEMAWeights):
    """With `ema_momentum`, the weights' moving average is what validation scores (Keras's
    SwapEMAWeights swaps it in around each evaluation) and what the epoch's checkpoints hold: at the
    epoch's end this callback swaps the average in for the callbacks after it, and `raw_weights_back()`,
    placed before the backup, swaps the trained weights back. The backup therefore holds the raw
    weights (with the average among the optimizer's variables), so a resumed run trains on exactly
    what an uninterrupted one does."""

    def __init__(self):
        keras_internals.require("averaged weights")  # it relies on SwapEMAWeights's test hooks and swap
        super().__init__(swap_on_epoch=False)

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_begin()  # swaps the average in unless it already is (SwapEMAWeights keeps the flag)

    def raw_weights_back(self) -> keras.callbacks.Callback:
        return keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: self.on_test_end())


def validation_schedule(config) -> list:
    """The learning-rate halving and early stop that `reduce_lr_patience` and
    `early_stopping_patience` ask for, both watching the validation loss."""
    callbacks = []
    if config.reduce_lr_patience:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                "val_loss", factor=0.5, patience=config.reduce_lr_patience, min_lr=config.learning_rate / 64
            )
        )
    if config.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=config.early_stopping_patience))
    return callbacks


@dataclasses.dataclass(frozen=True)
class TrainingJob:
    """What `_fit` needs of the run it trains, decided once by `train`."""

    experiment: object
    config: object
    run_dir: Path
    preset: str
    strategy: object
    strategy_name: str
    chief: bool
    completed_epochs: int
    verbose: object


def _announcement(job: TrainingJob, model, steps_per_epoch: int) -> str:
    """The line that starts a training: what, where, how large, on which devices."""
    who = "" if job.chief else " (a worker: only the chief writes there)"
    return (
        f"{'resuming' if job.completed_epochs else 'training'} {job.experiment.slug} ({job.preset}) in "
        f"{job.run_dir}{who}: {model.count_params():,} parameters, "
        f"{job.strategy.num_replicas_in_sync} replica(s), global batch "
        f"{global_batch_size(job.config.batch_size, job.strategy)}, {steps_per_epoch} steps x "
        f"{job.config.epochs} epochs; devices: {', '.join(distribute.device_names(job.strategy))}"
    )


def _fit(job: TrainingJob, model, datasets) -> dict:
    train_ds, valid_ds, steps_per_epoch = datasets
    nan_stop = StopOnNaN()
    # Averaging first: every callback after it sees the averaged weights at the epoch's end.
    averaged = AveragedWeights() if job.config.ema_momentum else None
    callbacks = [nan_stop] + ([averaged] if averaged else [])
    callbacks += [*job.experiment.callbacks(model, job.config), *validation_schedule(job.config)]
    if job.chief:
        callbacks += [
            AtomicCheckpoint(job.run_dir / "checkpoints"),
            AtomicHistory(job.run_dir / "history.csv", job.completed_epochs),
            keras.callbacks.TensorBoard(str(job.run_dir / "logs"), write_graph=False, profile_batch=0),
        ]
    # Last: the backup is what marks an epoch done, so it is written after the epoch's history row
    # and checkpoints; a kill before it makes the resumed run redo the whole epoch.
    if averaged:
        callbacks.append(averaged.raw_weights_back())
    callbacks.append(AtomicBackupAndRestore(job.run_dir / "backup", writer=job.chief))
    print(_announcement(job, model, steps_per_epoch), file=sys.stderr)
    with multiworker.peer_errors_explained(job.strategy_name), shard_changes_explained():
        history = model.fit(
            train_ds,
            epochs=job.config.epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=valid_ds,
            callbacks=callbacks,
            verbose=fit_verbosity(job.verbose) if job.chief else 0,
            shuffle=False,
        )
    if nan_stop.where is not None:
        if job.chief:
            rundir.write_state(job.run_dir, training="diverged")
        epoch, batch = nan_stop.where
        raise MusicTFError(
            f"training diverged: the loss became NaN at epoch {epoch}, batch {batch}; lower the learning "
            f"rate (now {job.config.learning_rate:g}) with --set learning_rate=...; checkpoints so far "
            f"are in {job.run_dir / 'checkpoints'}"
        )
    result = {key: [float(v) for v in values] for key, values in history.history.items()}
    warning = divergence_warning(result)
    if warning and job.chief:
        print(f"musictf: warning: {warning}", file=sys.stderr, flush=True)
    return result


DIVERGENCE_GROWTH = 100.0  # the loss this many times its first epoch's: training has diverged


def divergence_warning(history: dict) -> str | None:
    """One line where the loss of any epoch, or a metric of the last, is not finite, or the loss
    grew `DIVERGENCE_GROWTH` times its first epoch's; None for a run that did not diverge."""
    losses = history.get("loss", [])
    broken = sorted(key for key, values in history.items() if values and not np.isfinite(values[-1]))
    if losses and (broken or losses[-1] > DIVERGENCE_GROWTH * abs(losses[0]) + 1e-12):
        return (
            f"training diverged: the loss went from {losses[0]:.4g} to {losses[-1]:.4g}"
            + (f" ({', '.join(broken)} not finite)" if broken else "")
            + "; lower learning_rate or weight_decay with --set"
        )
    return None
