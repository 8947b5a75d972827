"""WAV files read to the RIFF/WAVE layout: every common encoding, and one reason for each bad file."""

import json
import struct

import numpy as np
import pytest

from musictf.cli import main
from musictf.data.audio import WAVFormatError, read_wav, write_wav


def _wav(
    samples: bytes, *, tag=1, channels=1, rate=8000, bits=16, extensible=False, extra_chunks=b""
) -> bytes:
    block = channels * ((bits + 7) // 8)
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate, rate * block, block, bits)
    if (
        extensible
    ):  # cbSize, valid bits, channel mask, then the sub-format GUID (its first two bytes: the tag)
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + bytes(14)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks
    chunks += b"data" + struct.pack("<I", len(samples)) + samples + (b"\x00" if len(samples) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


WAVE = np.array([0.0, 0.5, -0.5, 0.25, -1.0, 0.999], np.float64)


def _encoded(bits: int) -> bytes:
    if bits == 8:
        return np.round(WAVE * 127 + 128).clip(0, 255).astype(np.uint8).tobytes()
    scale = 2 ** (bits - 1) - 1
    values = np.round(WAVE * scale).astype(np.int64)
    return b"".join(int(value).to_bytes(bits // 8, "little", signed=True) for value in values)


@pytest.mark.parametrize("bits", [8, 16, 24, 32])
@pytest.mark.parametrize("extensible", [False, True])
def test_integer_pcm_of_every_common_width_decodes_to_the_same_waveform(tmp_path, bits, extensible):
    path = tmp_path / "tone.wav"
    path.write_bytes(
        _wav(
            _encoded(bits),
            bits=bits,
            extensible=extensible,
            extra_chunks=b"LIST" + struct.pack("<I", 3) + b"abc\x00",
        )
    )  # an odd, padded chunk
    waveform, rate = read_wav(path)
    assert rate == 8000
    np.testing.assert_allclose(waveform, WAVE, atol=1.5 / 2 ** (bits - 1))


def test_float_stereo_is_averaged_and_our_own_files_read_back(tmp_path):
    stereo = np.stack([WAVE, -WAVE * 0.5], axis=1).astype("<f4").tobytes()
    (tmp_path / "float.wav").write_bytes(_wav(stereo, tag=3, channels=2, bits=32))
    np.testing.assert_allclose(read_wav(tmp_path / "float.wav")[0], WAVE * 0.25, atol=1e-6)
    write_wav(WAVE, tmp_path / "ours.wav", 16000)
    waveform, rate = read_wav(tmp_path / "ours.wav")
    assert rate == 16000 and np.abs(waveform - WAVE).max() < 1e-4


@pytest.mark.parametrize(
    "content,reason",
    [
        (None, "cannot read it: No such file or directory"),
        (b"", "empty file: 0 bytes"),
        (b"RIFF\x10\x00", "truncated: the file ends inside its RIFF header"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0", "a MIDI file: a WAV file is needed here"),
        (_wav(b"\x00\x01" * 100)[:60], "truncated: the data chunk claims 200 bytes"),
        (_wav(b"", bits=16), "empty: the data chunk holds no samples"),
        (_wav(b"\x00" * 40, tag=2, bits=4), "unsupported encoding: format tag 2"),
    ],
)
def test_a_bad_wav_file_gets_one_line_naming_its_cause(tmp_path, content, reason):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(WAVFormatError) as caught:
        read_wav(path)
    assert str(caught.value).startswith(reason) and "\n" not in str(caught.value)


def test_wavenet_trains_on_a_folder_of_wav_files_and_skips_bad_ones(tmp_path, capsys, cache_dir):
    folder = tmp_path / "wavs"
    folder.mkdir()
    t = np.arange(8000 * 3) / 8000
    for index, frequency in enumerate((220, 330, 440, 550)):
        write_wav(0.5 * np.sin(2 * np.pi * frequency * t), folder / f"tone{index}.wav", 8000)
    write_wav(np.zeros(16000), folder / "wrong_rate.wav", 16000)
    (folder / "broken.wav").write_bytes(b"RIFF1234WAVEjunk")
    run_dir = tmp_path / "run"
    status = main(
        [
            "run",
            "5",
            "--preset",
            "smoke",
            "--source",
            str(folder),
            "--set",
            "local_conditioning=false",
            "--run-dir",
            str(run_dir),
        ]
    )
    assert status == 0, capsys.readouterr().err
    skipped = {
        item["file"].split("/")[-1]: item["reason"]
        for item in json.loads((run_dir / "manifest.json").read_text())["skipped"]
    }
    assert set(skipped) == {"wrong_rate.wav", "broken.wav"} and skipped["wrong_rate.wav"].startswith(
        "sample rate"
    )
    assert skipped["broken.wav"] == "unreadable: corrupt or truncated: no fmt chunk before the samples"
    assert json.loads((run_dir / "metrics.json").read_text())["test"]["nll_bits_per_sample"] > 0
    status = main(
        ["train", "5", "--preset", "smoke", "--source", str(folder), "--run-dir", str(tmp_path / "r2")]
    )
    assert status == 2 and "local_conditioning=false" in capsys.readouterr().err
