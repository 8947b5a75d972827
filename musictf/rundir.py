"""Run directories: plain file I/O on `runs/<experiment>/<preset>-<timestamp>/`.

config.json (resolved), representation.json (tokenizer and vocabulary, or roll grid),
manifest.json (sources, file hashes, split), ingest.json, checkpoints/{best,last}.keras,
backup/ (for resuming), history.csv, logs/ (TensorBoard), samples/, metrics.json, state.json.

Every JSON file of a run is written atomically with a SHA-256 of its content inside it
(`write_json`), and read back through `read_json`, which names the file and what to do when it is
unreadable, garbled or not what a run writes. A run directory is held by one process at a time
(`lock`). The in-memory run and the operations on it live in `run.py`.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import json
import os
import resource
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from musictf import config as config_module
from musictf import files
from musictf.errors import MusicTFError

RUNS_ROOT = Path("runs")
REPORTS_ROOT = Path("reports")  # where `musictf report` and `make bench` write, by default
CHECKSUM_KEY = "_sha256"  # inside every JSON file of a run: the SHA-256 of the rest of it
LOCK_NAME = ".lock"


def new_run_dir(slug: str, preset: str, root: Path = RUNS_ROOT) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / slug / f"{preset}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / slug / f"{preset}-{stamp}-{suffix}"
    return path


def weights_are_finite(model) -> bool:
    return all(np.isfinite(weights).all() for weights in model.get_weights())


# -- JSON files with their checksum ---------------------------------------------------------------


def _digest(value: dict) -> str:
    return files.sha256_text(json.dumps(value, sort_keys=True, default=str))


def write_json(path: str | os.PathLike, value: dict) -> None:
    """`value` with its checksum, atomically (a reader sees the old file or the new one)."""
    plain = json.loads(json.dumps(value, default=str))  # what a reader will get back
    files.write_json(path, plain | {CHECKSUM_KEY: _digest(plain)})


def read_json(path: str | os.PathLike, advice: str, required: tuple[str, ...] = ()) -> dict:
    """A run's JSON file without its checksum; MusicTFError naming the file, the reason and
    `advice` when it cannot be read, is not a JSON object, fails its checksum or lacks a `required`
    key. Files written before checksums existed are read as they are."""
    path = Path(path)

    def refuse(reason: str) -> MusicTFError:
        return MusicTFError(f"{path}: unreadable ({reason}); {advice}")

    try:
        value = files.read_json(path)
    except FileNotFoundError:
        raise refuse("missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise refuse(" ".join(str(error).split())[:120] or type(error).__name__) from None
    if not isinstance(value, dict):
        raise refuse(f"a JSON {type(value).__name__}, not an object")
    stored = value.pop(CHECKSUM_KEY, None)
    if stored is not None and stored != _digest(value):
        raise refuse("its checksum does not match its content: changed since it was written")
    missing = [key for key in required if key not in value]
    if missing:
        raise refuse(f"no {', '.join(missing)}")
    return value


# -- state, config and data files -----------------------------------------------------------------


def peak_rss_megabytes() -> dict:
    """This process's peak RSS and the largest of its finished children's (Linux: ru_maxrss in KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"process": round(own, 1), "largest_child": round(children, 1)}


def record_finish(run_dir: Path) -> None:
    """The command's peak memory and end time, in state.json (`make bench` reads the memory)."""
    write_state(
        run_dir, peak_rss_mb=peak_rss_megabytes(), finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    )


def read_state(run_dir: Path) -> dict:
    path = Path(run_dir) / "state.json"
    if not path.exists():
        return {}
    return read_json(
        path,
        "it records how far the run got: delete it, and rerunning the same command resumes from the backup "
        "(or trains again)",
    )


def write_state(run_dir: Path, **fields) -> None:
    write_json(Path(run_dir) / "state.json", read_state(run_dir) | fields)


def training_complete(run_dir: Path) -> bool:
    return read_state(run_dir).get("training") == "complete"


CONFIG_ADVICE = (
    "it records what the run was trained with: undo the edit (or restore the file), and the run is "
    "usable again; to train with other settings, pass --set KEY=VALUE to a new run (--fresh, or another "
    "--run-dir)"
)


