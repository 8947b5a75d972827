"""The one guard over what musictf takes from Keras's private code, for the Keras it pins (3.15.1).

Four parts of musictf depend on Keras internals:
- the multi-worker shim (multiworker.py) replaces two functions of Keras's TensorFlow trainer;
- `train.AtomicBackupAndRestore` overrides BackupAndRestore's private `_load_model` and
  `_save_model`, relies on `on_epoch_end` setting `_current_epoch` and `on_train_begin` calling
  `_load_model`, and sets the private `model._initial_epoch` that `fit` reads;
- `train.AveragedWeights` subclasses SwapEMAWeights and calls its `on_test_begin`/`on_test_end`
  at each epoch's end, relying on them to swap (the private `_swap_variables`) only when the
  average is out of, or in, the model;
- the hoisted LSTM of the benchmark (`bench/lstm.py`) overrides LSTM's `inner_loop` and calls the TensorFlow
  backend's private `rnn` loop, as RNN's own `inner_loop` does.

Each is recorded here by the SHA-256 of the Keras source it was written against. `require(part)`
refuses, in one line, to run a part whose Keras source changed, and tests/test_distribute.py fails,
so the part is revisited when Keras is upgraded, instead of silently misbehaving.
"""

from __future__ import annotations

import hashlib
import inspect

from musictf.errors import MusicTFError

# part -> {Keras function: sha256(inspect.getsource(function))[:16]} for Keras 3.15.1
RECORDED_SOURCES = {
    "multi-worker shim": {
        "TensorFlowTrainer._maybe_symbolic_build": "92a504f5eba9b29f",
        "reduce_per_replica": "2e7d54b1e6edc29a",
    },
    "atomic backup": {
        "BackupAndRestore.on_train_begin": "dfdb7eac4983f490",
        "BackupAndRestore.on_epoch_end": "6703014b0a783529",
        "BackupAndRestore._load_model": "2d9676e74b55aa49",
        "BackupAndRestore._save_model": "5eb7b53ca13ad33d",
        "TensorFlowTrainer.fit": "a9a6dc02a7ddafa8",
    },
    "averaged weights": {
        "SwapEMAWeights._swap_variables": "48b34c8be9dba2b0",
        "SwapEMAWeights._tf_swap_variables": "b97e276e6d013ee9",
        "SwapEMAWeights.on_test_begin": "fada19c5fd34944a",
        "SwapEMAWeights.on_test_end": "52e64b2975fb3191",
    },
    "hoisted LSTM": {
        "LSTM.inner_loop": "8dc385b0e14a252e",
        "RNN.inner_loop": "95624f67dd86cc32",
        "rnn": "e5253cfb13d19752",
    },
}
_checked: set[str] = set()


def keras_functions() -> dict:
    from keras.src.backend.tensorflow import trainer
    from keras.src.backend.tensorflow.rnn import rnn
    from keras.src.callbacks.backup_and_restore import BackupAndRestore
    from keras.src.callbacks.swap_ema_weights import SwapEMAWeights
    from keras.src.layers.rnn.lstm import LSTM
    from keras.src.layers.rnn.rnn import RNN

    return {
        "TensorFlowTrainer._maybe_symbolic_build": trainer.TensorFlowTrainer._maybe_symbolic_build,
        "reduce_per_replica": trainer.reduce_per_replica,
        "BackupAndRestore.on_train_begin": BackupAndRestore.on_train_begin,
        "BackupAndRestore.on_epoch_end": BackupAndRestore.on_epoch_end,
        "BackupAndRestore._load_model": BackupAndRestore._load_model,
        "BackupAndRestore._save_model": BackupAndRestore._save_model,
        "TensorFlowTrainer.fit": trainer.TensorFlowTrainer.fit,
        "SwapEMAWeights._swap_variables": SwapEMAWeights._swap_variables,
        "SwapEMAWeights._tf_swap_variables": SwapEMAWeights._tf_swap_variables,
        "SwapEMAWeights.on_test_begin": SwapEMAWeights.on_test_begin,
        "SwapEMAWeights.on_test_end": SwapEMAWeights.on_test_end,
        "LSTM.inner_loop": LSTM.inner_loop,
        "RNN.inner_loop": RNN.inner_loop,
        "rnn": rnn,
    }


def source_hashes() -> dict[str, dict[str, str]]:
    functions = keras_functions()
    return {
        part: {
            name: hashlib.sha256(inspect.getsource(functions[name]).encode()).hexdigest()[:16]
            for name in names
        }
        for part, names in RECORDED_SOURCES.items()
    }


def require(part: str) -> None:
    """Raises MusicTFError if the Keras code `part` depends on is not the code it was written for."""
    if part in _checked:
        return
    import keras

    changed = [
        name for name, digest in source_hashes()[part].items() if RECORDED_SOURCES[part][name] != digest
    ]
    if changed:
        raise MusicTFError(
            f"Keras {keras.__version__} changed {', '.join(changed)}, which musictf's {part} depends on "
            "(written for Keras 3.15.1); pin keras==3.15.1 or update musictf/keras_internals.py"
        )
    _checked.add(part)
