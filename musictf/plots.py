"""Figures in one style: piano rolls of samples and real excerpts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musictf import files
from musictf.data.corpus import LOWEST_PITCH, Note
from musictf.data.pianoroll import notes_to_roll


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


def save_piano_roll(notes: Sequence[Note], path: str | Path, title: str, primer_quarters: float = 0.0) -> Path:
    """Pitch against time in quarter notes; bars of 4/4 gridded, the primer shaded."""
    plt = _pyplot()
    path = Path(path)
    roll = notes_to_roll(notes, 4, "active") if notes else np.zeros((16, 88), np.uint8)
    figure, axis = plt.subplots(figsize=(7.0, 2.6))
    length = max(len(roll), 1) / 4
    axis.imshow(roll.T, origin="lower", aspect="auto", cmap="Blues", interpolation="nearest",
                extent=(0, length, LOWEST_PITCH - 0.5, LOWEST_PITCH + 87.5), vmin=0, vmax=1.3)
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
