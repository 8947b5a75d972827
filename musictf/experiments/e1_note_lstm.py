"""Experiment 1: the note-token LSTM.

Documented model (`paper` preset): music21 pitch names and chord normal orders in, the next token
out. LSTM(512) -> Dropout(0.3) -> LSTM(512) -> Dropout(0.3) -> LSTM(512) -> Dense(256) ->
Dropout(0.3) -> Dense(vocabulary) with softmax; categorical cross-entropy, RMSprop, windows of 100
tokens, each token id fed as one number scaled by the vocabulary size.

What the defaults change, and why (the measurements are in docs/results.md and docs/experiments.md):
- Factored note tokens (`token_mode = "notes"`): each note is its spelled pitch (the real voicing,
  not a chord voiced upward from octave 4) and its length, with time shifts between onsets. The
  original lost every duration, so each generated note got the same fixed length; one token per
  slice ("duration") never beat its bigram at this budget, its vocabulary too sparse. Per quarter
  note the original's pitch tokens score lower because they say less (no voicing, no durations).
  Transposition augmentation is off: its samples lost their key.
- Tokens go through an embedding instead of one scaled number: neighbouring ids are unrelated
  tokens, so a scalar input makes the LSTM's job needlessly hard.
- Sampling draws from the softmax with temperature / top-p, never the argmax, and never draws
  padding or unknown tokens; argmax decoding collapsed into one repeated note.
- Pitches and rhythm tokens are drawn at their own temperatures (0.7 and 1.0): one temperature low
  enough to keep the key also thinned the rare rhythms (short notes, empty beats) that the bigram
  keeps; cooling only the pitches keeps both.
- Generation steps the LSTM cells with their state carried inside one compiled loop instead of
  rerunning the model on the whole window for every token (same logits, hundreds of times faster).
- The softmax is folded into the loss (`from_logits=True`): the same model, numerically safer.
- Smaller sizes and Adam in the `cpu` preset so that `make experiment-1` takes minutes on 2 cores.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from musictf.baselines import token_bigram_samples
from musictf.config import ExperimentConfig
from musictf.data.pipeline import window_datasets
from musictf.data.prepared import prepare_symbolic_data
from musictf.data.representation import TokenRepresentation
from musictf.data.tokens import DEFAULT_TOKEN_MODE, FACTOR_PREFIXES, TOKEN_MODES
from musictf.evaluate import token_test_metrics
from musictf.experiments.base import Experiment
from musictf.generate import FrameChooser, Sampler, blocked_token_ids
from musictf.layers import TokenScale
from musictf.losses import categorical_compile_arguments
from musictf.samples import midi_sample_statistics, write_midi_samples
from musictf.steppers import StackStepper

DENSE_ACTIVATIONS = ("linear", "relu", "tanh", "gelu", "elu", "sigmoid")


@dataclasses.dataclass(frozen=True)
class NoteLSTMConfig(ExperimentConfig):
    # notes: pitch and length tokens per note, time shifts between onsets; duration: one token per
    # slice (sonority and length); pitch: the original's pitch names and chord normal orders.
    token_mode: str = DEFAULT_TOKEN_MODE
    input_encoding: str = "embedding"  # embedding, or scalar (id / vocabulary size, as the original).
    embedding_dim: int = 96  # Ignored for scalar input.
    units: int = 192  # LSTM units per layer (paper: 512); sized for minutes on 2 cores.
    num_layers: int = 2  # Stacked LSTM layers (paper: 3).
    dense_units: int = 256  # The hidden Dense layer before the output.
    dense_activation: str = "relu"  # The paper's Dense(256) has no activation: "linear".
    dropout_rate: float = 0.3  # After each LSTM but the last, and after the hidden Dense.
    seq_len: int = 96  # Input tokens, about 7 quarter notes of note tokens (13.3 per quarter; paper: 100).
    # The pitches' temperature: 0.7 with rhythm at 1.0 gave the samples nearest the test split (the
    # sweep over pitch and rhythm temperatures and sampling seeds is in docs/experiments.md, "Experiment 1").
    temperature: float = 0.7
    # `notes` mode: the temperature of the rhythm tokens (time shifts and lengths); `temperature` is
    # then that of the pitches. 0: `temperature` for every token.
    rhythm_temperature: float = 1.0

    CHOICES = ExperimentConfig.CHOICES | {
        "token_mode": TOKEN_MODES,
        "input_encoding": ("embedding", "scalar"),
        "dense_activation": DENSE_ACTIVATIONS,
    }


def build_model(config: NoteLSTMConfig, features: int) -> keras.Model:
    """`features` is the vocabulary size. Output: logits over the vocabulary for the next token."""
    # Layers
    if config.input_encoding == "embedding":
        input_layer = keras.layers.Embedding(features, config.embedding_dim, name="embedding")
    else:
        input_layer = TokenScale(features, name="token_scale")
    lstms = [
        keras.layers.LSTM(config.units, return_sequences=index < config.num_layers - 1, name=f"lstm_{index}")
        for index in range(config.num_layers)
    ]
    head = keras.Sequential(
        [
            keras.layers.Dense(config.dense_units, activation=config.dense_activation, name="dense_hidden"),
            keras.layers.Dropout(config.dropout_rate),
            keras.layers.Dense(features, dtype="float32", name="logits"),
        ],
        name="head",
    )
    # Functional graph
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    x = input_layer(token_ids)
    for index, lstm in enumerate(lstms):
        x = lstm(x)
        if index < config.num_layers - 1:
            x = keras.layers.Dropout(config.dropout_rate, name=f"dropout_{index}")(x)
    model = keras.Model(token_ids, head(x), name="note_lstm")
    # Incremental form, on the same layers
    model.stepper = StackStepper(input_layer, lstms, head)
    return model


def token_temperatures(config: NoteLSTMConfig, vocabulary) -> float | np.ndarray:
    """`temperature`, or one per token id: `rhythm_temperature` for the time shifts and lengths."""
    if not config.rhythm_temperature:
        return config.temperature
    return np.asarray(
        [
            config.rhythm_temperature if token.startswith(FACTOR_PREFIXES) else config.temperature
            for token in vocabulary.tokens
        ],
        np.float32,
    )


def sampler(model, config: NoteLSTMConfig, representation) -> Sampler:
    temperature = token_temperatures(config, representation.vocabulary)
    chooser = FrameChooser(
        "token",
        temperature=temperature,
        top_k=config.top_k,
        top_p=config.top_p,
        blocked=blocked_token_ids(representation.vocabulary),
    )
    return Sampler(model.stepper, chooser, token_input=True)


def make_representation(config: NoteLSTMConfig) -> TokenRepresentation:
    return TokenRepresentation(config.token_mode)


EXPERIMENT = Experiment(
    number=1,
    name="note_lstm",
    config_class=NoteLSTMConfig,
    kind="tokens",
    make_representation=make_representation,
    prepare=prepare_symbolic_data,
    make_datasets=window_datasets,
    build_model=build_model,
    compile_arguments=categorical_compile_arguments,
    sampler=sampler,
    test_metrics=token_test_metrics,
    write_samples=write_midi_samples,
    sample_statistics=midi_sample_statistics,
    baseline_samples=token_bigram_samples,
)
