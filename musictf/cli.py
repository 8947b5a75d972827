"""The thin command line: every command parses flags and calls one library function.

User errors (MusicTFError, bad flags) print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
from pathlib import Path

from musictf import config as config_module
from musictf import multiworker, rundir
from musictf.config import DEFAULT_MAX_TRIALS, OBJECTIVES, PRECISIONS, TUNERS, ExperimentConfig
from musictf.data.pianoroll import SIXTEENTH_GRID
from musictf.data.tokens import DEFAULT_TOKEN_MODE, TOKEN_MODES
from musictf.distribute import STRATEGIES
from musictf.errors import FieldError, MusicTFError
from musictf.tensorflow_logs import import_tensorflow


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_experiment_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", help="experiment number 1-6 (or its name, e.g. polyphonic)")
    parser.add_argument(
        "--preset",
        default="cpu",
        help="preset from experiments/eN_*.toml: smoke, cpu, paper, ... (default: cpu)",
    )
    parser.add_argument(
        "--preset-file", help="read the preset from this TOML file instead (e.g. a search's best_preset.toml)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config field, e.g. --set units=128; repeatable",
    )
    parser.add_argument(
        "--source",
        help="shorthand for --set source=...: music21:<composer>, a folder of "
        "MIDI/MusicXML/ABC/kern files (or WAV for experiment 5)",
    )
    parser.add_argument(
        "--strategy",
        default=STRATEGIES[0],
        choices=STRATEGIES,
        help="tf.distribute strategy: mirrored = all local GPUs; multiworker = the cluster in "
        "TF_CONFIG (same command and --run-dir on every worker); auto = TPU, else GPUs, else default "
        "(default: default)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="shorthand for --set precision=...; mixed precision pays on GPUs, rarely on CPUs "
        "(docs/performance.md) (default: the preset's, float32)",
    )
    parser.add_argument(
        "--run-dir", help="run directory; rerunning with the same one resumes an interrupted run"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="start a new run even if an unfinished one matches"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes that parse files the cache does not hold yet (default: one per core; also "
        "MUSICTF_WORKERS)",
    )


def _add_data_command(commands) -> None:
    data = commands.add_parser(
        "data",
        help="parse a corpus, print its statistics and write the ingest report",
        description="Parse a corpus (cached), print statistics and skipped files.",
    )
    data.add_argument(
        "--source",
        default=ExperimentConfig.source,
        help=f"music21:<composer or path> or a folder (default: {ExperimentConfig.source})",
    )
    data.add_argument(
        "--representation",
        choices=["tokens", "pianoroll"],
        default="tokens",
        help="statistics for note tokens or piano rolls (default: tokens)",
    )
    data.add_argument(
        "--token-mode",
        choices=TOKEN_MODES,
        default=DEFAULT_TOKEN_MODE,
        help="notes: pitch and length per note; duration: one token per slice; pitch: the "
        f"original's (default: {DEFAULT_TOKEN_MODE}, as experiment 1)",
    )
    data.add_argument(
        "--steps-per-quarter",
        type=int,
        default=SIXTEENTH_GRID,
        help=f"piano-roll grid, steps per quarter note (default: {SIXTEENTH_GRID})",
    )
    data.add_argument(
        "--max-files",
        type=int,
        default=ExperimentConfig.max_files,
        help="use only the first N files (default: all)",
    )
    data.add_argument("--workers", type=int, default=0, help="parser processes (default: one per core)")
    data.add_argument(
        "--split-seed",
        type=int,
        default=ExperimentConfig.split_seed,
        help=f"seed of the file-level split (default: {ExperimentConfig.split_seed})",
    )
    data.add_argument(
        "--transpose-to-c",
        action="store_true",
        help="move every piece to C major or C minor by its estimated key, as the `jsb` presets do",
    )


TRAINING_COMMANDS = (
    (
        "train",
        "train an experiment into a run directory",
        "Train experiment N on a preset. Rerunning the same command resumes.",
    ),
    (
        "run",
        "train, generate samples and evaluate (what `make experiment-N` does)",
        "Train, then generate samples, then evaluate on the test split.",
    ),
)


def _add_training_commands(commands) -> None:
    for name, summary, description in TRAINING_COMMANDS:
        _add_experiment_arguments(commands.add_parser(name, help=summary, description=description))


def _add_evaluate_command(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="write metrics.json for a run's test split",
        description="Evaluate a run on its test split under the common protocol.",
    )
    evaluate.add_argument("run", help="run directory")
    evaluate.add_argument("--source", help="evaluate on another source (its vocabulary must fit)")
    evaluate.add_argument("--checkpoint", choices=["best", "last"], default="best")
    evaluate.add_argument(
        "--split",
        choices=["valid", "test"],
        help="score this split and set the samples beside it (choose sampling settings on valid); the "
        "result is written beside the run's own metrics.json",
    )
    evaluate.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="draw and measure the samples with another setting (temperature, top_p, frame_candidates, "
        "statistics_samples, ...); the result is written beside the run's own metrics.json",
    )


def _add_generate_command(commands) -> None:
    generate = commands.add_parser(
        "generate",
        help="sample MIDI files (and piano-roll PNGs) from a run",
        description="Sample pieces from a trained run with an incremental compiled loop.",
    )
    generate.add_argument("run", help="run directory")
    generate.add_argument("--num", type=int, help="number of pieces (default: the run's num_samples)")
    generate.add_argument("--length", type=int, help="tokens or time steps per piece after the primer")
    generate.add_argument("--temperature", type=float, help="divides the logits; lower is more conservative")
    generate.add_argument(
        "--rhythm-temperature",
        type=float,
        help="experiment 1, note tokens: the temperature of time shifts and lengths "
        "(--temperature is then the pitches'); 0: --temperature for all",
    )
    generate.add_argument("--top-k", type=int, help="sample from the k most likely tokens; 0 disables")
    generate.add_argument("--top-p", type=float, help="nucleus sampling cutoff; 1.0 disables")
    generate.add_argument(
        "--prime",
        help="a MIDI/MusicXML/ABC/kern file whose opening primes the model (default: a test-split piece)",
    )
    generate.add_argument("--seed", type=int, help="sampling seed (default: the run's seed)")
    generate.add_argument("--out", help="output folder (default: RUN/samples)")
    generate.add_argument("--checkpoint", choices=["best", "last"], default="best")
    generate.add_argument("--roll", help="experiment 5: render this MIDI/MusicXML/ABC/kern file's piano roll")
    generate.add_argument(
        "--program", help="experiment 5: timbre to render in (piano, organ, strings, flute)"
    )


def _add_tune_command(commands) -> None:
    tune = commands.add_parser(
        "tune",
        help="Keras Tuner search over the experiment's [search] space",
        description="Hyperparameter search with Keras Tuner. Rerunning the same command resumes.",
    )
    _add_experiment_arguments(tune)
    tune.add_argument("--tuner", choices=TUNERS, default=TUNERS[0])
    tune.add_argument(
        "--max-trials",
        type=int,
        default=DEFAULT_MAX_TRIALS,
        help=f"trials to run (random, bayesian; default: {DEFAULT_MAX_TRIALS})",
    )
    tune.add_argument(
        "--objective",
        default="val_loss",
        choices=list(OBJECTIVES),
        help="what the search optimizes (default: val_loss; val_f1 / val_frame_nll for experiments 2-4)",
    )


def _add_ablation_command(commands) -> None:
    ablation = commands.add_parser(
        "ablation",
        help="train the [[ablation]] steps of an experiment, each adding one thing (make ablation-4)",
        description="Run the experiment's ablation from its TOML file: each step switches on one more of its "
        "documented additions, on the same preset, split and seed; results in runs/ablation/. Rerunning "
        "resumes: finished steps are not trained again.",
    )
    ablation.add_argument("experiment", help="experiment number 1-6 (or its name)")
    ablation.add_argument("--preset", default="cpu", help="preset every step starts from (default: cpu)")
    ablation.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config field in every step; repeatable",
    )


def _add_report_command(commands) -> None:
    report = commands.add_parser(
        "report",
        help="build reports/: figures, tables and index.html",
        description="Turn run directories into write-up material under reports/.",
    )
    report.add_argument(
        "runs", nargs="*", help="run directories (default: the latest run of each experiment and preset)"
    )
    report.add_argument(
        "--out", default=str(rundir.REPORTS_ROOT), help=f"output folder (default: {rundir.REPORTS_ROOT})"
    )


def _add_benchmarks_command(commands) -> None:
    benchmarks = commands.add_parser(
        "benchmarks",
        help="run the polyphonic benchmark presets on the published files in a folder, then the report",
        description="For each published file found in FOLDER (jsb-chorales-quarter, nottingham, musedata, "
        "piano-midi; .json, .pkl or .mat, named as published), train and evaluate the data set's presets "
        "(PRESET: keys conditioned within the frame; PRESET-independent: the 88 keys independent), then "
        "build reports/ with one benchmark block per data set. Each run takes 10-30 minutes on 2 cores; "
        "rerunning resumes an unfinished run and does not train a finished one again.",
    )
    benchmarks.add_argument("folder", help="folder holding the published files")
    benchmarks.add_argument(
        "--experiment",
        dest="experiments",
        action="append",
        choices=["2", "3", "6"],
        help="experiment to run the presets of; repeatable (default: 2 and 3, each holding some of the "
        "best rows, the table choosing on the valid split; 6 is the tied-parallel family)",
    )
    benchmarks.add_argument(
        "--family",
        dest="families",
        action="append",
        choices=["within", "independent"],
        help="within: keys conditioned within the frame (experiment 6: on the keys below, up its pitch "
        "axis); independent: as the published LSTM/GRU/TCN; repeatable (default: both)",
    )
    benchmarks.add_argument("--list", action="store_true", help="print the runs it would make, and stop")
    benchmarks.add_argument(
        "--out", default=str(rundir.REPORTS_ROOT), help=f"report folder (default: {rundir.REPORTS_ROOT})"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="musictf", description="Reproducible deep-learning music-generation experiments.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    _add_data_command(commands)
    _add_training_commands(commands)
    _add_evaluate_command(commands)
    _add_generate_command(commands)
    _add_tune_command(commands)
    _add_ablation_command(commands)
    _add_report_command(commands)
    _add_benchmarks_command(commands)
    add_verbose_flags(commands)
    return parser


def add_verbose_flags(commands) -> None:
    """`--verbose` on every command: TensorFlow's start-up log lines, hidden by default."""
    for command in commands.choices.values():
        command.add_argument(
            "--verbose", action="store_true", help="show TensorFlow's start-up log lines (hidden by default)"
        )


