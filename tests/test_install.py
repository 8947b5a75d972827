"""`make install` chooses the TensorFlow build for the machine: a dry run (`make -n`), nothing installed."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _dry_run(tmp_path, nvidia_smi: str | None, *variables: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if nvidia_smi is not None:
        fake = bin_dir / "nvidia-smi"
        fake.write_text(f"#!/bin/sh\n{nvidia_smi}\n")
        fake.chmod(0o755)
    path = os.pathsep.join(
        [
            str(bin_dir),
            *(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "nvidia-smi").exists()),
        ]
    )
    return subprocess.run(
        ["make", "-n", "install", f"VENV={tmp_path / 'venv'}", *variables],
        cwd=ROOT,
        env=os.environ | {"PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _install_line(result) -> str:
    return next(line for line in result.stdout.splitlines() if "pip install" in line)


def test_a_gpu_listed_by_nvidia_smi_gets_the_cuda_build(tmp_path):
    result = _dry_run(tmp_path, 'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)"')
    assert "-e '.[dev,gpu]'" in _install_line(result)


@pytest.mark.parametrize("nvidia_smi", [None, 'echo "NVIDIA-SMI has failed: no driver"; exit 9'])
def test_no_usable_gpu_gets_the_cpu_build(tmp_path, nvidia_smi):
    assert "-e '.[dev,cpu]'" in _install_line(_dry_run(tmp_path, nvidia_smi))


def test_accel_overrides_the_detection(tmp_path):
    gpu_machine = 'echo "GPU 0: NVIDIA H100 (UUID: GPU-1234)"'
    assert "-e '.[dev,cpu]'" in _install_line(_dry_run(tmp_path, gpu_machine, "ACCEL=cpu"))
    tpu = _install_line(_dry_run(tmp_path, None, "ACCEL=tpu"))
    assert (
        "-e '.[dev,tpu]'" in tpu and "--find-links https://storage.googleapis.com/libtpu-tf-releases" in tpu
    )
    wrong = _dry_run(tmp_path, None, "ACCEL=quantum")
    assert wrong.returncode != 0 and "ACCEL must be cpu, gpu or tpu" in wrong.stderr


def test_each_build_is_an_extra_and_none_is_installed_unasked():
    import configparser

    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert "tensorflow" not in setup["options"]["install_requires"]
    extras = setup["options.extras_require"]
    assert extras["cpu"].split() == ["tensorflow-cpu==2.21.0"]
    assert extras["gpu"].split() == ["tensorflow[and-cuda]==2.21.0"]
