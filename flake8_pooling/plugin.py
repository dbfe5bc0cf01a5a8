"""The flake8 entry point: settings in, findings out as flake8 tuples. It decides nothing.

flake8 imports this module on every run, for every file set: it imports only the prefilter.
libcst, SQLAlchemy and the rules load with the first file that passes it.
"""

from __future__ import annotations

import ast
import gc
import sys
from collections.abc import Iterator

from . import __version__, options
from . import config as config_files
from .analysis.prefilter import mentions_vocabulary, uses_vocabulary
from .selection import Selection
from .settings import Settings


_FROZEN = False


def _freeze_imports() -> None:
    """Move what is alive now (SQLAlchemy's and libcst's modules, loaded with the first
    candidate file) out of the garbage collector's sight, once per process.

    They live as long as the process anyway, but every later full collection in flake8's run
    walked them: measured over prefect and airflow-core, flake8 took 8-10% longer with the
    plugin because of it, 1-3% with this.
    """
    global _FROZEN
    if not _FROZEN:
        gc.freeze()
        _FROZEN = True


class PoolingPlugin:
    name = "flake8-pooling"
    version = __version__

    settings = Settings()
    # flake8 applies ignore, per-file-ignores and noqa itself: the plugin's part of the decision
    # is the opt-in rules, which need their code in select or extend-select
    selection = Selection()

    def __init__(self, tree: ast.AST, lines: list[str], filename: str) -> None:
        self.tree = tree
        self.lines = lines
        self.filename = filename

    @staticmethod
    def add_options(manager) -> None:
        options.add_flake8_options(manager)

    @classmethod
    def parse_options(cls, parsed) -> None:
        # [tool.flake8-pooling] too, where flake8's own config and command line are silent
        config = config_files.for_flake8(parsed)
        cls.settings = config.settings()
        for problem in [*config.problems, *cls.settings.problems]:
            print(f"flake8-pooling: {problem}", file=sys.stderr)
        for warning in config.unknown_codes():
            print(f"flake8-pooling: warning: {warning}", file=sys.stderr)
        cls.selection = config.selection()
        # flake8 parses options once per run, also in a process an editor keeps alive: what
        # earlier runs learnt about projects is checked against their files before it is used
        project = sys.modules.get("flake8_pooling.analysis.project")
        if project is not None:  # nothing is learnt before the first candidate file
            project.new_run()

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        # flake8 hands us the editor's buffer in `lines`: never re-read the file from disk
        source = "".join(self.lines)
        if not mentions_vocabulary(source, self.filename) \
                or not uses_vocabulary(self.tree, self.filename, source):
            return
        try:
            from .lint import analyse
        except Exception as error:  # a broken install must not abort the user's flake8 run
            yield 1, 0, (f"POL901 flake8-pooling cannot load what it needs "
                         f"({type(error).__name__}: {error}); reinstall it"), type(self)
            return
        _freeze_imports()

        analysis = analyse(source, self.filename, self.settings, self.tree, gates_passed=True)
        for finding in analysis.findings:
            if self.selection.reports(finding, self.filename):
                yield finding.line, finding.col, finding.text, type(self)
