"""A source's files parsed in parallel, with per-file error isolation and a content-hashed cache.

A source is `music21:<composer or corpus path>` (default `music21:bach`, the chorales that ship
with music21) or a folder searched recursively for MIDI, MusicXML, ABC and kern files. Each file is
parsed once by music21 in a worker process, reduced to a list of notes per piece and cached on
disk, as numpy columns (parse_cache.py), under the SHA-256 of its bytes and `PARSE_VERSION`. A file
that cannot be used is skipped with a one-line reason in the ingest report; the rest goes on.

Splitting the pieces is `split.py`'s job.

Example:
    corpus = load_corpus("music21:bach")
    corpus.pieces[0].notes[:4], corpus.report.skipped
"""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from musictf import files
from musictf.data import parse_cache
from musictf.data.audio import WAVFormatError, read_wav
from musictf.data.music import Piece
from musictf.data.parse import describe_error, parse_with_timeout
from musictf.data.published import FRAME_QUARTERS, frames_to_notes, read_published_file
from musictf.data.sources import MUSIC21_PREFIX, parse_source
from musictf.data.split import folder_split
from musictf.errors import MusicTFError
from musictf.files import remove_stale_temporaries

PARSE_VERSION = 5  # Bump when the cached note lists or the cache entry format change.
SUPPORTED_EXTENSIONS = (".mid", ".midi", ".mxl", ".musicxml", ".xml", ".krn", ".abc")
PARSE_TIMEOUT = 60.0  # seconds one file may take to parse (ExperimentConfig.parse_timeout)
MAX_FILE_MEGABYTES = 20.0  # larger files are skipped (ExperimentConfig.max_file_megabytes)


@dataclasses.dataclass(frozen=True)
class SourceFile:
    file_id: str
    path: Path


@dataclasses.dataclass
class IngestReport:
    """What happened to every file of a source; saved as JSON and printed as a summary."""

    source: str
    files_seen: int = 0
    files_parsed: int = 0  # parsed by music21 in this run
    files_from_cache: int = 0
    corrupt_cache_entries: int = 0  # detected, discarded and parsed again
    pieces: int = 0
    notes_out_of_range: int = 0  # dropped because they lie outside A0..C8
    notes_unreleased: int = 0  # MIDI note-ons never released before their track ends; dropped
    seconds: float = 0.0
    skipped: list[dict] = dataclasses.field(default_factory=list)  # {"file", "reason"}
    # MIDI files that end early, used in part because keep_truncated_midi is on: {"file", "reason"}
    truncated: list[dict] = dataclasses.field(default_factory=list)

    def skip(self, path: Path | str, reason: str) -> None:
        self.skipped.append({"file": str(path), "reason": reason})

    def skipped_by_reason(self) -> dict[str, int]:
        return dict(collections.Counter(item["reason"].split(":")[0] for item in self.skipped))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"skipped_by_reason": self.skipped_by_reason()}

    def summary(self) -> str:
        lines = [
            f"{self.source}: {self.pieces} pieces from {self.files_seen - len(self.skipped)} of "
            f"{self.files_seen} files ({self.files_parsed} parsed, {self.files_from_cache} from cache) in "
            f"{self.seconds:.1f} s"
        ]
        if self.corrupt_cache_entries:
            lines.append(f"  rebuilt {self.corrupt_cache_entries} corrupt cache entries")
        if self.notes_out_of_range:
            lines.append(f"  dropped {self.notes_out_of_range} notes outside A0..C8")
        if self.notes_unreleased:
            lines.append(
                f"  dropped {self.notes_unreleased} MIDI notes never released (note-on without note-off)"
            )
        if self.truncated:
            lines.append(f"  used {len(self.truncated)} truncated MIDI files in part (keep_truncated_midi)")
            lines.extend(f"    {item['file']}: {item['reason']}" for item in self.truncated)
        if self.skipped:
            counts = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.skipped_by_reason().items()))
            lines.append(f"  skipped {len(self.skipped)} files ({counts})")
            lines.extend(f"    {item['file']}: {item['reason']}" for item in self.skipped)
        return "\n".join(lines)


@dataclasses.dataclass
class Corpus:
    """A parsed source: its pieces (each file's, in a fixed order), the ingest report of what was
    read and what was skipped and why, each file's SHA-256 (a run's manifest records them), and the
    split the source brings with it, if any."""

    source: str
    pieces: list[Piece]
    report: IngestReport
    report_path: Path | None = None
    file_hashes: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)  # file id -> SHA-256
    # file id -> split, for a source that brings its own split (a benchmark file, or a folder of
    # train/, valid/ and test/ subfolders); None: the split stage makes one
    own_split: dict[str, str] | None = None


WORKERS_VARIABLE = "MUSICTF_WORKERS"  # parser processes; the commands' --workers sets it


