"""Figure 8: how ingest and training scale with the corpus (1,000, 4,000 and 16,000 MIDI files).

The corpora are synthetic but made of real music: every piece music21 holds by Bach (chorales and
the rest), each written as a Standard MIDI File in variants transposed by -5..+6 semitones and
stretched in time by 0.5, 0.75, 1, 1.5 or 2 (the note values change, not only the tempo mark, so
each variant is a distinct piece in every representation). A corpus is written once into
`<cache>/bench-corpora/<N>/` and reused; `complete.json` marks a finished one.

Each size is measured in fresh processes, as a user runs them:
- `musictf data` with an empty parse cache (cold ingest) and again (warm ingest); the per-file
  times are the ingest report's own seconds (no interpreter or TensorFlow start-up in them);
- `musictf train 2 --preset smoke --set max_files=0` for a fixed number of steps, on the whole
  corpus: peak resident memory of the process (ru_maxrss) and training steps per second (the
  second epoch's wall time from history.csv, so no tracing in it).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from musictf import files
from musictf.data.smf import variable_length_quantity

TRANSPOSITIONS = tuple(range(-5, 7))
STRETCHES = (1.0, 0.5, 2.0, 0.75, 1.5)
TICKS_PER_QUARTER = 480


def midi_bytes(pitches, onsets, durations, bpm: float) -> bytes:
    """A format-0 Standard MIDI File: one track, a tempo, and a note on/off pair per note."""
    events = []
    for pitch, onset, duration in zip(pitches, onsets, durations, strict=True):
        start = round(onset * TICKS_PER_QUARTER)
        end = max(start + 1, round((onset + duration) * TICKS_PER_QUARTER))
        events.append((start, 1, bytes([0x90, int(pitch), 80])))
        events.append((end, 0, bytes([0x80, int(pitch), 0])))
    events.sort(key=lambda event: (event[0], event[1]))
    track, now = bytearray(), 0
    track += b"\x00\xff\x51\x03" + round(60_000_000 / bpm).to_bytes(3, "big")
    for tick, _, message in events:
        track += variable_length_quantity(tick - now) + message
        now = tick
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_QUARTER)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def _source_pieces(count: int) -> list:
    """music21's Bach: all of it (433 files), or the first `count` files for a smaller corpus."""
    from musictf.data.corpus import load_corpus

    wanted = count if count < 433 else 0
    return [
        piece
        for piece in load_corpus("music21:bach", max_files=wanted, progress=False).pieces
        if len(piece.notes)
    ]


def write_corpus(folder: Path, count: int) -> Path:
    """`count` distinct MIDI files in `folder` (written once; `complete.json` marks a whole corpus)."""
    folder = Path(folder)
    if (folder / "complete.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    pieces = _source_pieces(count)
    variants = [(shift, stretch) for stretch in STRETCHES for shift in TRANSPOSITIONS]
    written = 0
    for shift, stretch in variants:
        for index, piece in enumerate(pieces):
            if written == count:
                break
            notes = piece.notes
            pitches = np.asarray([note.pitch for note in notes]) + shift
            keep = (pitches >= 21) & (pitches <= 108)
            onsets = np.asarray([note.onset for note in notes]) * stretch
            durations = np.asarray([note.duration for note in notes]) * stretch
            data = midi_bytes(pitches[keep], onsets[keep], durations[keep], bpm=90 * stretch)
            name = folder / f"{index:04d}-{shift:+d}-x{stretch:g}.mid"
            files.write_bytes(name, data)
            written += 1
    if written < count:
        raise ValueError(f"only {written} variants of {len(pieces)} pieces; asked for {count}")
    files.write_json(folder / "complete.json", {"files": count, "pieces": len(pieces)})
    return folder


def _measured(command: list[str], env: dict) -> dict:
    """Runs `command` in a fresh wrapper process and returns its wall time and the peak RSS of the
    largest process it waited for (the command itself: parser processes are smaller)."""
    wrapper = (
        "import resource, subprocess, sys, json, time\n"
        "t = time.perf_counter()\n"
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
        "print(json.dumps({'rc': code.returncode, 'seconds': time.perf_counter() - t, "
        "'peak_rss_mb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "
        "'stderr': code.stderr[-2000:]}))\n"
    )
    done = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True, env=env)
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result['stderr']}")
    return result


