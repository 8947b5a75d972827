"""`musictf benchmarks` (`make benchmarks DATA=folder`) as a library: which runs the published
files in a folder call for (`benchmark_plan`), and running them, then the report (`run_plan`). A
notebook can call both; the CLI only parses the flags.

Example:
    plan = benchmark_plan(Path("bl2012"), ["2", "3"], ["within", "independent"])
    index = run_plan(plan, Path("reports"))
"""

from __future__ import annotations

import sys
from pathlib import Path

from musictf import config as config_module
from musictf import rundir
from musictf.benchmarks import PRESETS, dataset_name
from musictf.data.published import PUBLISHED_EXTENSIONS
from musictf.errors import MusicTFError
from musictf.experiments import get_experiment
from musictf.report import build_report
from musictf.run import train_and_evaluate


def benchmark_files(folder: Path) -> dict[str, Path]:
    """{data set: its file} for the published files in `folder`, in the table's order (top level; the
    first by name where a data set has several forms)."""
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.name.lower().endswith(PUBLISHED_EXTENSIONS):
            name, _ = dataset_name(str(path), False)
            if name in PRESETS and name not in found:
                found[name] = path
    return {name: found[name] for name in PRESETS if name in found}  # in the table's order


def benchmark_plan(folder: Path, experiments: list[str], families: list[str]) -> list[tuple[str, str, Path]]:
    """(experiment, preset, file) for every run `musictf benchmarks` makes, in the table's order."""
    files = benchmark_files(folder)
    if not files:
        raise MusicTFError(
            f"{folder}: none of the published files (jsb-chorales-quarter, nottingham, musedata, piano-midi; "
            f".json, .pkl or .mat) is there"
        )
    suffixes = {"within": "", "independent": "-independent"}
    return [
        (number, PRESETS[dataset] + suffixes[family], path)
        for dataset, path in files.items()
        for number in experiments
        for family in families
    ]


def run_plan(plan: list[tuple[str, str, Path]], report_dir: Path) -> Path:
    """Trains and evaluates each planned run (an unfinished one resumes, a finished one is not trained
    again), then builds the report from the latest runs."""
    for index, (number, preset, path) in enumerate(plan, start=1):
        experiment = get_experiment(number)
        config = experiment.load_config(preset, [f"source={path}"])
        fields = config_module.to_dict(config)
        run_dir = rundir.find_unfinished(experiment.slug, preset, fields, evaluated_too=True)
        where = f"benchmark {index}/{len(plan)}: {experiment.slug} --preset {preset} --source {path}"
        if run_dir is not None and (run_dir / "metrics.json").is_file():
            print(f"{where}: evaluated already in {run_dir}", file=sys.stderr)
            continue
        run_dir = run_dir or rundir.new_run_dir(experiment.slug, preset)
        print(where, file=sys.stderr)
        result = train_and_evaluate(experiment, config, run_dir, preset)
        rundir.record_finish(run_dir)
        print(f"{run_dir}: test NLL {result['test']['frame_nll_nats']:.3f} nats per frame", file=sys.stderr)
    return build_report(None, report_dir)
