"""The models' incremental forms: one time step at a time, on the very layers their builders made.

A builder attaches its stepper to the model it returns (`model.stepper`), so sampling never finds
a model's structure by layer names; `run.load_model` rebuilds the model from the run's config
and loads the checkpoint's weights into it, so a loaded model has its stepper too. keras-hub's
`call_with_cache` is the model followed. A stepper has two methods, which the one compiled loop in
`generate.Sampler` calls:
- `initial_state(primes)`: the state after reading all of `primes` (B, P[, F]) but the last step;
- `step(inputs, state) -> (logits, state)`: the logits for what follows `inputs`.
Each equals its full model: `tests/experiments/test_models.py` checks the logits.
"""

from __future__ import annotations

import tensorflow as tf

from musictf.data.pianoroll import NUM_KEYS


def lstm_stack_step(layers, inputs, states):
    """One time step through stacked LSTM layers' cells; `states` is a list of (h, c)."""
    new_states = []
    for layer, (hidden, carry) in zip(layers, states, strict=True):
        inputs, (hidden, carry) = layer.cell(inputs, [hidden, carry], training=False)
        new_states.append((hidden, carry))
    return inputs, new_states


def zero_states(layers, batch):
    return [
        (
            tf.zeros([batch, layer.units], layer.compute_dtype),
            tf.zeros([batch, layer.units], layer.compute_dtype),
        )
        for layer in layers
    ]


class StackStepper:
    """Experiments 1 and 2: an optional input transform, stacked LSTMs, a head.

    Args:
        input_layer: the embedding or token scaling of token ids, or None for roll frames.
        lstm_layers: the stacked LSTM layers, bottom first.
        head: the classifier on the top LSTM's output.
    """

    def __init__(self, input_layer, lstm_layers, head):
        self.input_layer, self.lstm_layers, self.head = input_layer, list(lstm_layers), head

    def step(self, inputs, states):
        x = inputs
        if self.input_layer is not None:
            x = self.input_layer(x[:, None], training=False)[:, 0]
        x, states = lstm_stack_step(self.lstm_layers, tf.cast(x, self.lstm_layers[0].compute_dtype), states)
        return tf.cast(self.head(x, training=False), tf.float32), states

    def zero_states(self, batch):
        return zero_states(self.lstm_layers, batch)

    def initial_state(self, primes):
        states = self.zero_states(tf.shape(primes)[0])
        steps = tf.shape(primes)[1]

        def body(t, states):
            _, states = self.step(primes[:, t], states)
            return t + 1, states

        _, states = tf.while_loop(lambda t, _: t < steps - 1, body, (tf.constant(0), states))
        return states


class TiedParallelStepper(StackStepper):
    """Experiment 6: the time axis of tied-parallel LSTMs, one step for every key at once (the keys
    folded into the batch). Its "logits" are the time axis's outputs for the next frame, (B, 88 H),
    which the pitch axis turns into a frame key by key (`generate.sample_pitch_axis`).

    Args:
        neighbourhood: the `layers.KeyNeighbourhood` giving each key's inputs from a frame.
        lstm_layers: the time-axis LSTM layers, bottom first.
    """

    def __init__(self, neighbourhood, lstm_layers):
        super().__init__(neighbourhood, lstm_layers, head=None)

    def zero_states(self, batch):
        return zero_states(self.lstm_layers, batch * NUM_KEYS)

    def step(self, inputs, states):
        keys = self.input_layer(inputs, training=False)  # (B, 88, D)
        x = tf.reshape(keys, [-1, keys.shape[-1]])
        x, states = lstm_stack_step(self.lstm_layers, tf.cast(x, self.lstm_layers[0].compute_dtype), states)
        return tf.reshape(tf.cast(x, tf.float32), [tf.shape(inputs)[0], -1]), states


class Seq2SeqStepper:
    """Experiments 3 and 4: an encoder reads a window, its states start a decoder that runs one
    frame at a time, each step fed the frame drawn at the step before (the original fed zeros).
    After every window's worth of steps, the frames drawn last become the encoder's next window.

    Args:
        encoder_layers, decoder_layers: the stacked LSTM layers, bottom first.
        attention: the Luong attention layer over the encoder outputs, or None.
        head: the classifier on the decoder's output.
    """

    def __init__(self, encoder_layers, decoder_layers, attention, head):
        self.encoder_layers, self.decoder_layers = list(encoder_layers), list(decoder_layers)
        self.attention, self.head = attention, head

    def encode(self, window):
        x, states = tf.cast(window, self.encoder_layers[0].compute_dtype), []
        for layer in self.encoder_layers:
            x, hidden, carry = layer(x, training=False)
            states.append((hidden, carry))
        return x, states

    def decode_step(self, frame, states, encoder_outputs):
        x, states = lstm_stack_step(
            self.decoder_layers, tf.cast(frame, self.decoder_layers[0].compute_dtype), states
        )
        x = x[:, None]  # the head and attention were built on (batch, time, units)
        if self.attention is not None:
            x = self.attention([x, encoder_outputs], training=False)
        return tf.cast(self.head(x, training=False)[:, 0], tf.float32), states

    def initial_state(self, primes):
        """The primer is the first window: encoded, it starts the decoder."""
        window = tf.cast(primes, tf.float32)
        encoder_outputs, states = self.encode(window)
        return states, encoder_outputs, window, tf.constant(0)

    def step(self, frame, state):
        states, encoder_outputs, window, drawn = state
        length = tf.shape(window)[1]
        # `frame` is the frame drawn at step drawn - 1: it takes its place in the next window
        place = tf.one_hot((drawn - 1) % length, length, dtype=window.dtype)[None, :, None]
        window = tf.where(
            drawn > 0, window * (1 - place) + tf.cast(frame, window.dtype)[:, None, :] * place, window
        )
        encoder_outputs, states = tf.cond(
            (drawn > 0) & (drawn % length == 0),
            lambda: self.encode(window),
            lambda: (encoder_outputs, states),
        )
        logits, states = self.decode_step(frame, states, encoder_outputs)
        return logits, (states, encoder_outputs, window, drawn + 1)

    def teacher_forced_logits(self, window, decoder_inputs):
        """Step-by-step logits for given decoder inputs: equal to the full model's output."""
        encoder_outputs, states = self.encode(tf.convert_to_tensor(window, tf.float32))
        outputs = []
        for t in range(decoder_inputs.shape[1]):
            logits, states = self.decode_step(
                tf.convert_to_tensor(decoder_inputs[:, t], tf.float32), states, encoder_outputs
            )
            outputs.append(logits)
        return tf.stack(outputs, axis=1).numpy()
