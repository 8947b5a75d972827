"""Frozen config dataclasses, presets from experiments/*.toml, and `--set key=value` overrides.

A hyperparameter's default lives only in its dataclass. A preset in `experiments/eN_*.toml` lists
only what it changes; `--set` changes one field more. Unknown keys and wrong types are errors.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import typing
from pathlib import Path

from musictf.data.corpus import MAX_FILE_MEGABYTES, PARSE_TIMEOUT
from musictf.data.sources import parse_source
from musictf.errors import ConfigError

EXPERIMENTS_DIR = Path(__file__).resolve().parent.parent / "experiments"
OPTIMIZERS = ("adam", "rmsprop")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# Keras Tuner searches (tune.py): the tuners, and each objective with its direction.
TUNERS = ("random", "hyperband", "bayesian")
OBJECTIVES = {"val_loss": "min", "val_f1": "max", "val_frame_nll": "min", "val_accuracy": "max"}
DEFAULT_MAX_TRIALS = 6  # trials of a search: a few minutes each on the `tune` presets
MAX_SEED = 2**32 - 1  # what Keras's and numpy's seeding accept
MAX_SAMPLES = 1000  # pieces one `generate` writes (four files each)
MAX_STATISTICS_SAMPLES = 10_000  # continuations one evaluation draws and measures


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Fields shared by every experiment: data, split, training loop and sampling."""

    # -- data ------------------------------------------------------------------------------------
    source: str = "music21:bach"  # `music21:<composer or corpus path>` or a folder of MIDI/MusicXML/ABC/kern.
    max_files: int = 0  # Use only the first N files of the source (sorted by path); 0 uses all of them.
    parse_timeout: float = PARSE_TIMEOUT  # Seconds one file may take to parse before it is skipped.
    max_file_megabytes: float = MAX_FILE_MEGABYTES  # Larger files are skipped: a score is rarely above 1 MB.
    # A MIDI file whose chunks end early is skipped as corrupt; true uses the part that is there and
    # lists the file under "truncated" in the ingest report.
    keep_truncated_midi: bool = False
    split_seed: int = 1234  # Fixes the file-level train/valid/test split; kept apart from `seed`.
    valid_fraction: float = 0.1  # Share of files in the validation split (by a hash of the file id).
    test_fraction: float = 0.1  # Share of files in the test split.
    transpose_range: int = 0  # Training-only transposition augmentation, semitones each way; 0 disables.
    # Every piece moved to C major or C minor by its estimated key (musictf.data.keys), as the JSB
    # benchmark files are; the `jsb` presets use it on music21's chorales. A benchmark file is
    # already in C, so with one as the source it resolves to false.
    transpose_to_c: bool = False
    # Each piece is preceded by `seq_len` empty steps (silent frames, <pad> tokens), so that its first
    # step is a target too: the published polyphonic tables score every frame from the first.
    pad_start: bool = False
    # Training reads encoded arrays larger than this many MB from their shards on disk, a few shards
    # at a time (musictf.data.streamed), so memory stays flat as the corpus grows. Smaller ones are
    # held in memory (about 3x their size: the pieces, their concatenation, the tensor), with one
    # table of every window shuffled per epoch, a little faster to batch (docs/scaling-out.md).
    # 0 always streams.
    stream_above_megabytes: float = 64.0
    # Pieces are stored in shards of about this many MB (a piece is never cut): the unit a
    # multi-worker run hands out (each worker reads its own) and the stream reads four at a time.
    shard_megabytes: float = 16.0
    seq_len: int = 32  # Input window, in tokens or time steps.
    # -- training --------------------------------------------------------------------------------
    seed: int = 42  # Weights, shuffling, augmentation and sampling all derive from it.
    batch_size: int = 64  # Per replica; the global batch is this times the number of replicas.
    epochs: int = 10  # Passes of `steps_per_epoch` batches; a checkpoint and a backup after each.
    steps_per_epoch: int = 0  # 0 makes an epoch one pass over the training windows.
    learning_rate: float = 1e-3  # Scale it with the global batch when adding replicas.
    optimizer: str = "adam"  # adam | rmsprop
    # Decoupled weight decay (AdamW's): each step every weight shrinks by weight_decay x the
    # learning rate, apart from the gradient. 0 disables it.
    weight_decay: float = 0.0
    # Polyak averaging: the optimizer keeps a moving average of the weights (this momentum per step;
    # 0.99 averages about the last 100 steps). Validation, early stopping and the checkpoints use the
    # average; training goes on from the raw weights. 0 disables it.
    ema_momentum: float = 0.0
    clipnorm: float = 1.0  # Gradient-norm clipping; 0 disables it.
    precision: str = "float32"  # float32 | mixed_bfloat16 | mixed_float16 (speed: reports/bench.md)
    # Compile training with XLA: faster for LSTMs on CPU, slower combined with bfloat16 (reports/bench.md).
    jit_compile: bool = False
    # Halve the learning rate after this many epochs without a better validation loss; 0 keeps it.
    reduce_lr_patience: int = 0
    # Stop after this many epochs without a better validation loss; 0 trains every epoch. Either way
    # the best checkpoint (by validation loss) is the one evaluated. A resumed run counts afresh.
    early_stopping_patience: int = 0
    max_eval_windows: int = 4096  # Validation and test windows scored per evaluation; 0 scores all.
    # Validation windows scored after each epoch, spread over the split and the same every
    # epoch: what early stopping and the best checkpoint go by. 0 scores max_eval_windows. Where it
    # thins the epochs' validation, the best checkpoint also scores the valid split at
    # max_eval_windows once, after training (metrics.json: "valid", beside "test").
    epoch_eval_windows: int = 0
    # -- generation ------------------------------------------------------------------------------
    num_samples: int = 3  # Pieces written by `generate` and scored by `evaluate`.
    generate_length: int = 256  # Tokens or time steps per generated piece, after the primer.
    # Experiments 1-4: continuations drawn to measure the sample statistics (the evaluation split's
    # openings primed in turn), and as many from the count baseline; fewer are noisy.
    statistics_samples: int = 128
    # Length in quarters of the excerpts that the set-level tests (musictf.realism) cut from the test
    # split, the train split and the samples; 8 is two bars of 4/4.
    excerpt_quarters: float = 8.0
    # Divides the logits before sampling; lower is more conservative. The roll experiments choose
    # theirs by the sample statistics of their cpu runs (the tables are in their config classes).
    temperature: float = 1.0
    top_k: int = 0  # Top-k cutoff for categorical sampling; 0 disables it.
    top_p: float = 1.0  # Nucleus (top-p) cutoff for categorical sampling; 1.0 disables it.

    def __post_init__(self):
        if self.transpose_to_c and parse_source(self.source).kind == "published":
            object.__setattr__(self, "transpose_to_c", False)  # the published files are in C already

    @property
    def target_is_input(self) -> bool:
        """Whether the model reads its target as an input too (teacher forcing within a frame)."""
        return False

    # The window layout the shared pipeline and protocol build for this config's models ("next": the
    # step after each window, "window": the window shifted by one, "audio": crops of samples).
    TARGET: typing.ClassVar[str] = "next"
    # The values each text field with a fixed set of them accepts; a subclass adds its own fields'.
    CHOICES: typing.ClassVar[dict[str, tuple[str, ...]]] = {"optimizer": OPTIMIZERS, "precision": PRECISIONS}

    def validate(self) -> None:
        """Raises ConfigError for values no experiment can use."""
        require_finite_numbers(self)
        require_limits(self)
        require_choices(self)
        require(
            (
                self.weight_decay * self.learning_rate < 1,
                f"weight_decay x learning_rate must be below 1 (each step shrinks every weight by that "
                f"share), got {self.weight_decay:g} x {self.learning_rate:g}",
            ),
            (
                self.valid_fraction + self.test_fraction < 1,
                "valid_fraction + test_fraction must leave files for training",
            ),
        )


