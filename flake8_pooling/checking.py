"""`check`'s work on each file: read it, analyse it, keep only what the report prints.

Each file's source and tree are dropped as soon as its findings are plain records, so a run's
memory does not grow with the tree. Many files are shared among processes (`--jobs`), each
taking files in order, and their results come back in that order: the output is the same
whichever way it ran.

A file that mentions none of the vocabulary is done here without loading libcst, SQLAlchemy or
the rules: what pre-commit hands `check` for most commits costs no more than reading it.
"""

from __future__ import annotations

import ast
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass

from .analysis.prefilter import mentions_vocabulary
from .files import SourceError, read_source
from .report import FileResult, Reported, fix_edits
from .selection import Selection
from .settings import Settings

INTERNAL_CODES = ("POL901", "POL902")  # lint.INTERNAL_ERROR, lint.UNPARSABLE, without loading it
# below this many files a second process costs more (its start, its own imports) than it saves
PARALLEL_FROM = 50


@dataclass(frozen=True)
class CheckJob:
    settings: Settings
    selection: Selection
    edits: bool = False  # the format prints each fix's edits (JSON, SARIF)
    source_lines: bool = False  # --show-source


def parse(text: str) -> tuple[ast.Module | None, str | None]:
    """The tree, or why this is not valid Python (what flake8 reports as E999)."""
    try:
        return ast.parse(text), None
    except SyntaxError as error:
        where = f" at line {error.lineno}" if error.lineno else ""
        return None, f"it is not valid Python ({error.msg}{where})"
    except (ValueError, RecursionError) as error:  # NUL bytes; nesting the parser refuses
        return None, f"it is not valid Python ({error})"


def check_path(job: CheckJob, path: str) -> FileResult:
    try:
        source = read_source(path)
    except SourceError as error:
        return FileResult(path, notices=[f"{path}: not checked: {error}"])
    return check_source(job, path, source.text)


def check_source(job: CheckJob, path: str, text: str) -> FileResult:
    result = FileResult(path)
    other = False
    if not path.endswith((".py", ".pyi")):  # a uWSGI ini file, a Procfile, or a script
        from .lint import is_other_file

        other = is_other_file(path)
    if not other and not mentions_vocabulary(text, path):
        return result  # nothing here can be a finding: nothing heavy is loaded for it
    tree = None
    if not other:
        tree, problem = parse(text)
        if problem is not None:
            result.notices.append(f"{path}: not checked: {problem}")
            return result
    from .lint import analyse
    from .noqa import NoqaMap
    from .rules import rule_by_code

    analysis = analyse(text, path, job.settings, tree, keep_printed=job.edits)
    noqa = None if other else NoqaMap(text)
    chosen = []
    for finding in analysis.findings:
        if finding.code in INTERNAL_CODES:
            result.notices.append(f"{path}: {finding.message}")
        elif job.selection.reports(finding, path, noqa):
            chosen.append(finding)
    chosen.sort(key=lambda finding: (finding.line, finding.col, finding.code))
    edits = fix_edits(text, analysis, chosen, path) if job.edits and any(
        finding.fix for finding in chosen) else [None] * len(chosen)
    lines = text.splitlines(keepends=True) if job.source_lines and chosen else []
    for finding, finding_edits in zip(chosen, edits):
        rule = rule_by_code(finding.code)
        result.findings.append(Reported(
            finding.code, rule.name if rule else "internal", finding.message, finding.text,
            finding.line, finding.col, rule.level if rule else "error",
            finding.fix.safety if finding.fix else None, finding_edits,
            lines[finding.line - 1] if 0 < finding.line <= len(lines) else None))
    return result


def check_paths(job: CheckJob, paths: list[str], jobs: int) -> Iterator[FileResult]:
    """The results of the files in the order given, from `jobs` processes."""
    if jobs > 1 and len(paths) > 1:
        from concurrent.futures import ProcessPoolExecutor

        # loaded once here, the forked workers share it instead of each loading it again
        from . import lint, noqa  # noqa: F401

        try:
            executor = ProcessPoolExecutor(min(jobs, len(paths)), initializer=_start_worker,
                                           initargs=(job,))
        except (OSError, ImportError, NotImplementedError):  # no processes here: one will do
            executor = None
        if executor is not None:
            try:
                # small chunks: the few files that reach libcst sit together in a tree
                yield from executor.map(_check_in_worker, paths, chunksize=8)
            finally:
                executor.shutdown(wait=True, cancel_futures=True)
            return
    for path in paths:
        yield check_path(job, path)


def default_jobs(file_count: int) -> int:
    """flake8's `--jobs auto`: every core, once there are enough files to share."""
    cores = os.cpu_count() or 1
    return cores if cores > 1 and file_count > PARALLEL_FROM else 1


_JOB: CheckJob | None = None


def _start_worker(job: CheckJob) -> None:
    global _JOB
    _JOB = job
    # Ctrl-C is the main process's to handle: it stops the pool and says what was left
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_in_worker(path: str) -> FileResult:
    return check_path(_JOB, path)
