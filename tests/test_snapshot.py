"""Findings on every fixture and the example project, held against a committed snapshot.

Code, line, column and message of every finding through real flake8 (and `check` for the files
flake8 never reads), so a change of structure that changes behaviour shows up as a diff.
Regenerate after an intended change with `POOLING_UPDATE_SNAPSHOT=1 pytest tests/test_snapshot.py`
and review the diff like code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from .helpers import FIXTURES, ROOT, fixture_options, run_flake8

SNAPSHOT = Path(__file__).parent / "snapshots" / "findings.txt"


def _relative(path: str, cwd: Path) -> str:
    return Path(cwd, path).resolve().relative_to(ROOT).as_posix()


def _flake8_lines(paths, options, cwd=ROOT) -> list[str]:
    run = run_flake8(paths, *options, "--format=%(path)s:%(row)d:%(col)d: %(code)s %(text)s",
                     cwd=cwd)
    assert run.returncode in (0, 1), run.stderr
    lines = []
    for line in run.stdout.splitlines():
        path, _, rest = line.partition(":")
        lines.append(f"{_relative(path, cwd)}:{rest}")
    return lines


def current_findings() -> str:
    lines = []
    by_options = defaultdict(list)
    for path in sorted(FIXTURES.glob("**/*.py")):
        by_options[fixture_options(path)].append(path)
    for options, paths in sorted(by_options.items()):
        lines += _flake8_lines(paths, options)
    lines += _flake8_lines([ROOT / "examples"], ())
    for ini in sorted(FIXTURES.glob("**/*.ini")):  # read by `check` only
        run = subprocess.run([sys.executable, "-m", "flake8_pooling.cli", "check", "--isolated",
                              str(ini)], capture_output=True, text=True, cwd=ROOT, timeout=120)
        for line in run.stdout.splitlines():
            path, _, rest = line.partition(":")
            lines.append(f"{_relative(path, ROOT)}:{rest}")
    return "\n".join(sorted(lines, key=_order)) + "\n"


def _order(line: str):
    path, row, col, _ = line.split(":", 3)
    return path, int(row), int(col), line


def test_findings_match_the_snapshot():
    found = current_findings()
    if os.environ.get("POOLING_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(found)
    assert found == SNAPSHOT.read_text()
