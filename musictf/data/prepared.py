"""Corpus -> split -> representation -> arrays: the data a run trains, samples and is scored on.

`PreparedData` is what every later stage receives. `prepare_symbolic_data` is the `prepare` slot of
experiments 1-4; `prepare_audio_data` is experiment 5's. With a trained
representation given, data other than the run's own must fit it (see `prepare_symbolic_data`).

Example:
    data = prepare_symbolic_data(RollRepresentation(4), config)
    data.arrays["train"][0].shape  # (frames, 176)
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np

from musictf import files
from musictf.data import corpus as corpus_module
from musictf.data import keys, shards
from musictf.data.audio import current_renderer, mu_law_encode
from musictf.data.music import NoteColumns
from musictf.data.pianoroll import NUM_KEYS
from musictf.data.representation import Representation, from_json
from musictf.data.split import SPLITS, split_by_source
from musictf.errors import ConfigError, MusicTFError


@dataclasses.dataclass
class PreparedData:
    """A run's data in memory.

    Args:
        corpus: the parsed source, with its ingest report and file hashes.
        splits: split name -> pieces ("train", "valid", "test").
        representation: fitted on the train split (or the run's own, when evaluating or sampling).
        arrays: split -> one encoded item per piece, in the order of `splits`, as the
            representation makes them (token ids, roll frames, or audio (codes, roll, program));
            augmentation happens later, in the pipeline. Each split is a list in memory, or a
            `shards.ShardedSplit` read from disk when the arrays are larger than
            `stream_above_megabytes` (training then streams them: data/streamed.py).
    """

    corpus: corpus_module.Corpus
    splits: dict[str, list]
    representation: Representation
    arrays: dict[str, list]
    _manifest: dict | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

    @property
    def streamed(self) -> bool:
        return any(isinstance(items, shards.ShardedSplit) for items in self.arrays.values())

    def evaluation_split(self) -> str:
        """The split scored and primed from: test, else valid, else train (a tiny corpus)."""
        return next((split for split in ("test", "valid") if self.arrays[split]), "train")

    def validation_split(self) -> str:
        """The split each epoch is validated on: valid, or train where valid is empty (said in one
        line: val_*, early stopping and the best checkpoint then follow the training data)."""
        if len(self.arrays["valid"]):
            return "valid"
        print(
            "musictf: warning: the valid split is empty: validating on the train split (val_*, early "
            "stopping and the best checkpoint then follow the training data)",
            file=sys.stderr,
            flush=True,
        )
        return "train"

    def manifest(self) -> dict:
        """What a run records of its data (manifest.json): made once, hashing every file's entry."""
        if self._manifest is None:
            self._manifest = self._made_manifest()
        return self._manifest

    def _made_manifest(self) -> dict:
        by_file = split_files_with_hashes(self.splits, self.corpus.file_hashes)
        return {
            "source": self.corpus.source,
            "data_hash": data_hash(by_file),
            "pieces": {split: len(pieces) for split, pieces in self.splits.items()},
            "steps": {split: steps_of(self.representation, items) for split, items in self.arrays.items()},
            "arrays": "streamed from shards" if self.streamed else "in memory",
            "files": by_file,
            "skipped": self.corpus.report.skipped,
        }


def steps_of(representation, items) -> int:
    """A split's steps, from a sharded split's index without reading it; other items one at a time."""
    if isinstance(items, shards.ShardedSplit):
        return items.steps
    return int(sum(representation.steps(items[index]) for index in range(len(items))))


def split_files_with_hashes(splits: dict[str, list], file_hashes: dict[str, str]) -> dict[str, dict]:
    """file id -> {"split", "sha256"}: what a run's manifest records of its data."""
    return {
        piece.file_id: {"split": split, "sha256": file_hashes.get(piece.file_id)}
        for split, pieces in splits.items()
        for piece in pieces
    }


def data_hash(by_file: dict[str, dict]) -> str:
    """One short hash of which files, with which contents, fell in which split."""
    return files.sha256_text("".join(f"{k}{v['sha256']}" for k, v in sorted(by_file.items())))[:16]


def load_split_corpus(
    config, progress: bool = True, workers: int | None = None
) -> tuple[corpus_module.Corpus, dict[str, list]]:
    """The config's source, parsed (cached; `workers` processes, default one per core) and split by file."""
    corpus = corpus_module.load_corpus(
        config.source,
        max_files=config.max_files,
        workers=workers,
        timeout=config.parse_timeout,
        max_file_megabytes=config.max_file_megabytes,
        keep_truncated_midi=config.keep_truncated_midi,
        progress=progress,
    )
    splits = split_by_source(
        corpus.pieces, corpus.own_split, config.split_seed, config.valid_fraction, config.test_fraction
    )
    if config.transpose_to_c:
        splits = {split: [keys.transpose_to_c(piece) for piece in pieces] for split, pieces in splits.items()}
    if not splits["train"]:
        raise MusicTFError(f"{config.source}: the split left no training pieces")
    return corpus, splits


ARRAYS_VERSION = (
    3  # 3: shard stores for tokens and rolls. Bump when an encoding changes what it makes of the same notes.
)


def _cache_key(representation, fit: bool, data: str, transposition: dict) -> str:
    """The encoded arrays' identity: the data (files, contents, split, parser version), the
    representation's own (`cache_identity`: its settings, its vocabulary when trained, and what it
    renders with), and the augmentation."""
    identity = {
        "version": ARRAYS_VERSION,
        "parser": corpus_module.PARSE_VERSION,
        "data": data,
        "fit": fit,
        "class": type(representation).__name__,
        "transposition": transposition,
        **representation.cache_identity(fit),
    }
    return files.sha256_text(json.dumps(identity, sort_keys=True, default=str))


def _read_arrays(path: Path):
    """(representation spec, split -> items) from an arrays cache entry, or None for a missing,
    torn or corrupt one (a zip member's CRC is checked as it is read)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            spec = json.loads(str(stored["representation"]))
            arrays: dict[str, list] = {split: [] for split in SPLITS}
            for split in SPLITS:
                for index in range(int(stored[f"{split}.count"])):
                    parts = int(stored[f"{split}.{index}.parts"])
                    values = [stored[f"{split}.{index}.{part}"] for part in range(parts)]
                    arrays[split].append(values[0] if parts == 1 else (*values[:-1], int(values[-1])))
            return spec, arrays
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):
        return None


def _write_arrays(path: Path, representation, arrays: dict[str, list]) -> None:
    entries = {"representation": np.asarray(json.dumps(representation.to_json()))}
    for split, items in arrays.items():
        entries[f"{split}.count"] = np.asarray(len(items))
        for index, item in enumerate(items):
            parts = list(item) if isinstance(item, tuple) else [item]
            entries[f"{split}.{index}.parts"] = np.asarray(len(parts))
            entries |= {f"{split}.{index}.{part}": np.asarray(value) for part, value in enumerate(parts)}
    with files.atomic_path(path, suffix=".npz") as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, **entries)


def prepare_symbolic_data(
    representation,
    config,
    *,
    fit: bool = True,
    progress: bool = True,
    run_data_hash: str | None = None,
    cache_dir: Path | None = None,
) -> PreparedData:
    """Every split encoded with `representation`, fitted on the train split when `fit`.

    A trained representation (`fit=False`: sampling or evaluating a run) must fit data other than
    the run's own (a data hash other than `run_data_hash`), or MusicTFError says so. The run's own
    data is never refused: tokens its valid and test splits have and its train split lacks are
    expected, and the metrics count them. Fitting sees the train split in every key within
    `transpose_range` (a token vocabulary must hold the transposed tokens); the transposition
    itself happens in the pipeline (`pipeline.make_dataset`'s `key_shifts`).

    The encoded arrays are cached beside the parse cache (nanoGPT's prepare-once), keyed by
    `_cache_key`: a second run on the same data encodes, and renders, nothing. Token and roll
    arrays are a shard store (data/shards.py), audio one .npz.
    """
    corpus, splits = load_split_corpus(config, progress)
    own_hash = data_hash(split_files_with_hashes(splits, corpus.file_hashes))
    if not fit and own_hash != run_data_hash:
        representation.check_fits(splits["test"] or splits["train"], config.source)
    transposition = {"range": config.transpose_range, "to_c": config.transpose_to_c}
    cache_dir = Path(cache_dir) if cache_dir is not None else corpus_module.default_cache_dir()
    key = _cache_key(representation, fit, own_hash, transposition)
    if representation.stored_in_shards:
        store = cache_dir / "arrays" / f"{key[:48]}-{config.shard_megabytes:g}MB.shards"
        return _prepare_from_store(store, representation, config, fit, corpus, splits)
    path = cache_dir / "arrays" / f"{key}.npz"
    cached = _read_arrays(path)
    if cached is not None:
        spec, arrays = cached
        return PreparedData(corpus, splits, from_json(spec), arrays)
    if fit:
        representation.fit(splits["train"], config.transpose_range)
    arrays = {split: [representation.encode(piece) for piece in splits[split]] for split in SPLITS}
    files.CacheFolder(path.parent).write(_write_arrays, path, representation, arrays)
    return PreparedData(corpus, splits, representation, arrays)


class _Encoded:
    """A split's pieces, each encoded when asked for (a store is written without holding them all)."""

    def __init__(self, representation, pieces: list):
        self.representation, self.pieces = representation, pieces

    def __len__(self) -> int:
        return len(self.pieces)

    def __getitem__(self, index: int) -> np.ndarray:
        notes = self.pieces[index].notes
        encoded = self.representation.encode(self.pieces[index])
        if isinstance(notes, NoteColumns):
            notes.release()
        return encoded


def _prepare_from_store(store: Path, representation, config, fit: bool, corpus, splits) -> PreparedData:
    """The arrays from their shard store, encoded and written first on a miss. Held in memory up to
    `config.stream_above_megabytes`, else left on disk for training to stream. A cache folder that
    cannot be written keeps them in memory."""
    opened = shards.open_store(store)
    if opened is not None and not set(SPLITS) <= set(opened[1]):
        opened = None  # a store without every split is rebuilt
    if opened is None:
        if fit:
            representation.fit(splits["train"], config.transpose_range)
        encoded = {split: _Encoded(representation, splits[split]) for split in SPLITS}
        shifts = representation.key_shifts(config.transpose_range) if config.transpose_range > 0 else None
        written = files.CacheFolder(store.parent).write(
            shards.write_store,
            store,
            representation.to_json(),
            encoded,
            shifts.bounds if shifts is not None else (lambda array: (0, 0)),
            config.split_seed,
            int(config.shard_megabytes * 2**20),
        )
        opened = shards.open_store(store, verify=False) if written else None
        if opened is not None:  # the same arrays stored at another shard size are replaced by these
            for other in store.parent.glob(f"{store.name.rsplit('-', 1)[0]}-*MB.shards"):
                if other != store:
                    shutil.rmtree(other, ignore_errors=True)
        if opened is None:
            arrays = {split: [encoded[split][i] for i in range(len(encoded[split]))] for split in SPLITS}
            return PreparedData(corpus, splits, representation, arrays)
    spec, stored = opened
    megabytes = sum(split.nbytes for split in stored.values()) / 2**20
    if megabytes <= config.stream_above_megabytes and config.stream_above_megabytes > 0:
        stored = {split: items.load() for split, items in stored.items()}
    return PreparedData(corpus, splits, from_json(spec), stored)


def describe_corpus(config, representation, workers: int | None = None) -> str:
    """What `musictf data` prints: the ingest summary, then the corpus in `representation`'s units
    (the representation fitted on the train split) and per split."""
    from music21 import pitch

    corpus, splits = load_split_corpus(config, workers=workers)
    representation.fit(splits["train"])
    unit = representation.unit
    sizes = {
        split: steps_of(representation, _Encoded(representation, pieces)) for split, pieces in splits.items()
    }
    pitches = [
        int(pitch)
        for piece in corpus.pieces
        for pitch in _extremes(
            piece.notes.pitch if isinstance(piece.notes, NoteColumns) else [n.pitch for n in piece.notes]
        )
    ]
    lines = [corpus.report.summary(), f"pieces: {len(corpus.pieces)}; {unit}: {sum(sizes.values())}"]
    if hasattr(representation, "vocabulary"):
        lines.append(f"vocabulary (train split, with <pad> and <unk>): {representation.features}")
    if pitches:
        low, high = pitch.Pitch(midi=min(pitches)), pitch.Pitch(midi=max(pitches))
        lines.append(
            f"pitch range: {low.nameWithOctave} (MIDI {low.midi}) to {high.nameWithOctave} (MIDI {high.midi})"
        )
    else:
        lines.append("pitch range: none (no notes: every piece is silent)")
    lines += [f"{split}: {len(pieces)} pieces, {sizes[split]} {unit}" for split, pieces in splits.items()]
    if corpus.report_path is not None:
        lines.append(f"ingest report: {corpus.report_path}")
    return "\n".join(lines)


def _extremes(pitches) -> list:
    return [min(pitches), max(pitches)] if len(pitches) else []


def prepare_audio_data(
    representation, config, *, fit: bool = True, progress: bool = True, run_data_hash: str | None = None
) -> PreparedData:
    """Experiment 5's data (its `prepare` slot): the symbolic source rendered to audio, or a folder
    of WAV files (`corpus.load_wav_folder`), whose pieces have no piano roll (so local conditioning
    must be off). Any other source is parsed and split by the corpus stage and every piece rendered
    (`AudioRepresentation.encode`)."""
    if not corpus_module.wav_files(config.source):
        if fit:  # a trained representation keeps the renderer its training audio was made with
            representation = dataclasses.replace(representation, renderer=current_renderer())
        return prepare_symbolic_data(
            representation, config, fit=fit, progress=progress, run_data_hash=run_data_hash
        )
    if config.local_conditioning:
        raise ConfigError(
            f"{config.source}: WAV files have no piano roll; add --set local_conditioning=false"
        )
    corpus, waveforms = corpus_module.load_wav_folder(config.source, config.sample_rate, representation.hop)
    splits = split_by_source(
        corpus.pieces, corpus.own_split, config.split_seed, config.valid_fraction, config.test_fraction
    )
    representation = dataclasses.replace(representation, renderer="WAV files")
    arrays = {
        split: [
            (
                mu_law_encode(waveforms[piece.file_id]).astype(np.int16),
                np.zeros((len(waveforms[piece.file_id]) // representation.hop - 1, NUM_KEYS), np.uint8),
                0,
            )
            for piece in chosen
        ]
        for split, chosen in splits.items()
    }
    return PreparedData(corpus, splits, representation, arrays)