@dataclasses.dataclass(frozen=True)
class Limit:
    """The values a numeric field accepts: from `low` to `high` (None: unbounded), each end included
    or not; `said` is how a refusal describes them."""

    low: float | None = None
    high: float | None = None
    low_included: bool = True
    high_included: bool = True

    def admits(self, value) -> bool:
        above = self.low is None or (value >= self.low if self.low_included else value > self.low)
        below = self.high is None or (value <= self.high if self.high_included else value < self.high)
        return above and below

    @property
    def said(self) -> str:
        if self.high is None:
            if self.low == 0:
                return "0 or more" if self.low_included else "positive"
            return f"at least {self.low:g}"
        high = "2**32 - 1" if self.high == MAX_SEED else f"{self.high:g}"
        return (
            f"in {'[' if self.low_included else '('}{self.low:g}, {high}{']' if self.high_included else ')'}"
        )


AT_LEAST_0, POSITIVE, AT_LEAST_1 = Limit(0), Limit(0, low_included=False), Limit(1)
SHARE = Limit(0, 1, high_included=False)  # a dropout rate, a fraction of the files, a momentum
# Every numeric field's limits, by name, for whichever config class has the field; cross-field
# rules (the fractions' sum, weight decay x learning rate, ...) stay in each class's `validate`.
LIMITS: dict[str, Limit] = {
    **dict.fromkeys(
        (
            "max_files",
            "steps_per_epoch",
            "clipnorm",
            "weight_decay",
            "reduce_lr_patience",
            "early_stopping_patience",
            "max_eval_windows",
            "epoch_eval_windows",
            "top_k",
            "transpose_range",
            "stream_above_megabytes",
            "nade_units",
            "reach",
            "voice_bins",
            "voice_change_bins",
            "rhythm_temperature",
            "focal_gamma",
            "bce_weight",
            "focal_weight",
        ),
        AT_LEAST_0,
    ),
    **dict.fromkeys(
        (
            "shard_megabytes",
            "parse_timeout",
            "max_file_megabytes",
            "learning_rate",
            "excerpt_quarters",
            "temperature",
            "tempo_bpm",
            "max_quarters",
        ),
        POSITIVE,
    ),
    **dict.fromkeys(
        (
            "seq_len",
            "batch_size",
            "epochs",
            "generate_length",
            "units",
            "num_layers",
            "pitch_units",
            "pitch_layers",
            "dense_units",
            "embedding_dim",
            "frame_candidates",
            "steps_per_quarter",
            "sample_rate",
            "conditioning_channels",
            "residual_channels",
            "skip_channels",
            "layers_per_stack",
            "stacks",
            "segment_frames",
        ),
        AT_LEAST_1,
    ),
    **dict.fromkeys(
        (
            "ema_momentum",
            "valid_fraction",
            "test_fraction",
            "lstm_dropout",
            "input_dropout",
            "dense_dropout",
            "dropout_rate",
        ),
        SHARE,
    ),
    "seed": Limit(0, MAX_SEED),
    "split_seed": Limit(0, MAX_SEED),
    "top_p": Limit(0, 1, low_included=False),
    "num_samples": Limit(1, MAX_SAMPLES),
    "statistics_samples": Limit(1, MAX_STATISTICS_SAMPLES),
    "threshold": Limit(0, 1, low_included=False, high_included=False),
    "initial_flag_probability": Limit(0, 1, low_included=False, high_included=False),
    "teacher_forcing_ratio": Limit(0, 1),
    "focal_alpha": Limit(0, 1),
}


