"""Pieces shared by the piano-roll experiments 2-4 and 6: their config fields (`RollConfig`), the
representation, the classifier head, losses, metrics, the chooser, and the slots every roll
experiment fills the same way."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from musictf.baselines import roll_ngram_samples
from musictf.config import ExperimentConfig
from musictf.data import pianoroll
from musictf.data.pianoroll import ENCODINGS
from musictf.data.pipeline import window_datasets
from musictf.data.prepared import prepare_symbolic_data
from musictf.data.representation import RollRepresentation
from musictf.errors import ConfigError
from musictf.evaluate import roll_test_metrics
from musictf.generate import FrameChooser, within_frame_draw
from musictf.layers import FrameAutoregression, FrameNADE
from musictf.losses import ArgmaxCrossEntropy
from musictf.metrics import FrameNLL, ThresholdMetric, argmax_accuracy, logit
from musictf.samples import midi_sample_statistics, write_midi_samples


@dataclasses.dataclass(frozen=True)
class RollConfig(ExperimentConfig):
    """Fields shared by the piano-roll experiments 2-4 and 6."""

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

    CHOICES = ExperimentConfig.CHOICES | {"roll_encoding": ENCODINGS, "output": ("sigmoid", "softmax")}

    @property
    def target_is_input(self) -> bool:
        return self.frame_autoregression

    def validate(self) -> None:
        super().validate()
        if self.nade_units and not self.frame_autoregression:
            raise ConfigError("nade_units sizes the within-frame term: it needs frame_autoregression = true")
        if self.frame_autoregression and self.output != "sigmoid":
            raise ConfigError("frame_autoregression conditions independent flags: it needs output = sigmoid")


def classifier_head(config: RollConfig, features: int) -> keras.Sequential:
    """Dense(dense_units) -> ReLU -> Dropout -> Dense(features) logits, as documented; sigmoid
    outputs start at `initial_flag_probability`. With a NADE within the frame (`nade_units`), the
    last layer gives the NADE's hidden biases too: features + nade_units values per step."""
    bias = logit(config.initial_flag_probability) if config.output == "sigmoid" else 0.0
    bias = np.concatenate([np.full(features, bias, np.float32), np.zeros(config.nade_units, np.float32)])
    return keras.Sequential(
        [
            keras.layers.Dense(config.dense_units, name="dense_hidden"),
            keras.layers.ReLU(),
            keras.layers.Dropout(config.dense_dropout),
            keras.layers.Dense(
                features + config.nade_units,
                dtype="float32",
                bias_initializer=keras.initializers.Constant(bias),
                name="logits",
            ),
        ],
        name="head",
    )


def threshold_metrics(config: RollConfig) -> list:
    return [
        keras.metrics.BinaryAccuracy(threshold=logit(config.threshold), name="accuracy"),
        ThresholdMetric("precision", config.threshold, name="precision"),
        ThresholdMetric("recall", config.threshold, name="recall"),
        ThresholdMetric("f1", config.threshold, name="f1"),
        FrameNLL(),
    ]


def compile_arguments(config: RollConfig) -> dict:
    if config.output == "softmax":
        return {
            "loss": ArgmaxCrossEntropy(),
            "metrics": [keras.metrics.MeanMetricWrapper(argmax_accuracy, name="accuracy")],
        }
    return {"loss": keras.losses.BinaryCrossentropy(from_logits=True), "metrics": threshold_metrics(config)}


def frame_logits(config: RollConfig, logits, target_frames, previous_frames) -> tuple:
    """(the head's logits with the within-frame term on the target frames, the within-frame layer):
    linear (`FrameAutoregression`, with its voice terms, which also read the frame before each
    target) or a NADE (`FrameNADE`, with `nade_units`). A builder with `frame_autoregression`
    attaches the layer to its model, for sampling."""
    if config.nade_units:
        layer = FrameNADE(config.nade_units, name="frame_autoregression")
        return layer([logits, target_frames]), layer
    layer = FrameAutoregression(
        config.voice_bins,
        config.voice_change_bins,
        pianoroll.channels(config.roll_encoding),
        name="frame_autoregression",
    )
    term = layer([target_frames, previous_frames] if layer.reads_previous_frame else target_frames)
    return keras.layers.Add(name="frame_logits")([logits, term]), layer


def chooser(config: RollConfig, model, draw=None) -> FrameChooser:
    """Draws for a roll model: flag by flag with `draw` (a model's own frame draw, see
    `FrameChooser`) or through `model.frame_autoregression` where it has one."""
    autoregression = draw
    if draw is None and config.frame_autoregression:
        autoregression = within_frame_draw(model.frame_autoregression)
    return FrameChooser(
        "bernoulli" if config.output == "sigmoid" else "onehot",
        temperature=config.temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        onset_sustain=config.roll_encoding == "onset_sustain",
        autoregression=autoregression,
        candidates=config.frame_candidates,
    )


def representation(config: RollConfig) -> RollRepresentation:
    return RollRepresentation(config.steps_per_quarter, config.roll_encoding, config.sampled_frames)


# The slots experiments 2-4 share: `Experiment(..., **rolls.SLOTS)`.
SLOTS = {
    "kind": "pianoroll",
    "make_representation": representation,
    "prepare": prepare_symbolic_data,
    "make_datasets": window_datasets,
    "compile_arguments": compile_arguments,
    "test_metrics": roll_test_metrics,
    "write_samples": write_midi_samples,
    "sample_statistics": midi_sample_statistics,
    "baseline_samples": roll_ngram_samples,
}
