"""Sampling as a library: the draws, the chooser and one compiled loop over a model's stepper.

The trained model is never rerun over a whole window per step (the original's ~12 tokens/s). The
loop steps the model's incremental form (`model.stepper`, see steppers.py: each LSTM layer's
`cell` stepped with its state carried, so the logits equal the full-window model's) inside one
`tf.function` with a `tf.while_loop`, compiled with XLA (about ten times the speed without it:
docs/performance.md); draws use `hash_uniform`, so they are the same inside and outside XLA.

Decoding fixes the original's collapse into one repeated note or into silence: tokens are drawn
from the softmax with temperature / top-k / top-p instead of argmax, roll frames are drawn as
Bernoulli flags instead of thresholded, and seq2seq decoders are fed their own samples.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from musictf.data.pianoroll import NUM_KEYS
from musictf.data.tokens import PAD, UNK
from musictf.errors import MusicTFError
from musictf.layers import FrameAutoregression, FrameNADE
from musictf.steppers import lstm_stack_step, zero_states

_MASK = 0xFFFFFFFF


def hash_uniform(shape, seed, step):
    """Uniform numbers in (0, 1) from a counter hash of (seed, step, position), in int64 arithmetic
    on 32-bit values. Unlike tf.random's stateless ops, whose XLA kernels draw other numbers than
    the CPU kernels, it gives the same numbers inside and outside XLA."""
    count = tf.reduce_prod(shape)
    key = (
        tf.bitwise.bitwise_xor(
            (tf.cast(seed, tf.int64) & _MASK) * 0x27D4EB2F, (tf.cast(step, tf.int64) & _MASK) * 0x165667B1
        )
        & _MASK
    )
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
    compiles with XLA and draws the same ids inside and outside it). `temperature` is one number,
    or one per id (V,)."""
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


def _bernoulli_log_probability(flag, logit):
    """log p(flag) of a Bernoulli flag with log-odds `logit` (the model's own, untempered)."""
    return -tf.math.softplus(tf.where(flag > 0.5, -logit, logit))


def _sustain_a_roll_can_hold(sustain, onset, held):
    """A drawn sustain flag as an onset/sustain roll can hold it: on where the key's onset is, off
    where neither its onset nor the frame before (`held`) sounds the key."""
    sustain = tf.where(onset > 0.5, 1.0, sustain)
    return tf.where((onset < 0.5) & (held < 0.5), 0.0, sustain)


def sample_bernoulli_autoregressive(
    logits,
    kernel,
    seed,
    temperature: float = 1.0,
    log_probability=False,
    voice_terms=None,
    previous=None,
    onset_sustain=False,
):
    """Flags drawn one at a time, lowest first: flag k is on with probability
    sigmoid((logit_k + sum_{j<k} x_j kernel[j, k]) / temperature), given the flags x_j already drawn
    (`layers.FrameAutoregression`; `kernel` is its masked kernel). With `voice_terms` (the layer's
    `voice_terms()`), flag k's logit also gains count[k, min(n, bins - 1)] and
    change[k, clip(n - p, -B, B) + B], n being the keys drawn sounding below it and p those sounding
    below it in `previous`, the frame before. With `onset_sustain` and `previous`, the draw stays
    within the frames an onset/sustain roll can hold (flags interleaved per key, onset first): a
    key's sustain flag is on where its onset is, and off where neither its onset nor the frame before
    sounds it; only a key that sounded before has its sustain drawn. The flags after it are drawn
    given that frame, not one that `consistent_onsets` would change afterwards. With
    `log_probability`, also the drawn frame's log-probability under the model at temperature 1:
    (frame, (B,))."""
    logits = tf.cast(logits, tf.float32)
    uniform = hash_uniform(tf.shape(logits), seed[0], seed[1])
    features = logits.shape[-1]
    terms = voice_terms or {}
    count, change = terms.get("count"), terms.get("change")
    zeros = tf.zeros_like(logits[:, 0])
    constrained = onset_sustain and previous is not None
    before, limit = None, 0
    if change is not None:
        counted = tf.cast(previous, tf.float32) * terms["counted"]
        before = tf.cumsum(counted, axis=-1) - counted  # keys sounding below each flag, the frame before
        limit = (change.shape[-1] - 1) // 2

    def body(k, frame, total, voices):
        logit = logits[:, k] + tf.linalg.matvec(frame, kernel[:, k])
        if count is not None:
            logit = logit + tf.gather(count[k], tf.cast(tf.minimum(voices, count.shape[-1] - 1), tf.int32))
        if change is not None:
            moved = tf.clip_by_value(voices - before[:, k], -limit, limit) + limit
            logit = logit + tf.gather(change[k], tf.cast(moved, tf.int32))
        flag = tf.cast(uniform[:, k] < tf.sigmoid(logit / temperature), tf.float32)
        if constrained:
            onset = tf.gather(frame, tf.maximum(k - 1, 0), axis=1)
            kept = _sustain_a_roll_can_hold(flag, onset, tf.cast(previous, tf.float32)[:, k])
            flag = tf.where(tf.equal(k % 2, 1), kept, flag)
        total = total + _bernoulli_log_probability(flag, logit)
        if terms:
            voices = voices + flag * terms["counted"][k]
        frame = frame + flag[:, None] * tf.one_hot(k, features, dtype=tf.float32)[None, :]
        return k + 1, frame, total, voices

    _, frame, total, _ = tf.while_loop(
        lambda k, *_: k < features, body, (tf.constant(0), tf.zeros_like(logits), zeros, zeros)
    )
    return (frame, total) if log_probability else frame


