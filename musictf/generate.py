"""One sampling API for every symbolic experiment: incremental, compiled loops.

The trained model is never rerun over a whole window per step (the original's ~12 tokens/s).
Samplers reuse the trained layers: each LSTM layer's `cell` is stepped with its state carried,
inside one `tf.function` with a `tf.while_loop`, so the logits equal the full-window model's. The
loop is compiled with XLA (7-22k steps/s on 2 cores in `make bench`, against 1.3-1.6k without);
draws use `hash_uniform`, so they are the same inside and outside XLA.

Decoding fixes the original's collapse into one repeated note or into silence: tokens are drawn
from the softmax with temperature / top-k / top-p instead of argmax, roll frames are drawn as
Bernoulli flags instead of thresholded, and seq2seq decoders are fed their own samples.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from musictf.data.pianoroll import NUM_KEYS
from musictf.data.tokens import PAD, UNK

_MASK = 0xFFFFFFFF


def hash_uniform(shape, seed, step):
    """Uniform numbers in (0, 1) from a counter hash of (seed, step, position), in int64 arithmetic
    on 32-bit values. Unlike tf.random's stateless ops, whose XLA kernels draw other numbers than
    the CPU kernels, it gives the same numbers inside and outside XLA."""
    count = tf.reduce_prod(shape)
    key = tf.bitwise.bitwise_xor((tf.cast(seed, tf.int64) & _MASK) * 0x27D4EB2F,
                                 (tf.cast(step, tf.int64) & _MASK) * 0x165667B1) & _MASK
    h = (tf.range(count, dtype=tf.int64) * 0x5BD1E995 + key) & _MASK
    for shift, multiplier in ((16, 0x7FEB352D), (15, 0x5BD1E995)):
        h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, tf.constant(shift, tf.int64)))
        h = (h * multiplier) & _MASK
    h = tf.bitwise.bitwise_xor(h, tf.bitwise.right_shift(h, tf.constant(16, tf.int64)))
    uniform = (tf.cast(tf.bitwise.right_shift(h, tf.constant(8, tf.int64)), tf.float32) + 0.5) / 16777216.0
    return tf.reshape(uniform, shape)


def sample_categorical(logits, seed, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
    """One id per row of `logits` (B, V), from `seed` (2,): the softmax restricted to the top k
    and to the top-p nucleus, drawn by the Gumbel-max trick on hash_uniform numbers (so it
    compiles with XLA and draws the same ids inside and outside it)."""
    logits = tf.cast(logits, tf.float32) / temperature
    negative_infinity = tf.fill(tf.shape(logits), -np.inf)
    if top_k > 0:
        kth = tf.math.top_k(logits, k=min(top_k, logits.shape[-1])).values[:, -1:]
        logits = tf.where(logits < kth, negative_infinity, logits)
    if top_p < 1.0:
        ordered = tf.sort(logits, direction="DESCENDING", axis=-1)
        before = tf.cumsum(tf.nn.softmax(ordered, axis=-1), axis=-1, exclusive=True)
        kept = tf.where(before < top_p, ordered, tf.fill(tf.shape(ordered), np.inf))
        logits = tf.where(logits < tf.reduce_min(kept, axis=-1, keepdims=True), negative_infinity, logits)
    gumbel = -tf.math.log(-tf.math.log(hash_uniform(tf.shape(logits), seed[0], seed[1])))
    return tf.cast(tf.argmax(logits + gumbel, axis=-1), tf.int32)


def sample_bernoulli(logits, seed, temperature: float = 1.0):
    """Independent flags, each on with probability sigmoid(logit / temperature); `seed` (2,)."""
    probabilities = tf.sigmoid(tf.cast(logits, tf.float32) / temperature)
    return tf.cast(hash_uniform(tf.shape(probabilities), seed[0], seed[1]) < probabilities, tf.float32)


def consistent_onsets(frame, previous):
    """Flattened onset/sustain frames: an onset sounds, and a sound with nothing before it is an onset."""
    frame = tf.reshape(frame, [-1, NUM_KEYS, 2])
    previous = tf.reshape(previous, [-1, NUM_KEYS, 2])
    onset, sustain = frame[..., 0], tf.maximum(frame[..., 0], frame[..., 1])
    onset = tf.maximum(onset, sustain * (1 - previous[..., 1]))
    return tf.reshape(tf.stack([onset, sustain], axis=-1), [-1, NUM_KEYS * 2])


def lstm_stack_step(layers, inputs, states):
    """One time step through stacked LSTM layers' cells; `states` is a list of (h, c)."""
    new_states = []
    for layer, (hidden, carry) in zip(layers, states, strict=True):
        inputs, (hidden, carry) = layer.cell(inputs, [hidden, carry], training=False)
        new_states.append((hidden, carry))
    return inputs, new_states


