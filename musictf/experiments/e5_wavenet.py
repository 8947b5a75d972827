"""Experiment 5: WaveNet on raw audio, with global and local conditioning and fast generation.

Documented model (`paper` preset): stacks of dilated causal convolutions with dilations
1, 2, ..., 512, gated units tanh(W_f * x + V_f h) . sigmoid(W_g * x + V_g h), residual and skip
connections, 1x1 output layers and a 256-way softmax over mu-law (mu = 255) samples at 16 kHz.

Data: audio is rendered from the symbolic corpus (the chorales by default), each piece in one of
the GM programs piano, organ, strings or flute: FluidSynth with a General MIDI SoundFont where it
is installed, else a labelled pure-numpy synth with a stand-in timbre per program (the run's
`representation.json` and every sample say which). Pieces are rendered at a fixed tempo (120 bpm)
so that one piano-roll step (a sixteenth note) is a whole number of samples.

Conditioning, both kinds from the paper:
- global: an embedding of the program, broadcast over time;
- local: the piece's 88-key piano roll, projected and upsampled to the audio rate by repetition.
With both, the model is a neural synthesizer: `musictf generate RUN --roll piece.mid --program organ`.

Generation caches each block's past inputs in a queue (Paine et al. 2016, "Fast WaveNet"), so a
new sample costs O(layers) instead of O(receptive field); the whole loop is one `tf.function`
compiled with XLA, hundreds of times the naive method (rerun the stack over the receptive field
per sample, kept for the equality test and `make bench`; docs/performance.md). Training runs
each block's dilated causal convolution over the whole crop (`WaveNetBlock.causal_convolution`);
generation steps the same weights one sample at a time.

What the defaults change: the `cpu` preset is 8 kHz, 2 stacks x 10 layers (receptive field
2,047 samples), 32 residual channels, and trains 800 steps on 40 pieces' first 16 quarters, what
fits 15 minutes on 2 cores; the samples' pitch follows the roll the better the longer it trains
(chroma agreement, in metrics.json).
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from musictf.config import ExperimentConfig
from musictf.data import audio
from musictf.data.audio import AudioRepresentation
from musictf.data.pianoroll import NUM_KEYS
from musictf.data.pipeline import audio_datasets
from musictf.data.prepared import prepare_audio_data
from musictf.errors import ConfigError, MusicTFError
from musictf.evaluate import audio_test_metrics
from musictf.experiments.base import Experiment
from musictf.generate import sample_categorical
from musictf.layers import RepeatUpsampling, WaveNetBlock
from musictf.losses import categorical_compile_arguments
from musictf.samples import audio_sample_statistics, write_audio_samples

MU_LAW_CLASSES = 256
SILENCE = MU_LAW_CLASSES // 2  # mu-law code of 0.0


@dataclasses.dataclass(frozen=True)
class WaveNetConfig(ExperimentConfig):
    TARGET = "audio"  # crops of samples, each sample predicting the next
    max_files: int = 40  # Pieces rendered to audio (0: all); rendering and training scale with it.
    sample_rate: int = 8000  # Hz (paper: 16000).
    programs: str = "piano,organ,strings,flute"  # GM timbres; piece k is rendered in program k mod n.
    max_quarters: float = 16.0  # Each piece's opening this long is rendered (8 s at 120 bpm).
    tempo_bpm: float = 120.0  # Fixed so that a sixteenth-note roll step is a whole number of samples.
    residual_channels: int = 32  # Channels of each block's residual path and of the sample embedding.
    skip_channels: int = 64  # Channels of each block's skip output, summed before the output layers.
    layers_per_stack: int = 10  # Dilations 1, 2, ..., 2^(layers_per_stack - 1).
    stacks: int = 2  # Repeats of the dilation cycle; receptive field 1 + stacks * (2^layers_per_stack - 1).
    local_conditioning: bool = True  # Condition on the piece's piano roll.
    global_conditioning: bool = True  # Condition on the program (timbre) id.
    conditioning_channels: int = 16  # Size of the projected roll and of the program embedding.
    segment_frames: int = 4  # Training crop beyond the receptive field, in roll steps (1 step = hop samples).
    # Crops per replica and step; a crop is receptive field + segment_frames steps of audio.
    batch_size: int = 4
    epochs: int = 4  # Checkpoint intervals of steps_per_epoch steps (an audio epoch is not a pass).
    # Steps per checkpoint interval (at least 1). 800 steps in all, what fits `make experiment-5`'s 15
    # minutes on 2 cores: the samples' pitch follows the roll better the longer it trains (chroma
    # agreement, docs/results.md).
    steps_per_epoch: int = 200
    max_eval_windows: int = 64
    num_samples: int = 2
    # Pieces drawn from the test split's rolls to score chroma agreement (generated in one batch).
    statistics_samples: int = 8
    generate_length: int = 16000  # Samples per generated piece (2 s at 8 kHz).

    @property
    def hop(self) -> int:
        """Audio samples per sixteenth-note roll step."""
        return round(audio.hop_samples(self.sample_rate, self.tempo_bpm))

    @property
    def receptive_field(self) -> int:
        return 1 + self.stacks * (2**self.layers_per_stack - 1)

    @property
    def crop_frames(self) -> int:
        """Roll steps in a training or evaluation crop: the receptive field, then `segment_frames`."""
        return math.ceil(self.receptive_field / self.hop) + self.segment_frames

    @property
    def program_names(self) -> list[str]:
        return [name.strip() for name in self.programs.split(",") if name.strip()]

    def validate(self) -> None:
        super().validate()
        if self.steps_per_epoch < 1:  # a pass over every crop start of the audio would be millions of steps
            raise ConfigError(
                "steps_per_epoch must be at least 1 for audio (an epoch is a checkpoint interval, not a "
                f"pass), got {self.steps_per_epoch}"
            )
        if not audio.hop_samples(self.sample_rate, self.tempo_bpm).is_integer():
            raise ConfigError(
                f"sample_rate * 15 / tempo_bpm must be a whole number, got {self.sample_rate} Hz at "
                f"{self.tempo_bpm} bpm"
            )
        unknown = [name for name in self.program_names if name not in audio.PROGRAMS]
        if unknown or not self.program_names:
            raise ConfigError(
                f"programs must name some of {', '.join(audio.PROGRAMS)}, got {self.programs!r}"
            )


# -- model ----------------------------------------------------------------------------------------


def build_model(config: WaveNetConfig, features: int = MU_LAW_CLASSES) -> keras.Model:
    """Inputs: codes (B, T) int, [roll (B, T / hop, 88)], [program (B,)]. Output: (B, T, 256) logits
    where step t predicts sample t + 1."""
    # Layers
    embedding = keras.layers.Embedding(features, config.residual_channels, name="sample_embedding")
    local = config.conditioning_channels if config.local_conditioning else 0
    global_ = config.conditioning_channels if config.global_conditioning else 0
    last = (config.stacks - 1, config.layers_per_stack - 1)
    blocks = [
        WaveNetBlock(
            config.residual_channels,
            config.skip_channels,
            2**layer,
            local,
            global_,
            residual=(stack, layer) != last,
            name=f"block_{stack}_{layer}",
        )
        for stack in range(config.stacks)
        for layer in range(config.layers_per_stack)
    ]
    post = keras.layers.Dense(config.skip_channels, activation="relu", name="post")
    logits_layer = keras.layers.Dense(features, dtype="float32", name="logits")
    local_projection = keras.layers.Dense(local, name="local_projection") if local else None
    program_embedding = (
        keras.layers.Embedding(len(config.program_names), global_, name="program_embedding")
        if global_
        else None
    )
    # Functional graph
    codes = keras.Input((None,), dtype="int32", name="codes")
    inputs, conditioning = {"codes": codes}, []
    if local_projection is not None:
        inputs["roll"] = keras.Input((None, NUM_KEYS), name="roll")
        conditioning.append(RepeatUpsampling(config.hop, name="upsample")(local_projection(inputs["roll"])))
    if program_embedding is not None:
        inputs["program"] = keras.Input((), dtype="int32", name="program")
        conditioning.append(program_embedding(inputs["program"]))
    x, skips = embedding(codes), []
    for block in blocks:
        x, skip = block([x, *conditioning])
        skips.append(skip)
    hidden = post(keras.layers.ReLU()(keras.layers.Add()(skips)))
    model = keras.Model(inputs, logits_layer(hidden), name="wavenet")
    # Not a stepper (steppers.py): the layers themselves, which WaveNetSampler steps one sample at a
    # time with a queue per block
    model.wavenet_parts = WaveNetParts(
        embedding, blocks, post, logits_layer, local_projection, program_embedding
    )
    return model


@dataclasses.dataclass(frozen=True)
class WaveNetParts:
    """The layers `build_model` made, which `WaveNetSampler` steps one sample at a time (cached
    queues, `WaveNetBlock.gate`); the model keeps them as `model.wavenet_parts`."""

    embedding: keras.layers.Layer
    blocks: list
    post: keras.layers.Layer
    logits: keras.layers.Layer
    local_projection: keras.layers.Layer | None
    program_embedding: keras.layers.Layer | None


# -- data -----------------------------------------------------------------------------------------


def make_representation(config: WaveNetConfig) -> AudioRepresentation:
    return AudioRepresentation(
        config.sample_rate, config.program_names, config.tempo_bpm, config.max_quarters
    )


# -- generation -----------------------------------------------------------------------------------


class WaveNetSampler:
    """Fast cached generation: each block keeps a queue of its last `dilation` inputs, so a new
    sample costs one step through every block, not a pass over the receptive field.

    Args:
        model: a trained WaveNet from `build_model`; its layers are reused, weights shared.
        config: its config (hop, conditioning, receptive field).
        temperature, top_k, top_p: as for every categorical draw (`generate.sample_categorical`).
        jit_compile: compile the generation loop with XLA (see the module docstring for the
            speed), after a compile of about 8 s per length bucket.
    """

    # Generated lengths are padded up to a multiple of this, so XLA compiles once per bucket, not per length.
    LENGTH_BUCKET = 4096

    def __init__(
        self,
        model,
        config: WaveNetConfig,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        jit_compile: bool = True,
    ):
        self.model, self.config = model, config
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p
        parts = model.wavenet_parts
        self.embedding, self.blocks, self.post, self.logits = (
            parts.embedding,
            parts.blocks,
            parts.post,
            parts.logits,
        )
        self.local_projection, self.program_embedding = parts.local_projection, parts.program_embedding
        self._fast = tf.function(self._fast_loop, jit_compile=jit_compile, reduce_retracing=True)
        self._forward = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)
        self._queues, self._queues_batch = [], None  # one queue per block, made for a batch size

    def _conditioning(self, roll, program):
        local = (
            self.local_projection(tf.convert_to_tensor(roll, tf.float32))
            if self.local_projection is not None
            else None
        )
        global_ = (
            self.program_embedding(tf.convert_to_tensor(program, tf.int32))
            if self.program_embedding is not None
            else None
        )
        return local, global_

    def _sample(self, logits, seed, t):
        """The shared categorical draw (temperature, top-k, top-p; hash_uniform numbers, so the XLA
        loop and the naive reference draw the same samples)."""
        return sample_categorical(
            logits,
            tf.stack([tf.cast(seed, tf.int64), tf.cast(t, tf.int64)]),
            self.temperature,
            self.top_k,
            self.top_p,
        )

    def _fast_loop(self, padded_primer, primer_length, total, roll, program, seed, queues):
        """`padded_primer` (B, bucket): the primer then zeros; only shapes, never `total`, set what
        XLA compiles."""
        batch = tf.shape(padded_primer)[0]
        for queue in queues:
            queue.assign(tf.zeros_like(queue))
        local, global_ = self._conditioning(roll, program)
        padded = tf.transpose(padded_primer)  # (bucket, batch)
        rows = tf.range(batch)
        outputs = tf.TensorArray(tf.int32, size=tf.shape(padded)[0]).write(0, padded[0])

        def body(t, code, outputs):
            x = self.embedding(code)
            local_t = local[:, t // self.config.hop] if local is not None else None
            skip_sum = 0.0
            for block, queue in zip(self.blocks, queues, strict=True):
                position = t % block.dilation
                past = tf.gather(queue, position, axis=1)
                queue.scatter_nd_update(tf.stack([rows, tf.fill([batch], position)], axis=1), x)
                x, skip = block.gate(past, x, local_t, global_)
                skip_sum = skip_sum + skip
            drawn = self._sample(self.logits(self.post(tf.nn.relu(skip_sum))), seed, t)
            following = tf.where(t + 1 < primer_length, padded[t + 1], drawn)
            return t + 1, following, outputs.write(t + 1, following)

        _, _, outputs = tf.while_loop(lambda t, *_: t < total - 1, body, (tf.constant(0), padded[0], outputs))
        return tf.transpose(outputs.stack())

    def generate(
        self, primer=None, length: int = 8000, seed: int = 0, roll=None, program=None, batch: int = 1
    ):
        """Codes (B, primer + length): the primer (default: one silent sample) and `length` new ones.
        The `Sampler` contract (primes, length, seed), with the conditioning as keywords."""
        primer = np.full((batch, 1), SILENCE, np.int32) if primer is None else np.asarray(primer, np.int32)
        total = primer.shape[1] + length
        bucket = math.ceil(total / self.LENGTH_BUCKET) * self.LENGTH_BUCKET
        roll, program = self._conditioning_inputs(roll, program, primer.shape[0], bucket)
        if self._queues_batch != primer.shape[0]:
            self._queues = [
                tf.Variable(tf.zeros([primer.shape[0], b.dilation, b.channels]), trainable=False)
                for b in self.blocks
            ]
            self._queues_batch = primer.shape[0]
        padded = np.pad(primer, [(0, 0), (0, bucket - primer.shape[1])])
        result = self._fast(
            tf.constant(padded),
            tf.constant(primer.shape[1]),
            tf.constant(total),
            roll,
            program,
            tf.constant(seed, tf.int64),
            self._queues,
        )
        return result.numpy()[:, :total]

    def _conditioning_inputs(self, roll, program, batch, total):
        """The roll (padded or cut to the frames `total` samples need) and program as tensors; zeros
        and program 0 where none is given."""
        frames = math.ceil(total / self.config.hop) + 1
        if self.local_projection is not None and roll is None:
            raise MusicTFError("this WaveNet is locally conditioned: give a piano roll")
        if roll is not None:
            roll = np.asarray(roll, np.float32)
            if len(roll.shape) == 2:
                roll = np.repeat(roll[None], batch, axis=0)
            roll = np.pad(roll, [(0, 0), (0, max(0, frames - roll.shape[1])), (0, 0)])[:, :frames]
        else:
            roll = np.zeros((batch, frames, NUM_KEYS), np.float32)
        program = (
            np.zeros((batch,), np.int32)
            if program is None
            else np.broadcast_to(np.asarray(program, np.int32), (batch,))
        )
        return tf.constant(roll), tf.constant(program)

    def generate_naive(
        self, primer=None, length: int = 100, seed: int = 0, roll=None, program=None, batch: int = 1
    ):
        """The slow reference: the whole stack rerun over the receptive field for every sample."""
        primer = np.full((batch, 1), SILENCE, np.int32) if primer is None else np.asarray(primer, np.int32)
        roll, program = self._conditioning_inputs(roll, program, primer.shape[0], primer.shape[1] + length)
        codes, hop, field = primer.copy(), self.config.hop, self.config.receptive_field
        for t in range(primer.shape[1] - 1, primer.shape[1] + length - 1):
            start = max(0, t - field + 1) // hop * hop
            window = codes[:, start : t + 1]
            frames = math.ceil(window.shape[1] / hop)
            padded = np.pad(window, [(0, 0), (0, frames * hop - window.shape[1])])
            inputs = {"codes": tf.constant(padded)}
            if self.local_projection is not None:
                inputs["roll"] = roll[:, start // hop : start // hop + frames]
            if self.program_embedding is not None:
                inputs["program"] = program
            logits = self._forward(inputs)[:, t - start]
            drawn = self._sample(logits, tf.constant(seed, tf.int64), t).numpy()
            codes = np.concatenate([codes, drawn[:, None]], axis=1)
        return codes


def sampler(model, config: WaveNetConfig, representation=None) -> WaveNetSampler:
    return WaveNetSampler(
        model, config, temperature=config.temperature, top_k=config.top_k, top_p=config.top_p
    )


EXPERIMENT = Experiment(
    number=5,
    name="wavenet",
    config_class=WaveNetConfig,
    kind="audio",
    make_representation=make_representation,
    prepare=prepare_audio_data,
    make_datasets=audio_datasets,
    build_model=build_model,
    compile_arguments=categorical_compile_arguments,
    sampler=sampler,
    test_metrics=audio_test_metrics,
    write_samples=write_audio_samples,
    sample_statistics=audio_sample_statistics,
)
