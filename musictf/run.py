"""Everything a user does with a run, on one in-memory `Run`: train and evaluate, evaluate, generate.

Like Flax's `train.py` for a work directory: `train_and_evaluate` prepares the data once, trains
into the run directory, and hands the data and the best checkpoint to `evaluate`, which writes the
samples (their one owner), scores the evaluation split and writes metrics.json. `open_run` reads a
run directory back (`rundir.py` does the file I/O); `evaluate` and `generate` work on what it
returns. The CLI only parses flags and calls these, and a notebook can call them too.

Example:
    experiment = get_experiment("4")
    config = experiment.load_config("smoke")
    metrics = train_and_evaluate(experiment, config, "runs/e4/smoke", preset="smoke")
    metrics["test"]["frame_nll_nats"], metrics["baseline"], metrics["history"]["loss"]
    out_dir, written = generate(open_run("runs/e4/smoke"), {"num_samples": 2, "temperature": 0.9})
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras

from musictf import config as config_module
from musictf import files, multiworker, rundir, samples
from musictf.config import ExperimentConfig
from musictf.data import representation as representation_module
from musictf.data.prepared import PreparedData
from musictf.data.representation import Representation
from musictf.distribute import set_precision
from musictf.errors import FieldError, MusicTFError
from musictf.evaluate import metrics_path, source_label
from musictf.experiments.base import Experiment, get_experiment, prepare_data
from musictf.train import train


@dataclasses.dataclass
class Run:
    """A run in memory: what its directory holds, and its data and model once loaded.

    Args:
        path: the run directory.
        experiment: the experiment that trained it.
        preset: the preset it was trained with (`custom` for a library call without one).
        config: its resolved config.
        representation: its trained representation (vocabulary, roll grid or audio settings).
        data_hash: the manifest's: which files, in which split, it was trained on.
        chief: whether this process writes (False for the other workers of a multi-worker run).
        data: the `PreparedData` it was trained, or is evaluated, on, once loaded.
        model: its best (or chosen) checkpoint, once loaded.

    Example:
        run = open_run("runs/e2_roll_seq2one/cpu-20261125-101500")
        run.config.seq_len, run.checkpoint("last")
    """

    path: Path
    experiment: Experiment
    preset: str
    config: ExperimentConfig
    representation: Representation
    data_hash: str | None = None
    chief: bool = True
    data: PreparedData | None = None
    model: keras.Model | None = None

    def checkpoint(self, which: str = "best") -> Path:
        return self.path / "checkpoints" / f"{which}.keras"


def open_run(run_dir: str | Path) -> Run:
    """The run saved in `run_dir`; one MusicTFError naming the file for anything unreadable."""
    path = Path(run_dir)
    saved, spec, manifest = rundir.read_run_files(path)
    experiment = get_experiment(saved["experiment"])
    config = config_module.from_dict(experiment.config_class, saved["config"], origin=f"{path}/config.json")
    try:
        representation = representation_module.from_json(spec)
    except (KeyError, TypeError, ValueError) as error:
        raise MusicTFError(
            f"{path / 'representation.json'}: unreadable ({type(error).__name__}: {error}); "
            f"{rundir.CONFIG_ADVICE}"
        ) from None
    return Run(path, experiment, saved["preset"], config, representation, manifest.get("data_hash"))


def load_model(run: Run, which: str = "best"):
    """The run's checkpoint: the model rebuilt from the run's config (so it has its stepper, see
    steppers.py) with the checkpoint's weights, checked against the run's representation."""
    model = run.experiment.build_model(run.config, run.representation.features)
    rundir.load_checkpoint_weights(model, run.checkpoint(which), run.representation.features)
    return model


def train_and_evaluate(
    experiment: Experiment,
    config,
    run_dir: str | Path,
    preset: str = "custom",
    strategy_name: str = "default",
    verbose: str | int = "auto",
    chief: bool | None = None,
) -> dict:
    """Trains (resuming an interrupted run; a finished training is not repeated), then evaluates
    the best checkpoint, which writes its samples. `chief` as for `train`.

    Returns metrics.json's content with the training history (`"history"`) and the written sample
    files (`"sample_files"`). A multi-worker process that is not the chief trains only, and gets
    `{"history": ...}`.
    """
    run_dir = Path(run_dir)
    chief = multiworker.is_chief(strategy_name) if chief is None else chief
    data = prepare_data(experiment, config)  # once: training, sampling and evaluation share it
    history = train(
        experiment, config, run_dir, preset, strategy_name, data=data, verbose=verbose, chief=chief
    )
    if not chief:
        return {"history": history}
    run = Run(
        run_dir, experiment, preset, config, data.representation, data.manifest()["data_hash"], chief, data
    )
    run.model = load_model(run)
    return evaluate(run) | {"history": history}


# What `evaluate` may change: how samples are drawn and measured, never the model or its data.
SAMPLING_FIELDS = (
    "temperature",
    "rhythm_temperature",
    "top_k",
    "top_p",
    "frame_candidates",
    "statistics_samples",
    "generate_length",
    "excerpt_quarters",
    "seed",
)


def sampling_label(split: str | None, sampling: dict | None) -> str | None:
    """What `evaluate` on another split or with other sampling settings is filed under, beside the
    run's own metrics.json (None for the run's own evaluation)."""
    parts = ([f"{split} split"] if split else []) + [
        f"{key}={value}" for key, value in (sampling or {}).items()
    ]
    return ", ".join(parts) or None


def evaluate(
    run: Run,
    source: str | None = None,
    checkpoint: str = "best",
    split: str | None = None,
    sampling: dict | None = None,
) -> dict:
    """Scores the run on its evaluation split under the common protocol and writes metrics.json,
    with the statistics of its samples (written first, if the run has none yet).

    `run.data` and `run.model`, where the caller has them, are used as they are: nothing is read
    back from disk. With `source`, the run is scored on other data, written beside the run's own
    results (`metrics-<source>-<hash>.json`, `samples/measured-<source>-<hash>/`). When the run's own
    source no longer holds the files it was trained on, its results are kept and the new ones go
    beside them the same way, with a warning. With `split` ("valid": choose sampling settings there,
    never on the test split) or `sampling` (fields of `SAMPLING_FIELDS`, e.g. {"temperature": 0.8}),
    the result is filed beside the run's own the same way.
    """
    unknown = sorted(set(sampling or {}) - set(SAMPLING_FIELDS))
    if unknown:
        raise MusicTFError(
            f"--set {unknown[0]}: evaluate changes only how samples are drawn and measured "
            f"({', '.join(SAMPLING_FIELDS)}); train a new run to change the rest"
        )
    if split not in (None, "valid", "test"):
        raise MusicTFError(f"--split must be valid or test, got {split!r}")
    files.require_writable_dir(run.path, "metrics")
    with rundir.lock(run.path, f"evaluating {run.experiment.slug}"):
        if source == run.config.source:
            source = None
        config = config_module.replace(
            run.config, ({"source": source} if source else {}) | (sampling or {}), "--source / --set"
        )
        data = run.data
        if data is None or source is not None:
            data = prepare_data(
                run.experiment, config, representation=run.representation, run_data_hash=run.data_hash
            )
        manifest = data.manifest()
        label = source
        if split is not None and not data.arrays[split]:
            raise MusicTFError(f"--split {split}: the {split} split of {config.source} is empty")
        if split is not None or sampling:
            label = ", ".join(part for part in (source, sampling_label(split, sampling)) if part)
        if source is None and run.data_hash is not None and manifest["data_hash"] != run.data_hash:
            label = f"{config.source} (data {manifest['data_hash']})"
            print(
                f"musictf: warning: {config.source} no longer holds the files this run was trained on (data "
                f"hash {manifest['data_hash']}, trained on {run.data_hash}); its results are kept, and these "
                "are written beside them",
                flush=True,
            )
        set_precision(config.precision)
        model = run.model if run.model is not None and checkpoint == "best" else load_model(run, checkpoint)
        scored = dataclasses.replace(run, config=config, data=data, model=model)
        split = split or data.evaluation_split()
        test_metrics, baseline = run.experiment.test_metrics(scored, data, model, split)
        valid = {}
        if config.epoch_eval_windows and split != "valid" and data.arrays["valid"]:
            # the epochs scored a sample of the valid split: here is all of it, once
            valid = {"valid": run.experiment.test_metrics(scored, data, model, "valid")[0]}
        written = samples.ensure_samples(run, data, model)
        measured_dir = (
            run.path / "samples" / ("measured" if label is None else f"measured-{source_label(label)}")
        )
        statistics = run.experiment.sample_statistics(scored, data, model, split, written, measured_dir)
        result = {
            "experiment": run.experiment.slug,
            "preset": run.preset,
            "checkpoint": checkpoint,
            "split": split,
            "source": config.source,
            "data_hash": manifest["data_hash"],
            "representation": {k: v for k, v in run.representation.to_json().items() if k != "vocabulary"},
            "test": test_metrics,
            **valid,  # with epoch_eval_windows: the valid split, scored whole (max_eval_windows)
            "baseline": baseline,  # the same targets scored by a model of the train split's frequencies
            **statistics,  # "samples", "test_split_statistics" and, for MIDI, "baseline_samples"
            "config": dataclasses.asdict(config),
        }
        path = metrics_path(run.path, label)
        with rundir.disk_full_explained(run.path, path.name):
            rundir.write_json(path, result)
        return result | {"metrics_file": str(path), "sample_files": written.listed}


def generate(
    run: Run,
    overrides: dict | None = None,
    out_dir: str | Path | None = None,
    prime_file: str | None = None,
    options: dict | None = None,
    checkpoint: str = "best",
) -> tuple[Path, list[dict]]:
    """Samples from the run's checkpoint into `out_dir` (default: the run's samples/), with config
    fields changed by `overrides` (e.g. {"num_samples": 4, "temperature": 0.8}), each held to the
    config's own checks (a value one refuses raises `FieldError` naming the field). The new set
    replaces the old one only once it is written whole. Returns (the folder, the written samples)."""
    config = run.config
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        try:
            config = config_module.replace(config, {key: value}, origin=key)
        except MusicTFError as error:
            raise FieldError(key, str(error)) from None
    run = dataclasses.replace(run, config=config)
    out_dir = files.require_writable_dir(Path(out_dir) if out_dir else run.path / "samples", "samples")
    with rundir.lock(run.path, f"generating from {run.experiment.slug}"):
        data = run.data or prepare_data(
            run.experiment,
            config,
            representation=run.representation,
            progress=False,
            run_data_hash=run.data_hash,
        )
        model = run.model if run.model is not None and checkpoint == "best" else load_model(run, checkpoint)
        written = samples.write_sample_set(run, data, model, out_dir, prime_file, options)
    return out_dir, written
