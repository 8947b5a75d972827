"""Encoded arrays on disk in shards: written once, read piece by piece, streamed by tf.data.

A store is one folder in the arrays cache:

    <key>/index.json                 the representation, and per split its shards
    <key>/<split>-00000.npy          pieces' arrays concatenated along time (np.save format)

Each shard closes once it holds `shard_bytes` (a piece is never cut). A split's pieces go into
the shards in a seeded random order (`order` in the index), so that a shard is a sample of the
whole split, not a run of neighbouring files (a folder's variants of one piece sit side by side);
reading a split piece by piece still gives the pieces in the split's own order.

For each shard the index holds its SHA-256, byte size, the length of each piece and each piece's
key-shift bounds. Writing goes into a temporary folder renamed into place once every shard and the
index are on disk, so an entry is whole or absent; opening checks every shard's size and checksum,
so a torn or altered shard is a miss (the caller encodes again).

A multi-worker run hands each worker its own shards (`ShardedSplit.shards_of`), and
`MUSICTF_SHARD_READ_LOG=<file>` makes every process append one line per shard it reads, so what
each worker read can be checked (tests/test_distribute.py does).

Example:
    write_store(folder, spec, {"train": pieces}, bounds_of=lambda array: (0, 0))
    spec, splits = open_store(folder)
    splits["train"][3]            # piece 3 of the train split, as encoded
    splits["train"].lengths       # every piece's length in steps
"""

from __future__ import annotations

import collections.abc
import json
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np

from musictf import files

STORE_VERSION = 2  # 2: index.json carries its own checksum
SHARD_BYTES = 16 << 20  # a shard closes at 16 MiB: four in flight when streaming cost 64 MiB
READ_LOG = "MUSICTF_SHARD_READ_LOG"


def _shard_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.npy"


