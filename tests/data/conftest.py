"""Fixtures of the data tests: random onset/sustain pieces and a shard store of them."""

from __future__ import annotations

import numpy as np
import pytest

from musictf.data import shards
from musictf.data.representation import RollRepresentation


def random_pieces(count=40, seed=0):
    rng = np.random.default_rng(seed)
    pieces = []
    for _ in range(count):  # keys 30 to 59 only: room to shift both ways
        frames = np.zeros((int(rng.integers(12, 60)), 88, 2), np.uint8)
        frames[:, 30:60] = rng.random((len(frames), 30, 2)) < 0.1
        pieces.append(frames.reshape(len(frames), 176))
    return pieces


@pytest.fixture
def store(tmp_path):
    pieces = random_pieces()
    shifts = RollRepresentation().key_shifts(3)
    shards.write_store(
        tmp_path / "store",
        {"kind": "test"},
        {"train": pieces, "valid": pieces[:3]},
        shifts.bounds,
        shard_bytes=40_000,
    )
    spec, splits = shards.open_store(tmp_path / "store")
    return pieces, splits["train"], shifts
