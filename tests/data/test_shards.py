"""The shard store: the pieces of a split given back in order from several shards, an index that
disagrees with them or was edited is a miss, a killed writer's leftovers are removed, one store per
set of arrays."""

from __future__ import annotations

import pytest

from musictf.data import shards
from tests.data.conftest import random_pieces


def test_the_store_gives_back_every_piece_in_the_split_order_from_several_shards(store):
    pieces, split, _ = store
    assert len(split.shards) > 3
    assert [a.tobytes() for a in split] == [a.tobytes() for a in pieces]
    assert [a.tobytes() for a in split.load()] == [a.tobytes() for a in pieces]
    assert split.lengths.tolist() == [len(a) for a in pieces] and split.steps == sum(map(len, pieces))
    assert sorted(split.order.tolist()) == list(range(len(pieces)))
    assert split.order.tolist() != list(range(len(pieces)))  # stored shuffled: each shard samples the split


def _edit_index(folder, change, keep_checksum=False):
    import json

    path = folder / "index.json"
    index = json.loads(path.read_text())
    checksum = index.pop(shards.INDEX_CHECKSUM)
    change(index)
    index[shards.INDEX_CHECKSUM] = shards._index_digest(index) if keep_checksum else checksum
    path.write_text(json.dumps(index))


@pytest.mark.parametrize(
    "change",
    [
        lambda index: index["splits"]["train"]["shards"][0]["lengths"].reverse(),  # same sum, other pieces
        lambda index: index.update(splits={}),
        lambda index: [
            s.update(lengths=[3 * n for n in s["lengths"]]) for s in index["splits"]["train"]["shards"]
        ],
    ],
)
def test_an_edited_index_makes_the_store_a_miss(store, tmp_path, change):
    """Reliability review R8: an altered index.json trained on windows across pieces, or failed every
    later run with a traceback. Its own checksum catches an edit; its agreement with the shards
    catches one whose checksum was made to fit."""
    folder = tmp_path / "store"
    _edit_index(folder, change)
    assert shards.open_store(folder) is None


def test_an_index_that_disagrees_with_its_shards_is_a_miss_whatever_its_checksum(store, tmp_path):
    folder = tmp_path / "store"
    _edit_index(folder, lambda index: index["splits"]["train"]["shards"][0]["lengths"].append(5), True)
    assert shards.open_store(folder) is None


def test_a_killed_writers_half_built_store_is_removed_by_the_next_writer(tmp_path):
    """Reliability review R7: a SIGKILLed writer's temp store stayed in the cache for ever."""
    import os
    import time

    stale, live = tmp_path / ".store.abc123", tmp_path / ".other.def456"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "train-00000.npy").write_bytes(b"x" * 100)
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    shards.write_store(tmp_path / "store", {"kind": "test"}, {"train": random_pieces(3)}, lambda a: (0, 0))
    assert not stale.exists() and live.exists() and shards.open_store(tmp_path / "store") is not None


def test_a_new_shard_size_replaces_the_store_of_the_old_one(tmp_path, monkeypatch):
    """Reliability review, note on row 20: each shard size kept a full copy of the same arrays."""
    from musictf.experiments import get_experiment
    from musictf.experiments.base import prepare_data

    monkeypatch.setenv("MUSICTF_CACHE_DIR", str(tmp_path / "cache"))
    experiment = get_experiment("2")
    for megabytes in ("0.2", "0.1"):
        config = experiment.load_config("smoke", [f"shard_megabytes={megabytes}", "stream_above_megabytes=0"])
        prepare_data(experiment, config, progress=False)
    stores = sorted(path.name for path in (tmp_path / "cache" / "arrays").glob("*.shards"))
    assert len(stores) == 1 and stores[0].endswith("-0.1MB.shards"), stores
