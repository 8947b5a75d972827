"""Pieces -> arrays for the models, and back; saved with every run so a checkpoint knows its data.

`TokenRepresentation` wraps the tokenizer and the vocabulary built on the train split;
`RollRepresentation` wraps the piano roll at a grid and an encoding. Both turn a piece into one
array (token ids, or (T, features) frames), decode arrays back to notes, and serialize to JSON.
`Representation` is what the engine calls on every representation (audio's too,
`audio.AudioRepresentation`), `SymbolicRepresentation` what it adds for notes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from musictf.data import pianoroll, tokens
from musictf.data.audio import audio_representation_from_json
from musictf.data.music import HIGHEST_PITCH, LOWEST_PITCH, Note, Piece, transpose_notes, transposed_name
from musictf.errors import MusicTFError


@runtime_checkable
class Representation(Protocol):
    """What the engine calls on a representation, whatever it encodes."""

    kind: str  # "tokens", "pianoroll" or "audio": saved in representation.json
    stored_in_shards: bool  # one array per piece (a shard store), or audio's one .npz

    @property
    def features(self) -> int: ...  # the model's input and output width

    def fit(self, pieces: Sequence[Piece], transpose_range: int = 0) -> Any: ...

    def encode(self, piece: Piece) -> Any: ...

    def steps(self, item: Any) -> int: ...

    def check_fits(self, pieces: Sequence[Piece], source: str) -> None: ...

    def to_json(self) -> dict: ...

    def cache_identity(self, fit: bool) -> dict: ...


@runtime_checkable
class SymbolicRepresentation(Representation, Protocol):
    """A representation of notes: arrays decode back to notes, and keys can be shifted."""

    @property
    def unit(self) -> str: ...

    def decode(self, array: np.ndarray) -> list[Note]: ...

    def quarters(self, array: np.ndarray) -> float: ...

    def key_shifts(self, transpose_range: int) -> Any: ...


def transposed_pieces(pieces: Sequence[Piece], transpose_range: int) -> list[Piece]:
    """Every piece in every transposition within +-`transpose_range` that stays on the keyboard."""
    result = []
    for piece in pieces:
        for semitones in range(-transpose_range, transpose_range + 1):
            notes = piece.notes if semitones == 0 else transpose_notes(piece.notes, semitones)
            if notes is not None:
                result.append(
                    dataclasses.replace(piece, piece_id=f"{piece.piece_id}@{semitones:+d}", notes=notes)
                )
    return result


@dataclasses.dataclass
class TokenRepresentation:
    """Token ids per piece.

    Args:
        mode: one of `tokens.TOKEN_MODES`: "notes" (a pitch and a length per note, time shifts
            between onsets; the default), "duration" (tokens carry slice lengths and rests) or
            "pitch" (the original's).
        vocabulary: built by `fit` on the train split, or loaded with a run.
    """

    mode: str = tokens.DEFAULT_TOKEN_MODE
    vocabulary: tokens.Vocabulary | None = None
    kind = "tokens"
    stored_in_shards = True  # one array per piece: the arrays cache is a shard store (data/shards.py)
    max_unknown_rate = 0.5  # refuse data where more than half the tokens are unknown to the model

    def fit(self, pieces: Sequence[Piece], transpose_range: int = 0) -> TokenRepresentation:
        """The vocabulary of `pieces` in every key within +-`transpose_range` (so that the keys the
        training windows are shifted to have their tokens)."""
        pieces = transposed_pieces(pieces, transpose_range) if transpose_range > 0 else pieces
        self.vocabulary = tokens.Vocabulary.build(tokens.encode(piece.notes, self.mode) for piece in pieces)
        return self

    def key_shifts(self, transpose_range: int) -> TokenKeyShifts:
        return TokenKeyShifts(self, transpose_range)

    @property
    def fitted(self) -> tokens.Vocabulary:
        """The vocabulary; a representation that has not been fitted has none to use."""
        if self.vocabulary is None:
            raise MusicTFError("the token representation has no vocabulary yet: fit it on the train split")
        return self.vocabulary

    @property
    def features(self) -> int:
        return len(self.fitted)

    @property
    def unit(self) -> str:
        return f"{self.mode} tokens"

    @property
    def unknown_id(self) -> int:
        return self.fitted.index[tokens.UNK]

    def encode(self, piece: Piece) -> np.ndarray:
        return self.fitted.encode(tokens.encode(piece.notes, self.mode))

    def decode(self, ids: np.ndarray) -> list[Note]:
        return tokens.decode(self.fitted.decode(ids), self.mode)

    def steps(self, ids: np.ndarray) -> int:
        return len(ids)

    def quarters(self, ids: np.ndarray) -> float:
        """How long `ids` last, in quarter notes."""
        return max((note.onset + note.duration for note in self.decode(ids)), default=0.0)

    def check_fits(self, pieces: Sequence[Piece], source: str) -> None:
        rate = self.fitted.unknown_rate(tokens.encode(piece.notes, self.mode) for piece in pieces)
        if rate > self.max_unknown_rate:
            raise MusicTFError(
                f"{source}: {rate:.0%} of its tokens are not in this run's vocabulary of "
                f"{len(self.fitted)} {self.mode!r} tokens; train a new run on this data instead"
            )

    def to_json(self) -> dict:
        return {"kind": self.kind, "mode": self.mode, "vocabulary": self.fitted.tokens}

    def cache_identity(self, fit: bool) -> dict:
        return {"representation": settings(self, fit)}


@dataclasses.dataclass
class RollRepresentation:
    """Flattened piano-roll frames per piece: (T, 176) for onset_sustain, (T, 88) for active.

    Args:
        steps_per_quarter: grid resolution; 4 is sixteenth notes, 1 is the JSB-chorales grid.
        encoding: "onset_sustain" or "active".
    """

    steps_per_quarter: int = 4
    encoding: str = "onset_sustain"
    sampled: bool = False  # keys sounding at each step's start only (see pianoroll.notes_to_roll)
    kind = "pianoroll"
    stored_in_shards = True

    def __post_init__(self):
        pianoroll.channels(self.encoding)
        if self.steps_per_quarter < 1:
            raise MusicTFError(f"steps_per_quarter must be at least 1, got {self.steps_per_quarter}")

    def fit(self, pieces: Sequence[Piece], transpose_range: int = 0) -> RollRepresentation:
        return self

    def key_shifts(self, transpose_range: int) -> RollKeyShifts:
        return RollKeyShifts(transpose_range, self.channels)

    @property
    def features(self) -> int:
        return pianoroll.NUM_KEYS * pianoroll.channels(self.encoding)

    @property
    def channels(self) -> int:
        return pianoroll.channels(self.encoding)

    @property
    def unit(self) -> str:
        return f"frames at {self.steps_per_quarter} steps per quarter"

    def encode(self, piece: Piece) -> np.ndarray:
        roll = pianoroll.notes_to_roll(piece.notes, self.steps_per_quarter, self.encoding, self.sampled)
        steps = max(len(roll), int(round(piece.length_quarters * self.steps_per_quarter)))
        roll = np.pad(roll, [(0, steps - len(roll))] + [(0, 0)] * (roll.ndim - 1))  # trailing silence kept
        return roll.reshape(roll.shape[0], self.features)

    def decode(self, frames: np.ndarray) -> list[Note]:
        return pianoroll.roll_to_notes(pianoroll.unflatten(frames, self.encoding), self.steps_per_quarter)

    def steps(self, frames: np.ndarray) -> int:
        return len(frames)

    def quarters(self, frames: np.ndarray) -> float:
        """How long `frames` last, in quarter notes."""
        return len(frames) / self.steps_per_quarter

    def check_fits(self, pieces: Sequence[Piece], source: str) -> None:
        """Any notes fit a roll; the grid and encoding are checked against the config instead."""

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "steps_per_quarter": self.steps_per_quarter,
            "encoding": self.encoding,
            "sampled": self.sampled,
        }

    def cache_identity(self, fit: bool) -> dict:
        return {"representation": settings(self, fit)}


class RollKeyShifts:
    """Transposition of roll windows: the frames rolled along the keys.

    Args:
        transpose_range: shifts drawn within +-range semitones, never off the keyboard.
        channels: flags per key (2 for onset_sustain, 1 for active).
    """

    def __init__(self, transpose_range: int, channels: int):
        self.transpose_range, self.channels = transpose_range, channels

    def bounds(self, frames: np.ndarray) -> tuple[int, int]:
        """The lowest and highest shift that keep every sounding key of `frames` on the keyboard."""
        keys = np.nonzero(frames.reshape(len(frames), pianoroll.NUM_KEYS, self.channels).any(axis=(0, 2)))[0]
        low_key, high_key = (keys.min(), keys.max()) if len(keys) else (0, pianoroll.NUM_KEYS - 1)
        return -min(self.transpose_range, int(low_key)), min(
            self.transpose_range, pianoroll.NUM_KEYS - 1 - int(high_key)
        )

    def apply(self, windows, shifts):
        """(batch, steps, features) windows, each rolled by its shift along the keys, by one gather."""
        import tensorflow as tf

        frames = tf.reshape(windows, [tf.shape(windows)[0], -1, pianoroll.NUM_KEYS, self.channels])
        source_keys = (tf.range(pianoroll.NUM_KEYS)[None, :] - shifts[:, None]) % pianoroll.NUM_KEYS
        return tf.reshape(tf.gather(frames, source_keys, axis=2, batch_dims=1), tf.shape(windows))


class TokenKeyShifts:
    """Transposition of token windows by table lookup: token id -> the id of the same token in
    another key (a pitch name respelled as music21 transposes it, a chord's normal order of the
    shifted pitch classes; rests, padding and unknown stay). Equal to transposing the notes, then
    encoding. A transposed token the vocabulary lacks becomes <unk>.
    """

    def __init__(self, representation: TokenRepresentation, transpose_range: int):
        vocabulary = representation.fitted
        self.transpose_range = transpose_range
        shifts = range(-transpose_range, transpose_range + 1)
        self.table = np.asarray(
            [
                [
                    vocabulary.index.get(
                        self._shifted(token, shift, representation.mode), vocabulary.index[tokens.UNK]
                    )
                    for token in vocabulary.tokens
                ]
                for shift in shifts
            ],
            np.int32,
        )
        self.pitches = np.asarray(
            [self._pitch(token, representation.mode) for token in vocabulary.tokens], np.int32
        )

    @staticmethod
    def _split(token: str, mode: str) -> tuple[str, str]:
        if token in (tokens.PAD, tokens.UNK) or mode == "pitch":
            return token, ""
        if mode == "notes":  # a pitch name, or a length or time shift that no key changes
            return (tokens.REST, token) if token.startswith(tokens.FACTOR_PREFIXES) else (token, "")
        label, _, length = token.rpartition("_")
        return label, f"_{length}"

    def _shifted(self, token: str, shift: int, mode: str) -> str:
        label, length = self._split(token, mode)
        if shift == 0 or label in (tokens.PAD, tokens.UNK, tokens.REST):
            return token
        if label[:1].isdigit():  # a chord: pitch classes, no octave
            return tokens.normal_order(frozenset((int(pc) + shift) % 12 for pc in label.split("."))) + length
        return transposed_name(label, shift) + length

    def _pitch(self, token: str, mode: str) -> int:
        """The MIDI pitch of a single-note token, -1 for chords, rests and the reserved tokens."""
        label, _ = self._split(token, mode)
        if label in (tokens.PAD, tokens.UNK, tokens.REST) or label[:1].isdigit():
            return -1
        return tokens.parse_sonority(label)[0][0]

    def bounds(self, ids: np.ndarray) -> tuple[int, int]:
        """The lowest and highest shift that keep every single-note token of `ids` on the keyboard."""
        pitches = self.pitches[ids]
        pitches = pitches[pitches >= 0]
        low, high = (
            (int(pitches.min()), int(pitches.max())) if len(pitches) else (LOWEST_PITCH, HIGHEST_PITCH)
        )
        return -min(self.transpose_range, low - LOWEST_PITCH), min(self.transpose_range, HIGHEST_PITCH - high)

    def apply(self, windows, shifts):
        """(batch, steps) token ids, each window looked up in its shift's row of the table."""
        import tensorflow as tf

        rows = tf.gather(tf.constant(self.table), shifts + self.transpose_range)
        return tf.gather(rows, windows, batch_dims=1)


def settings(representation, fit: bool) -> dict:
    """What a representation's encoded arrays depend on: its settings, with what it learned from the
    train split when it was trained already (`fit` False); never its record of how audio was rendered."""
    if fit:
        return {
            field.name: getattr(representation, field.name)
            for field in dataclasses.fields(representation)
            if field.name not in ("vocabulary", "renderer")
        }
    return {key: value for key, value in representation.to_json().items() if key != "renderer"}


def from_json(spec: dict) -> Representation:
    if spec["kind"] == "tokens":
        return TokenRepresentation(spec["mode"], tokens.Vocabulary(spec["vocabulary"]))
    if spec["kind"] == "pianoroll":
        return RollRepresentation(spec["steps_per_quarter"], spec["encoding"], spec.get("sampled", False))
    if spec["kind"] == "audio":
        return audio_representation_from_json(spec)
    raise MusicTFError(f"unknown representation kind {spec['kind']!r}")
