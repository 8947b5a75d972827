"""Keras Tuner searches built from the experiment's config dataclass: one source of truth.

The search space lives beside the presets in `experiments/eN_*.toml`, as `[search.<preset>]` (or
`[search.default]`): each key is a config field, each value a list (a choice) or a table
`{min, max, step, sampling}` (a range; int or float from the field's type). Every trial's model
is built by the experiment's own `build_model` from a config with the trial's values, and trained
through the same datasets and callbacks as `musictf train`.

Results go in the run directory: the tuner's trials (`search/`), `results.md` and `results.csv`
(one row per trial), and `best_preset.toml`, a preset file `musictf train` accepts directly with
`--preset-file RUN/best_preset.toml --preset best`. Rerunning the same command resumes: finished
trials are kept and only unfinished ones run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import sys
import threading
from pathlib import Path

import keras
import keras_tuner as kt
import tensorflow as tf

from musictf import config as config_module
from musictf import distribute, files, multiworker, rundir
from musictf.config import DEFAULT_MAX_TRIALS, OBJECTIVES, TUNERS, ExperimentConfig
from musictf.distribute import set_precision
from musictf.errors import ConfigError, MusicTFError
from musictf.experiments.base import Experiment, prepare_data
from musictf.train import build_and_compile


def load_search_space(experiment: Experiment, preset: str) -> dict[str, object]:
    document = config_module.read_experiment_file(experiment.experiment_file)
    spaces = document.get("search", {})
    space = spaces.get(preset, spaces.get("default"))
    if not space:
        raise ConfigError(
            f"{experiment.experiment_file.name}: no [search.{preset}] or [search.default] table"
        )
    types = config_module.field_types(experiment.config_class)
    unknown = sorted(set(space) - set(types))
    if unknown:
        raise ConfigError(f"{experiment.experiment_file.name} [search]: {unknown[0]!r} is not a config field")
    return space


def hyperparameter(hp: kt.HyperParameters, name: str, spec, kind: type):
    """One Keras Tuner hyperparameter from a search-space entry and the config field's type."""
    if isinstance(spec, list):
        return hp.Choice(name, spec) if kind is not bool else hp.Boolean(name)
    if not isinstance(spec, dict) or "min" not in spec or "max" not in spec:
        raise ConfigError(f"[search] {name}: give a list of values or a table with min and max")
    sampling = spec.get("sampling", "linear")
    if kind is int:
        return hp.Int(name, spec["min"], spec["max"], step=spec.get("step", 1), sampling=sampling)
    if kind is float:
        return hp.Float(name, spec["min"], spec["max"], step=spec.get("step"), sampling=sampling)
    raise ConfigError(f"[search] {name}: a range needs an int or float field, not {kind.__name__}")


class ConfigHyperModel(kt.HyperModel):
    """Builds and fits one trial from `base_config` with the trial's values applied.

    Args:
        experiment: which experiment's build_model, loss, metrics and callbacks to use.
        base_config: the preset's config; the search space overrides some of its fields.
        space: the search space, field -> list or range table.
        data: prepared once for the whole search.
    """

    def __init__(self, experiment: Experiment, base_config, space: dict, data, verbose="auto"):
        super().__init__(name=experiment.slug, tunable=True)
        self.experiment, self.base_config, self.space, self.data = experiment, base_config, space, data
        self.types = config_module.field_types(experiment.config_class)
        self.fits = 0
        self.verbose = verbose

    def trial_config(self, hp: kt.HyperParameters):
        values = {name: hyperparameter(hp, name, spec, self.types[name]) for name, spec in self.space.items()}
        return config_module.replace(self.base_config, values, origin="search space")

    def build(self, hp):
        config = self.trial_config(hp)
        return build_and_compile(
            self.experiment, config, self.data.representation.features, tf.distribute.get_strategy()
        )

    def fit(self, hp, model, *args, **kwargs):
        config = self.trial_config(hp)
        self.fits += 1
        train, valid, steps_per_epoch = self.experiment.make_datasets(
            config, self.data, tf.distribute.get_strategy()
        )
        callbacks = list(kwargs.get("callbacks", [])) + self.experiment.callbacks(model, config)
        callbacks.append(InterruptBetweenBatches())
        if config.ema_momentum:  # a trial is scored on its averaged weights, as `musictf train` is
            callbacks.append(keras.callbacks.SwapEMAWeights())
        return model.fit(
            train,
            epochs=kwargs.get("epochs", config.epochs),
            steps_per_epoch=steps_per_epoch,
            validation_data=valid,
            callbacks=callbacks,
            verbose=self.verbose,
            shuffle=False,
        )


