"""The flake8 entry point: settings in, findings out as flake8 tuples. It decides nothing.

flake8 imports this module on every run, for every file set: it imports only the prefilter.
libcst, SQLAlchemy and the rules load with the first file that passes it.
"""

from __future__ import annotations

import ast
import gc
import sys
from collections.abc import Iterator

from . import __version__
from .analysis.prefilter import mentions_vocabulary, uses_vocabulary
from .selection import opt_in_enabled
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
    selected: tuple[list[str], list[str]] = ([], [])

    def __init__(self, tree: ast.AST, lines: list[str], filename: str) -> None:
        self.tree = tree
        self.lines = lines
        self.filename = filename

    @staticmethod
    def add_options(manager) -> None:
        manager.add_option(
            "--pooling-pooler", default="auto", parse_from_config=True,
            help="auto: find PgBouncer from the URLs in the code (default); pgbouncer: every "
                 "PostgreSQL engine goes through one; none: never")
        manager.add_option(
            "--pooling-pooler-mode", default="", parse_from_config=True,
            help="the pooler's pool_mode: transaction, session or statement (default: from "
                 "pgbouncer.ini or compose files, else transaction)")
        manager.add_option(
            "--pooling-sqlalchemy-version", default="", parse_from_config=True,
            help="the SQLAlchemy version the code targets (default: the installed one)")
        manager.add_option(
            "--pooling-max-connections", default="", parse_from_config=True,
            help="the database's connection limit for POL304 when no PgBouncer max_client_conn "
                 "applies (default: 100, PostgreSQL's default max_connections)")
        manager.add_option(
            "--pooling-engines", default="", parse_from_config=True, comma_separated_list=True,
            help="engines a gunicorn post_fork fix disposes, as module:name (default: found by "
                 "scanning the project for module-level engines)")

    @classmethod
    def parse_options(cls, options) -> None:
        cls.settings = Settings.from_values(options.pooling_pooler, options.pooling_pooler_mode,
                                            options.pooling_sqlalchemy_version,
                                            options.pooling_engines,
                                            options.pooling_max_connections)
        for problem in cls.settings.problems:
            print(f"flake8-pooling: {problem}", file=sys.stderr)
        cls.selected = (getattr(options, "select", None) or [],
                        getattr(options, "extend_select", None) or [])

    def run(self) -> Iterator[tuple[int, int, str, type]]:
        # flake8 hands us the editor's buffer in `lines`: never re-read the file from disk
        source = "".join(self.lines)
        if not mentions_vocabulary(source, self.filename) \
                or not uses_vocabulary(self.tree, self.filename, source):
            return
        try:
            from .lint import lint
            from .rules import rule_by_code
        except Exception as error:  # a broken install must not abort the user's flake8 run
            yield 1, 0, (f"POL901 flake8-pooling cannot load what it needs "
                         f"({type(error).__name__}: {error}); reinstall it"), type(self)
            return
        _freeze_imports()

        for finding in lint(source, self.filename, self.settings, self.tree):
            rule = rule_by_code(finding.code)
            if rule is not None and rule.opt_in \
                    and not opt_in_enabled(finding.code, *self.selected):
                continue
            yield finding.line, finding.col, finding.text, type(self)
