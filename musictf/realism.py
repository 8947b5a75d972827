"""Set-level tests of samples against the music: do the samples pass for the test split?

Two tests, both on excerpts of the same length (`excerpt_quarters`) cut from the notes of each set:
- Yang and Lerch (2018), "On the evaluation of generative models in music", relative evaluation:
  per feature, the distances between excerpts of the test split (intra-set) and between the test
  split's and the samples' excerpts (inter-set), each as a kernel density estimate; their
  overlapping area (OA, 1 where the samples sit among the music as the music sits among itself)
  and KL divergence, both on one common grid (the authors' `mgeval` uses two grids).
- A classifier two-sample test (C2ST; Lopez-Paz and Oquab 2017): a gradient-boosted classifier on
  key-invariant features of the excerpts tells the test split's from another set's, scored by
  held-out accuracy over folds split by piece (no piece on both sides of a fold). It runs three
  times: against the train split (the floor: real against real), against the count baseline's
  samples (the anchor) and against the model's samples. realism = (anchor - model) / (anchor -
  floor): 0 is no more real than counting, 1 is as real as the music.

Example:
    excerpts = {name: cut_excerpts(pieces, 8.0) for name, pieces in sets.items()}
    result = set_level_tests(excerpts["test"], excerpts["train"], excerpts["samples"],
                             excerpts["baseline"], seed=42)
    result["realism"], result["overlap"]["pitch_class_histogram"]["model"]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

import numpy as np

from musictf.data.music import Note

# The 12 note-length classes of Yang and Lerch, in quarters: whole, half, quarter, eighth, sixteenth,
# their dotted forms, and the half, quarter and eighth triplets.
NOTE_LENGTH_CLASSES = np.array([4, 2, 1, 0.5, 0.25, 3, 1.5, 0.75, 0.375, 4 / 3, 2 / 3, 1 / 3])
GRID = 4  # steps per quarter of the roll each excerpt's polyphony and voice features are read on
MAX_VOICES = 8  # the polyphony histogram's last bin holds this many sounding keys or more
LEAP_SEMITONES = 5  # a move of the top or bottom line by a fourth or more is a leap
# What a classifier that cannot tell the count baseline's samples from the music is worth: nothing.
ANCHOR_MINIMUM = 0.95
MAX_EXCERPTS = 400  # per set and test, drawn at random (seeded): the distances grow with its square
PER_PIECE = 8  # excerpts of one piece (or one sample) at most, drawn at random (seeded)
FOLDS = 5

# Yang and Lerch's features, then the polyphony and voice features a roll adds.
FEATURES = (
    "pitch_count",
    "pitch_class_histogram",
    "pitch_class_transition_matrix",
    "pitch_range",
    "average_pitch_interval",
    "note_count",
    "average_inter_onset_interval",
    "note_length_histogram",
    "note_length_transition_matrix",
    "polyphony",
    "polyphony_histogram",
    "held_chord_rate",
    "top_line_interval",
    "top_line_leap_rate",
    "bass_line_interval",
)


@dataclasses.dataclass(frozen=True)
class Excerpt:
    """`quarters` quarters of one piece's notes (onsets from 0), and the piece it was cut from."""

    group: str
    notes: tuple[Note, ...]
    quarters: float


