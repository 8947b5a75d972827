"""Notes -> waveform: FluidSynth with a General MIDI SoundFont where present, else a labelled
pure-numpy synth. Plus WAV writing and mu-law companding.

Debian packages: `fluidsynth` and `timgm6mb-soundfont` (or `fluid-soundfont-gm`).
"""

from __future__ import annotations

import dataclasses
import shutil
import struct
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musictf import files
from musictf.data.music import Note, Piece

SOUNDFONTS = (
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)


# General MIDI programs (0-based) of the timbres the WaveNet experiment renders in.
PROGRAMS = {"piano": 0, "organ": 19, "strings": 48, "flute": 73}
# The numpy fallback's stand-in timbres: harmonic amplitudes, decay per second, attack seconds.
_FALLBACK_TIMBRES = {
    "piano": ((1.0, 0.5, 0.3, 0.15), 3.0, 0.005),
    "organ": ((1.0, 0.7, 0.0, 0.5, 0.0, 0.3), 0.0, 0.01),
    "strings": ((1.0, 0.5, 0.33, 0.25, 0.2), 0.3, 0.08),
    "flute": ((1.0, 0.15, 0.05), 0.2, 0.05),
}


def hop_samples(sample_rate: int, tempo_bpm: float) -> float:
    """Audio samples per sixteenth-note roll step (a whole number for a usable sample rate and tempo)."""
    from musictf.data.pianoroll import SIXTEENTH_GRID

    return sample_rate * 60 / tempo_bpm / SIXTEENTH_GRID


def find_soundfont() -> str | None:
    return next((path for path in SOUNDFONTS if Path(path).is_file()), None)


def fluidsynth_available() -> bool:
    return shutil.which("fluidsynth") is not None and find_soundfont() is not None


def numpy_synth(
    notes: Sequence[Note], sample_rate: int = 16000, tempo_bpm: float = 90.0, program: str = "piano"
) -> np.ndarray:
    """A plain additive synth with a stand-in timbre per program: the labelled fallback."""
    harmonics, decay, attack = _FALLBACK_TIMBRES[program]
    seconds_per_quarter = 60.0 / tempo_bpm
    length = max((n.onset + n.duration for n in notes), default=0.0) * seconds_per_quarter + 0.5
    audio = np.zeros(int(length * sample_rate) + 1, np.float32)
    nyquist = sample_rate / 2
    for note in notes:
        start = int(round(note.onset * seconds_per_quarter * sample_rate))
        count = max(1, int(round(note.duration * seconds_per_quarter * sample_rate)))
        t = np.arange(count) / sample_rate
        frequency = 440.0 * 2 ** ((note.pitch - 69) / 12)
        tone = sum(
            a * np.sin(2 * np.pi * frequency * k * t)
            for k, a in enumerate(harmonics, 1)
            if a and frequency * k < nyquist
        )
        envelope = (
            np.exp(-decay * t)
            * np.minimum(1.0, t / attack)
            * np.minimum(1.0, (count - np.arange(count)) / 40)
        )
        audio[start : start + count] += (0.2 * tone * envelope).astype(np.float32)
    peak = np.abs(audio).max()
    return audio / peak * 0.8 if peak > 0 else audio


def current_renderer() -> str:
    """What `render_notes` renders with on this machine."""
    return "fluidsynth" if fluidsynth_available() else "numpy synth"


def render_notes(
    notes: Sequence[Note], sample_rate: int, tempo_bpm: float, program: str = "piano"
) -> tuple[np.ndarray, str]:
    """(waveform in [-1, 1], renderer): FluidSynth in the GM `program` where present, else numpy."""
    if fluidsynth_available():
        from musictf.data.pianoroll import write_midi

        with tempfile.TemporaryDirectory() as scratch:
            midi = write_midi(notes, Path(scratch) / "in.mid", tempo_bpm=tempo_bpm, program=PROGRAMS[program])
            wav = Path(scratch) / "out.wav"
            if _fluidsynth(midi, wav, sample_rate):
                return read_wav(wav)[0], "fluidsynth"
    return numpy_synth(notes, sample_rate, tempo_bpm, program), "numpy synth"


def _fluidsynth(midi_path: Path, wav_path: Path, sample_rate: int) -> bool:
    command = [
        "fluidsynth",
        "-ni",
        "-q",
        "-g",
        "0.8",
        "-r",
        str(sample_rate),
        "-F",
        str(wav_path),
        find_soundfont(),
        str(midi_path),
    ]
    finished = subprocess.run(command, capture_output=True, timeout=120)
    return finished.returncode == 0 and wav_path.exists() and wav_path.stat().st_size > 44


class WAVFormatError(ValueError):
    """A file that is not a WAV file this reader can decode; the message is the one-line reason."""