def sample_bernoulli_nade(
    parameters, input_kernel, output_kernel, seed, temperature: float = 1.0, log_probability=False
):
    """Flags drawn one at a time, lowest first, from a `layers.FrameNADE`: `parameters` (B, F + H)
    are the visible and hidden biases; flag k is on with probability
    sigmoid((b_k + V[k] . sigmoid(c + sum_{j<k} x_j W[j])) / temperature). With `log_probability`,
    also the drawn frame's log-probability under the model at temperature 1: (frame, (B,))."""
    parameters = tf.cast(parameters, tf.float32)
    features = input_kernel.shape[0]
    visible_bias, hidden_bias = parameters[:, :features], parameters[:, features:]
    uniform = hash_uniform(tf.shape(visible_bias), seed[0], seed[1])

    def body(k, activation, frame, total):
        logit = visible_bias[:, k] + tf.linalg.matvec(tf.sigmoid(activation), output_kernel[k])
        flag = tf.cast(uniform[:, k] < tf.sigmoid(logit / temperature), tf.float32)
        activation = activation + flag[:, None] * input_kernel[k][None, :]
        frame = frame + flag[:, None] * tf.one_hot(k, features, dtype=tf.float32)[None, :]
        return k + 1, activation, frame, total + _bernoulli_log_probability(flag, logit)

    _, _, frame, total = tf.while_loop(
        lambda k, *_: k < features,
        body,
        (tf.constant(0), hidden_bias, tf.zeros_like(visible_bias), tf.zeros_like(visible_bias[:, 0])),
    )
    return (frame, total) if log_probability else frame


def sample_pitch_axis(
    features,
    pitch_layers,
    key_output,
    seed,
    temperature: float = 1.0,
    log_probability=False,
    previous=None,
    reads_keys_below=True,
):
    """A frame drawn key by key, lowest first, by the pitch axis of tied-parallel LSTMs (experiment
    6): `features` (B, 88 H) are the time axis's outputs for the frame; the pitch-axis LSTMs
    (`pitch_layers`) step up the keys, reading each key's features and (with `reads_keys_below`)
    the flags just drawn for the key below; `key_output` (`layers.KeyOutput`) gives the key's
    logits, each channel given the key's channels drawn before it. With two channels and
    `previous`, the draw stays within what an onset/sustain roll can hold, as
    `sample_bernoulli_autoregressive` does. With `log_probability`, also the frame's
    log-probability under the model at temperature 1: (frame, (B,))."""
    features = tf.cast(features, tf.float32)
    batch = tf.shape(features)[0]
    channels = key_output.channels
    hidden = tf.reshape(features, [batch, NUM_KEYS, -1])
    uniform = hash_uniform(tf.stack([batch, NUM_KEYS * channels]), seed[0], seed[1])
    kernel, bias, coupling = key_output.weights_for_drawing()
    constrained = channels == 2 and previous is not None
    previous = None if previous is None else tf.cast(previous, tf.float32)
    dtype = pitch_layers[0].compute_dtype

    def body(k, states, below, keys, total):
        x = tf.concat([hidden[:, k], below], axis=-1) if reads_keys_below else hidden[:, k]
        x, states = lstm_stack_step(pitch_layers, tf.cast(x, dtype), states)
        base = tf.matmul(tf.cast(x, tf.float32), kernel) + bias  # (B, C)
        flags = []
        for c in range(channels):
            logit = base[:, c]
            for j in range(c):
                logit = logit + flags[j] * coupling[j, c]
            flag = tf.cast(
                tf.gather(uniform, k * channels + c, axis=1) < tf.sigmoid(logit / temperature), tf.float32
            )
            if constrained and c == 1:  # the sustain of a key whose onset is flags[0]
                held = tf.gather(previous, k * channels + 1, axis=1)
                flag = _sustain_a_roll_can_hold(flag, flags[0], held)
            total = total + _bernoulli_log_probability(flag, logit)
            flags.append(flag)
        below = tf.stack(flags, axis=-1)
        return k + 1, states, below, keys.write(k, below), total

    _, _, _, keys, total = tf.while_loop(
        lambda k, *_: k < NUM_KEYS,
        body,
        (
            tf.constant(0),
            zero_states(pitch_layers, batch),
            tf.zeros([batch, channels]),
            tf.TensorArray(tf.float32, size=NUM_KEYS),
            tf.zeros([batch]),
        ),
    )
    frame = tf.reshape(tf.transpose(keys.stack(), [1, 0, 2]), [batch, NUM_KEYS * channels])
    return (frame, total) if log_probability else frame