def write_store(
    folder: Path,
    representation_spec: dict,
    splits: dict[str, collections.abc.Sequence],
    bounds_of,
    seed: int = 0,
    shard_bytes: int = SHARD_BYTES,
) -> None:
    """Writes every split's arrays (`splits`: split -> a sequence of arrays, read one at a time) as
    one store at `folder`; `bounds_of(array)` gives a piece's (lowest, highest) key shift."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    files.remove_stale_folders(folder.parent)  # stores a killed writer left half built
    files.remove_stale_temporaries(folder.parent)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        index = {"version": STORE_VERSION, "representation": representation_spec, "splits": {}}
        for split, arrays in splits.items():
            order = (
                np.random.default_rng([seed, zlib.crc32(split.encode())]).permutation(len(arrays)).tolist()
            )
            index["splits"][split] = {
                "order": order,
                "shards": _write_split(building, split, arrays, order, bounds_of, shard_bytes),
            }
        files.write_json(building / "index.json", index | {INDEX_CHECKSUM: _index_digest(index)})
        _fsync_folder(building)
        if folder.exists():
            if open_store(folder) is not None:  # another process (a peer worker) wrote it meanwhile
                shutil.rmtree(building)
                return
            shutil.rmtree(folder)  # a torn store from before: replaced whole
        os.replace(building, folder)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise


def _write_split(
    building: Path, split: str, arrays, order: list[int], bounds_of, shard_bytes: int
) -> list[dict]:
    shards: list[dict] = []
    pending: list[np.ndarray] = []

    def close() -> None:
        path = building / _shard_name(split, len(shards))
        joined = np.concatenate(pending)
        with open(path, "wb") as handle:
            np.save(handle, joined, allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        shards.append(
            {
                "file": path.name,
                "sha256": files.sha256_file(path),
                "bytes": path.stat().st_size,
                "lengths": [len(array) for array in pending],
                "bounds": [list(map(int, bounds_of(array))) for array in pending],
                "dtype": joined.dtype.str,
                "shape": list(joined.shape[1:]),
            }
        )
        pending.clear()

    held = 0
    for position in order:
        array = np.asarray(arrays[position])
        pending.append(array)
        held += array.nbytes
        if held >= shard_bytes:
            close()
            held = 0
    if pending:
        close()
    return shards


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


INDEX_CHECKSUM = "_sha256"  # index.json's own: the SHA-256 of the rest of it


def _index_digest(index: dict) -> str:
    return files.sha256_text(json.dumps(index, sort_keys=True))


def _consistent(folder: Path, split: dict) -> bool:
    """Whether a split's index agrees with itself and its shards: a bound per piece, an order that
    is a permutation of the pieces, and pieces' lengths that sum to each shard's rows."""
    shards = split["shards"]
    pieces = sum(len(shard["lengths"]) for shard in shards)
    if sorted(split["order"]) != list(range(pieces)):
        return False
    for shard in shards:
        if len(shard["bounds"]) != len(shard["lengths"]) or min(shard["lengths"], default=0) < 0:
            return False
        if np.load(folder / shard["file"], mmap_mode="r", allow_pickle=False).shape[0] != sum(
            shard["lengths"]
        ):
            return False
    return True


def open_store(folder: Path, verify: bool = True) -> tuple[dict, dict[str, ShardedSplit]] | None:
    """(representation spec, split -> ShardedSplit), or None for a missing, torn or altered store:
    the index's own checksum and its agreement with the shards, and every shard's size (with
    `verify`, its SHA-256) checked against the index."""
    folder = Path(folder)
    try:
        index = json.loads((folder / "index.json").read_text())
        if index.get("version") != STORE_VERSION or index.pop(INDEX_CHECKSUM, None) != _index_digest(index):
            return None
        for split in index["splits"].values():
            for shard in split["shards"]:
                path = folder / shard["file"]
                if path.stat().st_size != shard["bytes"] or (
                    verify and files.sha256_file(path) != shard["sha256"]
                ):
                    return None
            if not _consistent(folder, split):
                return None
        return index["representation"], {
            name: ShardedSplit(folder, split["shards"], split["order"])
            for name, split in index["splits"].items()
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


UNREADABLE_SHARD = "the cached shard store changed while it was read"  # marks the error


def read_shard(path: str | os.PathLike) -> np.ndarray:
    """One shard's arrays, concatenated (appends to the read log when MUSICTF_SHARD_READ_LOG is set).
    A shard cut short or removed since the store was opened raises an OSError whose message starts
    with `UNREADABLE_SHARD` and names it, so that training can say so through TensorFlow."""
    log = os.environ.get(READ_LOG)
    if log:
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()} {Path(path).name}\n")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise OSError(f"{UNREADABLE_SHARD} ({path}: {type(error).__name__})") from None


class ShardedSplit(collections.abc.Sequence):
    """One split of a store: a sequence of its pieces' arrays in the split's order, each read from
    disk when asked for (a memory map of its shard, copied out). `lengths` needs no reading."""

    def __init__(self, folder: Path, shards: list[dict], order: list[int]):
        self.folder, self.shards = Path(folder), shards
        stored_lengths = [length for shard in shards for length in shard["lengths"]]
        self.order = np.asarray(order, np.int64)  # stored position -> piece index in the split
        self._position_of = np.empty_like(self.order)
        self._position_of[self.order] = np.arange(len(self.order))
        shard_of, offset_of = [], []
        for number, shard in enumerate(shards):
            offsets = np.concatenate([[0], np.cumsum(shard["lengths"])[:-1]]) if shard["lengths"] else []
            shard_of += [number] * len(shard["lengths"])
            offset_of += list(offsets)
        self._shard_of = np.asarray(shard_of, np.int64)
        self._offset_of = np.asarray(offset_of, np.int64)
        self._stored_lengths = np.asarray(stored_lengths, np.int64)

    def __len__(self) -> int:
        return len(self.order)

    @property
    def lengths(self) -> np.ndarray:
        """Each piece's length in steps, in the split's order."""
        return self._stored_lengths[self._position_of]

    @property
    def steps(self) -> int:
        return int(self._stored_lengths.sum())

    @property
    def nbytes(self) -> int:
        return sum(shard["bytes"] for shard in self.shards)

    def path(self, shard: int) -> Path:
        return self.folder / self.shards[shard]["file"]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        position = self._position_of[index]
        stored = np.load(self.path(self._shard_of[position]), mmap_mode="r", allow_pickle=False)
        start = self._offset_of[position]
        return np.array(stored[start : start + self._stored_lengths[position]])

    def load(self) -> list[np.ndarray]:
        """Every piece in memory, in the split's order (each shard read once)."""
        pieces: list = [None] * len(self)
        for number in range(len(self.shards)):
            stored = read_shard(self.path(number))
            positions = np.nonzero(self._shard_of == number)[0]
            for position in positions:
                start = self._offset_of[position]
                pieces[self.order[position]] = stored[start : start + self._stored_lengths[position]].copy()
        return pieces

    def shards_of(self, worker: int, workers: int) -> list[int]:
        """The shards worker `worker` of `workers` reads: every `workers`-th, from its own."""
        return list(range(worker, len(self.shards), workers))
