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