def _command_data(args) -> int:
    from musictf.config import replace
    from musictf.data.prepared import describe_corpus
    from musictf.data.representation import RollRepresentation, TokenRepresentation

    config = replace(
        ExperimentConfig(),
        {
            "source": args.source,
            "max_files": args.max_files,
            "split_seed": args.split_seed,
            "transpose_to_c": args.transpose_to_c,
        },
        origin="musictf data",
    )
    representation = (
        TokenRepresentation(args.token_mode)
        if args.representation == "tokens"
        else RollRepresentation(args.steps_per_quarter)
    )
    if args.workers < 0:
        raise MusicTFError(f"--workers must be 0 (one per core) or more, got {args.workers}")
    print(describe_corpus(config, representation, workers=args.workers or None))
    return 0


def _experiment_and_config(args):
    """The experiment and its resolved config; logical CPU devices are set up before TF starts."""
    from musictf import distribute

    distribute.configure_from_environment()
    from musictf.experiments import get_experiment

    workers = getattr(args, "workers", 0)
    if workers < 0:
        raise MusicTFError(f"--workers must be 0 (one per core) or more, got {workers}")
    if workers:
        from musictf.data.corpus import WORKERS_VARIABLE

        os.environ[WORKERS_VARIABLE] = str(workers)

    experiment = get_experiment(args.experiment)
    overrides = list(args.overrides) + ([f"source={args.source}"] if args.source else [])
    overrides += [f"precision={args.precision}"] if getattr(args, "precision", None) else []
    return experiment, experiment.load_config(args.preset, overrides, args.preset_file)


