"""Reusable Keras layers. Each accepts **kwargs, returns every constructor argument from
get_config() and is registered, so a `.keras` file reloads without module state."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from musictf.data.pianoroll import NUM_KEYS


@keras.saving.register_keras_serializable(package="musictf")
class TokenScale(keras.layers.Layer):
    """Token id -> id / vocabulary_size as one float feature: the original experiment 1's input.

    Args:
        vocabulary_size: number of token ids.

    Example:
        TokenScale(100)(ops.convert_to_tensor([[5, 50]]))  # -> [[[0.05], [0.5]]]
    """

    def __init__(self, vocabulary_size: int, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = vocabulary_size

    def call(self, token_ids):
        return ops.expand_dims(ops.cast(token_ids, self.compute_dtype) / self.vocabulary_size, -1)

    def get_config(self):
        return super().get_config() | {"vocabulary_size": self.vocabulary_size}


@keras.saving.register_keras_serializable(package="musictf")
class LuongAttention(keras.layers.Layer):
    """Luong "general" attention: score = q W k^T, then tanh(W_c [context; q]).

    Args:
        units: size of the attentional output.

    Example:
        out = LuongAttention(64)([decoder_outputs, encoder_outputs])  # (B, T, 64)
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.score_dense = keras.layers.Dense(units, use_bias=False, name="score")
        self.output_dense = keras.layers.Dense(units, activation="tanh", use_bias=False, name="combine")

    def build(self, input_shape):
        query_shape, values_shape = input_shape
        self.score_dense.build(values_shape)
        self.output_dense.build((*query_shape[:-1], query_shape[-1] + values_shape[-1]))

    def call(self, inputs):
        query, values = inputs
        keys = self.score_dense(values)  # (B, S, units)
        if query.shape[-1] != self.units:
            raise ValueError(f"LuongAttention needs query size {self.units}, got {query.shape[-1]}")
        scores = ops.matmul(query, ops.transpose(keys, (0, 2, 1)))  # (B, T, S)
        weights = ops.softmax(scores, axis=-1)
        context = ops.matmul(weights, values)  # (B, T, H)
        return self.output_dense(ops.concatenate([context, query], axis=-1))

    def get_config(self):
        return super().get_config() | {"units": self.units}


@keras.saving.register_keras_serializable(package="musictf")
class ScheduledSampling(keras.layers.Layer):
    """Parallel scheduled sampling (Duckworth et al. 2019) for a teacher-forced decoder.

    In training, each decoder input step is the ground truth with probability `ratio`, otherwise
    the frame the model itself sampled for that step in a first, teacher-forced pass (no gradient
    through it). At inference it passes the ground truth through. `ratio` is a non-trainable
    weight that a callback lowers epoch by epoch.

    Args:
        initial_ratio: teacher-forcing probability before the first epoch.
        seed: seed of the mixing and sampling draws.

    Example:
        mixed = ScheduledSampling(0.5)([teacher_inputs, first_pass_logits], training=True)
    """

    def __init__(self, initial_ratio: float = 1.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.initial_ratio = initial_ratio
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.ratio = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(initial_ratio), trainable=False, name="ratio"
        )

    def call(self, inputs, training=None):
        teacher, logits = inputs
        if not training:
            return teacher
        probabilities = ops.sigmoid(ops.stop_gradient(ops.cast(logits, "float32")))
        sampled = ops.cast(
            keras.random.uniform(ops.shape(probabilities), seed=self.seed_generator) < probabilities,
            teacher.dtype,
        )
        own = ops.concatenate([teacher[:, :1], sampled[:, :-1]], axis=1)
        batch, steps = ops.shape(teacher)[0], ops.shape(teacher)[1]
        use_teacher = keras.random.uniform((batch, steps, 1), seed=self.seed_generator) < ops.cast(
            self.ratio, "float32"
        )
        return ops.where(use_teacher, teacher, own)

    def get_config(self):
        return super().get_config() | {"initial_ratio": self.initial_ratio, "seed": self.seed}