def read_config_file(run_dir: Path) -> dict:
    """config.json: {"experiment": slug, "preset": name, "config": fields}."""
    return read_json(
        Path(run_dir) / "config.json", CONFIG_ADVICE, required=("experiment", "preset", "config")
    )


def find_unfinished(
    slug: str, preset: str, config_fields: dict, root: Path = RUNS_ROOT, evaluated_too: bool = False
) -> Path | None:
    """The newest run of this experiment and preset, with the same config, whose training did not
    finish; with `evaluated_too`, also one that finished and was evaluated (metrics.json)."""
    folder = Path(root) / slug
    if not folder.is_dir():
        return None
    for candidate in sorted(folder.glob(f"{preset}-*"), reverse=True):
        try:
            saved = read_config_file(candidate)
            finished = training_complete(candidate)
        except MusicTFError:
            continue
        if saved["config"] == config_fields and (
            not finished or (evaluated_too and (candidate / "metrics.json").is_file())
        ):
            return candidate
    return None


def save_run_files(run_dir: Path, slug: str, preset: str, config, representation, manifest: dict) -> None:
    """config.json, representation.json and manifest.json of a run (`slug`: its experiment's)."""
    write_json(
        run_dir / "config.json",
        {"experiment": slug, "preset": preset, "config": config_module.to_dict(config)},
    )
    write_json(run_dir / "representation.json", representation.to_json())
    write_json(run_dir / "manifest.json", manifest)


def read_run_files(run_dir: str | Path) -> tuple[dict, dict, dict]:
    """(config.json, representation.json, manifest.json) of a run; manifest {} for an old run."""
    path = Path(run_dir)
    if not (path / "config.json").is_file() or not (path / "representation.json").is_file():
        raise MusicTFError(f"{path}: not a run directory (no config.json / representation.json)")
    saved = read_config_file(path)
    representation = read_json(
        path / "representation.json", CONFIG_ADVICE.replace("without it", "without its tokenizer or grid")
    )
    manifest_path = path / "manifest.json"
    manifest = (
        read_json(manifest_path, "it names the run's data; start a new run (--fresh, or another --run-dir)")
        if manifest_path.is_file()
        else {}
    )
    return saved, representation, manifest


# -- history.csv ----------------------------------------------------------------------------------


def read_history(path: str | os.PathLike) -> tuple[list[dict], str | None]:
    """(the whole rows of a history.csv, why reading stopped early or None): a row cut short, with
    another number of fields, or with a field that is not a number ends it, since nothing after a
    torn row can be trusted. ([], None) without a file."""
    path = Path(path)
    if not path.exists():
        return [], None
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    torn = lines.pop() != ""  # a file written whole ends with a newline
    reader = csv.reader(lines)
    header = next(reader, None)
    if not header or header[0] != "epoch":
        return [], "no header row starting with epoch"
    rows = []
    for number, fields in enumerate(reader, start=2):
        try:
            if len(fields) != len(header):
                raise ValueError(f"{len(fields)} fields, the header has {len(header)}")
            rows.append(
                {
                    key: int(value) if key == "epoch" else float(value) if value else ""
                    for key, value in zip(header, fields, strict=True)
                }
            )
        except ValueError as error:
            return rows, f"line {number}: {' '.join(str(error).split())[:80]}"
    return rows, ("the last line is cut short" if torn and text else None)


def history_columns(rows: list[dict], skip: tuple[str, ...] = ()) -> dict[str, list[float]]:
    """`read_history`'s rows as one list per column (empty fields left out)."""
    keys = [key for key in (rows[0] if rows else {}) if key not in skip]
    return {key: [float(row[key]) for row in rows if row.get(key) != ""] for key in keys}


def completed_history(run_dir: Path) -> dict:
    """A finished run's history, as `model.fit` returns it, from its history.csv."""
    return history_columns(read_history(Path(run_dir) / "history.csv")[0], skip=("epoch",))


# -- checkpoints ------------------------------------------------------------------------------------