def _run_dir_for(args, experiment, config):

    if args.run_dir:
        return Path(args.run_dir)
    if args.strategy == "multiworker":
        raise MusicTFError("--strategy multiworker needs --run-dir, the same path on every worker")
    if not args.fresh:
        unfinished = rundir.find_unfinished(experiment.slug, args.preset, config_module.to_dict(config))
        if unfinished is not None:
            print(f"resuming the unfinished run {unfinished} (use --fresh for a new one)", file=sys.stderr)
            return unfinished
    return rundir.new_run_dir(experiment.slug, args.preset)


def _command_report(args) -> int:
    from musictf.report import build_report

    print(build_report([Path(p) for p in args.runs] or None, Path(args.out)))
    return 0


def _command_train(args) -> int:
    and_evaluate = args.command == "run"
    experiment, config = _experiment_and_config(args)
    run_dir = _run_dir_for(args, experiment, config)
    chief = multiworker.is_chief(args.strategy)
    if not and_evaluate:
        from musictf.train import train

        train(experiment, config, run_dir, args.preset, args.strategy, chief=chief)
    else:
        from musictf.run import train_and_evaluate

        result = train_and_evaluate(experiment, config, run_dir, args.preset, args.strategy, chief=chief)
    if _is_other_worker(chief, run_dir):
        return 0
    print(f"run directory: {run_dir}")
    if and_evaluate:
        from musictf.report import console_summary, describe_samples

        print(console_summary(result))
        print(
            f"checkpoints: {run_dir / 'checkpoints'}\nhistory: {run_dir / 'history.csv'}\nmetrics: "
            f"{result['metrics_file']}\nsamples: {describe_samples(result['sample_files'])} in "
            f"{run_dir / 'samples'}"
        )
    rundir.record_finish(run_dir)
    return 0