@keras.saving.register_keras_serializable(package="musictf")
class FrameAutoregression(keras.layers.Layer):
    """The within-frame term of a fully visible sigmoid belief net over each frame's flags.

    Flag k's logit gains sum_{j<k} x_j W[j, k] from the flags before it in the same frame (lowest key
    first), so a frame's probability is an exact product of conditionals and chords are modelled as
    chords rather than as independent keys (as RNN-NADE does, Boulanger-Lewandowski et al. 2012,
    with a linear instead of a hidden-layer conditional). In training and scoring it reads the target
    frame (teacher forcing within the frame); sampling draws one flag at a time
    (`generate.sample_bernoulli_autoregressive`). W starts at zero: independent flags.

    Voice terms. A key sounds where the last of its `channels` flags is on (a roll's sustain flag,
    or an active roll's key). Let n_k be the keys already sounding below flag k in the frame, and
    p_k those that sounded below it in the previous frame. With `voice_bins` > 0, flag k also gains
    C[k, min(n_k, voice_bins - 1)]; with `voice_change_bins` B > 0, it gains
    D[k, clip(n_k - p_k, -B, B) + B]: whether a voice below has already moved up past it, or one is
    missing. A linear term adds evidence key by key; these can hold a chord to its number of voices
    and move one voice at a time. The layer then reads [frames, previous frames]. C, D start at zero.

    Args:
        voice_bins: bins of the voice count (the last holds that many voices or more); 0: none.
        voice_change_bins: B, the largest change in voices below a flag told apart; 0: none.
        channels: flags per key, interleaved (2 for onset/sustain rolls, 1 for active ones).

    Example:
        logits = head(hidden) + FrameAutoregression()(target_frames)
        logits = head(hidden) + FrameAutoregression(9, 2, channels=2)([target_frames, previous_frames])
    """

    def __init__(self, voice_bins: int = 0, voice_change_bins: int = 0, channels: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.voice_bins = voice_bins
        self.voice_change_bins = voice_change_bins
        self.channels = channels

    @property
    def reads_previous_frame(self) -> bool:
        return self.voice_change_bins > 0

    def build(self, input_shape):
        features = (input_shape[0] if self.reads_previous_frame else input_shape)[-1]
        self.kernel = self.add_weight(shape=(features, features), initializer="zeros", name="kernel")
        self.mask = ops.convert_to_tensor(np.triu(np.ones((features, features), np.float32), k=1))
        counted = (np.arange(features) % self.channels == self.channels - 1).astype(np.float32)
        self.counted = ops.convert_to_tensor(counted)
        if self.voice_bins:
            self.voice_kernel = self.add_weight(
                shape=(features, self.voice_bins), initializer="zeros", name="voice_kernel"
            )
        if self.voice_change_bins:
            self.voice_change_kernel = self.add_weight(
                shape=(features, 2 * self.voice_change_bins + 1),
                initializer="zeros",
                name="voice_change_kernel",
            )

    def masked_kernel(self):
        """W with only j < k kept: flag j of a frame can inform flag k of the same frame."""
        return ops.cast(self.kernel, "float32") * self.mask

    def voice_terms(self) -> dict:
        """What a flag-by-flag draw needs of the voice terms: "counted" (which flags are a sounding
        key), "count" (C) and "change" (D) where the layer has them."""
        terms = {"counted": self.counted}
        if self.voice_bins:
            terms["count"] = ops.cast(self.voice_kernel, "float32")
        if self.voice_change_bins:
            terms["change"] = ops.cast(self.voice_change_kernel, "float32")
        return terms

    def _keys_below(self, frames):
        counted = frames * self.counted
        return ops.cumsum(counted, axis=-1) - counted

    def call(self, inputs):
        frames, previous = inputs if self.reads_previous_frame else (inputs, None)
        frames = ops.cast(frames, "float32")
        logits = ops.matmul(frames, self.masked_kernel())
        below = self._keys_below(frames)
        if self.voice_bins:
            bins = ops.cast(ops.minimum(below, self.voice_bins - 1), "int32")
            table = ops.cast(self.voice_kernel, "float32")
            logits = logits + ops.sum(ops.one_hot(bins, self.voice_bins) * table, axis=-1)
        if self.voice_change_bins:
            limit = self.voice_change_bins
            change = ops.clip(below - self._keys_below(ops.cast(previous, "float32")), -limit, limit)
            bins = ops.cast(change + limit, "int32")
            table = ops.cast(self.voice_change_kernel, "float32")
            logits = logits + ops.sum(ops.one_hot(bins, 2 * limit + 1) * table, axis=-1)
        return logits

    def get_config(self):
        return super().get_config() | {
            "voice_bins": self.voice_bins,
            "voice_change_bins": self.voice_change_bins,
            "channels": self.channels,
        }


@keras.saving.register_keras_serializable(package="musictf")
class FrameNADE(keras.layers.Layer):
    """A NADE over each frame's flags (Larochelle and Murray 2011), its biases read from the
    recurrent state as in RNN-NADE (Boulanger-Lewandowski et al. 2012).

    The model's head gives, per time step, `features` visible biases b and `units` hidden biases c
    (one vector of features + units "frame parameters"). Flag k then has its own hidden state,
    accumulated from the flags below it in the same frame (lowest key first):

        h_k = sigmoid(c + sum_{j<k} x_j W[j]),   logit_k = b_k + V[k] . h_k

    so a frame's probability is an exact product of conditionals, as with `FrameAutoregression`,
    but each conditional is a hidden layer instead of a linear term. In training and scoring it reads
    the target frame; sampling draws one flag at a time (`generate.sample_bernoulli_nade`). V starts at
    zero, so the logits start as the head's.

    Args:
        units: hidden units of the NADE.

    Example:
        logits = FrameNADE(64)([head(hidden), target_frames])  # head gives 88 + 64 values per step
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        features = input_shape[1][-1]
        self.input_kernel = self.add_weight(
            shape=(features, self.units), initializer="glorot_uniform", name="input_kernel"
        )
        self.output_kernel = self.add_weight(
            shape=(features, self.units), initializer="zeros", name="output_kernel"
        )

    def kernels(self):
        """(W, V): flag j's input to every hidden unit, and each flag's weights on its hidden state."""
        return ops.cast(self.input_kernel, "float32"), ops.cast(self.output_kernel, "float32")

    def call(self, inputs):
        parameters, frames = inputs
        input_kernel, output_kernel = self.kernels()
        features = ops.shape(input_kernel)[0]
        parameters = ops.cast(parameters, "float32")
        visible_bias, hidden_bias = parameters[..., :features], parameters[..., features:]
        # sum_{j<k} x_j W[j] for every k at once: the cumulative sum of the flags' rows of W over the
        # keys, shifted up one key (so key k reads only keys below it, exactly). On the CPU 2-4x faster
        # than masking the frame to the keys below each key and one matmul.
        rows = ops.cast(frames, "float32")[..., None] * input_kernel
        summed = ops.cumsum(rows, axis=-2)
        below = ops.concatenate([ops.zeros_like(summed[..., :1, :]), summed[..., :-1, :]], axis=-2)
        hidden = ops.sigmoid(hidden_bias[..., None, :] + below)
        return visible_bias + ops.sum(hidden * output_kernel, axis=-1)

    def get_config(self):
        return super().get_config() | {"units": self.units}


@keras.saving.register_keras_serializable(package="musictf")
class FollowingFrames(keras.layers.Layer):
    """(window, next frame) -> the frame after each step of the window: the window shifted by one
    step, its last step followed by the next frame. The targets of a seq2one model scored at every
    step of its window (`EveryStepLoss`).

    Example:
        FollowingFrames()([window, next_frame])  # (B, L, F): window[:, 1:], then next_frame
    """

    def call(self, inputs):
        window, next_frame = inputs
        return ops.concatenate([window[:, 1:], ops.cast(next_frame, window.dtype)[:, None]], axis=1)


@keras.saving.register_keras_serializable(package="musictf")
class EveryStepLoss(keras.layers.Layer):
    """A seq2one model trained on every step of its window, scored on its last step.

    Takes the logits at every step of the window and the frame after each step (`FollowingFrames`)
    and returns the last step's logits: the model's output, which its compiled loss (BCE with
    logits) and every metric score. In training only, it adds the mean of that loss over all the
    window's steps minus the last step's, so the loss minimised is the mean over every step: each
    window trains on seq_len target frames instead of one, while validation, early stopping and the
    checkpoints still score the step after the window, as the evaluation protocol does. (Keras's
    TensorFlow trainer divides added losses by the replicas in sync, as it does its compiled loss.)

    Example:
        logits = EveryStepLoss()([step_logits, FollowingFrames()([window, next_frame])])
    """

    def call(self, inputs, training=None):
        logits, targets = inputs
        last = logits[:, -1]
        if training:
            per_step = keras.losses.binary_crossentropy(
                ops.cast(targets, "float32"), ops.cast(logits, "float32"), from_logits=True
            )  # (B, L): the mean over the flags, as the compiled loss takes it
            added = ops.mean(per_step) - ops.mean(per_step[:, -1])
            self.add_loss(added)
        return last


@keras.saving.register_keras_serializable(package="musictf")
class RepeatUpsampling(keras.layers.Layer):
    """Repeats each frame `factor` times along time: roll frames -> audio rate.

    Example:
        RepeatUpsampling(1000)(frames)  # (B, F, C) -> (B, F * 1000, C)
    """

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, frames):
        return ops.repeat(frames, self.factor, axis=1)

    def get_config(self):
        return super().get_config() | {"factor": self.factor}


@keras.saving.register_keras_serializable(package="musictf")
class WaveNetBlock(keras.layers.Layer):
    """One WaveNet residual block (van den Oord et al. 2016) with kernel size 2:

        z = tanh(W_f * x + V_f h) . sigmoid(W_g * x + V_g h)
        residual = x + W_r z,  skip = W_s z

    where `*` is the causal convolution with `dilation` and h the local (per-step) and global
    (per-sequence) conditioning. Training runs the convolution over the whole sequence, as
    `Conv1D(2 * channels, 2, padding="causal", dilation_rate=dilation)` would, with the kernel
    stacked from `kernel_past` (the tap on x[t - dilation]) and `kernel_now` (on x[t]). Cached
    generation steps one sample through `gate`, two matmuls on the same weights; tests hold the two
    forms equal.

    Args:
        channels: residual channels. skip_channels: skip channels.
        dilation: the convolution's dilation. local_channels, global_channels: 0 disables each.

    Example:
        residual, skip = WaveNetBlock(32, 64, dilation=4)([x])
    """

    def __init__(
        self,
        channels: int,
        skip_channels: int,
        dilation: int,
        local_channels: int = 0,
        global_channels: int = 0,
        residual: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels, self.skip_channels, self.dilation = channels, skip_channels, dilation
        self.residual = residual  # the last block's residual output is unused, so it has none
        self.local_channels, self.global_channels = local_channels, global_channels

    def build(self, input_shape):
        c, s = self.channels, self.skip_channels
        self.kernel_past = self.add_weight(shape=(c, 2 * c), initializer="glorot_uniform", name="kernel_past")
        self.kernel_now = self.add_weight(shape=(c, 2 * c), initializer="glorot_uniform", name="kernel_now")
        self.bias = self.add_weight(shape=(2 * c,), initializer="zeros", name="bias")
        if self.local_channels:
            self.local_kernel = self.add_weight(
                shape=(self.local_channels, 2 * c), initializer="glorot_uniform", name="local_kernel"
            )
        if self.global_channels:
            self.global_kernel = self.add_weight(
                shape=(self.global_channels, 2 * c), initializer="glorot_uniform", name="global_kernel"
            )
        if self.residual:
            self.residual_kernel = self.add_weight(
                shape=(c, c), initializer="glorot_uniform", name="residual_kernel"
            )
            self.residual_bias = self.add_weight(shape=(c,), initializer="zeros", name="residual_bias")
        self.skip_kernel = self.add_weight(shape=(c, s), initializer="glorot_uniform", name="skip_kernel")
        self.skip_bias = self.add_weight(shape=(s,), initializer="zeros", name="skip_bias")

    def gate(self, past, now, local=None, global_=None):
        """(residual, skip) from x[t - dilation], x[t] and the conditioning; any leading shape."""
        return self._gated(
            ops.matmul(past, self.kernel_past) + ops.matmul(now, self.kernel_now), now, local, global_
        )

    def causal_convolution(self, x):
        """The dilated causal convolution of a whole (B, T, channels) sequence, without bias."""
        taps = [
            ops.cast(ops.convert_to_tensor(kernel), x.dtype) for kernel in (self.kernel_past, self.kernel_now)
        ]
        kernel = ops.stack(taps)  # (taps, in, out), Conv1D's layout
        padded = ops.pad(x, [[0, 0], [self.dilation, 0], [0, 0]])
        return ops.conv(padded, kernel, strides=1, padding="valid", dilation_rate=self.dilation)

    def _gated(self, pre, now, local, global_):
        pre = pre + self.bias
        if self.local_channels:
            pre = pre + ops.matmul(local, self.local_kernel)
        if self.global_channels:
            pre = pre + ops.matmul(global_, self.global_kernel)
        filter_part, gate_part = ops.split(pre, 2, axis=-1)
        z = ops.tanh(filter_part) * ops.sigmoid(gate_part)
        residual = now + ops.matmul(z, self.residual_kernel) + self.residual_bias if self.residual else now
        return residual, ops.matmul(z, self.skip_kernel) + self.skip_bias

    def call(self, inputs):
        x, rest = inputs[0], list(inputs[1:])
        local = rest.pop(0) if self.local_channels else None
        global_ = ops.expand_dims(rest.pop(0), 1) if self.global_channels else None
        return self._gated(self.causal_convolution(x), x, local, global_)

    def get_config(self):
        return super().get_config() | {
            "channels": self.channels,
            "skip_channels": self.skip_channels,
            "dilation": self.dilation,
            "local_channels": self.local_channels,
            "global_channels": self.global_channels,
            "residual": self.residual,
        }


# The tied-parallel family (experiment 6; Johnson 2017): every key runs the same networks, so the
# keys are folded into the batch for the time axis and the time steps for the pitch axis.


@keras.saving.register_keras_serializable(package="musictf")
class KeyNeighbourhood(keras.layers.Layer):
    """Each key's inputs, relative in pitch (Johnson 2017): the flags of the key and of the `reach`
    keys either side of it (zeros past the keyboard's ends), how many sounding keys there are of
    each pitch class counted from the key's own, the key's pitch class and its place on the keyboard;
    and two things a key's neighbourhood alone does not show: how many flags of each channel the
    whole frame holds (notes starting and sounding: the rhythm of the texture), and how many keys
    sound below and above the key (which voice it would be: a bass an octave below is out of reach).

    (..., 88 * channels) frames -> (..., 88, features), `features` = (2 reach + 2) channels + 27.

    Args:
        channels: flags per key, interleaved (2: onset, sustain; 1: active); the last one sounds.
        reach: keys either side a key sees (12: an octave each way).

    Example:
        KeyNeighbourhood(2)(frames)  # (B, T, 176) -> (B, T, 88, 79)
    """

    def __init__(self, channels: int, reach: int = 12, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.reach = channels, reach
        pitch_class = (np.arange(NUM_KEYS) + 21) % 12  # key 0 is A0, MIDI 21
        one_hot = np.eye(12, dtype=np.float32)[pitch_class]
        self._pitch_class_one_hot = one_hot
        self._relative = (pitch_class[:, None] + np.arange(12)[None, :]) % 12
        self._constants = np.concatenate(
            [one_hot, (np.arange(NUM_KEYS, dtype=np.float32) / (NUM_KEYS - 1))[:, None]], axis=1
        )

    @property
    def features(self) -> int:
        return (2 * self.reach + 2) * self.channels + 12 + 12 + 1 + 2

    def call(self, frames):
        leading = tf.shape(frames)[:-1]
        keys = tf.reshape(tf.cast(frames, self.compute_dtype), [-1, NUM_KEYS, self.channels])
        padded = tf.pad(keys, [[0, 0], [self.reach, self.reach], [0, 0]])
        vicinity = tf.concat([padded[:, i : i + NUM_KEYS] for i in range(2 * self.reach + 1)], axis=-1)
        counts = tf.matmul(keys[..., -1], tf.constant(self._pitch_class_one_hot, self.compute_dtype))
        relative = tf.gather(counts, self._relative, axis=1)  # (N, 88, 12): classes from the key's own
        constants = tf.constant(self._constants, self.compute_dtype)
        constants = tf.broadcast_to(constants, [tf.shape(keys)[0], *self._constants.shape])
        totals = tf.broadcast_to(tf.reduce_sum(keys, axis=1, keepdims=True), tf.shape(keys))
        sounding = keys[..., -1:]
        up_to = tf.cumsum(sounding, axis=1)
        below, above = up_to - sounding, up_to[:, -1:] - up_to
        inputs = tf.concat([vicinity, relative, constants, totals, below, above], axis=-1)
        return tf.reshape(inputs, tf.concat([leading, [NUM_KEYS, self.features]], axis=0))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], NUM_KEYS, self.features)

    def get_config(self):
        return super().get_config() | {"channels": self.channels, "reach": self.reach}


@keras.saving.register_keras_serializable(package="musictf")
class SplitKeys(keras.layers.Layer):
    """(..., 88 * channels) frames -> (..., 88, channels); with `below`, each key is given the
    flags of the key below it instead (zeros for the lowest key): what a pitch axis reads."""

    def __init__(self, channels: int, below: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.below = channels, below

    def call(self, frames):
        keys = tf.reshape(frames, tf.concat([tf.shape(frames)[:-1], [NUM_KEYS, self.channels]], axis=0))
        if not self.below:
            return keys
        return tf.concat([tf.zeros_like(keys[..., :1, :]), keys[..., :-1, :]], axis=-2)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], NUM_KEYS, self.channels)

    def get_config(self):
        return super().get_config() | {"channels": self.channels, "below": self.below}


@keras.saving.register_keras_serializable(package="musictf")
class FoldIntoBatch(keras.layers.Layer):
    """(B, T, K, D) -> one sequence per key over time, (B K, T, D) (`over="time"`), or one
    sequence per step over the keys, (B T, K, D) (`over="keys"`); `UnfoldFromBatch` undoes it."""

    def __init__(self, over: str, **kwargs):
        super().__init__(**kwargs)
        self.over = over

    def call(self, x):
        if self.over == "time":
            x = tf.transpose(x, [0, 2, 1, 3])
        shape = tf.shape(x)
        return tf.reshape(x, [shape[0] * shape[1], shape[2], x.shape[-1]])

    def compute_output_shape(self, input_shape):
        inner = input_shape[1] if self.over == "time" else input_shape[2]
        return (None, inner, input_shape[-1])

    def get_config(self):
        return super().get_config() | {"over": self.over}


@keras.saving.register_keras_serializable(package="musictf")
class UnfoldFromBatch(keras.layers.Layer):
    """[(B K, T, H) or (B T, K, H), reference (B, T, ...)] -> (B, T, K, H), undoing
    `FoldIntoBatch(over)`; the reference gives B and T."""

    def __init__(self, over: str, **kwargs):
        super().__init__(**kwargs)
        self.over = over

    def call(self, inputs):
        x, reference = inputs
        batch, steps = tf.shape(reference)[0], tf.shape(reference)[1]
        if self.over == "time":
            return tf.transpose(tf.reshape(x, [batch, NUM_KEYS, steps, x.shape[-1]]), [0, 2, 1, 3])
        return tf.reshape(x, [batch, steps, NUM_KEYS, x.shape[-1]])

    def compute_output_shape(self, input_shape):
        return (None, None, NUM_KEYS, input_shape[0][-1])

    def get_config(self):
        return super().get_config() | {"over": self.over}


@keras.saving.register_keras_serializable(package="musictf")
class LastStepOutsideTraining(keras.layers.Layer):
    """(B, T, ...) in training, (B, 1, ...) otherwise: a model trained on every step of its window
    and scored on its last step (`EveryStepLoss`) spends nothing on the other steps when scoring."""

    def call(self, x, training=None):
        return x if training else x[:, -1:]


@keras.saving.register_keras_serializable(package="musictf")
class KeyOutput(keras.layers.Layer):
    """Each key's logits from the pitch axis's output at that key: [hidden (..., 88, H), the key's
    own flags (..., 88, C)] -> (..., 88, C). Channel c also reads the key's own flags of the
    channels before it (onset before sustain): whether a note starts informs whether the key sounds.
    The logits start at `initial_logit`, the coupling at zero.

    Example:
        KeyOutput(2, initial_logit=-3.5)([pitch_hidden, own_flags])
    """

    def __init__(self, channels: int, initial_logit: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.initial_logit = channels, initial_logit
        self.mask = np.triu(np.ones((channels, channels), np.float32), k=1)

    def build(self, input_shape):
        hidden = input_shape[0][-1]
        self.kernel = self.add_weight(
            shape=(hidden, self.channels), initializer="glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight(
            shape=(self.channels,), initializer=keras.initializers.Constant(self.initial_logit), name="bias"
        )
        self.coupling = self.add_weight(
            shape=(self.channels, self.channels), initializer="zeros", name="coupling"
        )

    def weights_for_drawing(self):
        """(kernel, bias, coupling with only channel j < c kept) in float32."""
        return (
            ops.cast(self.kernel, "float32"),
            ops.cast(self.bias, "float32"),
            ops.cast(self.coupling, "float32") * self.mask,
        )

    def call(self, inputs):
        hidden, flags = inputs
        kernel, bias, coupling = self.weights_for_drawing()
        return (
            ops.matmul(ops.cast(hidden, "float32"), kernel)
            + bias
            + ops.matmul(ops.cast(flags, "float32"), coupling)
        )

    def get_config(self):
        return super().get_config() | {"channels": self.channels, "initial_logit": self.initial_logit}
