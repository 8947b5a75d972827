"""Atomic file writes and content hashing.

Every cache entry, checkpoint, report and manifest goes through these helpers, so an
interrupted run leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


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
    from musictf.errors import MusicTFError

    if not is_writable_dir(path, create):
        raise MusicTFError(f"{path}: cannot write the {what} there (read-only, or not a folder); choose another place")
    return Path(path)


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
