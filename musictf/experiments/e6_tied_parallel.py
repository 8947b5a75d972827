"""Experiment 6: tied-parallel LSTMs over the piano roll (Johnson 2017's BALSTM).

Documented model (`paper` preset; D. D. Johnson, "Generating Polyphonic Music Using Tied Parallel
Networks", EvoMusArt 2017, with the sizes of the author's released biaxial code): every key runs
the same networks, its inputs relative in pitch (the flags of the octave either side, the pitch
classes sounding counted from its own, its pitch class and place on the keyboard; musictf adds the
frame's counts of starting and sounding notes, and how many keys sound below and above the key).
- The time axis: LSTM(300) -> LSTM(300) per key over the window's frames (weights shared by the
  keys).
- The pitch axis: LSTM(100) -> LSTM(50) per frame up the keys, each key given the time axis's
  output for it and the flags of the key below, then each key's flags (onset before sustain).
- Dropout 0.5 after every layer; trained on every step of the window.
A frame's probability is an exact product over its keys, so the test NLL is exact, and sampling
draws the keys one at a time up the keyboard (`generate.sample_pitch_axis`).

What the defaults change, and why (docs/experiments.md, "Experiment 6"): the layers are smaller
(64, 64 in time; 64, 32 in pitch) and batches of 16 windows, so that `make experiment-6` takes
minutes on 2 cores; each key also sees the frame's note counts and how many keys sound below and
above it (samples held their four voices only with these); the beat input of the original is left
out, as a window does not know where its bar starts.
"""

from __future__ import annotations

import dataclasses

import keras

from musictf.data.pianoroll import NUM_KEYS
from musictf.errors import ConfigError
from musictf.experiments import rolls
from musictf.experiments.base import Experiment
from musictf.experiments.rolls import RollConfig
from musictf.generate import Sampler, sample_pitch_axis
from musictf.layers import (
    EveryStepLoss,
    FoldIntoBatch,
    FollowingFrames,
    KeyNeighbourhood,
    KeyOutput,
    LastStepOutsideTraining,
    SplitKeys,
    UnfoldFromBatch,
)
from musictf.metrics import logit
from musictf.steppers import TiedParallelStepper


@dataclasses.dataclass(frozen=True)
class TiedParallelConfig(RollConfig):
    """`units`, `num_layers` and `lstm_dropout` size the time axis; the classifier head's fields
    (`dense_units`, `dense_dropout`) and the other families' within-frame terms (`nade_units`, the
    voice terms) have no part in this model. `frame_autoregression = false` leaves the keys below
    out of the pitch axis: the keys of a frame are then independent given the time axis."""

    seq_len: int = 32  # Input steps (8 quarters at 4 steps per quarter).
    units: int = 64  # Time-axis LSTM units per layer (paper: 300).
    lstm_dropout: float = 0.2  # Dropout after every LSTM layer of both axes (paper: 0.5).
    pitch_units: int = 64  # Units of the first pitch-axis LSTM (paper: 100).
    # Pitch-axis LSTM layers; each has half the units of the one below it (paper: 100, 50).
    pitch_layers: int = 2
    reach: int = 12  # Keys either side of a key that its inputs show (an octave each way).
    batch_size: int = 16  # Windows per batch: each is 88 sequences for the time axis.
    # Chosen on the valid split by the classifier test of the cpu run's samples (docs/experiments.md).
    temperature: float = 0.8
    voice_bins: int = 0  # The linear within-frame term's; not part of this model.
    voice_change_bins: int = 0

    @property
    def target_is_input(self) -> bool:
        return True  # the pitch axis reads the keys below in the frame, and every step is trained

    def pitch_units_of(self, layer: int) -> int:
        return max(1, self.pitch_units // 2**layer)

    def validate(self) -> None:
        super().validate()
        if self.output != "sigmoid":
            raise ConfigError(
                "experiment 6 draws each key's flags with sigmoid outputs: output must be sigmoid"
            )
        if self.nade_units or self.voice_bins or self.voice_change_bins:
            raise ConfigError(
                "nade_units and the voice terms belong to the roll experiments' within-frame terms: "
                "experiment 6's within-frame model is its pitch axis"
            )


def build_model(config: TiedParallelConfig, features: int) -> keras.Model:
    """Inputs: the window (B, T, F) and the frame after it (B, F), F = 88 x channels. Output: the
    logits of the frame after the window (in training, every step's, through `EveryStepLoss`)."""
    channels = features // NUM_KEYS
    # Layers
    neighbourhood = KeyNeighbourhood(channels, config.reach, name="key_neighbourhood")
    time_lstms = [
        keras.layers.LSTM(config.units, return_sequences=True, name=f"time_lstm_{index}")
        for index in range(config.num_layers)
    ]
    pitch_lstms = [
        keras.layers.LSTM(config.pitch_units_of(index), return_sequences=True, name=f"pitch_lstm_{index}")
        for index in range(config.pitch_layers)
    ]
    key_output = KeyOutput(channels, logit(config.initial_flag_probability), name="key_output")
    scored = LastStepOutsideTraining(name="scored_steps")
    # Functional graph: the time axis, one sequence per key
    frames = keras.Input((None, features), name="frames")
    next_frame = keras.Input((features,), name="next_frame")
    targets = FollowingFrames(name="following_frames")([frames, next_frame])  # each step's target
    x = keras.layers.Dropout(config.input_dropout, name="input_dropout")(frames)
    x = FoldIntoBatch("time", name="keys_into_batch")(neighbourhood(x))
    for index, lstm in enumerate(time_lstms):
        x = keras.layers.Dropout(config.lstm_dropout, name=f"time_dropout_{index}")(lstm(x))
    x = scored(UnfoldFromBatch("time", name="keys_out_of_batch")([x, frames]))  # (B, S, 88, H)
    # the pitch axis, one sequence per frame up the keys
    own_flags = scored(SplitKeys(channels, name="own_flags")(targets))
    if config.frame_autoregression:
        below = scored(SplitKeys(channels, below=True, name="flags_below")(targets))
        x = keras.layers.Concatenate(name="pitch_inputs")([x, below])
    x = FoldIntoBatch("keys", name="steps_into_batch")(x)
    for index, lstm in enumerate(pitch_lstms):
        x = keras.layers.Dropout(config.lstm_dropout, name=f"pitch_dropout_{index}")(lstm(x))
    logits = key_output([x, FoldIntoBatch("keys", name="own_flags_into_batch")(own_flags)])
    logits = UnfoldFromBatch("keys", name="steps_out_of_batch")([logits, own_flags])
    logits = keras.layers.Reshape((-1, features), name="frame_logits")(logits)
    logits = EveryStepLoss(name="every_step_loss")([logits, targets])
    model = keras.Model([frames, next_frame], logits, name="tied_parallel")
    # Incremental form, on the same layers
    model.stepper = TiedParallelStepper(neighbourhood, time_lstms)
    model.pitch_axis = (pitch_lstms, key_output)
    return model


def sampler(model, config: TiedParallelConfig, representation) -> Sampler:
    pitch_lstms, key_output = model.pitch_axis

    def draw(features, seed, temperature, log_probability=False, previous=None):
        return sample_pitch_axis(
            features,
            pitch_lstms,
            key_output,
            seed,
            temperature,
            log_probability,
            previous,
            reads_keys_below=config.frame_autoregression,
        )

    return Sampler(model.stepper, rolls.chooser(config, model, draw), token_input=False)


EXPERIMENT = Experiment(
    number=6,
    name="tied_parallel",
    config_class=TiedParallelConfig,
    build_model=build_model,
    sampler=sampler,
    **rolls.SLOTS,
)