def _ingest_seconds(cache: Path) -> tuple[float, dict]:
    """The newest ingest report's own seconds (and the report)."""
    newest = max((cache / "ingest").glob("*.json"), key=lambda path: path.stat().st_mtime)
    report = json.loads(newest.read_text())
    return report["seconds"], report


def measure_size(folder: Path, count: int, train_steps: int, threads: int) -> dict:
    """Cold and warm ingest, then training memory and speed, for one corpus."""
    musictf = [sys.executable, "-m", "musictf"]
    with tempfile.TemporaryDirectory(prefix="musictf-scaling-") as scratch:
        cache = Path(scratch) / "cache"
        env = os.environ | {"MUSICTF_CACHE_DIR": str(cache), "TF_NUM_INTRAOP_THREADS": str(threads)}
        data = [*musictf, "data", "--source", str(folder), "--representation", "pianoroll"]
        cold = _measured(data, env)
        cold_seconds, report = _ingest_seconds(cache)
        warm = _measured(data, env)
        warm_seconds, _ = _ingest_seconds(cache)
        train = [
            *musictf, "train", "2", "--preset", "smoke", "--source", str(folder),
            "--set", "max_files=0", "--set", "epochs=2", "--set", f"steps_per_epoch={train_steps}",
            "--run-dir", str(Path(scratch) / "run"),
        ]  # fmt: skip
        first = _measured(train, env)  # encodes the arrays (a cache miss), then trains
        second = _measured(
            [*train[:-1], str(Path(scratch) / "run-again")], env
        )  # the arrays cache hit: what a user's second run costs
        history = (Path(scratch) / "run-again" / "history.csv").read_text().splitlines()
        header = history[0].split(",")
        epoch_seconds = float(history[-1].split(",")[header.index("seconds")])
        manifest = json.loads((Path(scratch) / "run-again" / "manifest.json").read_text())
    return {
        "files": count,
        "pieces": report["pieces"],
        "cold_ingest_ms_per_file": 1000 * cold_seconds / count,
        "warm_ingest_ms_per_file": 1000 * warm_seconds / count,
        "data_peak_rss_mb": round(warm["peak_rss_mb"]),
        "data_cold_peak_rss_mb": round(cold["peak_rss_mb"]),
        "train_first_peak_rss_mb": round(first["peak_rss_mb"]),
        "train_peak_rss_mb": round(second["peak_rss_mb"]),
        "train_steps_per_second": train_steps / epoch_seconds,
        "train_data_path": manifest.get("arrays", "in memory"),
        "seconds": {"cold_data": cold["seconds"], "warm_data": warm["seconds"], "train": second["seconds"]},
    }


def scaling_figures(sizes: tuple, train_steps: int, threads: int, root: Path | None = None) -> dict:
    """Figure 8 for each corpus size in `sizes` (writing the corpora first where needed)."""
    from musictf.data.corpus import default_cache_dir

    root = Path(root) if root is not None else default_cache_dir() / "bench-corpora"
    rows = []
    for count in sizes:
        started = time.perf_counter()
        folder = write_corpus(root / str(count), count)
        print(f"bench: scaling {count} files ...", file=sys.stderr, flush=True)
        rows.append(measure_size(folder, count, train_steps, threads))
        print(f"bench: scaling {count} files took {time.perf_counter() - started:.0f} s", file=sys.stderr)
    smallest, largest = rows[0], rows[-1]
    return {
        "rows": rows,
        "train_steps": train_steps,
        "train_memory_growth": largest["train_peak_rss_mb"] / smallest["train_peak_rss_mb"],
        "goal": {"train_memory_growth": 1.3, "warm_ingest_ms_per_file": 1.0},
    }
