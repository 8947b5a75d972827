"""tf.distribute on the CPU, through the user's command (`musictf train`):

- mirrored over 2 logical CPUs and multi-worker with 2 local processes (TF_CONFIG on 127.0.0.1)
  each end with the weights of one process trained on the same global batch;
- a worker killed mid-training stops its peer with one clear line, and rerunning both resumes;
- the TPU path without a TPU is one clear error, and `auto` falls back.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from musictf import keras_internals, multiworker
from musictf.distribute import get_strategy
from musictf.errors import MusicTFError

PER_REPLICA_BATCH = 4
# Randomness that differs per replica is switched off, so every strategy computes the same thing:
# dropout, and (experiment 4) scheduled sampling, whose ratio is 1.0 in the first epoch.
EXACT = {
    "1": ["dropout_rate=0"],
    # experiment 2 trains on every step: an added loss, which must be scaled for the replicas too
    "2": ["lstm_dropout=0", "dense_dropout=0", "epochs=1", "steps_per_epoch=4"],
    "4": ["lstm_dropout=0", "dense_dropout=0", "epochs=1", "steps_per_epoch=4"],
    "5": [],
}


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def _tf_config(ports: list[int], index: int) -> str:
    workers = [f"127.0.0.1:{port}" for port in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def _train(experiment, run_dir, settings, batch, strategy="default", environment=None):
    command = [
        sys.executable,
        "-m",
        "musictf",
        "train",
        experiment,
        "--preset",
        "smoke",
        "--run-dir",
        str(run_dir),
        "--strategy",
        strategy,
        "--set",
        f"batch_size={batch}",
    ]
    for setting in settings:
        command += ["--set", setting]
    return subprocess.Popen(
        command,
        env=os.environ | (environment or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process, timeout=400):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out, err


def _weights(run_dir: Path) -> list[np.ndarray]:
    import keras

    import musictf.layers  # noqa: F401  (registers the custom layers)

    return keras.saving.load_model(run_dir / "checkpoints" / "last.keras", compile=False).get_weights()


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["1", "2", "4", "5"])
def test_mirrored_and_multi_worker_end_with_single_process_weights(experiment, tmp_path, bach_small):
    settings = EXACT[experiment]
    ports = _free_ports(2)
    single = _train(experiment, tmp_path / "single", settings, 2 * PER_REPLICA_BATCH)
    mirrored = _train(
        experiment,
        tmp_path / "mirrored",
        settings,
        PER_REPLICA_BATCH,
        "mirrored",
        {"MUSICTF_LOGICAL_CPUS": "2"},
    )
    workers = [
        _train(
            experiment,
            tmp_path / "multiworker",
            settings,
            PER_REPLICA_BATCH,
            "multiworker",
            {"TF_CONFIG": _tf_config(ports, index)},
        )
        for index in range(2)
    ]
    for process in (single, mirrored, *workers):
        _finish(process)

    reference = _weights(tmp_path / "single")
    for name in ("mirrored", "multiworker"):
        weights = _weights(tmp_path / name)
        assert len(weights) == len(reference)
        difference = max(float(np.max(np.abs(a - b))) for a, b in zip(weights, reference, strict=True))
        assert difference < 1e-5, f"{name} differs from one process by {difference}"
    # Only the chief wrote: one history, no stray files from the other worker.
    run = tmp_path / "multiworker"
    assert json.loads((run / "state.json").read_text())["training"] == "complete"
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == []
    assert not (run / "backup").exists()


@pytest.mark.slow
def test_two_workers_streaming_from_shards_each_read_only_their_own(tmp_path, bach_small):
    """Issue 26: on the sharded path each worker streams its own training shards (every other one),
    counted from the shard read log each process keeps; validation reads every shard on both."""
    ports = _free_ports(2)
    settings = ["stream_above_megabytes=0", "shard_megabytes=0.05", "epochs=2", "steps_per_epoch=3"]
    logs = [tmp_path / f"reads-{index}" for index in range(2)]
    workers = [
        _train(
            "2",
            tmp_path / "run",
            settings,
            PER_REPLICA_BATCH,
            "multiworker",
            {"TF_CONFIG": _tf_config(ports, index), "MUSICTF_SHARD_READ_LOG": str(logs[index])},
        )
        for index in range(2)
    ]
    for process in workers:
        _finish(process)
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["arrays"] == "streamed from shards"
    index = json.loads(
        next(
            (Path(os.environ["MUSICTF_CACHE_DIR"]) / "arrays").glob("*-0.05MB.shards/index.json")
        ).read_text()
    )
    train_shards = [shard["file"] for shard in index["splits"]["train"]["shards"]]
    assert len(train_shards) >= 4
    read = [{line.split()[1] for line in log.read_text().splitlines()} for log in logs]
    for worker, names in enumerate(read):
        own = set(train_shards[worker::2])
        assert {name for name in names if name.startswith("train-")} == own, f"worker {worker} read {names}"
        assert any(name.startswith("valid-") for name in names)
    assert read[0] & read[1] & set(train_shards) == set()


@pytest.mark.slow
def test_a_dead_worker_stops_its_peer_clearly_and_a_restart_resumes(tmp_path, bach_small):
    run_dir, ports = tmp_path / "run", _free_ports(2)
    settings = ["epochs=4", "steps_per_epoch=40"]

    def start(index):
        return _train(
            "4", run_dir, settings, PER_REPLICA_BATCH, "multiworker", {"TF_CONFIG": _tf_config(ports, index)}
        )

    chief, worker = start(0), start(1)
    metadata = run_dir / "backup" / "training_metadata.json"
    deadline = time.time() + 300
    while not metadata.exists() and time.time() < deadline and chief.poll() is None:
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    started = time.time()
    _, err = chief.communicate(timeout=120)
    assert chief.returncode == 2, err[-3000:]
    message = err.strip().splitlines()[-1]
    assert "a peer worker died or is unreachable" in message and "resume" in message, err[-3000:]
    assert time.time() - started < 60
    done = json.loads(metadata.read_text())["epoch"]
    assert 1 <= done < 4, "the kill came too late to test resuming"

    ports[:] = _free_ports(2)
    chief, worker = start(0), start(1)
    (chief_out, chief_err), (_, worker_err) = _finish(chief), _finish(worker)
    assert "resuming" in chief_err and "resuming" in worker_err
    assert f"Epoch {done + 1}/4" in chief_out and "Epoch 1/4" not in chief_out
    assert json.loads((run_dir / "state.json").read_text())["training"] == "complete"


@pytest.mark.slow
def test_a_multi_worker_search_runs_in_lockstep_and_only_the_chief_writes(tmp_path, bach_small):
    run_dir, ports = tmp_path / "search", _free_ports(2)
    processes = []
    for index in range(2):
        command = [
            sys.executable,
            "-m",
            "musictf",
            "tune",
            "4",
            "--preset",
            "smoke",
            "--max-trials",
            "2",
            "--strategy",
            "multiworker",
            "--run-dir",
            str(run_dir),
        ]
        processes.append(
            subprocess.Popen(
                command,
                env=os.environ | {"TF_CONFIG": _tf_config(ports, index)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    (chief_out, _), (worker_out, _) = [_finish(process) for process in processes]
    assert "2 trials run now" in chief_out
    assert "worker worker-1 finished; the chief writes" in worker_out
    assert len((run_dir / "results.md").read_text().splitlines()) == 3 + 2
    assert sorted(path.name for path in (run_dir / "search").iterdir() if path.name.startswith("trial_")) == [
        "trial_0",
        "trial_1",
    ]


def test_multi_worker_needs_a_cluster_description(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(MusicTFError, match="needs TF_CONFIG"):
        get_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(MusicTFError, match="not a valid cluster description"):
        get_strategy("multiworker")


def test_chief_is_the_chief_task_or_else_worker_zero(monkeypatch):
    assert multiworker.is_chief("default") and multiworker.is_chief("mirrored")
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 0))
    assert multiworker.is_chief("multiworker")
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 1))
    assert not multiworker.is_chief("multiworker")
    with_chief = {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(with_chief))
    assert not multiworker.is_chief("multiworker")


def test_the_keras_functions_the_multi_worker_shim_replaces_are_unchanged():
    """Fails when Keras changes the code the shim replaces: then check keras-team/keras#20585, and
    update or remove musictf/multiworker.py (and its recorded hashes)."""
    assert keras_internals.source_hashes() == keras_internals.RECORDED_SOURCES


def test_tpu_without_a_tpu_is_one_clear_error_and_auto_falls_back():
    with pytest.raises(MusicTFError, match="no TPU found"):
        get_strategy("tpu")
    assert get_strategy("auto").num_replicas_in_sync == 1
    with pytest.raises(MusicTFError, match="unknown strategy"):
        get_strategy("gpu-please")


@pytest.mark.slow  # keeps `make test` under 10 minutes on 2 cores
def test_mirrored_strategy_over_two_logical_cpus(tmp_path, cache_dir):
    command = [
        sys.executable,
        "-m",
        "musictf",
        "train",
        "1",
        "--preset",
        "smoke",
        "--strategy",
        "mirrored",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    environment = os.environ | {"MUSICTF_CACHE_DIR": str(cache_dir), "MUSICTF_LOGICAL_CPUS": "2"}
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "2 replica(s), global batch 32" in finished.stderr
    assert "devices: CPU:0, CPU:1" in finished.stderr
