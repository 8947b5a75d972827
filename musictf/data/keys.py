"""A piece's key, and the piece moved to C major or C minor: the JSB benchmark's convention.

The key is estimated the way music21's `Score.analyze("key")` does it: the duration-weighted
pitch-class histogram correlated (Pearson) with the Aarden-Essen major and minor profiles in all
twelve rotations; the best of the 24 wins. It is computed from the notes, so a cached parse needs
no score. `transpose_to_c` moves a piece by the smallest shift (-6..+5 semitones) that puts its
tonic on C, or by the nearest shift that keeps every note on the keyboard.

Example:
    tonic, mode = estimate_key(piece.notes)   # (7, "major") for G major
    piece_in_c = transpose_to_c(piece)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from musictf.data.music import Note, Piece, transpose_notes

# music21.analysis.discrete.AardenEssen weights, C major and C minor (music21's default for "key").
MAJOR_PROFILE = np.array(
    [
        17.7661,
        0.145624,
        14.9265,
        0.160186,
        19.8049,
        11.3587,
        0.291248,
        22.062,
        0.145624,
        8.15494,
        0.232998,
        4.95122,
    ]
)
MINOR_PROFILE = np.array(
    [
        18.2648,
        0.737619,
        14.0499,
        16.8599,
        0.702494,
        14.4362,
        0.702494,
        18.6161,
        4.56621,
        1.93186,
        7.37619,
        1.75623,
    ]
)
MODES = ("major", "minor")


def pitch_class_durations(notes: Sequence[Note]) -> np.ndarray:
    histogram = np.zeros(12)
    for note in notes:
        histogram[note.pitch % 12] += note.duration
    return histogram


def estimate_key(notes: Sequence[Note]) -> tuple[int, str]:
    """(tonic pitch class, "major" | "minor"); C major for a piece without notes."""
    histogram = pitch_class_durations(notes)
    if not histogram.any():
        return 0, "major"
    best = (-np.inf, 0, "major")
    for mode, profile in zip(MODES, (MAJOR_PROFILE, MINOR_PROFILE), strict=True):
        for tonic in range(12):
            score = np.corrcoef(histogram, np.roll(profile, tonic))[0, 1]
            if score > best[0]:
                best = (score, tonic, mode)
    return best[1], best[2]


def shift_to_c(tonic: int) -> int:
    """The semitones, in -6..+5, that move `tonic` to C."""
    return (-tonic + 6) % 12 - 6


def transpose_to_c(piece: Piece) -> Piece:
    """The piece in C major or C minor (its mode kept), by its estimated key. Where the nearest
    shift would push a note off the keyboard, the shift an octave the other way is used."""
    tonic, _ = estimate_key(piece.notes)
    shift = shift_to_c(tonic)
    if shift == 0:
        return piece
    for semitones in (shift, shift + 12 if shift < 0 else shift - 12):
        notes = transpose_notes(piece.notes, semitones)
        if notes is not None:
            return dataclasses.replace(piece, notes=notes)
    return piece
