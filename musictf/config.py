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

from musictf.data.benchmark import BENCHMARK_EXTENSIONS
from musictf.data.corpus import MAX_FILE_MEGABYTES, PARSE_TIMEOUT
from musictf.data.pianoroll import ENCODINGS
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
    jit_compile: bool = (
        False  # XLA; faster for LSTMs on CPU, slower combined with bfloat16 (reports/bench.md).
    )
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
        if self.transpose_to_c and str(self.source).lower().endswith(BENCHMARK_EXTENSIONS):
            object.__setattr__(self, "transpose_to_c", False)  # the published files are in C already

    @property
    def target_is_input(self) -> bool:
        """Whether the model reads its target as an input too (teacher forcing within a frame)."""
        return False

    def validate(self) -> None:
        """Raises ConfigError for values no experiment can use."""
        require_finite_numbers(self)
        require(
            (self.max_files >= 0, f"max_files must be 0 or more, got {self.max_files}"),
            (self.shard_megabytes > 0, f"shard_megabytes must be positive, got {self.shard_megabytes}"),
            (
                self.stream_above_megabytes >= 0,
                f"stream_above_megabytes must be 0 or more, got {self.stream_above_megabytes}",
            ),
            (self.parse_timeout > 0, f"parse_timeout must be positive, got {self.parse_timeout}"),
            (
                self.max_file_megabytes > 0,
                f"max_file_megabytes must be positive, got {self.max_file_megabytes}",
            ),
            (
                0 <= self.split_seed <= MAX_SEED,
                f"split_seed must be in [0, 2**32 - 1], got {self.split_seed}",
            ),
            (0 <= self.seed <= MAX_SEED, f"seed must be in [0, 2**32 - 1], got {self.seed}"),
            (self.seq_len >= 1, f"seq_len must be at least 1, got {self.seq_len}"),
            (self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.steps_per_epoch >= 0, f"steps_per_epoch must be 0 or more, got {self.steps_per_epoch}"),
            (self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}"),
            (self.clipnorm >= 0, f"clipnorm must be 0 or more, got {self.clipnorm}"),
            (self.weight_decay >= 0, f"weight_decay must be 0 or more, got {self.weight_decay}"),
            (
                self.weight_decay * self.learning_rate < 1,
                f"weight_decay x learning_rate must be below 1 (each step shrinks every weight by that "
                f"share), got {self.weight_decay:g} x {self.learning_rate:g}",
            ),
            (0 <= self.ema_momentum < 1, f"ema_momentum must be in [0, 1), got {self.ema_momentum}"),
            (
                self.reduce_lr_patience >= 0,
                f"reduce_lr_patience must be 0 or more, got {self.reduce_lr_patience}",
            ),
            (
                self.early_stopping_patience >= 0,
                f"early_stopping_patience must be 0 or more, got {self.early_stopping_patience}",
            ),
            (self.max_eval_windows >= 0, f"max_eval_windows must be 0 or more, got {self.max_eval_windows}"),
            (
                self.epoch_eval_windows >= 0,
                f"epoch_eval_windows must be 0 or more, got {self.epoch_eval_windows}",
            ),
            (
                1 <= self.num_samples <= MAX_SAMPLES,
                f"num_samples must be in [1, {MAX_SAMPLES}], got {self.num_samples}",
            ),
            (
                1 <= self.statistics_samples <= MAX_STATISTICS_SAMPLES,
                f"statistics_samples must be in [1, {MAX_STATISTICS_SAMPLES}], got {self.statistics_samples}",
            ),
            (self.generate_length >= 1, f"generate_length must be at least 1, got {self.generate_length}"),
            (self.excerpt_quarters > 0, f"excerpt_quarters must be positive, got {self.excerpt_quarters}"),
            (0 <= self.valid_fraction < 1, f"valid_fraction must be in [0, 1), got {self.valid_fraction}"),
            (0 <= self.test_fraction < 1, f"test_fraction must be in [0, 1), got {self.test_fraction}"),
            (
                self.valid_fraction + self.test_fraction < 1,
                "valid_fraction + test_fraction must leave files for training",
            ),
            (self.temperature > 0, f"temperature must be positive, got {self.temperature}"),
            (0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}"),
            (self.top_k >= 0, f"top_k must be 0 or more, got {self.top_k}"),
            (
                self.optimizer in OPTIMIZERS,
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}",
            ),
            (
                self.precision in PRECISIONS,
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}",
            ),
            (self.transpose_range >= 0, f"transpose_range must be 0 or more, got {self.transpose_range}"),
        )


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


def from_dict(config_class: type, values: dict, origin: str):
    return replace(config_class(), values, origin=origin)