def parser_processes(workers: int | None = None) -> int:
    """`workers`, else MUSICTF_WORKERS, else one per core; never more than one per core (each is a
    Python with music21 loaded: more of them only share the cores and multiply the memory)."""
    cores = os.cpu_count() or 1
    configured = os.environ.get(WORKERS_VARIABLE, "").strip()
    if workers is not None and workers < 0:
        raise MusicTFError(f"--workers must be 0 (one per core) or more, got {workers}")
    if not workers and configured:
        if not configured.isdigit():
            raise MusicTFError(
                f"{WORKERS_VARIABLE}={configured!r}: must be a whole number of parser processes "
                "(0: one per core)"
            )
        workers = int(configured)
    return min(workers or cores, cores)


def default_cache_dir() -> Path:
    configured = os.environ.get("MUSICTF_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "musictf"


# -- sources --------------------------------------------------------------------------------------


def _music21_files(name: str) -> tuple[Path, list[Path]]:
    from music21 import corpus

    root = Path(corpus.__file__).resolve().parent
    paths = [Path(path) for path in corpus.getComposer(name)] if "/" not in name else []
    if not paths:
        target = name.strip("/")
        paths = [Path(path) for path in corpus.getCorePaths() if target in Path(path).as_posix()]
    if not paths:
        raise MusicTFError(
            f"{MUSIC21_PREFIX}{name}: no such composer or path in music21's corpus (try music21:bach, "
            "music21:essenFolksong or music21:mozart)"
        )
    return root, paths


def resolve_source(source: str, report: IngestReport) -> list[SourceFile]:
    """The files of a source, sorted by file id; unusable entries go into `report.skipped`."""
    parsed = parse_source(source)
    if parsed.kind == "placeholder":
        raise MusicTFError(
            f"{source}: this preset runs on the published {parsed.name} file, which musictf does not ship: "
            f"pass --source PATH/{parsed.name}.json (or its .pkl or .mat form; docs/benchmarks.md)"
        )
    if parsed.kind == "music21":
        root, paths = _music21_files(parsed.name)
        wanted = [path for path in paths if path.suffix.lower() in SUPPORTED_EXTENSIONS]
        found = [SourceFile(f"{MUSIC21_PREFIX}{path.relative_to(root).as_posix()}", path) for path in wanted]
        return sorted(found, key=lambda item: item.file_id)

    root = Path(source).expanduser()
    if not root.exists():
        raise MusicTFError(f"{source}: no such file or folder")
    if root.is_file():
        return [SourceFile(root.name, root)]
    found = []

    def unreadable_folder(error: OSError) -> None:
        report.skip(error.filename, f"unreadable folder: {describe_error(error)}")

    visited = {os.path.realpath(root)}  # symbolic links are followed, each real folder read once
    for directory, subdirectories, filenames in os.walk(root, onerror=unreadable_folder, followlinks=True):
        kept = []
        for name in sorted(name for name in subdirectories if not name.startswith(".")):
            if Path(name).suffix.lower() in SUPPORTED_EXTENSIONS:
                report.skip(Path(directory, name), "is a directory: a folder named like a music file")
            real = os.path.realpath(Path(directory, name))
            if real in visited:
                report.skip(Path(directory, name), f"a link to a folder already read ({real})")
                continue
            visited.add(real)
            kept.append(name)
        subdirectories[:] = kept
        for name in sorted(filenames):
            path = Path(directory, name)
            if name.startswith("."):
                continue
            if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                report.skip(path, f"unsupported file type: {path.suffix or 'no extension'!s}")
                continue
            found.append(SourceFile(path.relative_to(root).as_posix(), path))
    return sorted(found, key=lambda item: item.file_id)


# -- parsing in worker processes (parse.py) ---------------------------------------------------------


def _exit_with_parent() -> None:
    """Pool initializer: a parser process ends when the process that started it dies (a SIGKILL
    gives the parent no chance to stop its pool). Linux delivers SIGKILL on the parent's death;
    elsewhere a watchdog thread notices the new parent id within a second."""
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="musictf-parent-watch").start()


# -- cache ----------------------------------------------------------------------------------------


def _cache_entry_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / "parsed" / sha256[:2] / f"{sha256}-v{PARSE_VERSION}.notes"


def read_cache_entry(
    cache_dir: Path, sha256: str, notes_stay_on_disk: bool = False
) -> tuple[dict | None, bool]:
    """(result, corrupt): result is None when there is no usable entry (parse_cache.read_entry)."""
    return parse_cache.read_entry(_cache_entry_path(cache_dir, sha256), PARSE_VERSION, notes_stay_on_disk)


def write_cache_entry(cache_dir: Path, sha256: str, result: dict) -> None:
    parse_cache.write_entry(_cache_entry_path(cache_dir, sha256), result, PARSE_VERSION)


