"""`make bench` (`python -m tools.perf bench`): performance figures, each a ratio of two things
measured side by side in one run (the machines are shared and noisy), written to
reports/bench.json and bench.md.

Figures: 1 corpus parsing and the cache, 2 input pipeline against in-memory batches, 3 training
throughput in float32 / mixed_bfloat16 / XLA, 4 musictf against the same models in PyTorch,
5 incremental generation against `model.predict` per step, 6 fast against naive WaveNet generation,
7 peak memory of each `make experiment-N`, 8 ingest and training as the corpus grows (scaling.py).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from musictf import rundir

FIGURES = ("corpus", "training", "generation", "wavenet", "memory", "scaling")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much each figure of `make bench` and each check of `make gpu-check` measures. `full` is
    sized for `make bench` to finish within 20 minutes on 2 cores (docs/performance.md has its
    times); `smoke` only checks that the harnesses run."""

    preset: str = "cpu"
    corpus_files: int = 120
    corpus_repeats: int = 3
    training_steps: tuple = ((1, 12), (2, 12), (3, 12), (4, 12), (5, 3))
    training_repeats: int = 3
    generation_steps: int = 512
    predict_steps: int = 12
    generation_repeats: int = 3
    wavenet_layers: tuple = (8, 10, 11)  # 2 stacks: receptive fields 511, 2047, 4095
    wavenet_fast_samples: int = 4000
    wavenet_naive_samples: int = 12
    wavenet_repeats: int = 3
    scaling_files: tuple = (1000, 4000, 16000)  # and the time to write the corpora once
    scaling_train_steps: int = 200  # per epoch, so that the epoch's validation pass weighs little
    # `make gpu-check`: its training and precision checks; its generation and WaveNet figures take the
    # sizes above, at one WaveNet depth
    check_preset: str = "paper"  # the documented models
    check_epochs: int = 2
    check_steps_per_epoch: int = 50
    check_eval_windows: int = 512
    check_max_files: int = 0
    check_mode_steps: int = 20
    check_mode_repeats: int = 3
    check_wavenet_layers: int = 10  # 2 stacks: receptive field 2047


SIZES = {
    "full": Sizes(),
    "smoke": Sizes(
        preset="smoke",
        corpus_files=4,
        corpus_repeats=1,
        training_steps=((1, 3), (2, 3), (3, 3), (4, 3), (5, 2)),
        training_repeats=1,
        generation_steps=8,
        predict_steps=2,
        generation_repeats=1,
        wavenet_layers=(3,),
        wavenet_fast_samples=64,
        wavenet_naive_samples=2,
        wavenet_repeats=1,
        scaling_files=(6, 12),
        scaling_train_steps=2,
        check_preset="smoke",
        check_epochs=1,
        check_steps_per_epoch=2,
        check_eval_windows=16,
        check_max_files=12,
        check_mode_steps=2,
        check_mode_repeats=1,
        check_wavenet_layers=3,
    ),
}


def run_benchmarks(
    size: str = "full",
    figures=FIGURES,
    out_dir: Path = rundir.REPORTS_ROOT,
    threads: int = 2,
    runs_root: Path = Path("runs"),
    source: str = "music21:bach",
) -> dict:
    """Measures `figures` and writes `out_dir`/bench.json and bench.md; returns the results."""
    from tools.perf.timing import machine, pin_threads

    pin_threads(threads)
    from musictf import files
    from tools.perf import report
    from tools.perf.corpus import corpus_figures
    from tools.perf.generation import generation_figures, wavenet_figures
    from tools.perf.memory import memory_figures
    from tools.perf.scaling import scaling_figures
    from tools.perf.training import Prepared, training_figures

    sizes = SIZES[size]
    prepared = Prepared(sizes.preset)
    results = {"size": size, "machine": machine(threads), "sizes": dataclasses.asdict(sizes), "seconds": {}}
    steps = dict(sizes.training_steps)
    tasks = {
        "corpus": lambda: corpus_figures(source, sizes.corpus_files, sizes.corpus_repeats),
        "training": lambda: training_figures(prepared, sorted(steps), steps, sizes.training_repeats),
        "generation": lambda: generation_figures(
            prepared, [1, 2, 3, 4], sizes.generation_steps, sizes.predict_steps, sizes.generation_repeats
        ),
        "wavenet": lambda: wavenet_figures(
            prepared,
            list(sizes.wavenet_layers),
            sizes.wavenet_fast_samples,
            sizes.wavenet_naive_samples,
            sizes.wavenet_repeats,
        ),
        "memory": lambda: memory_figures(runs_root, "cpu"),
        "scaling": lambda: scaling_figures(sizes.scaling_files, sizes.scaling_train_steps, threads),
    }
    for name in figures:
        started = time.perf_counter()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        results[name] = tasks[name]()
        results["seconds"][name] = round(time.perf_counter() - started, 1)
        print(f"bench: {name} took {results['seconds'][name]:.0f} s", file=sys.stderr, flush=True)
    if "scaling" in results:
        from musictf.plots import save_scaling

        save_scaling(results["scaling"]["rows"], Path(out_dir) / "figures" / "scaling")
    files.write_json(Path(out_dir) / "bench.json", results)
    files.write_text(Path(out_dir) / "bench.md", report.markdown(results))
    return results
