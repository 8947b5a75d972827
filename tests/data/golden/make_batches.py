"""Writes `batches.npz`: seeded batches of `pipeline.make_dataset` over small synthetic pieces.

The file was written by the per-window pipeline (window map, then batch) before the pipeline became
batch-then-map; test_pipeline.py checks that the pipeline still gives these batches exactly. Run it
again only on purpose (a change that is meant to change the batches):
    python tests/data/golden/make_batches.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from musictf.data.music import Note, Piece
from musictf.data.pianoroll import NUM_KEYS
from musictf.data.pipeline import audio_dataset, make_dataset
from musictf.data.representation import RollKeyShifts, TokenRepresentation
from musictf.data.windows import WindowSpec

NAMES = ["C4", "D4", "E4", "F#4", "G4", "A4", "B-4", "C5"]


def roll_arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    arrays = []
    for length, low, high in ((30, 2, 40), (25, 30, 80), (41, 10, 87)):
        roll = np.zeros((length, NUM_KEYS, 2), np.uint8)
        keys = rng.integers(low, high + 1, size=(length, 3))
        for step, row in enumerate(keys):
            roll[step, row, 1] = 1
            roll[step, row[:1], 0] = 1
        roll[0, low, 1] = roll[0, high, 1] = 1  # the piece's extreme keys bound its shifts
        arrays.append(roll.reshape(length, -1))
    return arrays


def token_setup():
    pieces = []
    for index, length in enumerate((28, 35, 22)):
        names = [NAMES[(index + 3 * step) % len(NAMES)] for step in range(length)]
        notes = tuple(
            Note(int(60 + NAMES.index(name) * 1.5), float(step), 1.0, name) for step, name in enumerate(names)
        )
        pieces.append(Piece(f"p{index}", f"p{index}", "", notes))
    representation = TokenRepresentation("pitch").fit(pieces, transpose_range=2)
    return [representation.encode(piece) for piece in pieces], representation.key_shifts(2)


def audio_items(config) -> list[tuple]:
    rng = np.random.default_rng(4)
    items = []
    for program, frames in enumerate((9, 14, 7)):
        codes = rng.integers(0, 256, (frames + 1) * config.hop).astype(np.int32)
        items.append((codes, (rng.random((frames, NUM_KEYS)) < 0.1).astype(np.uint8), program))
    return items


def streams() -> dict[str, list]:
    """name -> the batches, each a list of numpy arrays (the inputs, flattened, then the target)."""
    rolls = roll_arrays()
    ids, token_shifts = token_setup()
    roll_shifts = RollKeyShifts(transpose_range=6, channels=2)
    cases = {
        "roll_next_train": dict(
            arrays=rolls,
            seq_len=6,
            target="next",
            batch_size=8,
            shuffle=True,
            seed=11,
            drop_remainder=True,
            repeat=True,
            key_shifts=roll_shifts,
            start_row=16,
            take=12,
        ),
        "roll_window_train": dict(
            arrays=rolls,
            seq_len=5,
            target="window",
            batch_size=4,
            shuffle=True,
            seed=5,
            drop_remainder=True,
            repeat=True,
            key_shifts=roll_shifts,
            take=6,
        ),
        "roll_window_self": dict(
            arrays=rolls,
            seq_len=4,
            target="window",
            batch_size=5,
            shuffle=True,
            seed=2,
            drop_remainder=True,
            repeat=True,
            target_as_input=True,
            take=3,
        ),
        "roll_next_eval": dict(
            arrays=rolls, seq_len=6, target="next", batch_size=16, shuffle=False, seed=0, stride=2, take=100
        ),
        "token_next_train": dict(
            arrays=ids,
            seq_len=5,
            target="next",
            batch_size=8,
            shuffle=True,
            seed=7,
            drop_remainder=True,
            repeat=True,
            key_shifts=token_shifts,
            start_row=8,
            take=10,
        ),
        "token_window_eval": dict(
            arrays=ids, seq_len=4, target="window", batch_size=3, shuffle=False, seed=0, stride=4, take=100
        ),
    }
    from musictf.experiments.e5_wavenet import WaveNetConfig

    audio = WaveNetConfig(sample_rate=400, layers_per_stack=3, stacks=1, segment_frames=2, seed=9)
    audio_cases = {
        "audio_train": dict(batch_size=3, shuffle=True, repeat=True, start_row=6, take=5),
        "audio_eval": dict(batch_size=4, shuffle=False, stride=2, max_windows=7, take=100),
    }
    result = {}
    for name, case in audio_cases.items():
        take = case.pop("take")
        result[name] = [
            [inputs["codes"].numpy(), inputs["roll"].numpy(), inputs["program"].numpy(), target.numpy()]
            for inputs, target in audio_dataset(audio_items(audio), audio, **case).take(take)
        ]
    for name, case in cases.items():
        take = case.pop("take")
        batches = []
        arrays = case.pop("arrays")
        for inputs, target in make_dataset(arrays, WindowSpec(**case)).take(take):
            inputs = inputs if isinstance(inputs, tuple) else (inputs,)
            batches.append([tensor.numpy() for tensor in (*inputs, target)])
        result[name] = batches
    return result


def main() -> None:
    arrays = {
        f"{name}/{batch}/{part}": array
        for name, batches in streams().items()
        for batch, parts in enumerate(batches)
        for part, array in enumerate(parts)
    }
    path = Path(__file__).with_name("batches.npz")
    np.savez_compressed(path, **arrays)
    print(f"{path}: {len(arrays)} arrays")


if __name__ == "__main__":
    main()
