"""Experiment 2: the piano-roll seq2one LSTM.

Documented model (`paper` preset): each step is 88 keys x (onset, sustain) at 4 steps per quarter.
LSTM(512) -> Dropout(0.2) -> LSTM(512) -> Dense(256) -> ReLU -> Dropout(0.5) -> Dense(176),
trained with softmax cross-entropy against the argmax of the next step.

What the defaults change, and why (the measurements: docs/experiments.md, "Experiment 2"):
- The target is the whole next step, 176 flags with sigmoid + BCE: the argmax keeps only the
  lowest active flag, so the original can play at most one note per step.
- Generation draws each flag from its Bernoulli probability with temperature, keeping onset and
  sustain consistent; an argmax or a fixed threshold collapsed into one repeated note or silence.
  It steps the LSTM cells in one compiled loop instead of rerunning the window.
- Sigmoid outputs start at the flags' 3% base rate, with learning rate 5e-3: from a zero bias the
  `cpu` budget went into learning the base rate.
- Each flag is conditioned on the flags below it in the same frame (`frame_autoregression`):
  independent flags thin chords.
- The model trains on every step of its window (`every_step_loss`), not only the step after it;
  what is scored is unchanged.
- The `cpu` preset is smaller, so that `make experiment-2` takes minutes on 2 cores.
- The benchmark presets follow the published polyphonic protocol (see experiment 3) with
  experiment 3's settings: docs/benchmarks.md.
"""

from __future__ import annotations

import dataclasses

import keras

from musictf.errors import ConfigError
from musictf.experiments import rolls
from musictf.experiments.base import Experiment
from musictf.experiments.rolls import RollConfig
from musictf.generate import Sampler
from musictf.layers import EveryStepLoss, FollowingFrames
from musictf.steppers import StackStepper


@dataclasses.dataclass(frozen=True)
class Seq2OneConfig(RollConfig):
    seq_len: int = 32  # Input steps (8 quarters at 4 steps per quarter).
    # Chosen on the valid split by the classifier test of the cpu run's samples (docs/results.md).
    temperature: float = 0.9
    # Train on every step of each window, not only on the step after it: each step predicts the
    # frame after it and the loss is the mean over the window's steps (layers.EveryStepLoss); what
    # validation and the test score is unchanged. Needs output = "sigmoid".
    every_step_loss: bool = True

    @property
    def target_is_input(self) -> bool:
        return self.frame_autoregression or self.every_step_loss

    def validate(self) -> None:
        super().validate()
        if self.every_step_loss and self.output != "sigmoid":
            raise ConfigError("every_step_loss adds a BCE over the window's steps: it needs output = sigmoid")


def build_model(config: Seq2OneConfig, features: int) -> keras.Model:
    """`features` is 176 (onset_sustain) or 88 (active). Output: logits for the next step."""
    # Layers
    lstms = [
        keras.layers.LSTM(
            config.units,
            return_sequences=config.every_step_loss or index < config.num_layers - 1,
            name=f"lstm_{index}",
        )
        for index in range(config.num_layers)
    ]
    head = rolls.classifier_head(config, features)
    # Functional graph
    frames = keras.Input((None, features), name="frames")
    x = keras.layers.Dropout(config.input_dropout, name="input_dropout")(frames)
    for index, lstm in enumerate(lstms):
        x = lstm(x)
        if index < config.num_layers - 1:
            x = keras.layers.Dropout(config.lstm_dropout, name=f"dropout_{index}")(x)
    # every step's logits: the head (which the stepper calls on one step) mapped over the window
    logits = (
        keras.layers.TimeDistributed(head, name="every_step_head")(x) if config.every_step_loss else head(x)
    )
    inputs, autoregression = frames, None
    if config.target_is_input:  # the next frame itself: the within-frame term's and every step's target
        next_frame = keras.Input((features,), name="next_frame")
        inputs, targets = [frames, next_frame], next_frame
        previous = frames[:, -1]  # the frame before each target
        if config.every_step_loss:  # the frame after each step of the window
            targets, previous = FollowingFrames(name="following_frames")([frames, next_frame]), frames
        if config.frame_autoregression:
            logits, autoregression = rolls.frame_logits(config, logits, targets, previous)
        if config.every_step_loss:
            logits = EveryStepLoss(name="every_step_loss")([logits, targets])
    model = keras.Model(inputs, logits, name="roll_seq2one")
    model.frame_autoregression = autoregression
    # Incremental form, on the same layers
    model.stepper = StackStepper(None, lstms, head)
    return model


def sampler(model, config: Seq2OneConfig, representation) -> Sampler:
    return Sampler(model.stepper, rolls.chooser(config, model), token_input=False)


EXPERIMENT = Experiment(
    number=2,
    name="roll_seq2one",
    config_class=Seq2OneConfig,
    build_model=build_model,
    sampler=sampler,
    **rolls.SLOTS,
)