def numbered_layers(model, prefix: str) -> list:
    """The layers named prefix0, prefix1, ... in numeric order."""
    found = [layer for layer in model.layers if layer.name.startswith(prefix) and layer.name[len(prefix):].isdigit()]
    return sorted(found, key=lambda layer: int(layer.name[len(prefix):]))


def _zero_states(layers, batch):
    return [
        (tf.zeros([batch, layer.units], layer.compute_dtype), tf.zeros([batch, layer.units], layer.compute_dtype))
        for layer in layers
    ]


class FrameChooser:
    """How an output distribution becomes the next input: a token id or a roll frame.

    Args:
        kind: "token" (categorical over ids), "bernoulli" (independent flags) or "onehot"
            (one flag per frame from a softmax: the original experiments 2-3).
        blocked: ids never sampled (padding, unknown).
        onset_sustain: keep drawn onset/sustain frames consistent.
    """

    def __init__(self, kind, temperature=1.0, top_k=0, top_p=1.0, blocked=(), onset_sustain=False):
        self.kind, self.temperature, self.top_k, self.top_p = kind, temperature, top_k, top_p
        self.blocked = list(blocked)
        self.onset_sustain = onset_sustain

    def __call__(self, logits, previous, seed):
        if self.kind == "bernoulli":
            frame = sample_bernoulli(logits, seed, self.temperature)
            return consistent_onsets(frame, previous) if self.onset_sustain else frame
        if self.blocked:
            width = logits.shape[-1]
            mask = tf.reduce_sum(tf.one_hot(self.blocked, width), axis=0) > 0
            logits = tf.where(mask[None, :], tf.fill(tf.shape(logits), -np.inf), tf.cast(logits, tf.float32))
        ids = sample_categorical(logits, seed, self.temperature, self.top_k, self.top_p)
        if self.kind == "token":
            return ids
        frame = tf.one_hot(ids, logits.shape[-1], dtype=tf.float32)
        return consistent_onsets(frame, previous) if self.onset_sustain else frame


class StackSampler:
    """Incremental sampler for "input transform -> stacked LSTM -> head" models (experiments 1, 2).

    Args:
        model: the trained model; its layers `lstm_0..`, `head` and optionally `embedding` or
            `token_scale` are reused, weights shared.
        chooser: turns logits into the next input.
        token_input: inputs are token ids (experiment 1) rather than frames.
        jit_compile: compile the sampling loop with XLA (one compile per primer shape and length).
    """

    def __init__(self, model, chooser: FrameChooser, token_input: bool, jit_compile: bool = True):
        self.lstm_layers = numbered_layers(model, "lstm_")
        self.head = model.get_layer("head")
        names = {layer.name for layer in model.layers}
        self.input_layer = next((model.get_layer(n) for n in ("embedding", "token_scale") if n in names), None)
        self.chooser = chooser
        self.token_input = token_input
        self._loop = tf.function(self._loop_python, reduce_retracing=True, jit_compile=jit_compile)

    def step(self, inputs, states):
        x = inputs
        if self.input_layer is not None:
            x = self.input_layer(x[:, None], training=False)[:, 0]
        x, states = lstm_stack_step(self.lstm_layers, tf.cast(x, self.lstm_layers[0].compute_dtype), states)
        return tf.cast(self.head(x, training=False), tf.float32), states

    def _warm(self, primes):
        states = _zero_states(self.lstm_layers, tf.shape(primes)[0])
        steps = tf.shape(primes)[1]

        def body(t, states):
            _, states = self.step(primes[:, t], states)
            return t + 1, states

        _, states = tf.while_loop(lambda t, _: t < steps - 1, body, (tf.constant(0), states))
        return states

    def final_logits(self, primes):
        """Logits after reading all of `primes` (B, P[, F]): equal to the full model's output."""
        states = self._warm(tf.convert_to_tensor(primes))
        logits, _ = self.step(tf.convert_to_tensor(primes)[:, -1], states)
        return logits.numpy()

    def _loop_python(self, primes, length, seed):
        states = self._warm(primes)
        current = primes[:, -1]
        outputs = tf.TensorArray(primes.dtype if self.token_input else tf.float32, size=length)

        def body(i, current, states, outputs):
            logits, states = self.step(current, states)
            chosen = self.chooser(logits, current, tf.stack([seed, tf.cast(i, tf.int64)]))
            chosen = tf.cast(chosen, outputs.dtype)
            return i + 1, chosen, states, outputs.write(i, chosen)

        _, _, _, outputs = tf.while_loop(
            lambda i, *_: i < length, body, (tf.constant(0), tf.cast(current, outputs.dtype), states, outputs)
        )
        stacked = outputs.stack()
        return tf.transpose(stacked, [1, 0] + list(range(2, len(stacked.shape))))

    def generate(self, primes: np.ndarray, length: int, seed: int) -> np.ndarray:
        """(B, length[, F]) continuations of `primes` (B, P[, F])."""
        dtype = tf.int32 if self.token_input else tf.float32
        result = self._loop(tf.constant(primes, dtype), tf.constant(length), tf.constant(seed, tf.int64))
        return result.numpy()


