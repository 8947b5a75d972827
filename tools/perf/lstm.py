"""A benchmark-only LSTM variant: the input projection hoisted out of the recurrence.

`make bench` measures it beside Keras's LSTM on the same weights ("hoisted LSTM"); no experiment
uses it. A leaf, like the rest of `tools.perf`.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="musictf")
class LSTM(keras.layers.LSTM):
    """`keras.layers.LSTM` with the input projection hoisted out of the recurrence on CPU: one GEMM
    computes x_t W + b for every step, and the loop multiplies only by the recurrent kernel.

    Keras 3's CPU LSTM computes x_t W inside every step of its while-loop. The class keeps Keras's
    name because Keras files weights under the snake-cased class name ("lstm"): so the weights,
    their names and the `.keras` / `.weights.h5` layout are LSTM's, and checkpoints load either
    way. On a GPU (cuDNN), and with recurrent or input dropout, a mask or `go_backwards`, it is
    plain LSTM. Its outputs and gradients equal LSTM's (`tests/experiments/test_models.py`);
    `make bench` measures the two side by side ("hoisted LSTM").
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        import tensorflow as tf

        plain = (
            mask is not None
            or self.cell.dropout
            or self.cell.recurrent_dropout
            or self.go_backwards
            or not self.cell.use_bias
            or tf.config.list_logical_devices("GPU")
        )
        if plain:
            return super().inner_loop(sequences, initial_state, mask, training=training)
        from keras.src.backend.tensorflow.rnn import rnn

        from musictf import keras_internals

        keras_internals.require("hoisted LSTM")  # Keras's private loop, as RNN.inner_loop calls it
        cell = self.cell
        dtype = sequences.dtype
        projected = ops.matmul(sequences, ops.cast(cell.kernel, dtype)) + ops.cast(cell.bias, dtype)
        recurrent_kernel = ops.cast(cell.recurrent_kernel, dtype)

        def step(inputs, states):
            hidden, carry = states
            z = inputs + ops.matmul(hidden, recurrent_kernel)
            z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
            carry = cell.recurrent_activation(z_f) * carry + cell.recurrent_activation(z_i) * cell.activation(
                z_c
            )
            hidden = cell.recurrent_activation(z_o) * cell.activation(carry)
            return hidden, [hidden, carry]

        return rnn(
            step,
            projected,
            list(initial_state),
            unroll=self.unroll,
            input_length=sequences.shape[1],
            zero_output_for_mask=self.zero_output_for_mask,
            return_all_outputs=self.return_sequences,
        )