@dataclasses.dataclass(frozen=True)
class RollConfig(ExperimentConfig):
    """Fields shared by the piano-roll experiments 2-4."""

    steps_per_quarter: int = 4  # Time steps per quarter note; 4 as in the original, 1 is the JSB grid.
    roll_encoding: str = "onset_sustain"  # onset_sustain: 176 flags per step; active: 88 (JSB tables).
    # Keys sounding at each step's start only, as the JSB files' quarter-note frames were made (a
    # passing eighth is in no frame); false rounds every note to the grid, at least one step long.
    sampled_frames: bool = False
    units: int = 128  # LSTM units per layer (paper: 512): `make experiment-N` in minutes on 2 cores.
    num_layers: int = 2  # Stacked LSTM layers (encoder and decoder each, for seq2seq).
    lstm_dropout: float = 0.2  # Dropout between stacked LSTM layers.
    # Dropout on the frames the LSTMs read (never on the target frame the within-frame term reads):
    # the model learns to continue from a partly hidden past. 0 disables it.
    input_dropout: float = 0.0
    dense_units: int = 256  # The classifier's hidden Dense layer.
    dense_dropout: float = 0.5  # Dropout after the classifier's ReLU.
    # sigmoid: independent flags with BCE (default). softmax: the original's cross-entropy against
    # the argmax of the next step, which can only ever predict one flag per step.
    output: str = "sigmoid"
    threshold: float = 0.5  # Decision threshold for precision / recall / F1 and Bay accuracy.
    # Choose the threshold on the validation split instead (the one of 0.05, 0.10, ..., 0.95 with the
    # best F1 there); the test metrics then use it, and metrics.json records it.
    tune_threshold: bool = False
    # Sigmoid outputs start at this probability (bias = its log-odds) instead of 0.5. About 3% of
    # flags are set, and with a zero bias a few hundred steps go into learning only that.
    initial_flag_probability: float = 0.03
    # From the 3% base rate, 1e-3 spends the cpu budget on learning the base rate (docs/experiments.md).
    learning_rate: float = 0.005
    # Each flag also conditioned on the flags below it in the same frame (layers.FrameAutoregression):
    # chords as chords, several nats better (docs/experiments.md). The model then reads the target
    # frame too, and sampling draws flag by flag. `paper` keeps the documented independent flags.
    frame_autoregression: bool = True
    # The within-frame term's form: 0 keeps it linear (a fully visible sigmoid belief net over the
    # frame); N > 0 makes it a NADE with N hidden units whose biases come from the recurrent state,
    # as in RNN-NADE (layers.FrameNADE). Measured against each other in docs/benchmarks.md.
    nade_units: int = 0
    # With frame_autoregression: frames drawn at each step of sampling, of which the one the model
    # finds most probable is kept; 1 keeps every draw (plain ancestral sampling). Sharper on whole
    # chords than a lower temperature, which thins them flag by flag.
    frame_candidates: int = 1
    # Voice terms of the linear within-frame term (layers.FrameAutoregression): each flag also learns
    # a bias for the number of keys already sounding below it in the frame (0 to voice_bins - 1, the
    # last bin "that many or more"), and one for how that number differs from the frame before's
    # below the same key (-voice_change_bins to +voice_change_bins): a chord held to its number of
    # voices, voices that move one at a time. 0 turns each off; independent flags and a NADE within
    # the frame do not use them (docs/experiments.md).
    voice_bins: int = 9
    voice_change_bins: int = 2

    @property
    def target_is_input(self) -> bool:
        return self.frame_autoregression

    def validate(self) -> None:
        super().validate()
        if self.roll_encoding not in ENCODINGS:
            raise ConfigError(f"roll_encoding must be onset_sustain or active, got {self.roll_encoding!r}")
        if self.output not in ("sigmoid", "softmax"):
            raise ConfigError(f"output must be sigmoid or softmax, got {self.output!r}")
        if self.steps_per_quarter < 1:
            raise ConfigError(f"steps_per_quarter must be at least 1, got {self.steps_per_quarter}")
        if not 0 < self.threshold < 1:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.nade_units and not self.frame_autoregression:
            raise ConfigError("nade_units sizes the within-frame term: it needs frame_autoregression = true")
        if self.frame_autoregression and self.output != "sigmoid":
            raise ConfigError("frame_autoregression conditions independent flags: it needs output = sigmoid")
        if not 0 < self.initial_flag_probability < 1:
            raise ConfigError(
                f"initial_flag_probability must be in (0, 1), got {self.initial_flag_probability}"
            )
        require(
            (self.units >= 1, f"units must be at least 1, got {self.units}"),
            (self.num_layers >= 1, f"num_layers must be at least 1, got {self.num_layers}"),
            (self.nade_units >= 0, f"nade_units must be 0 or more, got {self.nade_units}"),
            (self.voice_bins >= 0, f"voice_bins must be 0 or more, got {self.voice_bins}"),
            (
                self.voice_change_bins >= 0,
                f"voice_change_bins must be 0 or more, got {self.voice_change_bins}",
            ),
            (self.frame_candidates >= 1, f"frame_candidates must be at least 1, got {self.frame_candidates}"),
            (self.dense_units >= 1, f"dense_units must be at least 1, got {self.dense_units}"),
            (0 <= self.lstm_dropout < 1, f"lstm_dropout must be in [0, 1), got {self.lstm_dropout}"),
            (0 <= self.input_dropout < 1, f"input_dropout must be in [0, 1), got {self.input_dropout}"),
            (0 <= self.dense_dropout < 1, f"dense_dropout must be in [0, 1), got {self.dense_dropout}"),
        )
