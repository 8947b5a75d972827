"""The music21 tokenizer: notes <-> note/chord tokens, and the vocabulary.

Two modes:
- `pitch` (faithful to the original experiment 1): one token per onset, the spelled pitch name
  for a single note ("F#4") and the dot-joined normal order of the pitch classes for a chord
  ("0.4.7"). Durations are lost; decoding spaces tokens `pitch_step` quarters apart.
- `duration` (the default): the piece is cut at every onset and release into slices; each slice
  is one token, "<sonority>_<length>" ("0.4.7_1/2", "F#4_1") or "rest_<length>". Rhythm and
  rests survive, which fixes the original's every-note-the-same-length output.

- `notes` (factored, as REMI-style tokenizers do): each note is two tokens, its spelled pitch
  ("F#4", the real voicing) and its length ("dur_1/2"); notes starting together come lowest first,
  and "shift_<quarters>" moves time to the next onset. The vocabulary is small and dense (about 150
  tokens against 1,100), so a CPU budget learns it.

In the first two modes a chord token has at least two pitch classes: octave doublings collapse to
the name of their lowest note, so `encode(decode(tokens)) == tokens` exactly. In `notes` mode
`encode(decode(tokens)) == tokens` for every sequence `encode` makes.

Example:
    tokens = encode(piece.notes, "duration")
    vocabulary = Vocabulary.build([tokens])
    ids = vocabulary.encode(tokens)
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from fractions import Fraction

import numpy as np

from musictf.data.music import Note

TOKEN_MODES = ("pitch", "duration", "notes")
DEFAULT_TOKEN_MODE = "notes"  # pitch and length per note; the one default, read by experiment 1 and the CLI
PAD = "<pad>"
UNK = "<unk>"
REST = "rest"
TIME_GRID = 48  # slices are cut on a 1/48-quarter grid: covers 64th notes and triplets
MAX_SLICE = Fraction(4)  # longer slices (and time shifts) are split, to keep the vocabulary small
MAX_NOTE = Fraction(8)  # `notes` mode: longer notes are cut to this many quarters
SHIFT, DURATION = "shift", "dur"  # `notes` mode: token prefixes
FACTOR_PREFIXES = (f"{SHIFT}_", f"{DURATION}_")
DEFAULT_NOTE = Fraction(1)  # `notes` mode: the length of a pitch that a sample leaves without one


def _quantize(quarters: float) -> Fraction:
    return Fraction(round(quarters * TIME_GRID), TIME_GRID)


@functools.lru_cache(maxsize=65536)
def normal_order(pitch_classes: frozenset[int]) -> str:
    """Normal order as a dot-joined string: the most compact rotation, ties broken by packing to the
    left (Forte), then by the lowest first pitch class. Equal to music21's `Chord.normalOrder`,
    which costs about 50 ms a call."""
    ordered = sorted(pitch_classes)
    rotations = [ordered[i:] + [pc + 12 for pc in ordered[:i]] for i in range(len(ordered))]

    def compactness(rotation: list[int]) -> tuple[int, ...]:
        span = rotation[-1] - rotation[0]
        return (span, *(rotation[k] - rotation[0] for k in range(1, len(rotation) - 1)), rotation[0])

    return ".".join(str(pc % 12) for pc in min(rotations, key=compactness))


def sonority(notes: Sequence[Note]) -> str:
    """One token for notes sounding together: a pitch name, or the chord's normal order."""
    pitch_classes = frozenset(note.pitch % 12 for note in notes)
    if len(pitch_classes) == 1:
        return min(notes, key=lambda note: note.pitch).name
    return normal_order(pitch_classes)


@functools.lru_cache(maxsize=65536)
def parse_sonority(text: str) -> tuple[tuple[int, str], ...]:
    """(MIDI pitch, name) pairs of a sonority token; chords are voiced upward from octave 4."""
    from music21 import pitch

    if text[:1].isdigit():
        result, previous = [], None
        for pitch_class in (int(part) for part in text.split(".")):
            midi = 60 + pitch_class
            while previous is not None and midi <= previous:
                midi += 12
            result.append((midi, pitch.Pitch(midi=midi).nameWithOctave))
            previous = midi
        return tuple(result)
    parsed = pitch.Pitch(text)
    return ((int(round(parsed.ps)), parsed.nameWithOctave),)


def encode(notes: Sequence[Note], mode: str) -> list[str]:
    if mode == "pitch":
        return _encode_onsets(notes)
    if mode == "duration":
        return _encode_slices(notes)
    if mode == "notes":
        return _encode_notes(notes)
    raise ValueError(f"token mode must be one of {TOKEN_MODES}, got {mode!r}")