def cut_excerpts(pieces: Iterable[tuple[str, Sequence[Note], float]], quarters: float) -> list[Excerpt]:
    """Each piece, given as (group, notes, length in quarters), cut into whole excerpts of
    `quarters` (a remainder shorter than that is dropped); a note that crosses an excerpt's end is
    cut there, and one that began before its start is not in it."""
    excerpts = []
    for group, notes, length in pieces:
        notes = sorted(notes, key=lambda note: (note.onset, note.pitch))
        onsets = np.array([note.onset for note in notes], np.float64)
        for index in range(int(length // quarters + 1e-9)):
            start, end = index * quarters, (index + 1) * quarters
            lo, hi = np.searchsorted(onsets, start - 1e-9), np.searchsorted(onsets, end - 1e-9)
            inside = tuple(
                Note(note.pitch, note.onset - start, min(note.duration, end - note.onset), note.name)
                for note in notes[lo:hi]
            )
            excerpts.append(Excerpt(group, inside, quarters))
    return excerpts


# -- per-excerpt features ---------------------------------------------------------------------------


def _normalised(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def _sounding(excerpt: Excerpt) -> np.ndarray:
    """(steps, 128) bool: the keys sounding at each step of the sixteenth grid."""
    steps = max(1, int(round(excerpt.quarters * GRID)))
    roll = np.zeros((steps, 128), bool)
    for note in excerpt.notes:
        start = int(round(note.onset * GRID))
        end = max(start + 1, int(round((note.onset + note.duration) * GRID)))
        roll[start:end, note.pitch] = True
    return roll


def _line(roll: np.ndarray, top: bool) -> np.ndarray:
    """The highest (or lowest) sounding key of each step that has one."""
    busy = roll.any(axis=1)
    keys = np.argmax(roll[:, ::-1], axis=1) if top else np.argmax(roll, axis=1)
    keys = 127 - keys if top else keys
    return keys[busy]


def _moves(line: np.ndarray) -> np.ndarray:
    """The intervals (semitones) of a line where it changes key."""
    steps = np.diff(line)
    return steps[steps != 0]


def _length_classes(durations: np.ndarray) -> np.ndarray:
    return np.abs(durations[:, None] - NOTE_LENGTH_CLASSES[None]).argmin(axis=1)


def excerpt_features(excerpt: Excerpt) -> dict[str, np.ndarray]:
    """Yang and Lerch's features of one excerpt, with the roll's polyphony and voice features; each
    a flat float64 vector (scalars have length 1). An empty excerpt has zeros throughout."""
    notes = excerpt.notes
    pitches = np.array([note.pitch for note in notes], np.int64)
    onsets = np.array([note.onset for note in notes], np.float64)
    durations = np.array([note.duration for note in notes], np.float64)
    classes = pitches % 12
    transitions = np.zeros((12, 12))
    np.add.at(transitions, (classes[:-1], classes[1:]), 1)
    lengths = _length_classes(durations) if len(notes) else np.zeros(0, np.int64)
    length_transitions = np.zeros((12, 12))
    np.add.at(length_transitions, (lengths[:-1], lengths[1:]), 1)
    distinct_onsets = np.unique(onsets)
    roll = _sounding(excerpt)
    voices = roll.sum(axis=1)
    busy = voices > 0
    held = busy[1:] & (roll[1:] == roll[:-1]).all(axis=1)
    onset_steps = set(np.round(onsets * GRID).astype(np.int64).tolist())
    held &= np.array([step not in onset_steps for step in range(1, len(roll))], bool)
    top_moves, bass_moves = _moves(_line(roll, top=True)), _moves(_line(roll, top=False))
    values = {
        "pitch_count": len(np.unique(pitches)),
        "pitch_class_histogram": _normalised(np.bincount(classes, minlength=12).astype(np.float64)),
        "pitch_class_transition_matrix": _normalised(transitions).ravel(),
        "pitch_range": float(pitches.max() - pitches.min()) if len(notes) else 0.0,
        "average_pitch_interval": float(np.abs(np.diff(pitches)).mean()) if len(notes) > 1 else 0.0,
        "note_count": len(notes),
        "average_inter_onset_interval": float(np.diff(distinct_onsets).mean())
        if len(distinct_onsets) > 1
        else 0.0,
        "note_length_histogram": _normalised(np.bincount(lengths, minlength=12).astype(np.float64)),
        "note_length_transition_matrix": _normalised(length_transitions).ravel(),
        "polyphony": float(voices[busy].mean()) if busy.any() else 0.0,
        "polyphony_histogram": _normalised(
            np.bincount(np.minimum(voices, MAX_VOICES), minlength=MAX_VOICES + 1).astype(np.float64)
        ),
        "held_chord_rate": float(held.mean()) if len(held) else 0.0,
        "top_line_interval": float(np.abs(top_moves).mean()) if len(top_moves) else 0.0,
        "top_line_leap_rate": float((np.abs(top_moves) >= LEAP_SEMITONES).mean()) if len(top_moves) else 0.0,
        "bass_line_interval": float(np.abs(bass_moves).mean()) if len(bass_moves) else 0.0,
    }
    return {name: np.atleast_1d(np.asarray(values[name], np.float64)) for name in FEATURES}


def classifier_features(excerpt: Excerpt, features: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """A key-invariant vector for the classifier: Yang and Lerch's features with every pitch-class
    feature made relative (the histogram sorted, transitions as interval classes), and histograms of
    the melodic intervals of the top and bottom lines, the vertical interval classes, the number of
    notes starting and ending at each step, where in the half bar notes start, and the register."""
    features = features or excerpt_features(excerpt)
    transitions = features["pitch_class_transition_matrix"].reshape(12, 12)
    interval_classes = np.array([np.trace(np.roll(transitions, -shift, axis=1)) for shift in range(12)])
    roll = _sounding(excerpt)
    top_moves, bass_moves = _moves(_line(roll, top=True)), _moves(_line(roll, top=False))

    def interval_histogram(moves: np.ndarray) -> np.ndarray:
        return _normalised(np.bincount(np.clip(moves, -12, 12) + 12, minlength=25).astype(np.float64))

    vertical = np.zeros(12)
    for step in roll[roll.sum(axis=1) > 1]:
        keys = np.flatnonzero(step)
        differences = (keys[None, :] - keys[:, None])[np.triu_indices(len(keys), 1)]
        np.add.at(vertical, differences % 12, 1)
    onset_counts, offset_counts = np.zeros(len(roll), np.int64), np.zeros(len(roll) + 1, np.int64)
    for note in excerpt.notes:
        onset_counts[min(len(roll) - 1, int(round(note.onset * GRID)))] += 1
        offset_counts[min(len(roll), int(round((note.onset + note.duration) * GRID)))] += 1
    steps = np.arange(len(roll))
    pitches = np.array([note.pitch for note in excerpt.notes], np.float64)
    register = [pitches.mean(), pitches.std()] if len(pitches) else [0.0, 0.0]
    relative = {
        "pitch_class_histogram": np.sort(features["pitch_class_histogram"])[::-1],
        "pitch_class_transition_matrix": interval_classes,
    }
    return np.concatenate(
        [relative.get(name, features[name]) for name in FEATURES]
        + [
            interval_histogram(top_moves),
            interval_histogram(bass_moves),
            _normalised(vertical),
            _normalised(np.bincount(np.minimum(onset_counts, 6), minlength=7).astype(np.float64)),
            _normalised(np.bincount(np.minimum(offset_counts, 6), minlength=7).astype(np.float64)),
            # where in the beat and the half bar notes start: the metre a count table cannot see
            _normalised(np.bincount(steps % (2 * GRID), onset_counts, minlength=2 * GRID)),
            np.array(register + [(roll.sum(axis=1) == 0).mean()]),
        ]
    )


# -- Yang and Lerch's relative evaluation -----------------------------------------------------------


def _pairwise(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distances between the rows of `a` and `b`; within `a` (each pair once) without `b`."""
    if b is None:
        index = np.triu_indices(len(a), 1)
        return np.linalg.norm(a[index[0]] - a[index[1]], axis=-1)
    return np.linalg.norm(a[:, None] - b[None], axis=-1).ravel()


def _density(values: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """A Gaussian kernel density estimate of `values` on the evenly spaced `grid`, normalised to
    integrate to 1 there: each value shared linearly between its two nearest grid points, then
    smoothed with the kernel (binned KDE: the same curve to within a grid step, in linear time)."""
    step = grid[1] - grid[0]
    position = np.clip((values - grid[0]) / step, 0, len(grid) - 1 - 1e-9)
    lower = position.astype(np.int64)
    weight = position - lower
    counts = (
        np.bincount(lower, 1 - weight, minlength=len(grid))
        + np.bincount(lower + 1, weight, minlength=len(grid) + 1)[: len(grid)]
    )
    reach = int(math.ceil(4 * bandwidth / step))
    kernel = np.exp(-0.5 * (np.arange(-reach, reach + 1) * step / bandwidth) ** 2)
    density = np.convolve(counts, kernel)[reach : reach + len(grid)]
    area = np.trapezoid(density, grid)
    return density / area if area > 0 else density


def overlap_and_divergence(intra: np.ndarray, inter: np.ndarray, points: int = 2048) -> tuple[float, float]:
    """(overlapping area, KL(intra || inter)) of the two distance distributions, both estimated on one
    grid with one bandwidth (Scott's rule on the pooled distances, as scipy's gaussian_kde; a tenth
    of the spread where the pooled distances are all but equal)."""
    pooled = np.concatenate([intra, inter])
    spread = pooled.std()
    bandwidth = spread * len(pooled) ** (-1 / 5) if spread > 1e-12 else 0.1 * max(abs(pooled.mean()), 1e-3)
    grid = np.linspace(pooled.min() - 4 * bandwidth, pooled.max() + 4 * bandwidth, points)
    p, q = _density(intra, grid, bandwidth), _density(inter, grid, bandwidth)
    overlap = float(np.trapezoid(np.minimum(p, q), grid))
    tiny = 1e-12
    divergence = float(np.trapezoid(p * np.log((p + tiny) / (q + tiny)), grid))
    return min(1.0, overlap), max(0.0, divergence)


def relative_evaluation(
    reference: list[dict[str, np.ndarray]], others: dict[str, list[dict[str, np.ndarray]]]
) -> dict[str, dict[str, dict[str, float]]]:
    """Per feature and per other set: the OA and KL divergence of the reference's intra-set distances
    against the reference-to-set inter-set distances, and the set's own intra-set mean distance."""
    result: dict[str, dict[str, dict[str, float]]] = {}
    for name in FEATURES:
        reference_values = np.stack([row[name] for row in reference])
        intra = _pairwise(reference_values)
        result[name] = {}
        for label, rows in others.items():
            values = np.stack([row[name] for row in rows])
            overlap, divergence = overlap_and_divergence(intra, _pairwise(reference_values, values))
            result[name][label] = {"overlap": overlap, "kl_divergence": divergence}
    return result


# -- the classifier two-sample test -----------------------------------------------------------------


def classifier_accuracy(
    reference: np.ndarray,
    reference_groups: Sequence[str],
    other: np.ndarray,
    other_groups: Sequence[str],
    seed: int,
    folds: int = FOLDS,
) -> float | None:
    """Held-out accuracy of a gradient-boosted classifier telling `reference` rows from as many
    `other` rows (the larger set drawn down at random), over `folds` folds split by group, so that
    no piece sits on both sides of a fold. None where either side has fewer than 2 groups."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import GroupKFold

    rng = np.random.default_rng(seed)
    count = min(len(reference), len(other))
    keep_reference = np.sort(rng.permutation(len(reference))[:count])
    keep_other = np.sort(rng.permutation(len(other))[:count])
    groups = [f"reference:{reference_groups[i]}" for i in keep_reference] + [
        f"other:{other_groups[i]}" for i in keep_other
    ]
    folds = min(folds, len(set(groups[:count])), len(set(groups[count:])))
    if folds < 2:
        return None
    rows = np.concatenate([reference[keep_reference], other[keep_other]])
    labels = np.concatenate([np.zeros(count), np.ones(count)])
    correct = 0
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train_index, test_index in splitter.split(rows, labels, groups):
        if len(np.unique(labels[train_index])) < 2:
            correct += int((labels[test_index] == labels[train_index][0]).sum())
            continue
        classifier = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, random_state=seed)
        classifier.fit(rows[train_index], labels[train_index])
        correct += int((classifier.predict(rows[test_index]) == labels[test_index]).sum())
    return correct / len(rows)


def realism(model: float | None, anchor: float | None, floor: float | None) -> float | None:
    """(anchor - model) / (anchor - floor); None where it is undefined (a missing test, or an anchor
    no harder to tell apart than the real music)."""
    if model is None or anchor is None or floor is None or anchor - floor <= 1e-9:
        return None
    return (anchor - model) / (anchor - floor)


def _drawn(excerpts: list[Excerpt], seed: int) -> list[Excerpt]:
    """At most `PER_PIECE` excerpts of each piece (so that one long piece cannot outweigh the rest
    of a split), then at most `MAX_EXCERPTS` in all, each drawn at random from a fixed seed."""
    rng = np.random.default_rng(seed)
    by_group: dict[str, list[int]] = {}
    for index, excerpt in enumerate(excerpts):
        by_group.setdefault(excerpt.group, []).append(index)
    kept = [i for members in by_group.values() for i in rng.permutation(members)[:PER_PIECE]]
    kept = sorted(rng.permutation(kept)[:MAX_EXCERPTS]) if len(kept) > MAX_EXCERPTS else sorted(kept)
    return [excerpts[i] for i in kept]


def set_level_tests(
    test: list[Excerpt],
    train: list[Excerpt],
    samples: list[Excerpt],
    baseline: list[Excerpt] | None,
    seed: int,
    baseline_name: str = "count baseline",
) -> dict:
    """Both tests of the model's samples, and of the baseline's, against the test split's excerpts.

    Returns {"excerpts": counts per set, "overlap": {feature: {"model", "baseline"}: {"overlap",
    "kl_divergence"}}, "overlap_at_or_above_baseline": count of features, "c2st": {"model",
    "anchor", "floor" accuracies}, "realism", "anchor_strong_enough"}."""
    sets = {"test": test, "train": train, "model": samples} | ({"baseline": baseline} if baseline else {})
    drawn = {name: _drawn(excerpts, seed + index) for index, (name, excerpts) in enumerate(sets.items())}
    features = {name: [excerpt_features(excerpt) for excerpt in excerpts] for name, excerpts in drawn.items()}
    counts = {name: len(excerpts) for name, excerpts in drawn.items()}
    result: dict = {"excerpts": counts, "excerpt_quarters": test[0].quarters if test else None}
    if min(counts.values()) < 2:
        return result | {"unavailable": "fewer than 2 excerpts in a set: pieces or samples too short"}
    compared = {name: features[name] for name in ("model", "baseline") if name in features}
    result["overlap"] = relative_evaluation(features["test"], compared)
    if "baseline" in compared:
        result["overlap_at_or_above_baseline"] = sum(
            row["model"]["overlap"] >= row["baseline"]["overlap"] for row in result["overlap"].values()
        )
    vectors = {
        name: np.stack(
            [
                classifier_features(excerpt, row)
                for excerpt, row in zip(drawn[name], features[name], strict=True)
            ]
        )
        for name in drawn
    }
    groups = {name: [excerpt.group for excerpt in drawn[name]] for name in drawn}

    def accuracy(name: str) -> float | None:
        return classifier_accuracy(vectors["test"], groups["test"], vectors[name], groups[name], seed)

    c2st = {"model": accuracy("model"), "floor": accuracy("train")}
    if "baseline" in vectors:
        c2st["anchor"] = accuracy("baseline")
    result["c2st"] = c2st | {"anchor_name": baseline_name, "folds": FOLDS}
    result["realism"] = realism(c2st["model"], c2st.get("anchor"), c2st["floor"])
    anchor = c2st.get("anchor")
    result["anchor_strong_enough"] = anchor is not None and anchor >= ANCHOR_MINIMUM
    return result


def summary(tests: dict) -> str | None:
    """One line for the verdict: realism with the three accuracies, and the overlaps won."""
    c2st = tests.get("c2st")
    if not c2st or c2st.get("model") is None:
        return None
    parts = [f"C2ST accuracy {c2st['model']:.3f} (floor {_format(c2st.get('floor'))}"]
    parts[0] += f", {c2st['anchor_name']} {_format(c2st.get('anchor'))})"
    if tests.get("realism") is not None:
        parts.append(f"realism {tests['realism']:.2f}")
    if "overlap_at_or_above_baseline" in tests:
        parts.append(
            f"OA at or above the baseline's on {tests['overlap_at_or_above_baseline']} of "
            f"{len(FEATURES)} features"
        )
    line = "samples: " + ", ".join(parts)
    if c2st.get("anchor") is not None and not tests.get("anchor_strong_enough"):
        line += f" (the classifier tells the baseline apart under {ANCHOR_MINIMUM:.0%}: too weak to judge)"
    return line


def _format(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


# -- audio against its roll -------------------------------------------------------------------------

CHROMA_LOWEST_HZ = 55.0  # A1: below it a short frame cannot tell semitones apart
SILENT_RMS = 1e-3  # a frame this quiet has no strongest pitch class: it counts as a miss


def strongest_pitch_classes(waveform: np.ndarray, hop: int, sample_rate: int) -> np.ndarray:
    """The pitch class with the most spectral power in each frame of `hop` samples (Hann window,
    zero-padded to a fine frequency grid; every bin from A1 to 0.9 x Nyquist folded onto the 12
    pitch classes), or -1 for a silent frame."""
    frames = len(waveform) // hop
    blocks = np.asarray(waveform[: frames * hop], np.float64).reshape(frames, hop)
    size = max(4096, 1 << int(math.ceil(math.log2(4 * hop))))
    power = np.abs(np.fft.rfft(blocks * np.hanning(hop), n=size, axis=1)) ** 2
    frequencies = np.fft.rfftfreq(size, 1 / sample_rate)
    usable = (frequencies >= CHROMA_LOWEST_HZ) & (frequencies <= 0.45 * sample_rate)
    classes = np.round(69 + 12 * np.log2(frequencies[usable] / 440.0)).astype(np.int64) % 12
    chroma = np.zeros((frames, 12))
    for pitch_class in range(12):
        chroma[:, pitch_class] = power[:, usable][:, classes == pitch_class].sum(axis=1)
    strongest = chroma.argmax(axis=1)
    strongest[np.sqrt((blocks**2).mean(axis=1)) < SILENT_RMS] = -1
    return strongest


def chroma_agreement(
    waveforms: Sequence[np.ndarray], rolls: Sequence[np.ndarray], hop: int, sample_rate: int
) -> dict[str, float]:
    """The share of frames (one roll step of `hop` samples each, where the roll holds a note) whose
    strongest pitch class is one the roll holds then; and chance: the same with the roll's pitch
    classes rotated by 1 to 11 semitones, averaged. `rolls` are (steps, 88) from A0."""
    hits, rotated_hits, scored = 0, 0.0, 0
    for waveform, roll in zip(waveforms, rolls, strict=True):
        strongest = strongest_pitch_classes(waveform, hop, sample_rate)
        steps = min(len(strongest), len(roll))
        held = np.zeros((steps, 12), bool)
        for key in range(roll.shape[1]):
            held[:, (key + 21) % 12] |= roll[:steps, key] > 0
        sounding = held.any(axis=1)
        found = strongest[:steps][sounding]
        held = held[sounding]
        rows = np.arange(len(found))
        audible = found >= 0
        hits += int(held[rows[audible], found[audible]].sum())
        for shift in range(1, 12):
            rotated = np.roll(held, shift, axis=1)
            rotated_hits += rotated[rows[audible], found[audible]].sum() / 11
        scored += len(found)
    if not scored:
        return {"chroma_agreement": float("nan"), "chroma_chance": float("nan"), "chroma_frames": 0}
    return {
        "chroma_agreement": hits / scored,
        "chroma_chance": rotated_hits / scored,
        "chroma_frames": scored,
    }


def chroma_progress(agreement: float, chance: float, ceiling: float) -> float | None:
    """Where the samples' agreement stands from chance (0) to the renderer's own (1)."""
    if any(math.isnan(value) for value in (agreement, chance, ceiling)) or ceiling - chance <= 1e-9:
        return None
    return (agreement - chance) / (ceiling - chance)


def audio_summary(statistics: dict) -> str | None:
    """One line for the verdict of a model of audio conditioned on a roll."""
    if "chroma_agreement" not in statistics:
        return None
    progress = statistics.get("chroma_progress")
    where = "" if progress is None else f": {progress:.2f} of the way from chance to the ceiling"
    return (
        f"samples: chroma agreement with their roll {statistics['chroma_agreement']:.3f} (chance "
        f"{statistics['chroma_chance']:.3f}, the training renderer {statistics['chroma_ceiling']:.3f}){where}"
    )
