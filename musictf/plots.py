"""Figures in one style: piano rolls of samples and real excerpts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musictf import files
from musictf.data.music import LOWEST_PITCH, Note
from musictf.data.pianoroll import NUM_KEYS, SIXTEENTH_GRID, notes_to_roll


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def save_figure(figure, path: Path) -> Path:
    """Saves atomically in the format the suffix names (png or pdf)."""
    with files.atomic_path(path, suffix=path.suffix) as temporary:
        figure.savefig(temporary, dpi=150, bbox_inches="tight", format=path.suffix.lstrip("."))
    return path


def _finish(figure, path_stem: Path) -> list[Path]:
    """Saves a figure as `path_stem`.png and .pdf (each written atomically) and closes it."""
    paths = [save_figure(figure, Path(f"{path_stem}.{suffix}")) for suffix in ("png", "pdf")]
    _pyplot().close(figure)
    return paths


def save_piano_roll(
    notes: Sequence[Note], path: str | Path, title: str, primer_quarters: float = 0.0
) -> Path:
    """Pitch against time in quarter notes; bars of 4/4 gridded, the primer shaded."""
    plt = _pyplot()
    path = Path(path)
    roll = notes_to_roll(notes, SIXTEENTH_GRID, "active") if notes else np.zeros((16, NUM_KEYS), np.uint8)
    figure, axis = plt.subplots(figsize=(7.0, 2.6))
    length = max(len(roll), 1) / SIXTEENTH_GRID
    axis.imshow(
        roll.T,
        origin="lower",
        aspect="auto",
        cmap="Blues",
        interpolation="nearest",
        extent=(0, length, LOWEST_PITCH - 0.5, LOWEST_PITCH + 87.5),
        vmin=0,
        vmax=1.3,
    )
    pitches = [note.pitch for note in notes] or [60]
    axis.set_ylim(min(pitches) - 3, max(pitches) + 3)
    c_notes = [p for p in range(24, 109, 12) if min(pitches) - 3 <= p <= max(pitches) + 3]
    axis.set_yticks(c_notes, [f"C{p // 12 - 1}" for p in c_notes])
    for bar in np.arange(0, length, 4):
        axis.axvline(bar, color="0.85", linewidth=0.5, zorder=0)
    if primer_quarters:
        axis.axvspan(0, primer_quarters, color="0.5", alpha=0.15, linewidth=0, label="primer")
        axis.legend(loc="upper right", frameon=False)
    axis.set_xlabel("time (quarter notes)")
    axis.set_ylabel("pitch")
    axis.set_title(title)
    save_figure(figure, path)
    plt.close(figure)
    return path


def save_learning_curves(history: dict[str, list[float]], path_stem: Path, title: str) -> list[Path]:
    """Train against validation for loss and each other metric present; PNG and PDF."""
    plt = _pyplot()
    names = [
        name for name in ("loss", "accuracy", "precision", "recall", "f1", "frame_nll") if name in history
    ]
    figure, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 2.4), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        epochs = np.arange(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], marker="o", markersize=3, label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="s", markersize=3, label="validation")
        unit = {"loss": " (nats)", "frame_nll": " (nats/frame)"}.get(name, "")
        axis.set_title(name.replace("_", " ") + unit)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[0][0].legend(frameon=False)
    figure.suptitle(title)
    figure.tight_layout()
    return _finish(figure, path_stem)


def save_sample_statistics(
    rows: list[tuple[str, dict, dict, dict | None]], keys: Sequence[str], path_stem: Path, title: str
) -> list[Path]:
    """One panel per statistic: each run's samples and its baseline's samples, as a ratio to the test
    split's value (1 = like the music; a model's bar nearer 1 than its baseline's is the result).
    `rows` holds (run label, samples, test split, baseline samples or None). PNG and PDF."""
    plt = _pyplot()
    columns = min(4, len(keys))
    figure, axes = plt.subplots(
        math.ceil(len(keys) / columns),
        columns,
        figsize=(3.0 * columns, 2.2 * math.ceil(len(keys) / columns) + 0.6),
        squeeze=False,
    )
    positions = np.arange(len(rows))
    for axis, key in zip(axes.flat, keys, strict=False):

        def ratio(values, split, key=key):
            return values[key] / split[key] if split[key] else np.nan

        model = [ratio(samples, split) for _, samples, split, _ in rows]
        baseline = [ratio(drawn, split) if drawn else np.nan for _, _, split, drawn in rows]
        axis.barh(positions + 0.2, model, height=0.38, label="model samples", color="#3465a4")
        axis.barh(positions - 0.2, baseline, height=0.38, label="baseline samples", color="#bbbbbb")
        axis.axvline(1.0, color="black", linewidth=1)
        axis.set_yticks(positions, [label for label, *_ in rows], fontsize=7)
        axis.set_title(key.replace("_", " "), fontsize=9)
        axis.grid(axis="x", alpha=0.3)
    for axis in list(axes.flat)[len(keys) :]:
        axis.set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=2, frameon=False, fontsize=8)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    return _finish(figure, path_stem)


def save_overlaps(rows: list[tuple[str, dict]], features: Sequence[str], path_stem: Path) -> list[Path]:
    """Yang and Lerch's overlapping area per feature: each run's samples beside its count baseline's
    (1 = the samples sit among the test split as the music does). `rows` holds (run label,
    metrics.json's "set_level"). One panel per run; PNG and PDF."""
    plt = _pyplot()
    figure, axes = plt.subplots(
        1, len(rows), figsize=(3.4 * len(rows) + 1.6, 0.24 * len(features) + 1.4), sharey=True, squeeze=False
    )
    positions = np.arange(len(features))
    for axis, (label, tests) in zip(axes[0], rows, strict=True):
        overlap = tests["overlap"]
        for offset, who, colour, name in (
            (0.2, "model", "#3465a4", "model samples"),
            (-0.2, "baseline", "#bbbbbb", tests["c2st"]["anchor_name"]),
        ):
            values = [overlap[feature].get(who, {}).get("overlap", np.nan) for feature in features]
            axis.barh(positions + offset, values, height=0.38, color=colour, label=name)
        axis.set_xlim(0, 1)
        axis.set_title(
            f"{label}\nOA at or above the baseline's: {tests.get('overlap_at_or_above_baseline', '-')}",
            fontsize=8,
        )
        axis.grid(axis="x", alpha=0.3)
        axis.legend(frameon=False, fontsize=6, loc="lower left")
    axes[0][0].set_yticks(positions, [feature.replace("_", " ") for feature in features], fontsize=7)
    axes[0][0].invert_yaxis()
    figure.suptitle("overlapping area with the test split's own spread, per feature (Yang and Lerch 2018)")
    figure.tight_layout()
    return _finish(figure, path_stem)


def save_two_sample_tests(rows: list[tuple[str, dict]], path_stem: Path) -> list[Path]:
    """The classifier two-sample test of each run: how often the classifier tells the test split's
    excerpts from the model's samples, beside the floor (the train split, real music) and the anchor
    (the count baseline's samples), with realism written on the bar. PNG and PDF."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7.0, 0.55 * len(rows) + 1.2))
    positions = np.arange(len(rows))
    for offset, key, colour, name in (
        (0.27, "anchor", "#bbbbbb", "count baseline's samples (anchor)"),
        (0.0, "model", "#3465a4", "model's samples"),
        (-0.27, "floor", "#4e9a06", "train split (floor)"),
    ):
        values = [tests["c2st"].get(key) for _, tests in rows]
        axis.barh(
            positions - offset,
            [np.nan if v is None else v for v in values],
            height=0.26,
            color=colour,
            label=name,
        )
    for position, (_, tests) in zip(positions, rows, strict=True):
        if tests.get("realism") is not None:
            axis.text(1.01, position, f"realism {tests['realism']:.2f}", va="center", fontsize=7)
    axis.axvline(0.5, color="black", linewidth=0.8, linestyle=":")
    axis.set_xlim(0.4, 1.0)
    axis.set_yticks(positions, [label for label, _ in rows], fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel("held-out accuracy telling the excerpts from the test split's (0.5 = cannot)")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3)
    figure.suptitle("classifier two-sample test (realism = (anchor - model) / (anchor - floor))", fontsize=9)
    figure.tight_layout()
    return _finish(figure, path_stem)


def save_ablation(steps: list[dict], path_stem: Path, title: str) -> list[Path]:
    """Per ablation step: test frame NLL beside the Markov baseline, F1, and the samples' note
    density and mean note length beside the test split's. PNG and PDF."""
    plt = _pyplot()
    labels = [f"{row['step']}. {row['name']}" for row in steps]
    positions = np.arange(len(steps))
    figure, axes = plt.subplots(1, 4, figsize=(13, 0.5 * len(steps) + 1.8), sharey=True)
    axes[0].barh(positions, [row["frame_nll_nats"] for row in steps], color="#3465a4")
    axes[0].axvline(steps[0]["markov_nll_nats"], color="#cc0000", linestyle="--", label="first-order Markov")
    axes[0].set_title("test frame NLL (nats)", fontsize=9)
    axes[0].legend(frameon=False, fontsize=7)
    axes[1].barh(positions, [row["f1"] for row in steps], color="#4e9a06")
    axes[1].set_title("test F1", fontsize=9)
    for axis, key, name in (
        (axes[2], "note_density_per_quarter", "notes per quarter"),
        (axes[3], "mean_note_quarters", "mean note length (quarters)"),
    ):
        axis.barh(
            positions + 0.2,
            [row["samples"][key] for row in steps],
            height=0.38,
            color="#3465a4",
            label="samples",
        )
        if all(row.get("baseline_samples") for row in steps):
            axis.barh(
                positions - 0.2,
                [row["baseline_samples"][key] for row in steps],
                height=0.38,
                color="#bbbbbb",
                label="Markov samples",
            )
        axis.axvline(steps[0]["test_split_statistics"][key], color="black", linewidth=1, label="test split")
        axis.set_title(name, fontsize=9)
    axes[3].legend(frameon=False, fontsize=7)
    axes[0].set_yticks(positions, labels, fontsize=8)
    axes[0].invert_yaxis()
    for axis in axes:
        axis.grid(axis="x", alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    return _finish(figure, path_stem)


def save_hyperparameter_plots(
    rows: list[dict], names: list[str], objective: str, path_stem: Path, title: str
) -> list[Path]:
    """One panel per hyperparameter: its value against the objective, one point per trial."""
    plt = _pyplot()
    finished = [row for row in rows if row.get("score") not in (None, "")]
    figure, axes = plt.subplots(1, len(names), figsize=(2.4 * len(names), 2.3), squeeze=False, sharey=True)
    for axis, name in zip(axes[0], names, strict=True):
        values = [row[name] for row in finished]
        numeric = all(isinstance(v, (int, float)) for v in values)
        positions = values if numeric else [sorted(set(map(str, values))).index(str(v)) for v in values]
        axis.scatter(positions, [float(row["score"]) for row in finished], s=18)
        if not numeric:
            labels = sorted(set(map(str, values)))
            axis.set_xticks(range(len(labels)), labels)
        axis.set_xlabel(name.replace("_", " "))
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel(objective)
    figure.suptitle(title)
    figure.tight_layout()
    return _finish(figure, path_stem)


def save_waveform_and_spectrogram(
    waveform: np.ndarray, sample_rate: int, path: str | Path, title: str
) -> Path:
    """Waveform above its spectrogram (dB), time in seconds."""
    plt = _pyplot()
    path = Path(path)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(7.0, 3.6), sharex=True, gridspec_kw={"height_ratios": [1, 2]}
    )
    seconds = np.arange(len(waveform)) / sample_rate
    top.plot(seconds, waveform, linewidth=0.4)
    top.set_ylabel("amplitude")
    top.set_ylim(-1, 1)
    top.set_title(title)
    bottom.specgram(waveform + 1e-9, NFFT=256, Fs=sample_rate, noverlap=192, cmap="magma", vmin=-120)
    bottom.set_ylabel("frequency (Hz)")
    bottom.set_xlabel("time (s)")
    save_figure(figure, path)
    plt.close(figure)
    return path


# The benchmark figure's line style and colour of each model family (benchmarks.FAMILIES).
_FAMILY_STYLES = {
    "within the frame": ("-", "C1"),
    "independent keys": ("--", "C0"),
    "tied parallel": ("-", "C2"),
    "tied parallel, independent keys": ("--", "C2"),
}


def save_benchmark_curves(entries, table_entries, published: dict, path_stem: Path) -> list[Path]:
    """One panel per benchmark data set: each run's validation NLL per epoch (`valid_curve`), with
    its first-order Markov baseline (dotted; measured on test frames, as the table's) for scale.
    The table's runs (`table_entries`: the best of each family by validation) are drawn in colour
    and named; every other run of the search is a thin grey line; the best published row of each
    family (`published`: data set -> family -> (model, test NLL as printed)) is a dash-dotted line
    in the family's colour. `entries` are `benchmarks.BenchmarkEntry`s. Returns the PNG and PDF
    paths."""
    plt = _pyplot()
    chosen = {id(entry) for entry in table_entries}
    datasets = list(dict.fromkeys(entry.dataset for entry in entries))
    figure, axes = plt.subplots(1, len(datasets), figsize=(3.4 * len(datasets), 2.8), squeeze=False)
    for axis, dataset in zip(axes[0], datasets, strict=True):
        runs = [entry for entry in entries if entry.dataset == dataset]
        others = [entry for entry in runs if id(entry) not in chosen]
        for index, entry in enumerate(others):
            epochs = np.arange(1, len(entry.valid_curve) + 1)
            label = f"other runs ({len(others)})" if index == 0 else None
            axis.plot(epochs, entry.valid_curve, color="0.75", linewidth=0.8, label=label)
        for entry in (entry for entry in runs if id(entry) in chosen):
            epochs = np.arange(1, len(entry.valid_curve) + 1)
            style, colour = _FAMILY_STYLES.get(entry.family, ("--", "C0"))  # one colour per family
            axis.plot(
                epochs, entry.valid_curve, style, color=colour, marker="o", markersize=3, label=entry.label
            )
        markov = next((entry.markov for entry in runs if entry.markov), None)
        if markov:
            axis.axhline(markov, color="0.5", linestyle=":", linewidth=1, label="Markov (test)")
        drawn = set()
        for family, (model, nll) in published.get(dataset, {}).items():
            if (model, nll) in drawn:  # one published row can be the best of two families
                continue
            drawn.add((model, nll))
            colour = _FAMILY_STYLES.get(family, ("--", "C0"))[1]
            axis.axhline(
                nll, color=colour, linestyle="-.", linewidth=0.8, label=f"published: {model} {nll:.2f}"
            )
        axis.set_title(dataset)
        axis.set_xlabel("epoch")
        axis.set_ylabel("validation NLL (nats/frame)")
        axis.legend(frameon=False, fontsize=6)
    figure.tight_layout()
    return _finish(figure, path_stem)


def save_scaling(rows: list[dict], path_stem: Path) -> list[Path]:
    """`make bench`'s scaling figure (bench/scaling.py): peak memory, ingest time per file and training
    speed against the number of files in the corpus. Returns the PNG and PDF paths."""
    plt = _pyplot()
    counts = [row["files"] for row in rows]
    panels = (
        (
            "peak memory (MB)",
            (("train_peak_rss_mb", "musictf train 2"), ("data_peak_rss_mb", "musictf data")),
        ),
        ("ingest (ms per file)", (("cold_ingest_ms_per_file", "cold"), ("warm_ingest_ms_per_file", "warm"))),
        ("training steps per second", (("train_steps_per_second", "musictf train 2"),)),
    )
    figure, axes = plt.subplots(1, len(panels), figsize=(10.2, 2.8))
    for axis, (label, series) in zip(axes, panels, strict=True):
        for key, name in series:
            axis.plot(counts, [row[key] for row in rows], marker="o", label=name)
        axis.set_xscale("log")
        axis.minorticks_off()
        axis.set_xticks(counts, [f"{count:,}" for count in counts])
        axis.set_xlabel("files in the corpus")
        axis.set_ylabel(label)
        if label.startswith("ingest"):  # cold and warm differ by orders of magnitude
            axis.set_yscale("log")
        else:
            axis.set_ylim(bottom=0)
        axis.legend(frameon=False, fontsize=7)
    figure.tight_layout()
    return _finish(figure, path_stem)
