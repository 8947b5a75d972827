"""Experiment 3: the piano-roll seq2seq model.

Documented model (`paper` preset): an encoder LSTM(512) x 2 reads a window; its final states
initialise a decoder LSTM(512) x 2, which is fed the target window shifted by one step (teacher
forcing) and predicts the next window through the same classifier as experiment 2
(Dense(256) -> ReLU -> Dropout(0.5) -> Dense(176)), with cross-entropy against the argmax.

What the defaults change, and why:
- At generation the original decoder never saw its own output: it read zeros. Here the decoder
  is stepped one frame at a time and fed the frame it drew at the previous step, and each drawn
  window becomes the next encoder input.
- The target is every flag of every step (sigmoid + BCE), not the argmax, so chords survive.
- Frames are drawn as Bernoulli flags with temperature, not thresholded: thresholding collapsed
  into silence. Onset/sustain flags are kept consistent, so note lengths vary.
- Optional Luong attention over the encoder outputs (`attention = true`).
- Each flag is also conditioned on the flags below it in the same frame (`frame_autoregression`;
  see experiment 2; measured in docs/experiments.md, "Experiment 3").
- Smaller sizes in the `cpu` preset so that `make experiment-3` takes minutes on 2 cores.
- The benchmark presets follow the published polyphonic protocol (Boulanger-Lewandowski et al.
  2012): 88-key active rolls at the file's frames (music21's chorales, the `jsb` stand-in, are
  moved to C major / C minor and sampled at quarter notes), every frame of every test sequence
  scored from the first (`pad_start`), BCE only. A preset per data set and model family:
  `jsb`, `nottingham`, `musedata`, `piano-midi` put a NADE within the frame (`nade_units`,
  layers.FrameNADE: per key, a hidden layer over the keys below it, its biases from the decoder,
  as RNN-NADE does); their `-independent` twins predict the 88 keys independently, as the
  published LSTM, GRU and TCN do; `jsb-linear` keeps the linear within-frame term. Settings and
  measurements (valid and test NLL on the published files): docs/benchmarks.md.
"""

from __future__ import annotations

import dataclasses

import keras

from musictf.experiments import rolls
from musictf.experiments.base import Experiment
from musictf.experiments.rolls import RollConfig
from musictf.generate import Sampler
from musictf.layers import LuongAttention
from musictf.steppers import Seq2SeqStepper


@dataclasses.dataclass(frozen=True)
class Seq2SeqConfig(RollConfig):
    TARGET = "window"  # the decoder predicts the window shifted by one step
    seq_len: int = 32  # Encoder window and decoder window, in steps.
    attention: bool = False  # Luong attention of the decoder over the encoder outputs.
    # Chosen by the sample statistics of the cpu run (docs/experiments.md, "Experiment 3").
    temperature: float = 1.0


def build_seq2seq(
    config: Seq2SeqConfig, features: int, scheduled_sampling=None, name="roll_seq2seq"
) -> keras.Model:
    """Encoder-decoder over roll frames; with `scheduled_sampling` the decoder runs twice with
    shared weights (parallel scheduled sampling), otherwise once on the teacher inputs."""
    # Layers
    encoder_lstms = [
        keras.layers.LSTM(
            config.units, return_sequences=True, return_state=True, name=f"encoder_lstm_{index}"
        )
        for index in range(config.num_layers)
    ]
    decoder_lstms = [
        keras.layers.LSTM(config.units, return_sequences=True, name=f"decoder_lstm_{index}")
        for index in range(config.num_layers)
    ]
    decoder_dropouts = [
        keras.layers.Dropout(config.lstm_dropout, name=f"decoder_dropout_{index}")
        for index in range(config.num_layers - 1)
    ]
    attention = LuongAttention(config.units, name="attention") if config.attention else None
    head = rolls.classifier_head(config, features)
    # Functional graph
    encoder_input = keras.Input((None, features), name="encoder_input")
    decoder_input = keras.Input((None, features), name="decoder_input")
    input_dropout = keras.layers.Dropout(config.input_dropout, name="input_dropout")
    x, states = input_dropout(encoder_input), []
    for index, lstm in enumerate(encoder_lstms):
        x, hidden, carry = lstm(x)
        states.append([hidden, carry])
        if index < config.num_layers - 1:
            x = keras.layers.Dropout(config.lstm_dropout, name=f"encoder_dropout_{index}")(x)
    encoder_outputs = x

    def decode(inputs):
        y = input_dropout(inputs)
        for index, lstm in enumerate(decoder_lstms):
            y = lstm(y, initial_state=states[index])
            if index < config.num_layers - 1:
                y = decoder_dropouts[index](y)
        if attention is not None:
            y = attention([y, encoder_outputs])
        return head(y)

    if scheduled_sampling is None:
        logits = decode(decoder_input)
    else:
        logits = decode(scheduled_sampling([decoder_input, decode(decoder_input)]))
    inputs, autoregression = [encoder_input, decoder_input], None
    if config.frame_autoregression:  # the target frames themselves, for the within-frame term
        inputs.append(keras.Input((None, features), name="target_frames"))
        logits, autoregression = rolls.frame_logits(config, logits, inputs[-1], decoder_input)
    model = keras.Model(inputs, logits, name=name)
    model.frame_autoregression = autoregression
    # Incremental form, on the same layers
    model.stepper = Seq2SeqStepper(encoder_lstms, decoder_lstms, attention, head)
    return model


def build_model(config: Seq2SeqConfig, features: int) -> keras.Model:
    return build_seq2seq(config, features)


def sampler(model, config: Seq2SeqConfig, representation) -> Sampler:
    return Sampler(model.stepper, rolls.chooser(config, model), token_input=False)


EXPERIMENT = Experiment(
    number=3,
    name="roll_seq2seq",
    config_class=Seq2SeqConfig,
    build_model=build_model,
    sampler=sampler,
    **rolls.SLOTS,
)
