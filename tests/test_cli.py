"""The user's path: `musictf run/train/evaluate/generate` on smoke presets, resume, clear errors."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from musictf.cli import main
from musictf.data.music import Note
from musictf.data.pianoroll import read_midi, write_midi
from musictf.experiments import get_experiment
from musictf.experiments.e4_polyphonic import teacher_forcing_ratio
from musictf.metrics import THRESHOLDS


def run_cli(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    "experiment", [pytest.param("1", marks=pytest.mark.slow), "2", "3", "4"]
)  # experiment 1's case is slow: keeps `make test` under 10 minutes on 2 cores
def test_run_trains_generates_and_evaluates(experiment, tmp_path, capsys, cache_dir):
    run_dir = tmp_path / "run"
    documented_schedule = (
        ["--set", "teacher_forcing_schedule=quadratic", "--set", "frame_autoregression=false"]
        if experiment == "4"
        else []
    )
    status, out, err = run_cli(
        capsys, "run", experiment, "--preset", "smoke", "--run-dir", str(run_dir), *documented_schedule
    )
    assert status == 0, err
    for name in (
        "config.json",
        "representation.json",
        "manifest.json",
        "history.csv",
        "metrics.json",
        "checkpoints/best.keras",
        "checkpoints/last.keras",
        "state.json",
    ):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "logs").rglob("events.out.tfevents.*"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    key = "perplexity" if experiment == "1" else "frame_nll_nats"
    assert metrics["test"][key] > 0 and metrics["samples"]["pieces"] == 2
    samples = json.loads((run_dir / "samples" / "samples.json").read_text())["samples"]
    assert len(samples) == 2
    for item in samples:
        notes = read_midi(run_dir / "samples" / item["midi"])
        assert notes and all(note.duration > 0 for note in notes)
        if experiment != "1":  # roll notes last whole steps of the grid (4 per quarter)
            assert all(abs(note.duration * 4 - round(note.duration * 4)) < 1e-6 for note in notes)
        assert (run_dir / "samples" / item["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if experiment == "4":
        assert metrics["samples"]["polyphony"] > 1
        with open(run_dir / "history.csv") as handle:
            ratios = [float(row["teacher_forcing_ratio"]) for row in csv.DictReader(handle)]
        initial = get_experiment("4").load_config("smoke").teacher_forcing_ratio
        assert ratios == pytest.approx([teacher_forcing_ratio(initial, epoch, 2) for epoch in range(2)])
        assert ratios[1] < ratios[0]
        assert metrics["test"]["threshold"] in THRESHOLDS  # chosen on the validation split by default
    # generate again with other settings, from a primer file
    primer = write_midi([Note(60 + i % 12, i * 0.25, 0.25, "C4") for i in range(64)], tmp_path / "primer.mid")
    status, out, err = run_cli(
        capsys,
        "generate",
        str(run_dir),
        "--num",
        "1",
        "--length",
        "8",
        "--temperature",
        "0.8",
        "--top-p",
        "0.9",
        "--seed",
        "3",
        "--prime",
        str(primer),
        "--out",
        str(tmp_path / "g"),
    )
    assert status == 0, err
    assert (tmp_path / "g" / "sample_1.mid").is_file()


def test_checkpoint_refuses_data_that_does_not_fit(tmp_path, capsys, cache_dir):
    run_dir = tmp_path / "run"
    assert run_cli(capsys, "train", "1", "--preset", "smoke", "--run-dir", str(run_dir))[0] == 0
    odd = tmp_path / "odd"
    odd.mkdir()
    for index in range(3):
        write_midi([Note(100 - j, j / 3, 1 / 3, "E7") for j in range(40)], odd / f"odd{index}.mid")
    status, _, err = run_cli(capsys, "evaluate", str(run_dir), "--source", str(odd))
    assert status == 2 and "not in this run's vocabulary" in err and len(err.strip().splitlines()) == 1

    from musictf import rundir

    spec = rundir.read_json(run_dir / "representation.json", "")
    spec["vocabulary"] = spec["vocabulary"][:-5]
    rundir.write_json(run_dir / "representation.json", spec)  # a consistent file of another run
    status, _, err = run_cli(capsys, "evaluate", str(run_dir))
    assert status == 2 and "do not belong together" in err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "9", "--preset", "smoke"], "unknown experiment"),
        (["train", "1", "--preset", "nope"], "no preset 'nope'"),
        (["train", "1", "--preset", "smoke", "--set", "unitz=3"], "unknown key 'unitz'"),
        (["train", "1", "--preset", "smoke", "--set", "units=many"], "units must be int"),
        (["train", "1", "--preset", "smoke", "--set", "temperature=0"], "temperature must be positive"),
        (["train", "1", "--preset", "smoke", "--strategy", "multiworker"], "needs TF_CONFIG"),
        (["train", "1", "--preset", "smoke", "--workers", "-2"], "--workers must be 0"),
        (
            ["train", "1", "--preset", "smoke", "--set", "stream_above_megabytes=-1"],
            "stream_above_megabytes must",
        ),
        (
            ["train", "1", "--preset", "smoke", "--set", "shard_megabytes=0"],
            "shard_megabytes must be positive",
        ),
        (["train", "1", "--precision", "float8"], "invalid choice: 'float8'"),
        (["evaluate", "/no/such/run"], "not a run directory"),
        (["report", "/no/such/run"], "/no/such/run: no such run directory"),
        (["train", "1", "--bogus"], "unrecognized arguments"),
        (["tune", "1", "--preset", "smoke", "--objective", "val_f1"], "needs a piano-roll experiment"),
    ],
)
def test_wrong_arguments_get_one_line_and_status_2(argv, message, tmp_path, capsys, cache_dir):
    if argv[0] in ("train", "tune") and "--bogus" not in argv:
        argv = [*argv, "--run-dir", str(tmp_path / "run")]
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def _history_epochs(path: Path) -> list[int]:
    if not path.exists():
        return []
    with open(path) as handle:
        return [int(row["epoch"]) for row in csv.DictReader(handle)]


@pytest.mark.slow  # keeps `make test` under 10 minutes on 2 cores
def test_killed_training_resumes_from_the_last_epoch(tmp_path, cache_dir):
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "musictf",
        "train",
        "2",
        "--preset",
        "smoke",
        "--set",
        "epochs=4",
        "--set",
        "steps_per_epoch=60",
        "--run-dir",
        str(run_dir),
    ]
    environment = os.environ | {"MUSICTF_CACHE_DIR": str(cache_dir)}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while (
        len(_history_epochs(run_dir / "history.csv")) < 2
        and time.time() < deadline
        and process.poll() is None
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = _history_epochs(run_dir / "history.csv")
    assert 2 <= len(done_before) < 4, "the kill came too late to test resuming"
    assert json.loads((run_dir / "state.json").read_text())["training"] == "running"

    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "resuming" in finished.stderr
    assert f"Epoch {len(done_before) + 1}/4" in finished.stdout + finished.stderr
    assert "Epoch 1/4" not in finished.stdout + finished.stderr
    assert _history_epochs(run_dir / "history.csv") == [0, 1, 2, 3]
    assert json.loads((run_dir / "state.json").read_text())["training"] == "complete"


def test_multi_worker_training_needs_the_same_run_dir_on_every_worker(capsys):
    status, _, err = run_cli(capsys, "train", "1", "--preset", "smoke", "--strategy", "multiworker")
    assert status == 2 and "needs --run-dir, the same path on every worker" in err


def test_precision_flag_sets_the_config_field():
    from musictf.cli import _experiment_and_config, build_parser

    args = build_parser().parse_args(["train", "2", "--preset", "smoke", "--precision", "mixed_bfloat16"])
    assert _experiment_and_config(args)[1].precision == "mixed_bfloat16"


def test_wavenet_run_writes_audio_and_renders_a_roll_in_a_chosen_timbre(tmp_path, capsys, cache_dir):
    import wave

    import numpy as np

    run_dir = tmp_path / "run"
    status, out, err = run_cli(capsys, "run", "5", "--preset", "smoke", "--run-dir", str(run_dir))
    assert status == 0, err
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["nll_bits_per_sample"] > 0 and "unigram_nll_bits_per_sample" in metrics["baseline"]
    for item in json.loads((run_dir / "samples" / "samples.json").read_text())["samples"]:
        with wave.open(str(run_dir / "samples" / item["wav"])) as handle:
            assert handle.getframerate() == 8000 and handle.getnframes() == 401 and handle.getsampwidth() == 2
            pcm = np.frombuffer(handle.readframes(401), "<i2")
        assert np.abs(pcm).max() > 100 and len(set(pcm.tolist())) > 20  # neither silent nor stuck
        assert (run_dir / "samples" / item["png"]).read_bytes()[:4] == b"\x89PNG"
    roll = write_midi([Note(60 + 4 * i, i * 0.5, 0.5, "C4") for i in range(4)], tmp_path / "roll.mid")
    status, out, err = run_cli(
        capsys,
        "generate",
        str(run_dir),
        "--roll",
        str(roll),
        "--program",
        "organ",
        "--num",
        "1",
        "--length",
        "300",
        "--out",
        str(tmp_path / "g"),
    )
    assert status == 0, err
    assert json.loads((tmp_path / "g" / "samples.json").read_text())["samples"][0]["program"] == "organ"
    from musictf.data.audio import mu_law_encode, read_wav, write_wav

    primer = 0.5 * np.sin(2 * np.pi * 440 * np.arange(300) / 8000)
    write_wav(primer, tmp_path / "primer.wav", 8000)
    status, _, err = run_cli(
        capsys,
        "generate",
        str(run_dir),
        "--prime",
        str(tmp_path / "primer.wav"),
        "--num",
        "1",
        "--length",
        "100",
        "--out",
        str(tmp_path / "p"),
    )
    assert status == 0, err
    waveform, rate = read_wav(tmp_path / "p" / "sample_1.wav")
    assert rate == 8000 and len(waveform) == 400
    np.testing.assert_array_equal(
        mu_law_encode(waveform[:300]), mu_law_encode(read_wav(tmp_path / "primer.wav")[0])
    )
    write_wav(primer, tmp_path / "primer16k.wav", 16000)
    status, _, err = run_cli(capsys, "generate", str(run_dir), "--prime", str(tmp_path / "primer16k.wav"))
    assert status == 2 and "16000 Hz" in err
    status, _, err = run_cli(capsys, "generate", str(run_dir), "--program", "banjo")
    assert status == 2 and "banjo" in err


def _random_chord_midis(folder, count, seed):
    """Files of random chords in random rhythms: nearly every token of one file is new to the others."""
    import numpy as np
    from music21 import pitch as m21pitch

    rng = np.random.default_rng(seed)
    folder.mkdir()
    for index in range(count):
        notes, time = [], 0.0
        for _ in range(60):
            length = float(rng.choice([0.25, 0.5, 0.75, 1.0, 1.5]))
            for pitch in rng.choice(np.arange(36, 96), size=3, replace=False):
                notes.append(Note(int(pitch), time, length, m21pitch.Pitch(midi=int(pitch)).nameWithOctave))
            time += length
        write_midi(notes, folder / f"piece{index:02d}.mid")
    return folder


def test_a_token_run_keeps_its_own_data_even_where_the_test_split_has_unseen_tokens(
    tmp_path, capsys, cache_dir
):
    folder = _random_chord_midis(tmp_path / "chords", 12, seed=0)
    run_dir = tmp_path / "run"
    # slice tokens: each random chord-and-length is a token of its own (note tokens would all be known)
    status, out, err = run_cli(
        capsys,
        "run",
        "1",
        "--preset",
        "smoke",
        "--source",
        str(folder),
        "--run-dir",
        str(run_dir),
        "--set",
        "token_mode=duration",
    )
    assert status == 0, err
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["unknown_target_share"] > 0.5  # counted, not refused
    assert (run_dir / "samples" / "samples.json").is_file()
    status, _, err = run_cli(capsys, "evaluate", str(run_dir))
    assert status == 0, err
    status, _, err = run_cli(
        capsys, "generate", str(run_dir), "--num", "1", "--length", "4", "--out", str(tmp_path / "g")
    )
    assert status == 0, err
    # Data that really is foreign is still refused.
    foreign = _random_chord_midis(tmp_path / "other", 3, seed=1)
    status, _, err = run_cli(capsys, "evaluate", str(run_dir), "--source", str(foreign))
    assert status == 2 and "not in this run's vocabulary" in err


def test_evaluating_on_another_source_writes_beside_the_runs_own_metrics(tmp_path, capsys, cache_dir):
    run_dir = tmp_path / "run"
    assert run_cli(capsys, "run", "2", "--preset", "smoke", "--run-dir", str(run_dir))[0] == 0
    own = (run_dir / "metrics.json").read_bytes()
    other = tmp_path / "other"
    other.mkdir()
    for index in range(5):
        write_midi(
            [Note(60 + (i * (index + 2)) % 12, i * 0.5, 0.5, "C4") for i in range(80)],
            other / f"tune{index}.mid",
        )
    status, out, err = run_cli(capsys, "evaluate", str(run_dir), "--source", str(other))
    assert status == 0, err
    written = [path for path in run_dir.glob("metrics-*.json")]
    assert len(written) == 1 and str(written[0]) in out
    assert json.loads(written[0].read_text())["source"] == str(other)
    assert (run_dir / "metrics.json").read_bytes() == own


def test_places_that_cannot_be_written_are_named_before_any_work(tmp_path, capsys, cache_dir, read_only):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    status, _, err = run_cli(capsys, "train", "2", "--preset", "smoke", "--run-dir", str(a_file / "run"))
    assert status == 2 and "cannot write the run directory" in err and "Traceback" not in err
    run_dir = tmp_path / "runs" / "run"
    assert run_cli(capsys, "train", "2", "--preset", "smoke", "--run-dir", str(run_dir))[0] == 0
    read_only(tmp_path / "runs")
    for command in (["evaluate", str(run_dir)], ["generate", str(run_dir)]):
        status, _, err = run_cli(capsys, *command)
        assert status == 2 and "cannot write" in err and len(err.strip().splitlines()) == 1, err
    status, _, err = run_cli(
        capsys, "train", "2", "--preset", "smoke", "--run-dir", str(tmp_path / "runs" / "new")
    )
    assert status == 2 and "cannot write the run directory" in err


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--temperature", "nan"], "--temperature: temperature must be a finite number"),
        (["--temperature", "-1"], "--temperature: temperature must be positive"),
        (["--top-k", "-5"], "--top-k: top_k must be 0 or more"),
        (["--top-p", "1.5"], "--top-p: top_p must be in (0, 1]"),
        (["--num", "0"], "--num: num_samples must be in [1, 1000], got 0"),
        (["--seed", "-3"], "--seed: seed must be in [0, 2**32 - 1], got -3"),
    ],
)
def test_generate_options_are_held_to_the_configs_checks(
    flags, message, tmp_path, capsys, cache_dir, smoke_run_2
):
    status, _, err = run_cli(capsys, "generate", str(smoke_run_2), *flags, "--out", str(tmp_path / "g"))
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "g").exists()


@pytest.fixture(scope="module")
def smoke_run_2(tmp_path_factory, cache_dir):
    run_dir = tmp_path_factory.mktemp("e2") / "run"
    assert main(["train", "2", "--preset", "smoke", "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture(scope="module")
def smoke_run_5(tmp_path_factory, cache_dir):
    run_dir = tmp_path_factory.mktemp("e5") / "run"
    assert main(["train", "5", "--preset", "smoke", "--run-dir", str(run_dir)]) == 0
    return run_dir


def test_wavenet_primers_that_cannot_be_used_get_one_line_and_24_bit_ones_are_read(
    tmp_path, capsys, smoke_run_5
):
    import struct

    import numpy as np

    samples = (np.sin(np.arange(200) / 5) * 2**22).astype(np.int64)
    pcm24 = b"".join(int(value).to_bytes(3, "little", signed=True) for value in samples)
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 24000, 3, 24)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(pcm24)) + pcm24
    (tmp_path / "deep.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    status, _, err = run_cli(
        capsys,
        "generate",
        str(smoke_run_5),
        "--prime",
        str(tmp_path / "deep.wav"),
        "--num",
        "1",
        "--length",
        "50",
        "--out",
        str(tmp_path / "ok"),
    )
    assert status == 0, err
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01")
    write_midi([Note(60, 0.0, 1.0, "C4")], tmp_path / "tune.mid")
    for name, reason in [
        ("missing.wav", "cannot read it"),
        ("empty.wav", "empty file"),
        ("corrupt.wav", "truncated: the fmt chunk ends early"),
        ("tune.mid", "a MIDI file"),
    ]:
        status, _, err = run_cli(
            capsys,
            "generate",
            str(smoke_run_5),
            "--prime",
            str(tmp_path / name),
            "--num",
            "1",
            "--length",
            "10",
            "--out",
            str(tmp_path / "g"),
        )
        assert status == 2 and f"--prime {tmp_path / name}: {reason}" in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    # experiment 5 draws through the shared categorical sampler, so top-k and top-p apply to it too
    status, _, err = run_cli(
        capsys,
        "generate",
        str(smoke_run_5),
        "--top-k",
        "5",
        "--top-p",
        "0.9",
        "--num",
        "1",
        "--length",
        "20",
        "--out",
        str(tmp_path / "k"),
    )
    assert status == 0, err
    assert json.loads((tmp_path / "k" / "samples.json").read_text())["top_k"] == 5


@pytest.mark.slow  # keeps `make test` under 10 minutes on 2 cores
def test_the_start_is_quiet_and_a_log_file_gets_one_line_per_epoch(tmp_path, cache_dir):
    command = [
        sys.executable,
        "-m",
        "musictf",
        "train",
        "2",
        "--preset",
        "smoke",
        "--run-dir",
        str(tmp_path / "run"),
    ]
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    environment["MUSICTF_CACHE_DIR"] = str(cache_dir)
    quiet = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stderr.splitlines()[0].startswith("music21:bach: 12 pieces"), quiet.stderr[:500]
    assert "absl" not in quiet.stderr and "I0000" not in quiet.stderr and "oneDNN" not in quiet.stderr
    assert "1 replica(s)" in quiet.stderr and "devices: CPU:0\n" in quiet.stderr  # what the strategy uses
    # stdout is a pipe here, as in a log file: one line per epoch, no progress-bar redraws
    assert "\r" not in quiet.stdout and "\x08" not in quiet.stdout and "━" not in quiet.stdout
    assert len([line for line in quiet.stdout.splitlines() if line.startswith("3/3 - ")]) == 2
    verbose = subprocess.run(
        [*command[:-2], "--run-dir", str(tmp_path / "run2"), "--verbose"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # TensorFlow's start-up lines: "oneDNN ..." on CPUs it uses oneDNN on, absl's I0000 lines on all
    assert verbose.returncode == 0 and ("oneDNN" in verbose.stderr or "I0000" in verbose.stderr)


def test_workers_sets_the_parser_processes_of_the_command_never_above_the_cores(monkeypatch, capsys):
    """Reliability review R4: --workers and MUSICTF_WORKERS are capped at one parser per core, and a
    negative or garbled number is refused in one line."""
    from musictf.data.corpus import WORKERS_VARIABLE, parser_processes

    monkeypatch.setattr("os.cpu_count", lambda: 4)
    monkeypatch.delenv(WORKERS_VARIABLE, raising=False)
    assert parser_processes() == 4 and parser_processes(3) == 3 and parser_processes(100_000) == 4
    monkeypatch.setenv(WORKERS_VARIABLE, "2")
    assert parser_processes() == 2 and parser_processes(3) == 3
    monkeypatch.setenv(WORKERS_VARIABLE, "99999")
    assert parser_processes() == 4
    monkeypatch.setenv(WORKERS_VARIABLE, "abc")
    assert main(["data", "--max-files", "2"]) == 2
    assert "MUSICTF_WORKERS='abc': must be a whole number" in capsys.readouterr().err
    monkeypatch.delenv(WORKERS_VARIABLE)
    assert main(["data", "--workers", "-1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--workers must be 0 (one per core) or more, got -1") and len(err.splitlines()) == 1


def test_help_lists_what_users_run_and_the_harness_stays_reachable(capsys):
    """`musictf --help` lists the user's commands; the performance harness (`make bench`, `make
    gpu-check`) is `python -m tools.perf`, outside the installed package, and explains itself."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    listing = capsys.readouterr().out
    users = ("data", "train", "run", "evaluate", "generate", "tune", "ablation", "report", "benchmarks")
    for command in users:
        assert f"\n    {command}" in listing, command
    assert "gpu-check" not in listing and "\n    bench " not in listing
    with pytest.raises(SystemExit):
        main(["bench"])  # not a musictf command
    from tools.perf.__main__ import main as harness_main

    for harness in ("bench", "gpu-check"):
        with pytest.raises(SystemExit) as exit_info:
            harness_main([harness, "--help"])
        assert exit_info.value.code == 0 and "--size" in capsys.readouterr().out
