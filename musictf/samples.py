"""Run-level sample writing: what a trained run generates, written to its samples/ folder.

A set of samples replaces the one before it only once it is written whole (`replace_samples`), and
`run.evaluate` is the one place that writes a run's first set (`ensure_samples`) and hands it to
the statistics. Each experiment names one writer and one statistics function in its slots:
- `write_midi_samples` / `midi_sample_statistics` (experiments 1-4): a primer from a test-split
  piece (or `--prime FILE`), the continuation as `sample_K.mid`, the two together as
  `sample_K_primed.mid`, and a piano-roll PNG; the statistics draw `statistics_samples`
  continuations more (`measured/`), and as many from the count baseline;
- `write_audio_samples` / `audio_sample_statistics` (experiment 5): WAV files with a waveform and
  spectrogram PNG, each rendering a piano roll (a test piece's, or `--roll FILE`'s) in a timbre.

Both write `samples.json` last, listing the files, the seed and the generation speed.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np

from musictf import quality, realism, rundir
from musictf.data.audio import WAVFormatError, mu_law_decode, mu_law_encode, read_wav, write_wav
from musictf.data.music import Piece
from musictf.data.parse import read_notes
from musictf.data.pianoroll import SIXTEENTH_GRID, read_midi, roll_to_notes, write_midi
from musictf.errors import FieldError, MusicTFError
from musictf.plots import save_piano_roll, save_waveform_and_spectrogram

LISTING = "samples.json"


@dataclasses.dataclass(frozen=True)
class WrittenSamples:
    """A written set of samples: its folder and its listing (samples.json's `samples`)."""

    folder: Path
    listed: list[dict]


def _listed_names(listing: dict) -> set[str]:
    """Every file a samples.json names."""
    names = {
        value for item in listing.get("samples", []) for value in item.values() if isinstance(value, str)
    }
    return {
        name for name in names | {listing.get("real_excerpt")} if name and "/" not in name and name != LISTING
    }


def replace_samples(out_dir: Path, write: Callable[[Path], list[dict]]) -> list[dict]:
    """`write(folder)` into a staging folder beside `out_dir`; then the old set (the files its
    samples.json names) gives way to the new one, samples.json last. An interrupted or failed write
    leaves the old set as it was; a kill during the swap (milliseconds) leaves no samples.json, so
    the next evaluation writes a new set."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.parent.glob(f".{out_dir.name}.staging-*"):  # a killed writer's; the run is locked
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.staging-"))
    try:
        with rundir.disk_full_explained(out_dir.parent, "the samples"):
            written = write(staging)
        old = out_dir / LISTING
        stale = _listed_names(read_listing(out_dir)) if old.exists() else set()
        old.unlink(missing_ok=True)
        for name in stale:
            (out_dir / name).unlink(missing_ok=True)
        for path in sorted(staging.iterdir(), key=lambda path: path.name == LISTING):  # samples.json last
            os.replace(path, out_dir / path.name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_listing(out_dir: Path, written: list[dict], config, **details) -> None:
    """samples.json: the written files, what drew them (`details`: seed, length, speed, ...) and the
    sampling settings, in the order readers expect."""
    sampling = {"temperature": config.temperature, "top_k": config.top_k, "top_p": config.top_p}
    rundir.write_json(Path(out_dir) / "samples.json", {"samples": written, **details, **sampling})


def read_listing(folder: Path) -> dict:
    return rundir.read_json(
        Path(folder) / LISTING,
        "it lists the run's samples: delete it, and the next `musictf evaluate` writes a new set",
        required=("samples",),
    )


def ensure_samples(run, data, model) -> WrittenSamples:
    """The run's samples: those its samples/ folder lists, or a new set written there first."""
    folder = run.path / "samples"
    if (folder / LISTING).exists():
        return WrittenSamples(folder, read_listing(folder)["samples"])
    return WrittenSamples(folder, write_sample_set(run, data, model, folder))


def write_sample_set(
    run, data, model, folder: Path, prime_file=None, options: dict | None = None
) -> list[dict]:
    """The run's config's number of samples, written by its experiment's writer into `folder`, which
    they replace whole (`replace_samples`)."""
    config = run.config

    def write(staging: Path) -> list[dict]:
        return run.experiment.write_samples(
            run,
            data,
            model,
            num=config.num_samples,
            length=config.generate_length,
            seed=config.seed,
            out_dir=staging,
            prime_file=prime_file,
            options=options,
        )

    return replace_samples(folder, write)


_SAMPLERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def sampler_for(run, model, config, representation):
    """The experiment's sampler for `model` at `config`, built once per model and config: an
    evaluation's written samples and its measured ones share it, and its compiled loop."""
    built = _SAMPLERS.setdefault(model, {})
    key = (run.experiment.slug, repr(config))
    if key not in built:
        built[key] = run.experiment.sampler(model, config, representation)
    return built[key]


def _refuse(options: dict | None, what: str) -> None:
    """Refuses, naming the option (`FieldError.field`), options this experiment's writer has no use for."""
    given = sorted(name for name, value in (options or {}).items() if value is not None)
    if given:
        raise FieldError(given[0], what)


def _openings(encoded, seq_len: int, count: int) -> list[tuple[str, np.ndarray]]:
    """The first `count` openings of `seq_len` steps among (piece id, array) pairs, read lazily."""
    openings = []
    for piece_id, array in encoded:
        if len(array) >= seq_len:
            openings.append((piece_id, array[:seq_len]))
        if len(openings) >= count:
            break
    return openings


def primer_arrays(
    data, seq_len: int, count: int, prime_file: str | None = None, only_split: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """`count` primers of `seq_len` steps: the openings of test pieces (then valid, then train), from
    the arrays already encoded, or the opening of `prime_file`. With `only_split`, the openings of
    that split's pieces alone, each used in turn as often as `count` needs (where none is long
    enough, the order above)."""
    candidates = []
    if only_split is not None:
        pieces, arrays = data.splits[only_split], data.arrays[only_split]
        candidates = _openings(
            zip([piece.piece_id for piece in pieces], arrays, strict=True), seq_len, len(arrays)
        )
    if not candidates:
        if prime_file:
            path = Path(prime_file)
            piece = Piece(path.name, path.name, path.stem, read_notes(path, "prime_file"))
            encoded = [(piece.piece_id, data.representation.encode(piece))]
        else:
            # the train split's arrays may hold augmented copies, so its pieces are encoded afresh
            encoded = itertools.chain(
                (
                    pair
                    for split in ("test", "valid")
                    for pair in zip(
                        [piece.piece_id for piece in data.splits[split]], data.arrays[split], strict=True
                    )
                ),
                (
                    (piece.piece_id, data.representation.encode(piece)) for piece in data.splits["train"]
                ),  # lazily
            )
        candidates = _openings(encoded, seq_len, count)
    if not candidates:
        reason = f"no piece has the {seq_len} steps a primer needs"
        if prime_file:
            raise FieldError("prime_file", reason, prime_file)
        raise MusicTFError(f"the corpus: {reason}")
    chosen = [candidates[index % len(candidates)] for index in range(count)]
    return np.stack([array for _, array in chosen]), [piece_id for piece_id, _ in chosen]


def write_midi_samples(
    run,
    data,
    model,
    *,
    num: int,
    length: int,
    seed: int,
    out_dir,
    prime_file=None,
    options: dict | None = None,
) -> list[dict]:
    """Writes sample_K.mid (the continuation), sample_K_primed.mid and sample_K.png, and
    real_excerpt.png: the opening of a real piece of the evaluation split, as long as sample 1 with
    its primer, to set beside it. Returns the samples' list."""
    _refuse(options, "only experiment 5 (WaveNet) renders a roll in a timbre")
    out_dir, config, representation = Path(out_dir), run.config, data.representation
    sampler = sampler_for(run, model, config, representation)
    primes, sources = primer_arrays(data, config.seq_len, num, prime_file)
    started = time.perf_counter()
    continuations = sampler.generate(primes, length, seed)
    seconds = time.perf_counter() - started
    written = []
    for index, (prime, continuation) in enumerate(zip(primes, continuations, strict=True)):
        notes = representation.decode(continuation)
        primed = representation.decode(np.concatenate([prime, continuation]))
        stem = f"sample_{index + 1}"
        write_midi(notes, out_dir / f"{stem}.mid", title=f"{run.experiment.slug} {stem}")
        write_midi(primed, out_dir / f"{stem}_primed.mid", title=f"{run.experiment.slug} {stem} (primed)")
        save_piano_roll(
            primed,
            out_dir / f"{stem}.png",
            f"{run.experiment.slug} · {stem} · primer from {sources[index]}",
            primer_quarters=representation.quarters(prime),
        )
        written.append(
            {
                "midi": f"{stem}.mid",
                "primed_midi": f"{stem}_primed.mid",
                "png": f"{stem}.png",
                "primer": sources[index],
                "notes": len(notes),
            }
        )
    split = data.evaluation_split()
    real = data.splits[split][0]
    span = representation.quarters(np.concatenate([primes[0], continuations[0]]))
    save_piano_roll(
        [note for note in real.notes if note.onset < span],
        out_dir / "real_excerpt.png",
        f"real excerpt ({split} split): {real.piece_id}",
    )
    write_listing(
        out_dir,
        written,
        config,
        seed=seed,
        length=length,
        real_excerpt="real_excerpt.png",
        steps_per_second=num * length / seconds,
    )
    return written


def midi_sample_statistics(run, data, model, split: str, written: WrittenSamples, measured_dir: Path) -> dict:
    """Statistics of `statistics_samples` continuations of the split's openings, each opening primed
    in turn (written to `measured_dir` as MIDI and read back, so what is measured is what a user
    gets), of the split's pieces, and of continuations of the same primers, as long, drawn from the
    strongest count baseline of the train split (the experiment's `baseline_samples`): a model's
    samples are a result where they are closer to the split than the baseline's are. The same sets
    go through the set-level tests (`realism.set_level_tests`: Yang and Lerch's overlapping areas and
    the classifier two-sample test, with the train split as its floor and the baseline's samples as
    its anchor). The written samples are not measured: there are few of them."""
    config, representation = run.config, data.representation
    count, length = config.statistics_samples, config.generate_length
    primes, _ = primer_arrays(data, config.seq_len, count, only_split=split)
    continuations = sampler_for(run, model, config, representation).generate(primes, length, config.seed)
    measured_dir = Path(measured_dir)
    for stale in measured_dir.glob("sample_*.mid"):  # an earlier evaluation may have measured more
        stale.unlink()
    paths = [
        write_midi(
            representation.decode(row),
            measured_dir / f"sample_{index + 1}.mid",
            title=f"{run.experiment.slug} measured sample {index + 1}",
        )
        for index, row in enumerate(continuations)
    ]
    sampled = [read_midi(path) for path in paths]
    baseline = run.experiment.baseline_samples
    baseline_rows = baseline(data, primes, length, config.seed)
    drawn = [representation.decode(row) for row in baseline_rows]

    def excerpts(pieces) -> list:
        return realism.cut_excerpts(pieces, config.excerpt_quarters)

    def of_split(name: str) -> list:
        return excerpts((piece.piece_id, piece.notes, piece.length_quarters) for piece in data.splits[name])

    def of_drawn(label: str, pieces: list, rows) -> list:  # a token row's length in quarters is its own
        return excerpts(
            (f"{label} {index + 1}", notes, representation.quarters(row))
            for index, (notes, row) in enumerate(zip(pieces, rows, strict=True))
        )

    return {
        "samples": quality.sample_quality(sampled),
        "test_split_statistics": quality.sample_quality([piece.notes for piece in data.splits[split]]),
        "baseline_samples": quality.sample_quality(drawn),
        "set_level": realism.set_level_tests(
            of_split(split),
            of_split("train"),
            of_drawn("sample", sampled, continuations),
            of_drawn("baseline sample", drawn, baseline_rows),
            seed=config.seed,
            baseline_name=baseline.baseline_name,
        ),
    }


def read_wav_primer(prime_file, sample_rate: int) -> np.ndarray:
    """The mu-law codes of a WAV primer, or one FieldError naming the file and the reason."""
    try:
        waveform, rate = read_wav(prime_file)
    except WAVFormatError as error:
        raise FieldError("prime_file", str(error), prime_file) from None
    if rate != sample_rate:
        raise FieldError("prime_file", f"{rate} Hz, but this run works at {sample_rate} Hz", prime_file)
    return mu_law_encode(waveform)


def conditioning_rolls(rolls: list[np.ndarray], length: int, hop: int) -> np.ndarray:
    """The rolls a WaveNet draws `length` samples from, each cut or padded with silence to the
    steps that many samples need: (B, steps, 88)."""
    frames = math.ceil((length + 1) / hop) + 1
    return np.stack([np.pad(roll, [(0, max(0, frames - len(roll))), (0, 0)])[:frames] for roll in rolls])


def write_audio_samples(
    run,
    data,
    model,
    *,
    num: int,
    length: int,
    seed: int,
    out_dir,
    prime_file=None,
    options: dict | None = None,
) -> list[dict]:
    """WAV samples with a waveform/spectrogram PNG each. The roll comes from `options["roll_file"]`
    (any symbolic file, e.g. a sample of experiment 4) or from test-split pieces;
    `options["program"]` names the timbre (default: the piece's)."""
    options = options or {}
    config, representation, out_dir = run.config, data.representation, Path(out_dir)
    names, program = config.program_names, options.get("program")
    if program is not None and program not in names:
        raise FieldError("program", f"this run knows {', '.join(names)}", program)
    if options.get("roll_file"):
        notes = read_notes(options["roll_file"], "roll_file")
        sources = [(Path(options["roll_file"]).name, representation.encode_notes(notes, 0)[1], 0)] * num
    else:
        split = data.evaluation_split()
        items, pieces = data.arrays[split], data.splits[split]
        sources = [
            (pieces[i % len(items)].piece_id, items[i % len(items)][1], items[i % len(items)][2])
            for i in range(num)
        ]
    programs = [names.index(program) if program is not None else source[2] for source in sources]
    primer = (
        np.repeat(read_wav_primer(prime_file, config.sample_rate)[None], num, axis=0) if prime_file else None
    )
    rolls = conditioning_rolls([roll for _, roll, _ in sources], length, config.hop)
    sampler = sampler_for(run, model, config, representation)
    started = time.perf_counter()
    codes = sampler.generate(primer, length, seed, roll=rolls, program=np.asarray(programs), batch=num)
    seconds = time.perf_counter() - started
    written = []
    for index, row in enumerate(codes):
        waveform = mu_law_decode(row)
        stem = f"sample_{index + 1}"
        write_wav(waveform, out_dir / f"{stem}.wav", config.sample_rate)
        save_waveform_and_spectrogram(
            waveform,
            config.sample_rate,
            out_dir / f"{stem}.png",
            f"{run.experiment.slug} · {stem} · {names[programs[index]]} · roll of {sources[index][0]}",
        )
        save_piano_roll(
            roll_to_notes(rolls[index][: math.ceil(len(waveform) / config.hop)], SIXTEENTH_GRID),
            out_dir / f"{stem}_roll.png",
            f"the roll {stem} was conditioned on: {sources[index][0]}",
        )
        written.append(
            {
                "wav": f"{stem}.wav",
                "png": f"{stem}.png",
                "roll_png": f"{stem}_roll.png",
                "roll": sources[index][0],
                "program": names[programs[index]],
            }
        )
    write_listing(
        out_dir,
        written,
        config,
        seed=seed,
        length=length,
        sample_rate=config.sample_rate,
        samples_per_second=num * length / seconds,
        training_audio_renderer=representation.renderer or "unknown",
    )
    return written


def audio_sample_statistics(
    run, data, model, split: str, written: WrittenSamples, measured_dir: Path
) -> dict:
    """Loudness and silence of the written WAVs and of the split's audio; and how the audio follows
    its roll: `statistics_samples` pieces drawn from the split's rolls and programs (each
    `generate_length` samples) scored by chroma agreement with the roll, beside chance (the roll's
    pitch classes rotated) and the ceiling (the split's own audio, from the renderer the training
    audio came from, on the same stretches of the same rolls)."""
    config = run.config
    items = data.arrays[split]
    chosen = [items[index % len(items)] for index in range(config.statistics_samples)]
    rolls = conditioning_rolls([roll for _, roll, _ in chosen], config.generate_length, config.hop)
    codes = sampler_for(run, model, config, data.representation).generate(
        None,
        config.generate_length,
        config.seed,
        roll=rolls,
        program=np.asarray([program for _, _, program in chosen]),
        batch=len(chosen),
    )
    drawn = [mu_law_decode(row[1:]) for row in codes]  # the first code is the silent primer
    rendered = [mu_law_decode(item_codes[: config.generate_length]) for item_codes, _, _ in chosen]
    arguments = (config.hop, config.sample_rate)
    agreement = realism.chroma_agreement(drawn, list(rolls), *arguments)
    ceiling = realism.chroma_agreement(rendered, list(rolls), *arguments)["chroma_agreement"]
    chroma = agreement | {
        "chroma_ceiling": ceiling,
        "chroma_progress": realism.chroma_progress(
            agreement["chroma_agreement"], agreement["chroma_chance"], ceiling
        ),
        "pieces": len(chosen),
    }
    return {
        "samples": quality.audio_quality(
            [read_wav(written.folder / item["wav"])[0] for item in written.listed], config.sample_rate
        ),
        "test_split_statistics": quality.audio_quality(
            [mu_law_decode(item[0]) for item in items], config.sample_rate
        ),
        "set_level": chroma,
    }
