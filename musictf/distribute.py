"""A tf.distribute strategy from a name: default, mirrored, multiworker, tpu or auto.

Everything that creates variables (model, optimizer, metrics) is built inside `strategy.scope()`
by the training engine; the global batch is the per-replica batch times `num_replicas_in_sync`.
`multiworker` reads the cluster from TF_CONFIG and installs the Keras shim in multiworker.py.
"""

from __future__ import annotations

import os

from musictf import multiworker
from musictf.errors import MusicTFError

STRATEGIES = ("default", "mirrored", "multiworker", "tpu", "auto")


def configure_logical_cpus(count: int) -> None:
    """Splits the CPU into `count` logical devices (for mirrored tests on one machine).
    Must run before any other TensorFlow call."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * count)


def configure_from_environment() -> None:
    """MUSICTF_LOGICAL_CPUS=N splits the CPU into N logical devices."""
    count = int(os.environ.get("MUSICTF_LOGICAL_CPUS", "0") or 0)
    if count > 1:
        configure_logical_cpus(count)


def _tpu_strategy():
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", "local"))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except (ValueError, tf.errors.NotFoundError, IndexError, RuntimeError) as error:
        raise MusicTFError(
            f"--strategy tpu: no TPU found ({type(error).__name__}: {str(error)[:120]})"
        ) from None


def get_strategy(name: str = "default"):
    import tensorflow as tf

    if name not in STRATEGIES:
        raise MusicTFError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "auto":
        try:
            return _tpu_strategy()
        except MusicTFError:
            name = "mirrored" if tf.config.list_logical_devices("GPU") else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [device.name for device in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return _multi_worker_strategy()
    return _tpu_strategy()


def _multi_worker_strategy():
    import tensorflow as tf

    multiworker.cluster()
    multiworker.install_keras_shim()
    return tf.distribute.MultiWorkerMirroredStrategy()


def device_names(strategy) -> list[str]:
    """The devices a strategy computes on, e.g. ["CPU:0"] or ["GPU:0", "GPU:1"], for the training log."""
    import tensorflow as tf

    try:
        devices = list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy: TensorFlow's default placement, the first GPU if any
        devices = [
            device.name
            for device in (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))[:1]
        ]
    return [device.split("device:")[-1] for device in devices]


def set_precision(precision: str) -> None:
    """Keras's global dtype policy: float32, mixed_bfloat16 or mixed_float16 (process-wide)."""
    import keras

    keras.mixed_precision.set_global_policy(precision)