_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(mono float waveform in [-1, 1], sample rate) of a RIFF WAVE file.

    Read to the RIFF/WAVE layout (Microsoft's multimedia specification): chunks of a 4-byte id, a
    little-endian 32-bit length and data padded to an even length; `fmt ` gives the encoding, `data`
    the samples, and other chunks (LIST, fact, cue, ...) are skipped. Integer PCM of 8 (unsigned),
    16, 24 and 32 bits, IEEE float of 32 and 64 bits, and WAVE_FORMAT_EXTENSIBLE holding either
    are decoded; channels are averaged. Anything else raises WAVFormatError with the reason.
    Hand-written rather than `scipy.io.wavfile`, which gives a bad file a generic error or a
    warning: here each bad file gets its own one-line reason (the ingest report's promise).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise WAVFormatError(f"cannot read it: {error.strerror or type(error).__name__}") from None
    if not data:
        raise WAVFormatError("empty file: 0 bytes")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        if len(data) < 12 and b"RIFF".startswith(data[:4]):
            raise WAVFormatError(f"truncated: the file ends inside its RIFF header ({len(data)} of 12 bytes)")
        what = "a MIDI file" if data[:4] == b"MThd" else "not a RIFF WAVE file"
        raise WAVFormatError(f"{what}: a WAV file is needed here")
    position, fmt, samples = 12, None, None
    while position + 8 <= len(data):
        chunk_id, length = (
            data[position : position + 4],
            struct.unpack("<I", data[position + 4 : position + 8])[0],
        )
        body = data[position + 8 : position + 8 + length]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise WAVFormatError("truncated: the fmt chunk ends early")
            fmt = struct.unpack("<HHIIHH", body[:16]) + (
                (struct.unpack("<H", body[24:26])[0],) if len(body) >= 26 else (None,)
            )
        elif chunk_id == b"data":
            if len(body) < length:
                raise WAVFormatError(
                    f"truncated: the data chunk claims {length:,} bytes, the file ends after {len(body):,}"
                )
            samples = body
            break
        position += 8 + length + (length & 1)
    if fmt is None:
        raise WAVFormatError("corrupt or truncated: no fmt chunk before the samples")
    if samples is None:
        raise WAVFormatError("corrupt or truncated: no data chunk")
    tag, channels, rate, _, block_align, bits, subformat = fmt
    if tag == _EXTENSIBLE:
        tag = subformat
    if channels < 1 or rate < 1 or bits < 1:
        raise WAVFormatError(f"corrupt fmt chunk: {channels} channels, {rate} Hz, {bits} bits")
    width = (bits + 7) // 8
    if tag == _PCM and width in (1, 2, 3, 4):
        usable = len(samples) // (width * channels) * width * channels
        raw = np.frombuffer(samples[:usable], np.uint8).reshape(-1, width)
        if width == 1:
            values = (raw[:, 0].astype(np.float32) - 128) / 128
        else:  # little-endian signed integers of `width` bytes, widened to int32
            padded = np.zeros((len(raw), 4), np.uint8)
            padded[:, 4 - width :] = raw
            values = padded.view("<i4")[:, 0].astype(np.float64) / 2.0**31
    elif tag == _FLOAT and width in (4, 8):
        dtype = "<f4" if width == 4 else "<f8"
        values = np.frombuffer(samples[: len(samples) // (width * channels) * width * channels], dtype)
    else:
        raise WAVFormatError(
            f"unsupported encoding: format tag {tag}, {bits} bits (PCM 8/16/24/32-bit or float 32/64-bit "
            "only)"
        )
    if len(values) == 0:
        raise WAVFormatError("empty: the data chunk holds no samples")
    waveform = values.reshape(-1, channels).mean(axis=1).astype(np.float32)
    return np.clip(waveform, -1.0, 1.0), rate


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
            if _fluidsynth(Path(midi_path), output, sample_rate):
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


@dataclasses.dataclass
class AudioRepresentation:
    """A piece -> (mu-law codes, aligned piano roll, program id), rendered at `sample_rate`.

    The roll has one sixteenth-note step per `hop` samples; codes hold one hop more than the roll
    covers, so every roll step has its next-sample targets. `renderer` records what made the audio
    it was trained on ("fluidsynth", "numpy synth" or "WAV files"); the data stage sets it when it
    prepares the data (`prepared.prepare_audio_data`), never the encoding.
    """

    sample_rate: int
    programs: list[str]
    tempo_bpm: float
    max_quarters: float
    kind = "audio"
    features = 256  # mu-law classes
    stored_in_shards = False  # (codes, roll, program) per piece: the arrays cache is one .npz
    renderer: str = ""

    @property
    def hop(self) -> int:
        return round(hop_samples(self.sample_rate, self.tempo_bpm))

    def fit(self, pieces, transpose_range: int = 0):
        return self

    def program_of(self, piece: Piece) -> int:
        return int(files.sha256_text(piece.piece_id), 16) % len(self.programs)

    def encode_notes(self, notes, program: int) -> tuple[np.ndarray, np.ndarray, int]:
        from musictf.data.pianoroll import SIXTEENTH_GRID, notes_to_roll

        notes = [
            n._replace(duration=min(n.duration, self.max_quarters - n.onset))
            for n in notes
            if n.onset < self.max_quarters
        ]
        roll = notes_to_roll(notes, SIXTEENTH_GRID, "active")
        waveform, _ = render_notes(notes, self.sample_rate, self.tempo_bpm, self.programs[program])
        needed = (len(roll) + 1) * self.hop
        waveform = np.pad(waveform, (0, max(0, needed - len(waveform))))[:needed]
        return mu_law_encode(waveform).astype(np.int16), roll, program

    def encode(self, piece: Piece):
        return self.encode_notes(piece.notes, self.program_of(piece))

    def steps(self, item) -> int:
        """Audio samples in an encoded (codes, roll, program) item."""
        return len(item[0])

    def check_fits(self, pieces, source: str) -> None:
        """Any notes can be rendered."""

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "sample_rate": self.sample_rate,
            "programs": self.programs,
            "tempo_bpm": self.tempo_bpm,
            "max_quarters": self.max_quarters,
            "renderer": self.renderer,
        }

    def cache_identity(self, fit: bool) -> dict:
        """Its settings, and what renders its audio here (FluidSynth or the numpy synth)."""
        spec = {key: value for key, value in self.to_json().items() if key != "renderer"}
        return {"representation": spec, "fluidsynth": fluidsynth_available()}


def audio_representation_from_json(spec: dict) -> AudioRepresentation:
    return AudioRepresentation(
        spec["sample_rate"],
        spec["programs"],
        spec["tempo_bpm"],
        spec["max_quarters"],
        spec.get("renderer", ""),
    )