def load_checkpoint_weights(model, path: Path, features: int) -> None:
    """The checkpoint's weights into `model`; one MusicTFError naming the checkpoint for a missing,
    torn, garbled or mismatched file, or NaN weights (a zip member's CRC is checked as it is read)."""
    if not path.exists():
        raise MusicTFError(
            f"{path.parent.parent}: no {path.stem} checkpoint yet ({path}); train the run first"
        )
    other = "last" if path.stem == "best" else "best"
    try:
        with zipfile.ZipFile(path) as archive:  # every member's CRC: h5py reads only what it needs
            damaged = archive.testzip()
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        damaged = f"{type(error).__name__}: {' '.join(str(error).split())[:100]}"
    if damaged is not None:
        raise MusicTFError(
            f"{path}: unreadable checkpoint ({damaged} is damaged); use --checkpoint {other}, or train again"
        )
    try:
        model.load_weights(path)
    except ValueError as error:
        reason = " ".join(str(error).split())[:120]
        if "zip" in reason.lower() or "file signature" in reason.lower():
            raise MusicTFError(
                f"{path}: unreadable checkpoint ({reason}); use --checkpoint last, or train again"
            ) from None
        raise MusicTFError(
            f"{path}: the checkpoint's weights do not fit a model for the run's representation ({features} "
            f"features per step; {reason}); the checkpoint and representation.json do not belong together"
        ) from None
    except Exception as error:  # zipfile.BadZipFile, a CRC error, h5py's OSError, a truncated member
        reason = " ".join(str(error).split())[:120] or type(error).__name__
        raise MusicTFError(
            f"{path}: unreadable checkpoint ({type(error).__name__}: {reason}); use --checkpoint {other}, or "
            "train again"
        ) from None
    if not weights_are_finite(model):
        raise MusicTFError(
            f"{path}: the checkpoint holds NaN or infinite weights (a diverged run); train again with a "
            "lower learning_rate"
        )


def require_free_space(folder: Path, needed_bytes: int, what: str) -> None:
    """One MusicTFError naming `folder` when fewer than `needed_bytes` are free there: a write that
    fills the disk fails half-way (h5py then crashes the process) and leaves nothing to resume from."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise MusicTFError(
            f"{folder}: not enough free space for {what} (about {needed_bytes / 1e6:.1f} MB needed, "
            f"{free / 1e6:.1f} MB free); free some space and rerun the same command to resume"
        )


@contextlib.contextmanager
def disk_full_explained(folder: Path, what: str) -> Iterator[None]:
    """Turns a full disk (or quota) during a write into one MusicTFError naming the folder."""
    try:
        yield
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT) and "No space left" not in str(error):
            raise
        raise MusicTFError(
            f"{folder}: the disk is full while writing {what}; free some space and rerun the same command to "
            "resume"
        ) from None


# -- one process per run directory ------------------------------------------------------------------

_held: dict[Path, list] = {}  # run directory -> [open lock file, depth]: this process's locks


@contextlib.contextmanager
def lock(run_dir: str | Path, command: str) -> Iterator[None]:
    """Holds `run_dir` for this process (an exclusive `flock` on its `.lock`, removed when released),
    or refuses in one line naming the process that holds it. The kernel drops the lock when its
    holder dies, so a killed run's lock is taken over at once. Re-entrant within a process."""
    path = Path(run_dir).absolute()
    if path in _held:
        _held[path][1] += 1
        try:
            yield
        finally:
            _held[path][1] -= 1
        return
    path.mkdir(parents=True, exist_ok=True)
    lock_file = path / LOCK_NAME
    while True:
        try:
            handle = open(lock_file, "a+")
        except OSError as error:
            if error.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise MusicTFError(
                    f"{lock_file}: cannot be used as the run's lock ({error.strerror or error}); remove it "
                    "if no musictf process is running"
                ) from None
            yield  # a folder no process can write to needs no lock; its writes are refused by name
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise MusicTFError(
                f"{run_dir}: in use by {holder}; wait for it to finish, or use another --run-dir"
            ) from None
        try:  # the holder before us may have removed the file it locked: lock the one in place
            if os.stat(lock_file).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()} ({command})\n")
    handle.flush()
    _held[path] = [handle, 1]
    try:
        yield
    finally:
        del _held[path]
        lock_file.unlink(missing_ok=True)  # while still locked: no other process holds this file
        handle.close()