def _is_other_worker(chief: bool, run_dir) -> bool:
    """True (after saying so) for a multi-worker process that is not the chief: it writes nothing."""
    if chief:
        return False
    print(f"worker {'-'.join(map(str, multiworker.task()))} finished; the chief writes {run_dir}")
    return True


def _command_tune(args) -> int:
    experiment, config = _experiment_and_config(args)
    from musictf.tune import tune

    run_dir = (
        Path(args.run_dir)
        if args.run_dir
        else rundir.RUNS_ROOT / "tune" / f"{experiment.slug}-{args.preset}-{args.tuner}"
    )
    chief = multiworker.is_chief(args.strategy)
    result = tune(
        experiment,
        config,
        args.preset,
        run_dir,
        args.tuner,
        args.max_trials,
        args.objective,
        args.strategy,
        chief=chief,
    )
    if _is_other_worker(chief, run_dir):
        return 0
    changes = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in result["best_changes"].items()) or "nothing"
    print(f"{result['trials_run_now']} trials run now; the best trial changed {changes}")
    print(
        f"results: {run_dir / 'results.md'}\nbest preset: {run_dir / 'best_preset.toml'} (musictf train "
        f"{experiment.number} --preset-file {run_dir / 'best_preset.toml'} --preset best)"
    )
    return 0


def _command_ablation(args) -> int:
    from musictf import distribute

    distribute.configure_from_environment()
    from musictf.ablation import run_ablation
    from musictf.experiments import get_experiment

    experiment = get_experiment(args.experiment)
    experiment.load_config(args.preset, args.overrides)  # a wrong preset or field fails here, in one line
    path = run_ablation(experiment, args.preset, args.overrides)
    print(f"ablation: {path} (musictf report adds its table and figure)")
    return 0


