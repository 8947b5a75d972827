"""What every experiment provides, the registry, and data preparation shared by all of them.

An experiment module `eN_*.py` has the same shape as every other: a config dataclass,
`build_model(config, features)`, `compile_arguments(config)` (loss and metrics), `sampler(...)`,
optional `callbacks(config, model)`, and an `EXPERIMENT` that names them.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from musictf import config as config_module
from musictf import files
from musictf.data import corpus as corpus_module
from musictf.data.representation import RollRepresentation, TokenRepresentation, transposed_pieces
from musictf.errors import ConfigError, MusicTFError

MODULES = ("e1_note_lstm", "e2_roll_seq2one", "e3_roll_seq2seq", "e4_polyphonic", "e5_wavenet")


@dataclasses.dataclass(frozen=True)
class Experiment:
    number: int
    name: str
    config_class: type
    kind: str  # "tokens", "pianoroll" or "audio"
    target: str  # pipeline target: "next" or "window"
    build_model: Callable
    compile_arguments: Callable
    sampler: Callable
    callbacks: Callable = lambda config, model: []
    # Hooks for experiments whose data is not windows of one array per piece (experiment 5);
    # None means the shared symbolic implementation.
    make_representation: Callable | None = None
    make_datasets: Callable | None = None  # (experiment, config, data, strategy) -> (train, valid, steps)
    test_metrics: Callable | None = None  # (model, config, data, split) -> (metrics, baseline)
    write_samples: Callable | None = None  # like generate.generate_samples
    prepare_source: Callable | None = None  # (config) -> PreparedData or None to use the symbolic corpus

    @property
    def slug(self) -> str:
        return f"e{self.number}_{self.name}"

    @property
    def experiment_file(self) -> Path:
        return config_module.EXPERIMENTS_DIR / f"{self.slug}.toml"

    def load_config(self, preset: str, overrides=(), preset_file: str | Path | None = None):
        """`preset` from experiments/eN_*.toml, or from `preset_file` (e.g. a tuner's best_preset.toml)."""
        return config_module.load_config(self.config_class, preset_file or self.experiment_file, preset, overrides)

    def representation(self, config):
        if self.make_representation is not None:
            return self.make_representation(config)
        if self.kind == "tokens":
            return TokenRepresentation(config.token_mode)
        return RollRepresentation(config.steps_per_quarter, config.roll_encoding)


def get_experiment(key: str | int) -> Experiment:
    """By number ("4"), slug ("e4_polyphonic") or name ("polyphonic")."""
    key = str(key).strip().lower()
    for module_name in MODULES:
        number, _, name = module_name.partition("_")
        if key in (number[1:], number, module_name, name):
            return importlib.import_module(f"musictf.experiments.{module_name}").EXPERIMENT
    raise ConfigError(f"unknown experiment {key!r}; choose 1-5 (or: {', '.join(MODULES)})")


@dataclasses.dataclass
class PreparedData:
    corpus: corpus_module.Corpus
    splits: dict[str, list]  # split -> pieces
    representation: TokenRepresentation | RollRepresentation
    arrays: dict[str, list[np.ndarray]]  # split -> one array per piece (train split augmented)

    def manifest(self) -> dict:
        by_file = split_files_with_hashes(self.splits, self.corpus.file_hashes)
        return {
            "source": self.corpus.source,
            "data_hash": data_hash(by_file),
            "pieces": {split: len(pieces) for split, pieces in self.splits.items()},
            "steps": {split: int(sum(len(a[0] if isinstance(a, tuple) else a) for a in arrays))
                      for split, arrays in self.arrays.items()},
            "files": by_file,
            "skipped": self.corpus.report.skipped,
        }


def split_files_with_hashes(splits: dict[str, list], file_hashes: dict[str, str]) -> dict[str, dict]:
    """file id -> {"split", "sha256"}: what a run's manifest records of its data."""
    return {piece.file_id: {"split": split, "sha256": file_hashes.get(piece.file_id)}
            for split, pieces in splits.items() for piece in pieces}


def data_hash(by_file: dict[str, dict]) -> str:
    """One short hash of which files, with which contents, fell in which split."""
    return files.sha256_text("".join(f"{k}{v['sha256']}" for k, v in sorted(by_file.items())))[:16]


def prepare_data(experiment: Experiment, config, representation=None, progress: bool = True,
                 run_data_hash: str | None = None) -> PreparedData:
    """Corpus -> split -> representation (fitted on train unless given) -> arrays per split.

    With a given (trained) representation, data other than the run's own (its data hash differs
    from `run_data_hash`, the manifest's) must fit it, or MusicTFError says so. The run's own data
    is never refused: tokens of its valid and test splits that training never saw are expected,
    and the metrics count them.
    """
    if experiment.prepare_source is not None:
        prepared = experiment.prepare_source(config)
        if prepared is not None:
            return prepared
    corpus = corpus_module.load_corpus(
        config.source,
        max_files=config.max_files,
        timeout=config.parse_timeout,
        max_file_megabytes=config.max_file_megabytes,
        keep_truncated_midi=config.keep_truncated_midi,
        progress=progress,
    )
    splits = corpus_module.split_pieces(corpus.pieces, config.split_seed, config.valid_fraction, config.test_fraction)
    if not splits["train"]:
        raise MusicTFError(f"{config.source}: the split left no training pieces")
    token_augment = experiment.kind == "tokens" and config.transpose_range > 0
    train_pieces = transposed_pieces(splits["train"], config.transpose_range) if token_augment else splits["train"]
    if representation is None:
        representation = experiment.representation(config).fit(train_pieces)
    elif data_hash(split_files_with_hashes(splits, corpus.file_hashes)) != run_data_hash:
        representation.check_fits(splits["test"] or splits["train"], config.source)
    arrays = {split: [representation.encode(piece) for piece in pieces] for split, pieces in splits.items()}
    arrays["train"] = [representation.encode(piece) for piece in train_pieces]
    return PreparedData(corpus, splits, representation, arrays)
