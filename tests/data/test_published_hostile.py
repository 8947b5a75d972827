"""Hostile benchmark files from the reliability review of 2026-12-07 (R1, R2, R3, R10), each run as
the review wrote it, in a subprocess under a memory limit: one line and status 2, never a crash,
traceback or unbounded memory. And a fuzz test of the three readers."""

import io
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from musictf.data.published import read_published_file
from musictf.errors import MusicTFError

GIGABYTE = 1 << 30


def _read_under_limit(path, limit_bytes=GIGABYTE):
    """`musictf data --source path` in a child whose address space is capped at `limit_bytes` above
    what importing the package already takes: (status, stderr, peak RSS in bytes of the read)."""
    script = textwrap.dedent(
        f"""
        import resource, sys
        import musictf.cli, musictf.data.published, scipy.io, numpy  # what the read needs, before the cap
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        with open("/proc/self/status") as status:
            size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (size + {limit_bytes}, size + {limit_bytes}))
        code = musictf.cli.main(["data", "--source", {str(path)!r}])
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        print(peak - base, file=sys.stdout)
        sys.exit(code)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    peak = int(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None
    return done.returncode, done.stderr.strip(), peak


def _global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def test_r1_an_object_array_filled_from_a_short_list_is_refused_not_a_crash(tmp_path):
    """The review's 167-byte pickle: an object array of declared shape (1000,) from a 2-item list."""
    content = (
        b"\x80\x02}q\x00(X\x05\x00\x00\x00train"
        + _global("numpy.core.multiarray", "_reconstruct")
        + _global("numpy", "ndarray")
        + b"K\x00\x85C\x01b\x87R"
        + b"(K\x01(J\xe8\x03\x00\x00t"
        + _global("numpy", "dtype")
        + b"S'O8'\nK\x00K\x01\x87R"
        + b"(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb"
        + b"\x89](]]etb"
        + b"X\x05\x00\x00\x00valid]X\x04\x00\x00\x00test]u."
    )
    path = tmp_path / "objarr.pkl"
    path.write_bytes(content)
    status, err, _ = _read_under_limit(path)
    assert status == 2 and len(err.splitlines()) == 1, err
    assert "declares an object array of 1,000 elements" in err


def test_r1_legitimate_numpy_arrays_still_read(tmp_path):
    """Object arrays of frames and numeric arrays, as numpy pickles them (protocols 2 and 5)."""
    frames = np.empty(2, dtype=object)
    frames[0], frames[1] = [60, 64], [62]
    for protocol in (2, 5):
        splits = {"train": [frames, np.array([[60, 64]], np.int16)], "valid": [], "test": []}
        path = tmp_path / f"arrays{protocol}.pkl"
        path.write_bytes(pickle.dumps(splits, protocol=protocol))
        assert read_published_file(path)["train"] == [[[60, 64], [62]], [[60, 64]]]


@pytest.mark.parametrize(
    "rows, dtype, reason",
    [
        (3_000_000, np.uint8, "more than the 2,000,000 a benchmark file may"),  # the review's 257 KB file
        pytest.param(1_500_000, np.float64, "inflates to more than 320 MB", marks=pytest.mark.slow),
    ],
)
def test_r2_a_small_compressed_mat_that_inflates_to_gigabytes_is_refused_within_a_gigabyte(
    tmp_path, rows, dtype, reason
):
    from scipy.io import savemat

    big, one = np.empty((1, 1), object), np.empty((1, 1), object)
    big[0, 0] = np.ones((rows, 88), dtype)
    one[0, 0] = np.ones((40, 88), dtype)
    path = tmp_path / "bomb.mat"
    savemat(path, {"traindata": big, "validdata": one, "testdata": one}, do_compression=True)
    del big
    assert path.stat().st_size < 4 << 20
    status, err, peak = _read_under_limit(path)
    assert status == 2 and reason in err and len(err.splitlines()) == 1, err
    assert peak < GIGABYTE


@pytest.mark.parametrize("length, copies", [(1_000_000, 200), (1_900_000, 5_000)])
def test_r3_one_long_sequence_referred_to_many_times_is_counted_before_it_is_copied(tmp_path, length, copies):
    path = tmp_path / "amp.pkl"
    sequence = [[]] * length
    path.write_bytes(pickle.dumps({"train": [sequence] * copies, "valid": [], "test": []}, protocol=4))
    assert path.stat().st_size < 4 << 20
    status, err, peak = _read_under_limit(path)
    assert status == 2 and "more than the 2,000,000 a benchmark file may" in err, err
    assert len(err.splitlines()) == 1 and peak < GIGABYTE


def _mat_bytes(compressed: bool) -> bytes:
    from scipy.io import savemat

    cells = np.empty((1, 1), object)
    cells[0, 0] = np.ones((40, 88))
    buffer = io.BytesIO()
    savemat(buffer, {"traindata": cells, "validdata": cells, "testdata": cells}, do_compression=compressed)
    return buffer.getvalue()


def test_r10_an_empty_truncated_or_corrupt_mat_is_one_line(tmp_path):
    whole = _mat_bytes(compressed=True)
    corrupt = bytearray(whole)
    corrupt[200:260] = b"\xff" * 60  # inside the first compressed element's zlib stream
    cases = {"empty.mat": b"", "half.mat": whole[: len(whole) // 2], "corrupt.mat": bytes(corrupt)}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(MusicTFError) as refused:
            read_published_file(path)
        message = str(refused.value)
        assert message.startswith(str(path)) and "\n" not in message and len(message) < 400, message


def _mutations(original: bytes, rng: np.random.Generator, count: int):
    for _ in range(count):
        data = bytearray(original)
        if rng.random() < 0.3:
            yield bytes(data[: rng.integers(0, len(data))])  # truncated
            continue
        for _ in range(rng.integers(1, 6)):
            data[rng.integers(0, len(data))] = rng.integers(0, 256)  # bytes flipped
        yield bytes(data)


FUZZ_SCRIPT = """
import sys
from pathlib import Path
from musictf.data.published import read_published_file
from musictf.errors import MusicTFError
import resource
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
for name in sys.argv[1:]:
    print(name, file=sys.stderr, flush=True)
    try:
        read_published_file(Path(name))
    except MusicTFError as error:
        assert "\\n" not in str(error), (name, str(error))
print("ok")
"""


@pytest.mark.slow
def test_fuzzed_benchmark_files_read_or_give_one_line_never_a_crash(tmp_path):
    """2,400 mutations (byte flips and truncations, a fixed seed) of real files in each form:
    pickles of protocols 0-5 (plain lists, numpy scalars, numpy arrays), JSON and .mat. Each is read
    in a child process under a 4 GB cap, so a crash or a traceback fails the test with its file."""
    splits = {"train": [[[60, 64], [62]], [[48]]], "valid": [[[57]]], "test": [[[], [60]]]}
    scalars = {k: [[[np.int64(p) for p in f] for f in s] for s in v] for k, v in splits.items()}
    arrays = {
        k: [np.array([[1, 0], [0, 1]], np.int8), [np.array(f, np.int32) for f in v[0]]]
        for k, v in splits.items()
    }
    originals = {f"plain{p}.pkl": pickle.dumps(splits, protocol=p) for p in range(6)}
    originals |= {f"scalars{p}.pkl": pickle.dumps(scalars, protocol=p) for p in (0, 2, 4, 5)}
    originals |= {f"arrays{p}.pkl": pickle.dumps(arrays, protocol=p) for p in (2, 5)}
    originals |= {"splits.json": __import__("json").dumps(splits).encode()}
    originals |= {"plain.mat": _mat_bytes(False), "zipped.mat": _mat_bytes(True)}
    rng = np.random.default_rng(20261207)
    names = []
    per_file = 2400 // len(originals) + 1
    for stem, original in originals.items():
        for index, mutated in enumerate(_mutations(original, rng, per_file)):
            path = tmp_path / f"{index}-{stem}"
            path.write_bytes(mutated)
            names.append(str(path))
    assert len(names) >= 2400
    for start in range(0, len(names), 400):
        done = subprocess.run(
            [sys.executable, "-c", FUZZ_SCRIPT, *names[start : start + 400]], capture_output=True, text=True
        )
        assert done.returncode == 0 and done.stdout.strip() == "ok", (done.returncode, done.stderr[-2000:])
