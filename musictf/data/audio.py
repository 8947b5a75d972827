"""Notes -> waveform: FluidSynth with a General MIDI SoundFont where present, else a labelled
pure-numpy synth. Plus WAV writing and mu-law companding.

Debian packages: `fluidsynth` and `timgm6mb-soundfont` (or `fluid-soundfont-gm`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musictf import files
from musictf.data.corpus import Note

SOUNDFONTS = (
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)


def find_soundfont() -> str | None:
    return next((path for path in SOUNDFONTS if Path(path).is_file()), None)


def fluidsynth_available() -> bool:
    return shutil.which("fluidsynth") is not None and find_soundfont() is not None


def numpy_synth(notes: Sequence[Note], sample_rate: int = 16000, tempo_bpm: float = 90.0) -> np.ndarray:
    """A plain additive synth (three harmonics, plucked envelope): the labelled fallback."""
    seconds_per_quarter = 60.0 / tempo_bpm
    length = max((n.onset + n.duration for n in notes), default=0.0) * seconds_per_quarter + 0.5
    audio = np.zeros(int(length * sample_rate) + 1, np.float32)
    for note in notes:
        start = int(note.onset * seconds_per_quarter * sample_rate)
        count = max(1, int(note.duration * seconds_per_quarter * sample_rate))
        t = np.arange(count) / sample_rate
        frequency = 440.0 * 2 ** ((note.pitch - 69) / 12)
        tone = sum(np.sin(2 * np.pi * frequency * k * t) / k**1.5 for k in (1, 2, 3))
        envelope = np.exp(-3.0 * t) * np.minimum(1.0, t * 200) * np.minimum(1.0, (count - np.arange(count)) / 80)
        audio[start : start + count] += (0.2 * tone * envelope).astype(np.float32)
    peak = np.abs(audio).max()
    return audio / peak * 0.8 if peak > 0 else audio


def write_wav(audio: np.ndarray, path: str | Path, sample_rate: int) -> Path:
    """16-bit mono PCM, written atomically."""
    path = Path(path)
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with files.atomic_path(path, suffix=".wav") as temporary:
        with wave.open(str(temporary), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(sample_rate)
            handle.writeframes(pcm.tobytes())
    return path


def render_midi(midi_path: str | Path, wav_path: str | Path, sample_rate: int = 16000) -> str:
    """Renders a MIDI file to WAV; returns the renderer used ("fluidsynth" or "numpy synth")."""
    from musictf.data.pianoroll import read_midi

    if fluidsynth_available():
        with tempfile.TemporaryDirectory() as scratch:
            output = Path(scratch) / "out.wav"
            command = ["fluidsynth", "-ni", "-q", "-g", "0.8", "-r", str(sample_rate), "-F", str(output),
                       find_soundfont(), str(midi_path)]
            finished = subprocess.run(command, capture_output=True, timeout=120)
            if finished.returncode == 0 and output.exists() and output.stat().st_size > 44:
                files.write_bytes(wav_path, output.read_bytes())
                return "fluidsynth"
    write_wav(numpy_synth(read_midi(midi_path), sample_rate), wav_path, sample_rate)
    return "numpy synth"


def mu_law_encode(audio: np.ndarray, channels: int = 256) -> np.ndarray:
    """[-1, 1] floats -> integers 0..channels-1 (mu = channels - 1)."""
    mu = channels - 1
    companded = np.sign(audio) * np.log1p(mu * np.abs(np.clip(audio, -1, 1))) / np.log1p(mu)
    return np.clip(np.round((companded + 1) / 2 * mu), 0, mu).astype(np.int32)


def mu_law_decode(codes: np.ndarray, channels: int = 256) -> np.ndarray:
    mu = channels - 1
    companded = 2 * (np.asarray(codes, np.float64) / mu) - 1
    return (np.sign(companded) * ((1 + mu) ** np.abs(companded) - 1) / mu).astype(np.float32)
