"""`python -m tools.perf bench` (`make bench`) and `python -m tools.perf gpu-check` (`make
gpu-check`): the performance harness's two commands, with musictf's own flags, errors and exit
statuses (`musictf.cli.run_command`)."""

from __future__ import annotations

import os
from pathlib import Path

from musictf import rundir
from musictf.cli import _Parser, add_verbose_flags, run_command
from musictf.errors import MusicTFError
from musictf.tensorflow_logs import import_tensorflow
from tools.perf import FIGURES, run_benchmarks


def _add_gpu_check_command(commands) -> None:
    gpu_check = commands.add_parser(
        "gpu-check",
        help="on a GPU, at most 10 minutes: paper presets, cuDNN, mixed precision, XLA, generation",
        description="On one GPU: train experiments 2 and 4 at --preset paper for two short epochs, confirm "
        "their LSTMs run cuDNN's kernel, time float32 against mixed_float16, mixed_bfloat16 and XLA, and run "
        "the generation and WaveNet benchmarks; writes reports/gpu.md and gpu.json with the device named. "
        "Without a GPU it refuses in one line.",
    )
    gpu_check.add_argument(
        "--size", choices=["full", "smoke"], default="full", help="smoke: tiny (default: full)"
    )
    gpu_check.add_argument(
        "--allow-cpu",
        action="store_true",
        help="run the checks even without a GPU (with --size smoke, to test the harness); its figures say "
        "nothing about a GPU",
    )
    gpu_check.add_argument(
        "--out", default=str(rundir.REPORTS_ROOT), help=f"output folder (default: {rundir.REPORTS_ROOT})"
    )
    gpu_check.add_argument(
        "--runs-root", default="runs/gpu-check", help="where its training runs go (default: runs/gpu-check)"
    )


def _add_bench_command(commands) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure speed and memory; write reports/bench.json and bench.md",
        description="Performance figures, each a ratio of two things measured side by side in this run: "
        "corpus parsing vs the cache, pipeline vs in-memory batches, training throughput (float32, "
        "mixed_bfloat16, XLA), musictf vs PyTorch (if installed), incremental vs predict-per-step "
        "generation, fast vs naive WaveNet generation, peak memory of the latest runs, and ingest, memory "
        "and training speed on MIDI corpora of 1,000 to 16,000 files (scaling).",
    )
    bench.add_argument(
        "--size",
        choices=["full", "smoke"],
        default="full",
        help="full: the cpu presets and the scaling corpora, 10-20 min on 2 cores; smoke: tiny, checks "
        "the harness (default: full)",
    )
    bench.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="FIGURE",
        help="measure only this figure: corpus, training, generation, wavenet, memory or scaling; repeatable",
    )
    bench.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="threads for TensorFlow and PyTorch, pinned (default: all cores)",
    )
    bench.add_argument(
        "--out", default=str(rundir.REPORTS_ROOT), help=f"output folder (default: {rundir.REPORTS_ROOT})"
    )
    bench.add_argument(
        "--runs-root", default="runs", help="where to find the runs for the memory figure (default: runs)"
    )


def _command_gpu_check(args) -> int:
    from tools.perf.gpu import run_gpu_check

    results = run_gpu_check(Path(args.out), args.size, args.allow_cpu, Path(args.runs_root))
    print(f"{results['device']}: {Path(args.out) / 'gpu.md'}")
    return 0


def _command_bench(args) -> int:

    unknown = sorted(set(args.only) - set(FIGURES))
    if unknown:
        raise MusicTFError(f"--only {unknown[0]}: no such figure; choose from {', '.join(FIGURES)}")
    if args.threads < 1:
        raise MusicTFError(f"--threads must be at least 1, got {args.threads}")
    figures = [name for name in FIGURES if not args.only or name in args.only]
    run_benchmarks(args.size, figures, Path(args.out), args.threads, Path(args.runs_root))
    print(f"{Path(args.out) / 'bench.json'}\n{Path(args.out) / 'bench.md'}")
    return 0


def build_parser() -> _Parser:
    parser = _Parser(prog="python -m tools.perf", description="musictf's performance harness.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    _add_bench_command(commands)
    _add_gpu_check_command(commands)
    add_verbose_flags(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import_tensorflow(verbose=args.verbose)
    handlers = {"bench": _command_bench, "gpu-check": _command_gpu_check}
    return run_command(handlers[args.command], args)


if __name__ == "__main__":
    raise SystemExit(main())