def consistent_onsets(frame, previous):
    """Flattened onset/sustain frames that respect note structure: an onset starts a note, and a
    sustain holds one only where the key sounded in the previous frame. A sustain drawn for a silent
    key is dropped; it used to start a note, and those one-step fragments doubled the note density
    of experiment 4's samples (3.5 notes per quarter against the chorales' 1.65)."""
    frame = tf.reshape(frame, [-1, NUM_KEYS, 2])
    previous = tf.reshape(previous, [-1, NUM_KEYS, 2])
    onset = frame[..., 0]
    sounding = tf.maximum(onset, frame[..., 1] * previous[..., 1])
    return tf.reshape(tf.stack([onset, sounding], axis=-1), [-1, NUM_KEYS * 2])


class FrameChooser:
    """How an output distribution becomes the next input: a token id or a roll frame.

    Args:
        kind: "token" (categorical over ids), "bernoulli" (independent flags) or "onehot"
            (one flag per frame from a softmax: the original experiments 2-3).
        blocked: ids never sampled (padding, unknown).
        onset_sustain: keep drawn onset/sustain frames consistent.
        autoregression: for "bernoulli", a draw of one frame flag by flag, each given those below it,
            `(logits, seed, temperature, log_probability=False, previous=None) -> frame`
            (`within_frame_draw` of a model's within-frame layer; `previous` is the frame before); the
            logits are then the head's, before the within-frame term.
        candidates: for "bernoulli" with `autoregression`, frames drawn per step, of which the one
            the model gives the highest probability is kept (1: every draw is kept).
    """

    def __init__(
        self,
        kind,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        blocked=(),
        onset_sustain=False,
        autoregression=None,
        candidates=1,
    ):
        self.kind, self.temperature, self.top_k, self.top_p = kind, temperature, top_k, top_p
        self.blocked = list(blocked)
        self.onset_sustain = onset_sustain
        self.autoregression = autoregression
        self.candidates = candidates

    def __call__(self, logits, previous, seed):
        if self.kind == "bernoulli":
            if self.autoregression is not None and self.candidates > 1:
                frame = self._most_likely_of_candidates(logits, previous, seed)
            elif self.autoregression is not None:
                frame = self.autoregression(logits, seed, self.temperature, previous=previous)
            else:
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

    def _most_likely_of_candidates(self, logits, previous, seed):
        """`candidates` frames drawn for each row (in one batch), the most probable one kept."""
        batch = tf.shape(logits)[0]

        def tiled(rows):
            return None if rows is None else tf.repeat(rows, self.candidates, axis=0)

        frames, log_probabilities = self.autoregression(
            tiled(logits), seed, self.temperature, log_probability=True, previous=tiled(previous)
        )
        best = tf.argmax(
            tf.reshape(log_probabilities, [batch, self.candidates]), axis=1, output_type=tf.int32
        )
        frames = tf.reshape(frames, [batch, self.candidates, -1])
        return tf.gather(frames, best, axis=1, batch_dims=1)


