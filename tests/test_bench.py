"""The benchmark harness at smoke size: it runs, writes bench.json and bench.md, and every figure
holds real measurements. Not a timed test: nothing here asserts a speed."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from musictf import files

ROOT = Path(__file__).resolve().parents[1]


def _bench(tmp_path, cache_dir, *arguments):
    out = tmp_path / "reports"
    finished = subprocess.run(
        [sys.executable, "-m", "tools.perf", "bench", "--size", "smoke", "--out", str(out), *arguments],
        capture_output=True,
        text=True,
        timeout=900,
        env=os.environ | {"MUSICTF_CACHE_DIR": str(cache_dir)},
        cwd=ROOT,  # `tools` is the repository's, not the installed package's
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads((out / "bench.json").read_text()), (out / "bench.md").read_text()


@pytest.mark.slow  # keeps `make test` under 10 minutes on 2 cores
def test_smoke_benchmark_without_training_figures(tmp_path, cache_dir, bach_small):
    """The quick figures (about 20 s); the training figures are in the slow test below."""
    results, page = _bench(
        tmp_path, cache_dir, "--only", "corpus", "--only", "generation", "--runs-root", str(tmp_path)
    )
    assert set(results["seconds"]) == {"corpus", "generation"}
    assert (
        results["corpus"]["cache_hit_speedup"]["median"] > 1
    )  # a hit reads array columns; a cold parse runs music21
    assert results["generation"]["experiments"]["1"]["speedup"]["median"] > 0
    batched = results["generation"]["experiments"]["1"]
    assert batched["batched_streams"] > 1 and batched["batched_steps_per_second"]["median"] > 0
    assert "batched /s" in page
    assert "## 1. Corpus" in page and "## 5. Generation" in page and "## 2–4. Training" not in page
    flags = results["machine"]["cpu_flags"]  # the features the ratios depend on, named in the page
    assert isinstance(flags, list) and "CPU features: " in page and all(flag in page for flag in flags)


@pytest.mark.slow
def test_smoke_benchmark_writes_every_figure(tmp_path, cache_dir, bach_small):
    runs = tmp_path / "runs"
    run = runs / "e4_polyphonic" / "cpu-20260101-000000"
    files.write_json(
        run / "state.json",
        {
            "training": "complete",
            "finished": "2026-01-01 00:00 UTC",
            "peak_rss_mb": {"process": 1234.5, "largest_child": 210.0},
        },
    )
    results, page = _bench(tmp_path, cache_dir, "--runs-root", str(runs))
    assert results["machine"]["threads"] >= 1 and results["machine"]["versions"]["tensorflow"]

    corpus = results["corpus"]
    assert corpus["files"] == 4 and corpus["pieces"] >= 4
    assert corpus["cache_hit_speedup"]["median"] > 1  # a hit reads array columns; a cold parse runs music21

    for number in "12345":
        entry = results["training"]["experiments"][number]
        for mode in ("float32", "mixed_bfloat16", "xla"):
            assert entry["modes"][mode]["samples_per_second"]["median"] > 0
        assert entry["pipeline_over_in_memory"]["median"] > 0
        assert (
            (entry["hoisted_lstm_speedup"]["median"] > 0)
            if number != "5"
            else "hoisted_lstm_speedup" not in entry
        )
        assert ("unrolled_lstm_speedup" in entry or "unrolled_lstm_failed" in entry) == (number != "5")
        assert entry["double_batch_throughput"]["median"] > 0
    for number in "1234":
        entry = results["generation"]["experiments"][number]
        assert entry["incremental_per_second"]["median"] > 0 and entry["speedup"]["median"] > 0
    (wavenet,) = results["wavenet"]["receptive_fields"].values()
    assert wavenet["receptive_field"] == 8 and wavenet["real_time_factor"]["median"] > 0

    memory = results["memory"]["experiments"]
    assert memory["4"]["peak_rss_mb"]["process"] == 1234.5 and memory["1"]["run"] is None

    for heading in (
        "## 1. Corpus",
        "## 2–4. Training",
        "## 5. Generation",
        "## 6. WaveNet",
        "## 7. Peak memory",
    ):
        assert heading in page
    assert "| 4 | 1234 MB | 210 MB |" in page and "not measured" in page


def test_unknown_figure_is_one_line(capsys):
    from tools.perf.__main__ import main

    assert main(["bench", "--only", "sorting"]) == 2
    assert "no such figure" in capsys.readouterr().err
    assert main(["bench", "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


@pytest.mark.skipif(
    not __import__("tools.perf.pytorch", fromlist=["available"]).available(),
    reason="torch is only in the [bench] extra",
)
def test_pytorch_models_train_on_musictf_batches(bach_small):
    import numpy as np

    from musictf.experiments import get_experiment
    from tools.perf.pytorch import Trainer

    cases = [(2, [(4, 8, 176)], (4, 176)), (4, [(4, 8, 176), (4, 8, 176)], (4, 8, 176))]
    for (number, input_shapes, target_shape), within_frame in itertools.product(cases, ("true", "false")):
        config = get_experiment(str(number)).load_config("smoke", [f"frame_autoregression={within_frame}"])
        trainer = Trainer(number, config, 176)
        rng = np.random.default_rng(0)
        targets = (rng.random(target_shape) < 0.05).astype(np.float32)
        inputs = tuple(rng.random(shape).astype(np.float32) for shape in input_shapes)
        inputs = (*inputs, targets) if config.frame_autoregression else inputs  # as musictf's batches
        losses = [trainer.step(inputs if len(inputs) > 1 else inputs[0], targets) for _ in range(20)]
        assert losses[-1] < losses[0]
        if config.frame_autoregression:  # the within-frame weights learn too
            assert float(trainer.model.within_frame.kernel.abs().sum()) > 0


def test_gpu_check_refuses_in_one_line_without_a_gpu(capsys, tmp_path):
    import tensorflow as tf

    from tools.perf.__main__ import main

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU: make gpu-check runs for real here")
    assert main(["gpu-check", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sees no GPU" in err
    assert not list(tmp_path.iterdir()), "nothing written"


@pytest.mark.slow
def test_the_gpu_check_harness_runs_every_check_at_smoke_size_on_the_cpu(tmp_path, cache_dir):
    """What `make gpu-check` does on a GPU, tiny and on the CPU: the page names the device (here: none),
    and the cuDNN count is 0 on the CPU, where Keras runs its generic LSTM loop."""
    from tools.perf.gpu import run_gpu_check

    results = run_gpu_check(tmp_path / "reports", "smoke", allow_cpu=True, runs_root=tmp_path / "runs")
    page = (tmp_path / "reports" / "gpu.md").read_text()
    assert "none: the CPU" in page and "e2_roll_seq2one" in page and "e4_polyphonic" in page
    assert [entry["cudnn_lstm_ops"] for entry in results["training"]] == [0, 0]
    assert set(results["precision"]["modes"]) | set(results["precision"]["failed"]) == {
        "float32",
        "mixed_float16",
        "mixed_bfloat16",
        "xla",
    }
    assert results["generation"]["experiments"]["2"]["speedup"]["median"] > 1


def test_the_scaling_corpus_is_real_midi_that_reads_back_as_written(tmp_path):
    from musictf.data.parse import notes_from_midi_file
    from tools.perf.scaling import midi_bytes

    path = tmp_path / "variant.mid"
    path.write_bytes(midi_bytes([60, 64, 67, 72], [0.0, 0.0, 1.0, 1.5], [1.0, 2.0, 0.5, 0.25], bpm=135))
    notes, counts = notes_from_midi_file(path)
    assert [(n.pitch, n.onset, n.duration) for n in notes] == [
        (60, 0.0, 1.0),
        (64, 0.0, 2.0),
        (67, 1.0, 0.5),
        (72, 1.5, 0.25),
    ]
