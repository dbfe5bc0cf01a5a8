"""Shared by the tests: running real flake8, reading fixture expectations."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent
# Fixture runs target SQLAlchemy 2.0 unless a file says otherwise, so expectations do not move
# with whatever SQLAlchemy is installed.
DEFAULT_OPTIONS = ("--pooling-sqlalchemy-version=2.0",)
_OPTIONS_LINE = re.compile(r"^# flake8-pooling-test:(.*)$", re.MULTILINE)
# a marker: the codes the line reports, each with its column as flake8 prints it (1-based)
_EXPECTED = re.compile(r"#\s*((?:POL\d{3}(?::\d+)?\s*)+)$")
_REPORTED = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>POL\d{3}) ")


def run_flake8(paths, *options: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Real flake8, in a subprocess, with no config file but the options given."""
    return subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--select=POL", *options,
         *map(str, paths)],
        capture_output=True, text=True, cwd=cwd, timeout=300)


def reported(output: str, columns: bool = False) -> dict[str, Counter]:
    """{path: Counter((line, code))} from flake8's default output format; with `columns`,
    Counter((line, column, code))."""
    found: dict[str, Counter] = {}
    for line in output.splitlines():
        match = _REPORTED.match(line)
        if match:
            key = str(Path(match["path"]).resolve())
            where = (int(match["line"]), int(match["col"])) if columns else (int(match["line"]),)
            found.setdefault(key, Counter())[(*where, match["code"])] += 1
    return found


def expected(path: Path) -> Counter:
    """The codes written at the end of the lines that must report them: Counter((line, column,
    code)); a marker without a column (`# POL101`) has column None and matches no finding."""
    counts: Counter = Counter()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = _EXPECTED.search(line)
        if match:
            for marker in match.group(1).split():
                code, _, column = marker.partition(":")
                counts[(number, int(column) if column else None, code)] += 1
    return counts


def fixture_options(path: Path) -> tuple[str, ...]:
    options = tuple(word for match in _OPTIONS_LINE.findall(path.read_text())
                    for word in match.split())
    if "project-version" in options:  # the project's own pins decide
        return tuple(option for option in options if option != "project-version")
    if not any(option.startswith("--pooling-sqlalchemy-version") for option in options):
        options = DEFAULT_OPTIONS + options
    return options


def load_gunicorn_config(path: Path):
    """gunicorn's own loading of a config file: hooks are validated as gunicorn starts.

    An invalid hook makes gunicorn print the error and exit (SystemExit); a valid file gives
    gunicorn's Config, whose hooks are the file's functions.
    """
    from gunicorn.app.base import Application

    class Loader(Application):
        def init(self, parser, opts, args):
            return None

        def load_config(self):  # the file alone: no command line, no environment
            self.load_config_from_file(str(path))

        def load(self):
            return None

    return Loader().cfg