# -- the corpus -----------------------------------------------------------------------------------


def _ignore_interrupts_and_exit_with_parent() -> None:
    """Pool initializer: Ctrl-C reaches the whole process group, and the parent alone handles it
    (it stops the pool); a parser process also ends when its parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()


def _stop_pool(pool) -> None:
    """Cancels what has not started and ends the parser processes now (shutdown alone waits for
    the running jobs, and a file may take `parse_timeout` seconds)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()


def _parse_all(
    paths: list[str],
    timeout: float,
    workers: int,
    progress: bool,
    keep_truncated_midi: bool,
    on_result: Callable[[str, dict], None],
) -> None:
    """Parses every path, in `workers` processes, and hands each result to `on_result` as it
    arrives, so that an interrupt (which stops the parse at once) keeps everything parsed so far."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from tqdm import tqdm

    jobs = [(path, timeout, keep_truncated_midi) for path in paths]
    done: set[str] = set()
    with tqdm(
        total=len(jobs), desc="parsing", unit="file", disable=None if progress else True, file=sys.stderr
    ) as bar:

        def finish(path: str, result: dict) -> None:
            on_result(path, result)
            done.add(path)
            bar.update()

        if workers > 1 and len(jobs) > 2:
            # spawn, not fork: the parent may already hold TensorFlow's threads.
            pool = ProcessPoolExecutor(
                max_workers=min(workers, len(jobs)),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_ignore_interrupts_and_exit_with_parent,
            )
            try:
                for future in as_completed([pool.submit(parse_with_timeout, job) for job in jobs]):
                    finish(*future.result())
            except BrokenProcessPool:
                print("musictf: a parser process died; parsing the rest in this process", file=sys.stderr)
            except BaseException:
                _stop_pool(pool)
                raise
            pool.shutdown(wait=True, cancel_futures=True)
        for job in jobs:  # serial path, and whatever a broken pool left undone
            if job[0] not in done:
                finish(*parse_with_timeout(job))


def _hash_usable_files(
    source_files: list[SourceFile], max_file_megabytes: float, report: IngestReport
) -> dict[SourceFile, str]:
    """file -> SHA-256 of its bytes, for every file that can be read and is neither empty nor too
    large; the others go into the report with their reason."""
    max_bytes = max_file_megabytes * 1024 * 1024
    hashes = {}
    for item in source_files:
        try:
            size = item.path.stat().st_size
            if 0 < size <= max_bytes:
                hashes[item] = files.sha256_file(item.path)
        except OSError as error:
            report.skip(item.path, f"unreadable: {describe_error(error)}")
            continue
        if size == 0:
            report.skip(item.path, "empty file: 0 bytes")
        elif size > max_bytes:
            report.skip(item.path, f"too large: {size / 1048576:.1f} MB > {max_file_megabytes:g} MB limit")
    return hashes


def _pieces(
    hashes: dict[SourceFile, str], results: dict[SourceFile, dict], report: IngestReport
) -> list[Piece]:
    """The pieces of every parsed file, in file order; a file that failed is skipped with its reason."""
    pieces: list[Piece] = []
    for item in hashes:
        result = results[item]
        if "error" in result:
            report.skip(item.path, result["error"])
            continue
        counts = result["counts"]
        report.notes_out_of_range += counts["out_of_range"]
        report.notes_unreleased += counts["unreleased"]
        if "truncated" in counts:
            report.truncated.append({"file": str(item.path), "reason": counts["truncated"]})
        for entry in result["pieces"]:
            piece_id = f"{item.file_id}#{entry['index']}" if result["multi"] else item.file_id
            title = entry["title"] or Path(item.file_id).stem
            pieces.append(Piece(piece_id, item.file_id, title, entry["notes"]))
    return pieces


def load_corpus(
    source: str,
    *,
    cache_dir: Path | str | None = None,
    max_files: int = 0,
    workers: int | None = None,
    timeout: float = PARSE_TIMEOUT,
    max_file_megabytes: float = MAX_FILE_MEGABYTES,
    keep_truncated_midi: bool = False,
    progress: bool = True,
) -> Corpus:
    """Every usable piece of `source`, parsing only files the cache does not hold yet.

    A cache folder that cannot be written (a read-only or full disk) is still read; what was parsed
    is then not cached, and the run goes on. Each parsed file is cached as it arrives, so an
    interrupted ingest keeps its work. The pieces' notes stay in the parse cache until a piece is
    used (`NoteColumns.stored`), so a corpus costs little memory until it is encoded. Raises
    MusicTFError when the source does not exist or not one piece could be used.
    """
    started = time.perf_counter()
    if parse_source(source).kind == "published":
        return _benchmark_corpus(source, started)
    processes = parser_processes(workers)  # a garbled setting is refused, parsed files or not
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = files.CacheFolder(cache_dir)
    if cache.writable and (cache_dir / "parsed").is_dir():
        remove_stale_temporaries(cache_dir / "parsed")
    report = IngestReport(source=source)
    source_files = resolve_source(source, report)[: max_files or None]
    report.files_seen = len(source_files) + len(report.skipped)

    hashes = _hash_usable_files(source_files, max_file_megabytes, report)
    results: dict[SourceFile, dict] = {}
    for item, digest in hashes.items():
        cached, corrupt = read_cache_entry(cache_dir, digest, notes_stay_on_disk=True)
        report.corrupt_cache_entries += corrupt
        if cached is not None:
            results[item] = cached
            report.files_from_cache += 1

    to_parse = {str(item.path): item for item in hashes if item not in results}

    def keep(path: str, parsed: dict) -> None:
        item = to_parse[path]
        result = results[item] = parse_cache.with_columns(parsed)
        report.files_parsed += 1
        if result.pop("cacheable", True) and cache.write(write_cache_entry, cache_dir, hashes[item], result):
            stored, _ = read_cache_entry(cache_dir, hashes[item], notes_stay_on_disk=True)
            results[item] = stored or result  # its notes on disk until used, as a cache hit's

    if to_parse:
        _parse_all(list(to_parse), timeout, processes, progress, keep_truncated_midi, keep)

    pieces = _pieces(hashes, results, report)
    report.pieces = len(pieces)
    report.seconds = time.perf_counter() - started
    report_path = cache_dir / "ingest" / f"{files.sha256_text(f'{source}|{max_files}')[:16]}.json"
    if not cache.write(files.write_json, report_path, report.to_dict()):
        report_path = None
    if not pieces:
        reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(report.skipped_by_reason().items()))
        details = f"; details in {report_path}" if report_path else ""
        raise MusicTFError(
            f"{source}: no usable pieces in {report.files_seen} files "
            f"({reasons or 'no music files found'}){details}"
        )
    return Corpus(
        source,
        pieces,
        report,
        report_path,
        {item.file_id: digest for item, digest in hashes.items()},
        folder_split([piece.file_id for piece in pieces]),
    )


def _benchmark_corpus(source: str, started: float) -> Corpus:
    """A published benchmark file (published.py): every sequence one piece, `<split>/<index>`."""
    path = Path(source).expanduser()
    splits = read_published_file(path)
    digest = files.sha256_file(path)
    pieces, own_split = [], {}
    for split, sequences in splits.items():
        for index, frames in enumerate(sequences):
            file_id = f"{split}/{index:04d}"
            pieces.append(
                Piece(
                    file_id,
                    file_id,
                    f"{path.stem} {file_id}",
                    frames_to_notes(frames),
                    end=len(frames) * FRAME_QUARTERS,
                )
            )
            own_split[file_id] = split
    report = IngestReport(
        source=source, files_seen=1, files_parsed=1, pieces=len(pieces), seconds=time.perf_counter() - started
    )
    return Corpus(source, pieces, report, None, {piece.file_id: digest for piece in pieces}, own_split)


def wav_files(source: str) -> list[Path]:
    """The `.wav` files of a folder source (experiment 5 reads such a folder as audio); [] otherwise."""
    return parse_source(source).wav_files()


def load_wav_folder(source: str, sample_rate: int, hop: int) -> tuple[Corpus, dict[str, np.ndarray]]:
    """A folder of WAV files as a corpus: each file, at `sample_rate`, one piece without notes, and
    its waveform cut to whole roll steps of `hop` samples (file id -> waveform). A file that cannot be
    used is skipped with its reason, as a bad music file is; train/, valid/ and test/ subfolders keep
    their split."""
    folder = Path(source).expanduser()
    paths = wav_files(source)
    report = IngestReport(source=source, files_seen=len(paths))
    pieces, waveforms, hashes = [], {}, {}
    for path in paths:
        file_id = path.relative_to(folder).as_posix()
        try:
            waveform, rate = read_wav(path)
        except WAVFormatError as error:
            report.skip(path, f"unreadable: {error}")
            continue
        if rate != sample_rate:
            report.skip(path, f"sample rate: {rate} Hz, but this run works at {sample_rate} Hz")
            continue
        frames = len(waveform) // hop - 1
        if frames < 1:
            report.skip(path, "too short: less than two roll steps of audio")
            continue
        hashes[file_id] = files.sha256_file(path)
        pieces.append(Piece(file_id, file_id, path.stem, ()))
        waveforms[file_id] = waveform[: (frames + 1) * hop]
    report.pieces = len(pieces)
    if not pieces:
        raise MusicTFError(f"{source}: no usable WAV files ({len(report.skipped)} skipped)")
    return Corpus(
        source, pieces, report, None, hashes, folder_split([piece.file_id for piece in pieces])
    ), waveforms