class InterruptBetweenBatches(keras.callbacks.Callback):
    """Raises the Ctrl-C that `interrupts_between_batches` held back, between two batches: raised
    inside TensorFlow's C code it could surface as a SystemError, which Keras Tuner records as a
    FAILED trial (never run again) before it goes on with the next."""

    def on_train_batch_end(self, batch, logs=None):
        _raise_held_interrupt()

    def on_test_batch_end(self, batch, logs=None):
        _raise_held_interrupt()


_interrupted = threading.Event()


def _raise_held_interrupt() -> None:
    if _interrupted.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_between_batches():
    """While a search runs, SIGINT only sets a flag that `InterruptBetweenBatches` acts on (a second
    Ctrl-C interrupts at once); afterwards SIGINT is as it was, and a held one is raised."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def hold(signum, frame):
        if _interrupted.is_set():
            raise KeyboardInterrupt
        _interrupted.set()

    _interrupted.clear()
    signal.signal(signal.SIGINT, hold)
    try:
        yield
        _raise_held_interrupt()
    finally:
        signal.signal(signal.SIGINT, previous)
        _interrupted.clear()


def make_tuner(
    name: str, hypermodel, objective: str, max_trials: int, directory: Path, seed: int, strategy, epochs: int
):
    common = {
        "objective": kt.Objective(objective, OBJECTIVES[objective]),
        "directory": str(directory),
        "project_name": "search",
        "overwrite": False,
        "seed": seed,
        "distribution_strategy": strategy,
        "max_consecutive_failed_trials": 2,
    }
    if name == "random":
        return kt.RandomSearch(hypermodel, max_trials=max_trials, **common)
    if name == "bayesian":
        return kt.BayesianOptimization(hypermodel, max_trials=max_trials, **common)
    if name == "hyperband":
        return kt.Hyperband(hypermodel, max_epochs=epochs, factor=3, hyperband_iterations=1, **common)
    raise MusicTFError(f"unknown tuner {name!r}; choose one of {', '.join(TUNERS)}")


def results_rows(tuner, space: dict) -> list[dict]:
    rows = []
    for trial in tuner.oracle.trials.values():
        score = trial.score
        row = {
            "trial": trial.trial_id,
            "status": trial.status,
            "score": float(score) if score is not None and math.isfinite(score) else None,
        }
        row |= {name: trial.hyperparameters.values.get(name) for name in space}
        rows.append(row)
    direction = OBJECTIVES[tuner.oracle.objective.name]
    finished = [row for row in rows if row["score"] is not None]
    sign = -1 if direction == "max" else 1
    ordered = sorted(finished, key=lambda row: (sign * row["score"], row["trial"]))  # ties: by trial id
    return ordered + sorted((row for row in rows if row["score"] is None), key=lambda row: row["trial"])


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def results_markdown(rows: list[dict], objective: str, space: dict, defaults) -> str:
    names = list(space)
    header = f"| rank | trial | {objective} | " + " | ".join(names) + " | status |"
    lines = [header, "|" + "---|" * (len(names) + 4)]
    lines.append("| default | – | – | " + " | ".join(_cell(getattr(defaults, n)) for n in names) + " | – |")
    for rank, row in enumerate(rows, 1):
        score = f"{row['score']:.4f}" if row["score"] is not None else "–"
        lines.append(
            f"| {rank} | {row['trial']} | {score} | "
            + " | ".join(_cell(row[n]) for n in names)
            + f" | {row['status']} |"
        )
    return "\n".join(lines) + "\n"


def preset_toml(name: str, values: dict, comment: str) -> str:
    def literal(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return repr(value)

    body = "\n".join(f"{key} = {literal(value)}" for key, value in sorted(values.items()))
    return f"# {comment}\n[presets.{name}]\n{body}\n"


def tune(
    experiment: Experiment,
    config,
    preset: str,
    run_dir: Path,
    tuner_name: str = "random",
    max_trials: int = DEFAULT_MAX_TRIALS,
    objective: str = "val_loss",
    strategy_name: str = "default",
    verbose="auto",
    chief: bool | None = None,
) -> dict:
    """A Keras Tuner search of `experiment`'s search space around `config`, kept in `run_dir`
    (resumed where it stopped); `chief` as for `train.train`."""
    if objective not in OBJECTIVES:
        raise MusicTFError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if max_trials < 1:
        raise MusicTFError(f"--max-trials must be at least 1, got {max_trials}")
    space = load_search_space(experiment, preset)
    # first: a multi-worker strategy must precede other TF work
    strategy = distribute.get_strategy(strategy_name)
    # the model's metrics are TF objects, so they are made (to check the objective) only now
    metric_names = {getattr(metric, "name", "") for metric in experiment.compile_arguments(config)["metrics"]}
    if objective != "val_loss" and objective.removeprefix("val_") not in metric_names:
        raise MusicTFError(
            f"objective {objective} needs a piano-roll experiment (2-4): {experiment.slug} reports no "
            f"{objective.removeprefix('val_')}"
        )
    chief = multiworker.is_chief(strategy_name) if chief is None else chief
    run_dir = Path(run_dir)
    search = {
        "experiment": experiment.slug,
        "preset": preset,
        "tuner": tuner_name,
        "objective": objective,
        "space": space,
        "config": config_module.to_dict(config),
    }
    with rundir.lock(run_dir, f"tuning {experiment.slug}") if chief else contextlib.nullcontext():
        if chief:
            check_same_search(run_dir, search)
        job = TuningJob(
            experiment, config, run_dir, search, max_trials, strategy, strategy_name, chief, verbose
        )
        return _search(job)


def check_same_search(run_dir: Path, search: dict) -> None:
    """Refuses, in one line, a folder that holds another search, or a search it cannot check."""
    path = run_dir / "search.json"
    if not path.exists():
        if (run_dir / "search").exists():
            raise MusicTFError(
                f"{run_dir}: holds a search without its search.json, so which search it is cannot be "
                "checked; use another --run-dir"
            )
        return
    saved = rundir.read_json(path, "it records what the search is: use another --run-dir")
    if {k: v for k, v in saved.items() if k != "max_trials"} != search:
        raise MusicTFError(
            f"{run_dir}: holds a search with another tuner, objective, space or config; use another --run-dir"
        )


@dataclasses.dataclass(frozen=True)
class TuningJob:
    """One search as `tune` checked it; `search` is what search.json records of it (experiment,
    preset, tuner, objective, space and config)."""

    experiment: Experiment
    config: ExperimentConfig
    run_dir: Path
    search: dict
    max_trials: int
    strategy: tf.distribute.Strategy
    strategy_name: str
    chief: bool
    verbose: str | int


def _search(job: TuningJob) -> dict:
    experiment, config, run_dir, chief = job.experiment, job.config, job.run_dir, job.chief
    search, max_trials, verbose = job.search, job.max_trials, job.verbose
    space, preset, tuner_name, objective = (search[key] for key in ("space", "preset", "tuner", "objective"))
    strategy, strategy_name = job.strategy, job.strategy_name
    data = prepare_data(experiment, config)
    with multiworker.tuner_directory(run_dir, strategy_name, strategy) as tuner_dir:
        if chief:
            rundir.write_json(run_dir / "search.json", search | {"max_trials": max_trials})
            rundir.save_run_files(
                run_dir, experiment.slug, preset, config, data.representation, data.manifest()
            )
        set_precision(config.precision)
        hypermodel = ConfigHyperModel(experiment, config, space, data, verbose=verbose if chief else 0)
        tuner = make_tuner(
            tuner_name, hypermodel, objective, max_trials, tuner_dir, config.seed, strategy, config.epochs
        )
        with multiworker.peer_errors_explained(strategy_name), interrupts_between_batches():
            tuner.search(verbose=(1 if verbose == "auto" else verbose) if chief else 0)
        rows = results_rows(tuner, space)
    if not chief:
        return {"rows": rows, "trials_run_now": hypermodel.fits}
    if not any(row["score"] is not None for row in rows):
        raise MusicTFError(f"{run_dir}: no trial finished; see {run_dir / 'search'} for each trial's error")
    best = rows[0]
    best_config = config_module.replace(config, {name: best[name] for name in space}, origin="best trial")
    defaults = config_module.to_dict(experiment.config_class())
    changed = {k: v for k, v in config_module.to_dict(best_config).items() if defaults[k] != v}
    files.write_text(
        run_dir / "best_preset.toml",
        preset_toml(
            "best",
            changed,
            f"Best of {len(rows)} {tuner_name} trials ({objective} = {best['score']:.4f}) on preset "
            f"{preset!r}; use: musictf train {experiment.number} --preset-file "
            f"{run_dir / 'best_preset.toml'} --preset best",
        ),
    )
    table = results_markdown(rows, objective, space, config)
    files.write_text(run_dir / "results.md", table)
    files.write_text(
        run_dir / "results.csv",
        "\n".join(
            [",".join(rows[0].keys())]
            + [",".join("" if v is None else str(v) for v in row.values()) for row in rows]
        )
        + "\n",
    )
    print(table, file=sys.stdout)
    return {
        "rows": rows,
        "best_config": best_config,
        "trials_run_now": hypermodel.fits,
        "best_changes": {
            name: (getattr(config, name), best[name]) for name in space if getattr(config, name) != best[name]
        },
    }
