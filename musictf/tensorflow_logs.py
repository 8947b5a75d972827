"""TensorFlow's start-up log lines, hidden unless `--verbose` asks for them.

TensorFlow 2.21 writes its C++ INFO and WARNING lines (oneDNN, the CPU-feature guard, "All log
messages before absl::InitializeLog() ...") straight to file descriptor 2 while it is imported,
before absl logging is set up, so TF_CPP_MIN_LOG_LEVEL does not hold them back. They are caught
here at the file-descriptor level during the import; every other line (errors included) is
written on to stderr as it was.

Example:
    import_tensorflow(verbose=False)  # before anything else imports TensorFlow
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

_START_UP_NOISE = re.compile(
    r"^([IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "  # absl INFO / WARNING lines
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .* rebuild TensorFlow)"
)


def is_start_up_noise(line: str) -> bool:
    return bool(_START_UP_NOISE.match(line))


def import_tensorflow(verbose: bool = False) -> None:
    """Imports TensorFlow; unless `verbose`, without its INFO and WARNING start-up lines."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if verbose or "tensorflow" in sys.modules:
        import tensorflow  # noqa: F401

        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [
                line
                for line in captured.read().decode("utf-8", "replace").splitlines()
                if not is_start_up_noise(line)
            ]
            if kept:
                print("\n".join(kept), file=sys.stderr)
