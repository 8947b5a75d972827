"""An ablation: an experiment's documented additions switched on one at a time, cumulatively.

The steps live beside the presets, in `experiments/eN_*.toml`, as an `[[ablation]]` array: each step a
`name` and the config fields it `set`s on top of the steps before it. Every step is trained on the
same preset (budget, split and seed) and scored by the common protocol, so the rows differ only by
what the steps change. Results go to `runs/ablation/<experiment>-<preset>/`: one run directory per
step and `ablation.json`, which `musictf report` turns into a table and a figure. A step whose run
has finished is not trained again, so an interrupted ablation resumes.

Example (`make ablation-4`):
    musictf ablation 4 --preset cpu
"""

from __future__ import annotations

import re
from pathlib import Path

from musictf import config as config_module
from musictf import files, rundir
from musictf.errors import ConfigError
from musictf.quality import QUALITY_KEYS, closer_statistics

ABLATION_ROOT = rundir.RUNS_ROOT / "ablation"


def ablation_steps(experiment) -> list[tuple[str, dict]]:
    """(name, fields set) per step, from the experiment's TOML file."""
    document = config_module.read_experiment_file(experiment.experiment_file)
    steps = document.get("ablation", [])
    if not steps:
        raise ConfigError(f"{experiment.experiment_file.name}: no [[ablation]] steps")
    result = []
    for index, step in enumerate(steps):
        if not isinstance(step.get("name"), str) or not isinstance(step.get("set", {}), dict):
            raise ConfigError(
                f"{experiment.experiment_file.name}: [[ablation]] step {index + 1} needs a name and a set "
                "table"
            )
        result.append((step["name"], dict(step.get("set", {}))))
    return result


def step_row(index: int, name: str, changed: dict, metrics: dict, run_dir: Path) -> dict:
    """One row of the ablation table from a step's metrics.json."""
    test, baseline = metrics["test"], metrics["baseline"]
    row = {
        "step": index,
        "name": name,
        "set": changed,
        "run_dir": str(run_dir),
        "frame_nll_nats": test.get("frame_nll_nats"),
        "markov_nll_nats": baseline.get("markov_nll_nats"),
        "f1": test.get("f1"),
        "precision": test.get("precision"),
        "recall": test.get("recall"),
        "threshold": test.get("threshold"),
        "samples": metrics["samples"],
        "test_split_statistics": metrics["test_split_statistics"],
    }
    if metrics.get("baseline_samples"):
        row["closer_than_baseline"] = closer_statistics(
            metrics["samples"], metrics["test_split_statistics"], metrics["baseline_samples"]
        )[0]
        row["baseline_samples"] = metrics["baseline_samples"]
    return row


def run_ablation(experiment, preset: str, overrides=(), root: Path = ABLATION_ROOT) -> Path:
    """Trains and scores every step; returns the path of ablation.json."""
    from musictf.run import train_and_evaluate

    steps = ablation_steps(experiment)
    folder = Path(root) / f"{experiment.slug}-{preset}"
    cumulative: dict = {}
    rows = []
    for index, (name, changed) in enumerate(steps, start=1):
        cumulative |= changed
        pairs = [f"{key}={value}" for key, value in cumulative.items()] + list(overrides)
        config = experiment.load_config(preset, pairs)
        run_dir = folder / f"{index}-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}"
        done = (run_dir / "metrics.json").exists() and rundir.read_state(run_dir).get(
            "training"
        ) == "complete"
        if done and rundir.read_config_file(run_dir)["config"] == config_module.to_dict(config):
            metrics = rundir.read_json(
                run_dir / "metrics.json", "delete this step's run folder to train it again"
            )
        else:
            print(f"ablation step {index}/{len(steps)}: {name}")
            metrics = train_and_evaluate(experiment, config, run_dir, preset=preset)
        rows.append(step_row(index, name, changed, metrics, run_dir))
    path = folder / "ablation.json"
    files.write_json(
        path,
        {"experiment": experiment.slug, "preset": preset, "steps": rows, "statistics": list(QUALITY_KEYS)},
    )
    return path