def _command_evaluate(args) -> int:
    from musictf.run import evaluate, open_run

    sampling = config_module.parse_overrides(args.overrides)
    result = evaluate(
        open_run(args.run),
        source=args.source,
        checkpoint=args.checkpoint,
        split=args.split,
        sampling=sampling,
    )
    from musictf.report import console_summary

    print(console_summary(result))
    print(f"metrics: {result['metrics_file']}")
    return 0


# `generate`'s flags: the config fields they set, and the writer options they pass.
GENERATE_FLAGS = {
    "num_samples": "--num",
    "generate_length": "--length",
    "temperature": "--temperature",
    "rhythm_temperature": "--rhythm-temperature",
    "top_k": "--top-k",
    "top_p": "--top-p",
    "seed": "--seed",
}
GENERATE_OPTIONS = {"roll_file": "--roll", "program": "--program"}
GENERATE_ARGUMENTS = {"prime_file": "--prime"}


def _command_generate(args) -> int:
    from musictf.run import generate, open_run

    def value(flag: str):
        return getattr(args, flag[2:].replace("-", "_"))

    overrides = {field: value(flag) for field, flag in GENERATE_FLAGS.items()}
    try:
        out_dir, written = generate(
            open_run(args.run),
            overrides,
            out_dir=args.out,
            prime_file=args.prime,
            options={option: value(flag) for option, flag in GENERATE_OPTIONS.items()},
            checkpoint=args.checkpoint,
        )
    except FieldError as error:  # the library names the field; the user typed a flag
        flag = (GENERATE_FLAGS | GENERATE_OPTIONS | GENERATE_ARGUMENTS).get(error.field, error.field)
        raise MusicTFError(error.said_as(flag)) from None
    for item in written:
        print(out_dir / (item.get("midi") or item["wav"]))
    return 0


def _command_benchmarks(args) -> int:
    from musictf.benchmark_runs import benchmark_plan, run_plan

    if not Path(args.folder).is_dir():
        raise MusicTFError(f"{args.folder}: not a folder (the folder holding the published files)")
    plan = benchmark_plan(
        Path(args.folder), args.experiments or ["2", "3"], args.families or ["within", "independent"]
    )
    if args.list:
        for number, preset, path in plan:
            print(f"musictf run {number} --preset {preset} --source {path}")
        return 0
    print(run_plan(plan, Path(args.out)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "data" and not getattr(args, "list", False):  # data and plans never need TensorFlow
        import_tensorflow(verbose=args.verbose)
    commands = {
        "data": _command_data,
        "train": _command_train,
        "run": _command_train,
        "report": _command_report,
        "tune": _command_tune,
        "benchmarks": _command_benchmarks,
        "evaluate": _command_evaluate,
        "generate": _command_generate,
        "ablation": _command_ablation,
    }
    return run_command(commands[args.command], args)


def run_command(handler, args) -> int:
    """Runs one command's handler as every musictf command runs: a MusicTFError or a full disk is one
    line and exit status 2, Ctrl-C 130 and SIGTERM 143, each with what to do next."""
    signal.signal(signal.SIGTERM, _terminate)  # kill, systemd, docker stop: unwind as Ctrl-C does
    try:
        return handler(args)
    except MusicTFError as error:
        print(f"musictf: error: {' '.join(str(error).splitlines())}", file=sys.stderr)
        return 2
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(
            f"musictf: error: {error.filename or 'a file'}: the disk is full; free some space and rerun",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt as stop:
        how = "terminated" if isinstance(stop, Terminated) else "interrupted"
        after = AFTER_INTERRUPT.get(args.command, "rerun the same command to resume")
        print(f"musictf: {how}; {after}", file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130


AFTER_INTERRUPT = {
    "generate": "the samples that were there before are kept",
    "report": "rerun it to build the report",
    "data": "what was parsed is cached; rerun it to go on",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that every `finally` (temp files, locks) runs."""


def _terminate(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated()
