"""Atomic file writes and content hashing.

Every cache entry, checkpoint, report and manifest goes through these helpers, so an
interrupted run leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from musictf.errors import MusicTFError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path beside `path`; renames it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or ".tmp")
    os.close(handle)
    temporary = Path(temporary)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes files private; give the usual mode
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def is_writable_dir(path: str | os.PathLike, create: bool = True) -> bool:
    """Whether files can be created in `path`, tried for real (permission bits say nothing to root,
    and nothing about a read-only mount). With `create`, a missing `path` is made; without, the
    probe goes to its nearest existing ancestor, so nothing is left behind."""
    path = Path(path).absolute()
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        else:
            while not path.exists():
                path = path.parent
        handle, probe = tempfile.mkstemp(dir=path, prefix=".musictf-write-probe.")
        os.close(handle)
        os.unlink(probe)
        return True
    except OSError:
        return False


def require_writable_dir(path: str | os.PathLike, what: str, create: bool = True) -> Path:
    """`path` (made if missing, with `create`), or one MusicTFError naming it, before any work is done."""
    if not is_writable_dir(path, create):
        raise MusicTFError(
            f"{path}: cannot write the {what} there (read-only, or not a folder); choose another place"
        )
    return Path(path)


class CacheFolder:
    """Writes into a cache folder that may refuse them (read-only, or full): the first failure is
    said once, later writes are skipped, and the run goes on uncached; reads are unaffected.

    Example:
        cache = CacheFolder(Path("~/.cache/musictf").expanduser())
        cache.write(write_json, cache.folder / "ingest" / "x.json", {"pieces": 3})  # True if written
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.writable = is_writable_dir(self.folder)
        if not self.writable:
            print(f"musictf: the cache {self.folder} cannot be written; reading it only", file=sys.stderr)

    def write(self, writer, *arguments) -> bool:
        """`writer(*arguments)`, unless an earlier write failed; whether it wrote."""
        if not self.writable:
            return False
        try:
            writer(*arguments)
            return True
        except OSError as error:
            self.writable = False
            print(
                f"musictf: the cache {self.folder} cannot be written ({error.strerror or error}); going on "
                "without caching",
                file=sys.stderr,
            )
            return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, value: object) -> None:
    write_text(path, json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | os.PathLike) -> object:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


STALE_TEMPORARY_SECONDS = 600.0  # a cache write takes milliseconds; an older temp file is a killed writer's


def remove_stale_temporaries(folder: Path, older_than: float = STALE_TEMPORARY_SECONDS, exclude=()) -> int:
    """Deletes the temp files (`files.atomic_path`'s dot-names) a killed writer left under `folder`."""
    removed, now, exclude = 0, time.time(), {Path(path) for path in exclude}
    for path in Path(folder).rglob(".*"):
        try:
            if path not in exclude and path.is_file() and now - path.stat().st_mtime > older_than:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def remove_stale_folders(folder: Path, older_than: float = STALE_TEMPORARY_SECONDS) -> int:
    """Deletes the dot-named folders directly under `folder` (a killed writer's half-built store,
    `tempfile.mkdtemp(prefix=".")`) untouched for `older_than` seconds; a live writer adds a file to
    its folder every few seconds."""
    removed, now = 0, time.time()
    for path in Path(folder).glob(".*"):
        try:
            if path.is_dir() and not path.is_symlink() and now - path.stat().st_mtime > older_than:
                shutil.rmtree(path)
                removed += 1
        except OSError:
            continue
    return removed