def require_limits(config) -> None:
    """Raises ConfigError for the first field of `config` outside its `LIMITS`."""
    for field in dataclasses.fields(config):
        limit = LIMITS.get(field.name)
        value = getattr(config, field.name)
        if limit is not None and not limit.admits(value):
            raise ConfigError(f"{field.name} must be {limit.said}, got {value}")


def require_choices(config) -> None:
    """Raises ConfigError for the first field of `config` that is not one of its class's `CHOICES`."""
    for name, choices in type(config).CHOICES.items():
        value = getattr(config, name)
        if value not in choices:
            said = " or ".join(choices) if len(choices) == 2 else f"one of {', '.join(choices)}"
            raise ConfigError(f"{name} must be {said}, got {value!r}")


def require(*checks: tuple[bool, str]) -> None:
    """Raises ConfigError with the message of the first check that fails."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def require_finite_numbers(config) -> None:
    """NaN and infinity are refused in every float field (`nan > 0` is False, but so is `nan <= 0`)."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{field.name} must be a finite number, got {value}")


def field_types(config_class: type) -> dict[str, type]:
    hints = typing.get_type_hints(config_class)
    return {field.name: hints[field.name] for field in dataclasses.fields(config_class)}


def _coerce(key: str, value: object, expected: type, origin: str) -> object:
    if expected is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
    elif expected is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif expected is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif expected is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{origin}: {key} must be {expected.__name__}, got {value!r}")