def _encode_onsets(notes: Sequence[Note]) -> list[str]:
    groups: dict[Fraction, list[Note]] = {}
    for note in notes:
        groups.setdefault(_quantize(note.onset), []).append(note)
    return [sonority(groups[onset]) for onset in sorted(groups)]


def _encode_slices(notes: Sequence[Note]) -> list[str]:
    starts: dict[Fraction, list[int]] = {}
    ends: dict[Fraction, list[int]] = {}
    for index, note in enumerate(notes):
        onset = _quantize(note.onset)
        offset = max(_quantize(note.onset + note.duration), onset + Fraction(1, TIME_GRID))
        starts.setdefault(onset, []).append(index)
        ends.setdefault(offset, []).append(index)
    boundaries = sorted(set(starts) | set(ends))
    sounding: set[int] = set()
    tokens = []
    for begin, end in zip(boundaries, boundaries[1:], strict=False):
        sounding.difference_update(ends.get(begin, ()))
        sounding.update(starts.get(begin, ()))
        label = sonority([notes[index] for index in sounding]) if sounding else REST
        length = end - begin
        while length > 0:
            piece = min(length, MAX_SLICE)
            tokens.append(f"{label}_{piece}")
            length -= piece
    return tokens


def _encode_notes(notes: Sequence[Note]) -> list[str]:
    tokens, time = [], Fraction(0)
    for note in sorted(notes, key=lambda note: (_quantize(note.onset), note.pitch)):
        onset = _quantize(note.onset)
        gap = onset - time
        while gap > 0:
            step = min(gap, MAX_SLICE)
            tokens.append(f"{SHIFT}_{step}")
            gap -= step
        time = onset
        length = min(max(_quantize(note.duration), Fraction(1, TIME_GRID)), MAX_NOTE)
        tokens += [note.name, f"{DURATION}_{length}"]
    return tokens


def _decode_notes(tokens: Iterable[str]) -> list[Note]:
    """A pitch token waits for its length; one left without (in a sample) lasts DEFAULT_NOTE."""
    notes, time, waiting = [], Fraction(0), None

    def flush(length):
        if waiting is not None:
            midi, name = parse_sonority(waiting)[0]
            notes.append(Note(midi, float(time), float(length), name))

    for token in tokens:
        if token in (PAD, UNK):
            continue
        if token.startswith(FACTOR_PREFIXES):
            kind, _, value = token.partition("_")
            if kind == DURATION:
                flush(Fraction(value))
            else:
                flush(DEFAULT_NOTE)
                time += Fraction(value)
            waiting = None
        else:
            flush(DEFAULT_NOTE)
            waiting = token
    flush(DEFAULT_NOTE)
    return notes


def decode(tokens: Iterable[str], mode: str, pitch_step: float = 0.5) -> list[Note]:
    """Notes from tokens; padding and unknown tokens are skipped."""
    if mode == "notes":
        return _decode_notes(tokens)
    notes, time = [], Fraction(0)
    for token in tokens:
        if token in (PAD, UNK):
            continue
        if mode == "pitch":
            label, length = token, Fraction(pitch_step).limit_denominator(TIME_GRID)
        elif mode == "duration":
            label, _, length_text = token.rpartition("_")
            length = Fraction(length_text)
        else:
            raise ValueError(f"token mode must be one of {TOKEN_MODES}, got {mode!r}")
        if label != REST:
            notes.extend(Note(midi, float(time), float(length), name) for midi, name in parse_sonority(label))
        time += length
    return notes


class Vocabulary:
    """Token <-> id. Id 0 is padding and id 1 stands for every token not seen in training.

    Args:
        tokens: the known tokens, in id order after the two reserved ones.

    Example:
        vocabulary = Vocabulary.build([["C4_1", "0.4.7_1/2"]])
        vocabulary.encode(["C4_1", "D4_1"])  # -> array([2, 1])
    """

    def __init__(self, tokens: Sequence[str]):
        self.tokens = [PAD, UNK, *[token for token in tokens if token not in (PAD, UNK)]]
        self.index = {token: position for position, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], min_count: int = 1) -> Vocabulary:
        counts = Counter(token for sequence in sequences for token in sequence)
        kept = [token for token, count in counts.items() if count >= min_count]
        return cls(sorted(kept, key=lambda token: (-counts[token], token)))

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def encode(self, tokens: Iterable[str]) -> np.ndarray:
        unknown = self.index[UNK]
        return np.asarray([self.index.get(token, unknown) for token in tokens], dtype=np.int32)

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[int(i)] if 0 <= int(i) < len(self.tokens) else UNK for i in ids]

    def unknown_rate(self, sequences: Iterable[Sequence[str]]) -> float:
        total = unknown = 0
        for sequence in sequences:
            total += len(sequence)
            unknown += sum(token not in self.index for token in sequence)
        return unknown / total if total else 0.0
