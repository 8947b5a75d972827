"""House style that a reviewer should not have to police by hand: the package and the presets hold
no measurements' dates or machine names (results live once, in docs/ and reports/, beside their
tables) and no references to files the package does not ship."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = re.compile(r"20\d\d-\d\d-\d\d|EPYC|Xeon|shared thread|slow day|FACTS\.md|DESIGN\.md")


def _offences(folder: Path, root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".py", ".toml") or "__pycache__" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if FORBIDDEN.search(line):
                found.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    return found


@pytest.mark.parametrize("folder", ["musictf", "experiments"])
def test_code_and_presets_hold_no_dates_or_machine_names(folder):
    offences = _offences(ROOT / folder)
    assert not offences, "measurements belong in docs/ or reports/:\n" + "\n".join(offences)


@pytest.mark.parametrize("line", ["# 4:45 on the EPYC", "x = 1  # measured 2026-11-24", "on a shared thread"])
def test_the_check_catches_a_date_or_a_machine_put_back(tmp_path, line):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "module.py").write_text(f"{line}\n")
    assert _offences(tmp_path / "pkg", tmp_path)