class Seq2SeqSampler:
    """Window-by-window sampler for encoder-decoder roll models (experiments 3, 4).

    The encoder reads the current window; the decoder then runs one step at a time from the
    window's last frame, each step fed the frame it drew at the previous step (the original fed
    zeros), and the drawn window becomes the next encoder input.
    """

    def __init__(self, model, chooser: FrameChooser, jit_compile: bool = True):
        self.encoder_layers = numbered_layers(model, "encoder_lstm_")
        self.decoder_layers = numbered_layers(model, "decoder_lstm_")
        names = {layer.name for layer in model.layers}
        self.attention = model.get_layer("attention") if "attention" in names else None
        self.head = model.get_layer("head")
        self.chooser = chooser
        self._window = tf.function(self._window_python, reduce_retracing=True, jit_compile=jit_compile)

    def encode(self, window):
        x, states = tf.cast(window, self.encoder_layers[0].compute_dtype), []
        for layer in self.encoder_layers:
            x, hidden, carry = layer(x, training=False)
            states.append((hidden, carry))
        return x, states

    def step(self, frame, states, encoder_outputs):
        x, states = lstm_stack_step(self.decoder_layers, tf.cast(frame, self.decoder_layers[0].compute_dtype), states)
        x = x[:, None]  # the head and attention were built on (batch, time, units)
        if self.attention is not None:
            x = self.attention([x, encoder_outputs], training=False)
        return tf.cast(self.head(x, training=False)[:, 0], tf.float32), states

    def teacher_forced_logits(self, window, decoder_inputs):
        """Step-by-step logits for given decoder inputs: equal to the full model's output."""
        encoder_outputs, states = self.encode(tf.convert_to_tensor(window, tf.float32))
        outputs = []
        for t in range(decoder_inputs.shape[1]):
            logits, states = self.step(tf.convert_to_tensor(decoder_inputs[:, t], tf.float32), states, encoder_outputs)
            outputs.append(logits)
        return tf.stack(outputs, axis=1).numpy()

    def _window_python(self, window, seed):
        encoder_outputs, states = self.encode(window)
        steps = tf.shape(window)[1]
        outputs = tf.TensorArray(tf.float32, size=steps)

        def body(i, frame, states, outputs):
            logits, states = self.step(frame, states, encoder_outputs)
            frame = self.chooser(logits, frame, tf.stack([seed, tf.cast(i, tf.int64)]))
            return i + 1, frame, states, outputs.write(i, frame)

        _, _, _, outputs = tf.while_loop(lambda i, *_: i < steps, body, (tf.constant(0), window[:, -1], states, outputs))
        return tf.transpose(outputs.stack(), [1, 0, 2])

    def generate(self, primes: np.ndarray, length: int, seed: int) -> np.ndarray:
        window, pieces = tf.constant(primes, tf.float32), []
        for index in range(math.ceil(length / primes.shape[1])):
            window = self._window(window, tf.constant(seed * 100003 + index, tf.int64))
            pieces.append(window.numpy())
        return np.concatenate(pieces, axis=1)[:, :length]


def blocked_token_ids(vocabulary) -> list[int]:
    return [vocabulary.index[PAD], vocabulary.index[UNK]]