class Sampler:
    """The one compiled sampling loop of experiments 1-4, over a model's stepper (`steppers.py`).

    It reads the primer with `stepper.initial_state`, then steps: logits for what follows the
    current input, the chooser's draw becomes the next input. The whole loop is one `tf.function`
    with a `tf.while_loop`, compiled with XLA.

    Args:
        stepper: the model's incremental form, `model.stepper`.
        chooser: turns logits into the next input.
        token_input: inputs are token ids (experiment 1) rather than frames.
        jit_compile: compile the sampling loop with XLA (one compile per primer shape and length).

    Example:
        sampler = Sampler(model.stepper, FrameChooser("bernoulli", temperature=0.7), token_input=False)
        frames = sampler.generate(primes, length=64, seed=1)  # (B, 64, 176)
    """

    def __init__(self, stepper, chooser: FrameChooser, token_input: bool, jit_compile: bool = True):
        self.stepper, self.chooser, self.token_input = stepper, chooser, token_input
        self._loop = tf.function(self._loop_python, reduce_retracing=True, jit_compile=jit_compile)
        # longer samples: the same steps in chunks that carry the state, so Ctrl-C is seen between them
        self._first_chunk = tf.function(
            self._first_chunk_python, reduce_retracing=True, jit_compile=jit_compile
        )
        self._next_chunk = tf.function(self._steps, reduce_retracing=True, jit_compile=jit_compile)

    def final_logits(self, primes):
        """Logits after reading all of `primes` (B, P[, F]): equal to the full model's output."""
        primes = tf.convert_to_tensor(primes)
        logits, _ = self.stepper.step(primes[:, -1], self.stepper.initial_state(primes))
        return logits.numpy()

    def _loop_python(self, primes, length, seed):
        return self._first_chunk_python(primes, length, seed)[0]

    def _first_chunk_python(self, primes, length, seed):
        return self._steps(
            tf.cast(primes[:, -1], self._dtype(primes)),
            self.stepper.initial_state(primes),
            tf.constant(0),
            length,
            seed,
        )

    def _dtype(self, primes):
        return primes.dtype if self.token_input else tf.float32

    def _steps(self, current, state, start, length, seed):
        """(B, length[, F]) drawn steps start..start+length-1 after `current` in `state`, the last
        step drawn and the state after it; step i's draw depends on (seed, i) alone."""
        outputs = tf.TensorArray(current.dtype, size=length)

        def body(i, current, state, outputs):
            logits, state = self.stepper.step(current, state)
            chosen = tf.cast(
                self.chooser(logits, current, tf.stack([seed, tf.cast(start + i, tf.int64)])), outputs.dtype
            )
            return i + 1, chosen, state, outputs.write(i, chosen)

        _, current, state, outputs = tf.while_loop(
            lambda i, *_: i < length, body, (tf.constant(0), current, state, outputs)
        )
        stacked = outputs.stack()
        return tf.transpose(stacked, [1, 0] + list(range(2, len(stacked.shape)))), current, state

    def generate(self, primes: np.ndarray, length: int, seed: int) -> np.ndarray:
        """(B, length[, F]) continuations of `primes` (B, P[, F]); beyond `CHUNK_STEPS` steps, drawn
        in chunks (the same draws) so that an interrupt is seen within a chunk."""
        primes = np.asarray(primes)
        require_memory(
            primes.shape[0] * length * (1 if self.token_input else primes.shape[-1]) * 4 * 3,
            f"{primes.shape[0]} samples of {length} steps",
        )
        dtype = tf.int32 if self.token_input else tf.float32
        primes, seed = tf.constant(primes, dtype), tf.constant(seed, tf.int64)
        if length <= CHUNK_STEPS:
            return self._loop(primes, tf.constant(length), seed).numpy()
        outputs, current, state = self._first_chunk(primes, tf.constant(CHUNK_STEPS), seed)
        chunks = [outputs.numpy()]
        for start in range(CHUNK_STEPS, length, CHUNK_STEPS):
            outputs, current, state = self._next_chunk(
                current, state, tf.constant(start), tf.constant(CHUNK_STEPS), seed
            )
            chunks.append(outputs.numpy())
        return np.concatenate(chunks, axis=1)[:, :length]


def within_frame_draw(layer):
    """`(logits, seed, temperature) -> frame` for a model's within-frame layer: flag by flag through
    a `layers.FrameAutoregression` (its masked kernel) or a `layers.FrameNADE` (its two kernels)."""
    if isinstance(layer, FrameAutoregression):
        kernel = layer.masked_kernel()
        terms = layer.voice_terms() if layer.voice_bins or layer.voice_change_bins else None

        def draw(logits, seed, temperature, log_probability=False, previous=None):
            return sample_bernoulli_autoregressive(
                logits, kernel, seed, temperature, log_probability, terms, previous, layer.channels == 2
            )

        return draw
    if not isinstance(layer, FrameNADE):
        raise TypeError(f"no flag-by-flag draw for {type(layer).__name__}")
    input_kernel, output_kernel = layer.kernels()
    return lambda parameters, seed, temperature, log_probability=False, previous=None: sample_bernoulli_nade(
        parameters, input_kernel, output_kernel, seed, temperature, log_probability
    )


CHUNK_STEPS = 4096  # steps per compiled call for long samples: an interrupt waits at most one chunk


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def require_memory(needed_bytes: int, what: str) -> None:
    """One MusicTFError, before anything is drawn, when `what` needs more than half the memory
    available now (the rest is the model's, the decoding's and everyone else's)."""
    available = available_memory_bytes()
    if needed_bytes > available // 2:
        raise MusicTFError(
            f"{what} need about {needed_bytes / 1e9:.1f} GB, more than half of the {available / 1e9:.1f} GB "
            "available: draw fewer or shorter samples (--num, --length)"
        )


def blocked_token_ids(vocabulary) -> list[int]:
    return [vocabulary.index[PAD], vocabulary.index[UNK]]
