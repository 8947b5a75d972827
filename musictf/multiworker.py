"""Multi-worker training with Keras 3's `model.fit`: the cluster roles, and a version-guarded shim.

Keras 3.15's TensorFlow trainer fails under MultiWorkerMirroredStrategy (keras-team/keras#20585):
1. `_maybe_symbolic_build` mean-reduces the first distributed batch to learn its shapes, and the
   cross-worker reduce of a PerReplica input fails ("Attempt to convert a value (PerReplica...)
   with an unsupported type"). The shim builds from the first local replica's batch instead; only
   shapes and dtypes are read, so nothing else changes.
2. `reduce_per_replica` reduces every metric with `axis=0`, and metrics are scalars ("Invalid
   reduction dimension 0 for input with 0 dimensions"). The shim reduces scalars with `axis=None`
   (the mean over workers of a value the replicas already agree on).

Both replacements act only when the strategy is a MultiWorkerMirroredStrategy in multi-worker mode;
every other path runs Keras's own code. The shim is installed only if the two Keras functions are
the ones it was written against (their source hashes in keras_internals.py). If Keras changes them,
`--strategy multiworker` stops with a clear message instead of guessing, and
tests/test_distribute.py fails so the shim gets revisited (or removed once Keras fixes #20585).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from musictf import keras_internals
from musictf.errors import MusicTFError

_installed = False


def install_keras_shim() -> None:
    """Makes `model.fit`/`evaluate` work under MultiWorkerMirroredStrategy (see the module docstring)."""
    global _installed
    if _installed:
        return
    import tensorflow as tf

    keras_internals.require("multi-worker shim")
    from keras.src.backend.tensorflow import trainer

    original_build, original_reduce = (
        trainer.TensorFlowTrainer._maybe_symbolic_build,
        trainer.reduce_per_replica,
    )

    def multi_worker(strategy) -> bool:
        return trainer._collective_all_reduce_multi_worker(strategy)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if (
            self._distribute_strategy is None
            or not multi_worker(self.distribute_strategy)
            or iterator is None
        ):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            first = next(batches)
            data_batch = tf.nest.map_structure(
                lambda value: (
                    self.distribute_strategy.experimental_local_results(value)[0]
                    if isinstance(value, tf.distribute.DistributedValues)
                    else value
                ),
                first,
            )
            break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if not multi_worker(strategy) or reduction not in ("auto", "mean"):
            return original_reduce(values, strategy, reduction)

        def reduce(value):
            local = (
                strategy.experimental_local_results(value)[0]
                if trainer._is_per_replica_instance(value)
                else value
            )
            return strategy.reduce("MEAN", value, axis=None if local.shape.rank == 0 else 0)

        return tf.nest.map_structure(reduce, values)

    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer.reduce_per_replica = reduce_per_replica
    _installed = True


def cluster() -> dict:
    """TF_CONFIG, parsed, with a clear error when it is missing or malformed."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        raise MusicTFError(
            '--strategy multiworker needs TF_CONFIG, e.g. TF_CONFIG=\'{"cluster": {"worker": '
            '["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}\' on each worker'
        )
    try:
        parsed = json.loads(raw)
        workers = parsed["cluster"]["worker"]
        task = parsed["task"]
        task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise MusicTFError(
            f"TF_CONFIG is not a valid cluster description ({type(error).__name__}: {error})"
        ) from None
    if not workers:
        raise MusicTFError("TF_CONFIG lists no workers")
    return parsed


def task() -> tuple[str, int]:
    """(type, index) of this process from TF_CONFIG."""
    description = cluster()["task"]
    return description["type"], int(description["index"])


def is_chief(strategy_name: str) -> bool:
    """Whether this process writes checkpoints, logs and reports: always, unless this is a
    multi-worker run, where it is the `chief` task if the cluster has one, else worker 0."""
    if strategy_name != "multiworker":
        return True
    task_type, index = task()
    has_chief = bool(cluster()["cluster"].get("chief"))
    return task_type == "chief" or (task_type == "worker" and index == 0 and not has_chief)


PEER_ERRORS = ("UnavailableError", "DeadlineExceededError", "CancelledError", "AbortedError")


def peer_failure(error: Exception) -> MusicTFError:
    first_line = (str(error).strip().splitlines() or [""])[0][:160]
    return MusicTFError(
        f"multi-worker training stopped: a peer worker died or is unreachable ({type(error).__name__}: "
        f"{first_line}); restart every worker with the same command to resume from the last finished epoch"
    )


@contextlib.contextmanager
def peer_errors_explained(strategy_name: str):
    """Turns a multi-worker collective failing because a peer died into one clear MusicTFError."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as error:
        if strategy_name == "multiworker" and type(error).__name__ in PEER_ERRORS:
            raise peer_failure(error) from None
        raise


def barrier(strategy) -> None:
    """Returns on every worker only once all have reached it (a one-number all-reduce)."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return

    def one():
        return tf.constant(1.0)

    @tf.function(autograph=False)
    def all_reduce():
        return strategy.reduce("SUM", strategy.run(one), axis=None)

    all_reduce()


@contextlib.contextmanager
def tuner_directory(run_dir, strategy_name: str, strategy):
    """Where this process's Keras Tuner keeps its trials. The chief uses `run_dir`. Another worker
    uses a private copy of the chief's search so far, so a resumed search replays the same trials on
    every worker in lockstep; it is deleted afterwards. The barrier makes sure the copy is taken
    before the chief writes anything (the run directory must be shared, as for the backup)."""
    run_dir = Path(run_dir)
    if is_chief(strategy_name):
        barrier(strategy)
        yield run_dir
        return
    task_type, index = task()
    private = Path(tempfile.mkdtemp(prefix=f"musictf-tune-{task_type}-{index}-"))
    try:
        if (run_dir / "search").is_dir():
            shutil.copytree(run_dir / "search", private / "search")
        barrier(strategy)
        yield private
    finally:
        shutil.rmtree(private, ignore_errors=True)
