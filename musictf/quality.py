"""What a run is summed up by, and the statistics of samples.

- `HEADLINE_METRICS`, `STRONGEST_BASELINES`, `verdict`: the test metrics a run is printed and
  reported by, and the one line that says how far it is below its strongest count baseline;
- `piece_quality` / `sample_quality` / `audio_quality`: the eight statistics of a set of pieces
  (pitch-class entropy, polyphony, scale consistency, empty-beat rate, repeated-note ratio, note
  density, mean note length, share of short notes) and of audio, each set beside the test split's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from musictf.data.music import Note
from musictf.data.pianoroll import SIXTEENTH_GRID, notes_to_roll

# The test metrics a run is summed up by (printed, and in the report), in this order, where it has them.
HEADLINE_METRICS = (
    "cross_entropy_nats",
    "perplexity",
    "nll_bits_per_sample",
    "nll_nats_per_sample",
    "frame_nll_nats",
    "nll_nats_per_quarter",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "bay_accuracy",
)

# (test metric, the strongest baseline of the same unit, its name): a model is judged against these
STRONGEST_BASELINES = (
    ("cross_entropy_nats", "bigram_cross_entropy_nats", "interpolated bigram"),
    ("frame_nll_nats", "ngram_nll_nats", "per-flag N-gram"),
    ("frame_nll_nats", "markov_nll_nats", "first-order Markov per flag"),
    ("nll_bits_per_sample", "unigram_nll_bits_per_sample", "unigram of the codes"),
)


def verdict(test: dict, baseline: dict) -> str | None:
    """One line: how far the model is below its strongest baseline, or that it is not below it yet."""
    for metric, reference, name in STRONGEST_BASELINES:
        if metric in test and reference in baseline:
            margin = baseline[reference] - test[metric]
            if margin > 0:
                return (
                    f"{metric} {test[metric]:.4g}: {margin:.3g} below the {name} baseline "
                    f"({baseline[reference]:.4g})"
                )
            return (
                f"{metric} {test[metric]:.4g} is not below the {name} baseline ({baseline[reference]:.4g}): "
                "the model has not learned more than that count table yet"
            )
    return None


# -- sample quality -------------------------------------------------------------------------------

MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
MINOR = np.array([0, 2, 3, 5, 7, 8, 10])
QUALITY_KEYS = (
    "pitch_class_entropy_bits",
    "polyphony",
    "scale_consistency",
    "empty_beat_rate",
    "repeated_note_ratio",
    "note_density_per_quarter",
    "mean_note_quarters",
    "short_note_share",
)
SHORT_NOTE_QUARTERS = 0.5  # `short_note_share`: notes shorter than an eighth


def piece_quality(notes: Sequence[Note]) -> dict[str, float]:
    """Sample-quality statistics of one piece (all computed on a sixteenth-note grid)."""
    if not notes:
        return {
            "pitch_class_entropy_bits": 0.0,
            "polyphony": 0.0,
            "scale_consistency": 0.0,
            "empty_beat_rate": 1.0,
            "repeated_note_ratio": 0.0,
            "note_density_per_quarter": 0.0,
            "mean_note_quarters": 0.0,
            "short_note_share": 0.0,
        }
    histogram = np.bincount([note.pitch % 12 for note in notes], minlength=12).astype(float)
    distribution = histogram / histogram.sum()
    nonzero = distribution[distribution > 0]
    scales = [(MAJOR + tonic) % 12 for tonic in range(12)] + [(MINOR + tonic) % 12 for tonic in range(12)]
    sounding = notes_to_roll(notes, SIXTEENTH_GRID, "active").astype(bool)
    voices = sounding.sum(axis=1)
    beats = sounding[: len(sounding) // SIXTEENTH_GRID * SIXTEENTH_GRID].reshape(
        -1, SIXTEENTH_GRID, sounding.shape[1]
    )
    beats = beats.any(axis=(1, 2))
    onsets: dict[float, frozenset] = {}
    for note in notes:
        onsets[note.onset] = onsets.get(note.onset, frozenset()) | {note.pitch}
    groups = [onsets[onset] for onset in sorted(onsets)]
    repeats = sum(a == b for a, b in zip(groups, groups[1:], strict=False))
    length = max(note.onset + note.duration for note in notes)
    return {
        "pitch_class_entropy_bits": float(-(nonzero * np.log2(nonzero)).sum()),
        "polyphony": float(voices[voices > 0].mean()) if (voices > 0).any() else 0.0,
        "scale_consistency": float(max(histogram[scale].sum() for scale in scales) / histogram.sum()),
        "empty_beat_rate": float(1 - beats.mean()) if len(beats) else 0.0,
        "repeated_note_ratio": repeats / (len(groups) - 1) if len(groups) > 1 else 0.0,
        "note_density_per_quarter": float(len(groups) / length) if length else 0.0,
        "mean_note_quarters": float(np.mean([note.duration for note in notes])),
        "short_note_share": float(np.mean([note.duration < SHORT_NOTE_QUARTERS - 1e-9 for note in notes])),
    }


def closer_statistics(samples: dict, split: dict, baseline: dict) -> tuple[int, int]:
    """(on how many sample statistics the model's samples are closer to the split than the
    baseline's samples are, how many statistics there are)."""
    closer = sum(abs(samples[key] - split[key]) < abs(baseline[key] - split[key]) for key in QUALITY_KEYS)
    return int(closer), len(QUALITY_KEYS)


def sample_quality(pieces: Sequence[Sequence[Note]]) -> dict[str, float]:
    """The mean of each statistic over pieces."""
    rows = [piece_quality(notes) for notes in pieces]
    return {key: float(np.mean([row[key] for row in rows])) for key in QUALITY_KEYS} | {"pieces": len(rows)}


def audio_quality(waveforms: Sequence[np.ndarray], sample_rate: int) -> dict[str, float]:
    """Loudness, silence and how stuck a waveform is, averaged over pieces."""
    rows = []
    for waveform in waveforms:
        frame = max(1, sample_rate // 50)  # 20 ms
        usable = waveform[: len(waveform) // frame * frame].reshape(-1, frame)
        rms = np.sqrt((usable**2).mean(axis=1)) if len(usable) else np.zeros(1)
        changes = np.flatnonzero(np.diff(waveform) != 0)
        runs = np.diff(np.concatenate([[-1], changes, [len(waveform) - 1]]))
        rows.append(
            {
                "rms": float(np.sqrt((waveform**2).mean())) if len(waveform) else 0.0,
                "silent_frame_rate": float((rms < 0.01).mean()),
                "longest_constant_run_rate": float(runs.max() / max(1, len(waveform))),
            }
        )
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]} | {"pieces": len(rows)}