def replace(config, values: dict[str, object], origin: str):
    """A copy of `config` with `values` applied, checked against the dataclass's fields and types."""
    types = field_types(type(config))
    unknown = sorted(set(values) - set(types))
    if unknown:
        raise ConfigError(
            f"{origin}: unknown key {unknown[0]!r} for {type(config).__name__}; known keys: "
            f"{', '.join(sorted(types))}"
        )
    coerced = {key: _coerce(key, value, types[key], origin) for key, value in values.items()}
    updated = dataclasses.replace(config, **coerced)
    updated.validate()
    return updated


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """`["units=128", "attention=true"]` -> `{"units": "128", "attention": "true"}`."""
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        values[key.strip()] = value.strip()
    return values


def read_experiment_file(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: experiment file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None


def load_config(config_class: type, experiment_file: Path, preset: str, overrides: list[str] = ()):
    """The dataclass defaults, then the preset from the TOML file, then the `--set` overrides."""
    experiment_file = Path(experiment_file)
    document = read_experiment_file(experiment_file)
    presets = document.get("presets", {})
    values = preset_values(presets, preset, experiment_file)
    config = replace(config_class(), values, origin=f"{experiment_file.name} [presets.{preset}]")
    return replace(config, parse_overrides(list(overrides)), origin="--set")


def preset_values(presets: dict, preset: str, experiment_file: Path, chain: tuple[str, ...] = ()) -> dict:
    """A preset's values: those of the preset it names in `extends` (recursively), then its own.
    `[presets.nottingham] extends = "jsb-linear"` keeps the JSB protocol and changes what it lists;
    `extends = "e3_roll_seq2seq:jsb"` names a preset of another experiment's file in the same folder,
    so that a tuned setting has one home."""
    experiment_file = Path(experiment_file)
    file_name = experiment_file.name
    if preset not in presets:
        raise ConfigError(f"{file_name}: no preset {preset!r}; available: {', '.join(sorted(presets))}")
    here = f"{experiment_file.stem}:{preset}"
    if here in chain:
        loop = (*chain, here)
        if len({link.partition(":")[0] for link in loop}) == 1:  # one file: the preset names say it
            loop = tuple(link.partition(":")[2] for link in loop)
        raise ConfigError(f"{file_name}: presets extend each other in a loop: {' -> '.join(loop)}")
    values = dict(presets[preset])
    parent = values.pop("extends", None)
    if parent is None:
        return values
    if not isinstance(parent, str):
        raise ConfigError(f"{file_name} [presets.{preset}]: extends must name a preset, got {parent!r}")
    other, separator, parent_preset = parent.rpartition(":")
    if not separator:
        return preset_values(presets, parent, experiment_file, (*chain, here)) | values
    other_file = experiment_file.parent / f"{other}.toml"
    if not other_file.is_file():
        raise ConfigError(
            f"{file_name} [presets.{preset}]: extends {parent!r}, but there is no {other_file.name}"
        )
    other_presets = read_experiment_file(other_file).get("presets", {})
    return preset_values(other_presets, parent_preset, other_file, (*chain, here)) | values


def differing_fields(saved: dict, wanted: dict, shown: int = 3) -> str:
    """Where two configs differ, for a message: "epochs 2 (now 4), units 16 (now 8)"; "" if equal."""
    keys = sorted(key for key in saved.keys() | wanted.keys() if saved.get(key) != wanted.get(key))
    parts = [
        f"{key} {saved.get(key, '(unset)')!r} (now {wanted.get(key, '(unset)')!r})" for key in keys[:shown]
    ]
    return ", ".join(parts) + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


# Fields that change a model's weights, added after runs were saved without them: a saved config
# that lacks one was trained with this value (not with today's default), so its checkpoint still loads.
FIELDS_ABSENT_FROM_OLDER_RUNS = {"voice_bins": 0, "voice_change_bins": 0}


def from_dict(config_class: type, values: dict, origin: str):
    """A saved config (config.json, a tuner's preset) as `config_class`."""
    known = {field.name for field in dataclasses.fields(config_class)}
    older = {
        key: value
        for key, value in FIELDS_ABSENT_FROM_OLDER_RUNS.items()
        if key in known and key not in values
    }
    return replace(config_class(), older | values, origin=origin)
