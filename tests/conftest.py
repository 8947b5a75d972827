"""Shared fixtures: one parse cache per test session, and a small real slice of the Bach chorales."""

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("musictf-cache")
    previous = os.environ.get("MUSICTF_CACHE_DIR")
    os.environ["MUSICTF_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("MUSICTF_CACHE_DIR", None)
    else:
        os.environ["MUSICTF_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def bach_small(cache_dir):
    from musictf.data.corpus import load_corpus

    return load_corpus("music21:bach", cache_dir=cache_dir, max_files=12, progress=False)


@pytest.fixture
def read_only():
    """`read_only(folder)` makes a folder read-only for this test, for real: a read-only bind mount
    as root (to whom permission bits mean nothing), else the permission bits. Undone afterwards."""
    import contextlib
    import stat
    import subprocess

    undo = []

    def make_read_only(folder):
        folder = str(folder)
        if os.geteuid() == 0:
            mounted = subprocess.run(["mount", "--bind", folder, folder], capture_output=True).returncode == 0
            if mounted:
                undo.append(lambda: subprocess.run(["umount", folder], capture_output=True))
            if (
                not mounted
                or subprocess.run(["mount", "-o", "remount,bind,ro", folder], capture_output=True).returncode
            ):
                pytest.skip("running as root without permission to make a read-only mount")
        else:
            for directory, _, _ in os.walk(folder):
                mode = os.stat(directory).st_mode
                os.chmod(directory, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
                undo.append(lambda directory=directory, mode=mode: os.chmod(directory, mode))
        return folder

    yield make_read_only
    for action in reversed(undo):
        with contextlib.suppress(OSError):
            action()


@pytest.fixture
def small_disk(tmp_path):
    """`small_disk(kilobytes)`: a folder on a tmpfs of that size (root only), unmounted afterwards;
    with `fill_disk(folder, leave_kilobytes)` it is a full disk for real, not a patched write."""
    import subprocess

    mounted = []

    def make(kilobytes: int):
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        if (
            os.geteuid() != 0
            or subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(folder)],
                capture_output=True,
            ).returncode
        ):
            pytest.skip("mounting a small tmpfs needs root")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill_disk(folder, leave_kilobytes: int = 0) -> None:
    """Fills the file system of `folder` until `leave_kilobytes` are free."""
    import shutil

    free = shutil.disk_usage(folder).free // 1024 - leave_kilobytes
    with open(os.path.join(folder, "filler"), "wb") as handle:
        for _ in range(max(free, 0)):
            try:
                handle.write(b"\0" * 1024)
                handle.flush()
            except OSError:
                break
