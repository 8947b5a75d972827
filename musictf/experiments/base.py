"""The experiment contract, the registry, and the engine's entry into the data stage.

Every experiment module `eN_*.py` has the same shape: a config dataclass, `build_model(config,
features)`, `compile_arguments(config)` (loss and metrics), its sampler, and an `EXPERIMENT` that
fills every slot below. The engine (train, evaluate, tune, the CLI) calls the slots for every stage
and never asks what kind of experiment it runs. Symbolic experiments name the shared
implementations (`prepare_symbolic_data`, `window_datasets`, `roll_test_metrics`, `write_midi_samples`,
...); experiment 5 names the audio ones. Adding experiment 6 means writing one module and one TOML.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import numpy as np

from musictf import config as config_module
from musictf.config import ExperimentConfig
from musictf.data.prepared import PreparedData
from musictf.data.representation import Representation
from musictf.errors import ConfigError

MODULES = (
    "e1_note_lstm",
    "e2_roll_seq2one",
    "e3_roll_seq2seq",
    "e4_polyphonic",
    "e5_wavenet",
    "e6_tied_parallel",
)


class Sampler(Protocol):
    """What an experiment's `sampler` slot returns: `generate` continues each primer by `length`
    steps, drawn from `seed` (experiment 5 also takes its conditioning: rolls and programs)."""

    def generate(self, primes: Any, length: int, seed: int, **conditioning: Any) -> np.ndarray: ...


# The slots' signatures (the Experiment docstring says what each does). Models and runs are typed
# `Any`: Keras models carry their stepper as an attribute, and `run.Run` imports this module.
MakeRepresentation: TypeAlias = Callable[[Any], Representation]
Prepare: TypeAlias = Callable[..., PreparedData]
MakeDatasets: TypeAlias = Callable[..., tuple[Any, Any, int]]
BuildModel: TypeAlias = Callable[[Any, int], Any]
CompileArguments: TypeAlias = Callable[[Any], dict]
MakeSampler: TypeAlias = Callable[[Any, Any, Representation], Sampler]
TestMetrics: TypeAlias = Callable[[Any, PreparedData, Any, str], tuple[dict, dict]]
WriteSamples: TypeAlias = Callable[..., Any]
SampleStatistics: TypeAlias = Callable[[Any, PreparedData, Any, str, Any, Path], dict]
Callbacks: TypeAlias = Callable[[Any, Any], list]
BaselineSamples: TypeAlias = Callable[[PreparedData, np.ndarray, int, int], Any]


def no_callbacks(model, config) -> list:
    return []


@dataclasses.dataclass(frozen=True)
class Experiment:
    """What an experiment provides, one slot per stage.

    Args:
        number, name: "e{number}_{name}" is its slug, module and TOML file name.
        config_class: its frozen config dataclass.
        kind: a description for people and reports ("tokens", "pianoroll" or "audio"); the
            engine never branches on it.
        make_representation: config -> an unfitted representation (tokens, roll or audio).
        prepare: (representation, config, *, fit, progress, run_data_hash) -> PreparedData.
        make_datasets: (config, data, strategy, initial_epoch=0) -> (train, valid, steps_per_epoch),
            in the window layout of the config's `TARGET`.
        build_model: (config, features) -> keras.Model, with its incremental form as `model.stepper`
            (experiment 5: its layers as `model.wavenet_parts`, stepped by its sampler).
        compile_arguments: config -> {"loss", "metrics"} for `model.compile`.
        sampler: (model, config, representation) -> an object whose `generate` draws samples.
        After the data stage every slot takes the run first, then its data and model
        (`run.Run`, `PreparedData`, the Keras model):
        test_metrics: (run, data, model, split) -> (metrics, baseline).
        write_samples: (run, data, model, *, num, length, seed, out_dir, prime_file, options)
            -> the written files, also listed in samples.json.
        sample_statistics: (run, data, model, split, written, measured_dir) -> {"samples",
            "test_split_statistics" and, where the experiment has a count baseline to sample,
            "baseline_samples"}; `written` is the run's `samples.WrittenSamples`.
        callbacks: (model, config) -> extra Keras callbacks (experiment 4's schedule).
        baseline_samples: (data, primes, length, seed) -> continuations of `primes` drawn from the
            experiment's strongest count baseline, for the sample statistics (None for audio).

    Example:
        experiment = get_experiment("4")
        config = experiment.load_config("smoke")
        data = prepare_data(experiment, config)
    """

    number: int
    name: str
    config_class: type[ExperimentConfig]
    kind: str
    make_representation: MakeRepresentation
    prepare: Prepare
    make_datasets: MakeDatasets
    build_model: BuildModel
    compile_arguments: CompileArguments
    sampler: MakeSampler
    test_metrics: TestMetrics
    write_samples: WriteSamples
    sample_statistics: SampleStatistics
    callbacks: Callbacks = no_callbacks
    baseline_samples: BaselineSamples | None = None

    @property
    def target(self) -> str:
        """The window layout of its models (`ExperimentConfig.TARGET`)."""
        return self.config_class.TARGET

    @property
    def slug(self) -> str:
        return f"e{self.number}_{self.name}"

    @property
    def experiment_file(self) -> Path:
        return config_module.EXPERIMENTS_DIR / f"{self.slug}.toml"

    def load_config(self, preset: str, overrides=(), preset_file: str | Path | None = None):
        """`preset` from experiments/eN_*.toml, or from `preset_file` (e.g. a tuner's best_preset.toml)."""
        return config_module.load_config(
            self.config_class, Path(preset_file or self.experiment_file), preset, overrides
        )


def get_experiment(key: str | int) -> Experiment:
    """By number ("4"), slug ("e4_polyphonic") or name ("polyphonic")."""
    key = str(key).strip().lower()
    for module_name in MODULES:
        number, _, name = module_name.partition("_")
        if key in (number[1:], number, module_name, name):
            return importlib.import_module(f"musictf.experiments.{module_name}").EXPERIMENT
    raise ConfigError(f"unknown experiment {key!r}; choose 1-6 (or: {', '.join(MODULES)})")


def prepare_data(
    experiment: Experiment,
    config,
    representation=None,
    progress: bool = True,
    run_data_hash: str | None = None,
) -> PreparedData:
    """The experiment's data: a fresh representation fitted on the train split, or a run's trained
    one (`representation`) with the run's data hash, which then refuses data it does not fit."""
    fit = representation is None
    representation = experiment.make_representation(config) if fit else representation
    return experiment.prepare(representation, config, fit=fit, progress=progress, run_data_hash=run_data_hash)
