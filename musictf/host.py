"""What a figure was measured on: the CPU's model, the features its speed depends on, its cores.
Training records it in state.json and `make bench` in bench.json, because CPUs of one name differ
in the features that decide speed ratios (docs/performance.md)."""

from __future__ import annotations

import os
import platform

# The CPU features the ratios depend on (oneDNN picks its kernels by them), as /proc/cpuinfo names them.
CPU_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "VNNI",
    "avx512_bf16": "BF16",
    "amx_bf16": "AMX-BF16",
}


def cpu_flags() -> list[str]:
    """The CPU_FLAGS this machine has, by their usual names ([] where /proc/cpuinfo is missing)."""
    try:
        with open("/proc/cpuinfo") as handle:
            present = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return []
    return [name for flag, name in CPU_FLAGS.items() if flag in present]


def cpu_model() -> str:
    """/proc/cpuinfo's model name, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as handle:
            return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def cpu() -> dict:
    """{"cpu", "cpu_flags", "cores"}: this machine's CPU, as figures are labelled with it."""
    return {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "cores": os.cpu_count()}


def describe(machine: dict) -> str:
    """ "<CPU model>, 2 cores, AVX2, AVX-512, VNNI" from a `cpu()` record."""
    return ", ".join(
        [machine.get("cpu", "?"), f"{machine.get('cores', '?')} cores", *machine.get("cpu_flags", [])]
    )
