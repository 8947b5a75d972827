"""Timing on a shared, noisy machine: warm up, repeat, report the median and the spread, and
compare two things by the ratio of rounds run back to back (A, B, A, B, ...), never across runs."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

from musictf import host


def summary(values: list[float]) -> dict:
    """Median, min, max and the relative spread (max - min) / median of repeated measurements."""
    median = statistics.median(values)
    return {
        "median": median,
        "min": min(values),
        "max": max(values),
        "n": len(values),
        "spread": (max(values) - min(values)) / median if median else 0.0,
    }


def repeat(measure: Callable[[], float], repeats: int, warmup: int = 1) -> list[float]:
    """`measure()` (returns one figure, e.g. seconds per step) `warmup` times unrecorded, then
    `repeats` times."""
    for _ in range(warmup):
        measure()
    return [measure() for _ in range(repeats)]


def interleaved(
    measures: dict[str, Callable[[], float]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Each measure once per round, round after round, so slow periods of the machine hit all alike."""
    for _ in range(warmup):
        for measure in measures.values():
            measure()
    values: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(repeats):
        for name, measure in measures.items():
            values[name].append(measure())
    return values


def paired_ratio(numerators: list[float], denominators: list[float]) -> dict:
    """The ratio round by round (from `interleaved`), summarised."""
    return summary([a / b for a, b in zip(numerators, denominators, strict=True)])


def seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def pin_threads(threads: int) -> None:
    """Fixes the thread counts of TensorFlow (and PyTorch, when installed) and the CPU affinity.
    Must run before TensorFlow executes anything."""
    import tensorflow as tf

    os.environ["OMP_NUM_THREADS"] = str(threads)
    if hasattr(os, "sched_setaffinity"):
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, available[:threads])
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def machine(threads: int) -> dict:
    """What the figures were measured on."""
    import keras
    import tensorflow as tf

    try:
        with open("/proc/meminfo") as handle:
            memory_gib = int(handle.readline().split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        memory_gib = None
    versions = {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__}
    try:
        import torch

        versions["torch"] = torch.__version__
    except ImportError:
        versions["torch"] = None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "host": platform.node(),
        **host.cpu(),
        "memory_gib": round(memory_gib, 1) if memory_gib else None,
        "threads": threads,
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "versions": versions,
    }
