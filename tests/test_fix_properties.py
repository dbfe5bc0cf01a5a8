"""Fix safety as properties, over every fixable finding of every fixture file, each alone:
the output parses, the finding is gone, a second run changes nothing, and only the lines of the
nodes the fix edits (and the import block) change. And what a reviewer checks before merging a
fix unchanged, for each fix alone and for the whole file as `fix --unsafe-fixes` writes it: no
new pyflakes finding, no line newly over the project's max-line-length, imports isort sorted
still sorted, every comment on the line of the code it described, and counts that add up."""

from __future__ import annotations

import ast
import difflib
import shlex
from collections import Counter
from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from flake8_pooling.analysis.project import forget_projects
from flake8_pooling.code_style import style_for
from flake8_pooling.fix import apply_fixes, fix_source
from flake8_pooling.lint import analyse
from flake8_pooling.noqa import NoqaMap
from flake8_pooling.selection import Selection
from flake8_pooling.settings import Settings

from .fix_checks import (isort_config, moved_comments, new_long_lines, new_pyflakes_findings,
                         sorted_by_isort)
from .helpers import FIXTURES, fixture_options

FILES = sorted(FIXTURES.glob("**/*.py"))


def settings_for(path: Path) -> Settings:
    values = {}
    for option in fixture_options(path):
        name, _, value = option.lstrip("-").partition("=")
        if name.startswith("pooling-"):
            values[name[len("pooling-"):].replace("-", "_")] = value
    return Settings.from_values(**values)


def import_lines(source: str) -> tuple[set[int], int]:
    """Lines of import statements (1-based), and the last line where one may be inserted."""
    tree = ast.parse(source)
    lines = {line for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
             for line in range(node.lineno, node.end_lineno + 1)}
    first_code = next((node.lineno for node in tree.body
                       if not isinstance(node, (ast.Import, ast.ImportFrom, ast.Expr))), 1)
    return lines, max([first_code, *[line + 1 for line in lines]])


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(FIXTURES)))
def test_each_fix_alone_is_safe(path):
    forget_projects()
    source, settings = path.read_text(), settings_for(path)
    analysis = analyse(source, str(path), settings)
    fixable = [finding for finding in analysis.findings if finding.fix is not None]
    if not fixable:
        pytest.skip("no fixable finding")
    positions = MetadataWrapper(analysis.module, unsafe_skip_copy=True).resolve(PositionProvider)
    imports, last_insert = import_lines(source)
    old = source.splitlines(keepends=True)
    for finding in fixable:
        fixed = apply_fixes(analysis, [finding])
        ast.parse(fixed)
        left = [f for f in analyse(fixed, str(path), settings).findings
                if f.code == finding.code]
        before = [f for f in analysis.findings if f.code == finding.code]
        assert len(left) < len(before), f"{finding.text} is still reported after its fix"
        new = fixed.splitlines(keepends=True)
        spans = set()
        whole_module = False
        for edit in finding.fix.edits:
            if isinstance(edit.target, cst.Module):
                whole_module = True
                continue
            where = positions[edit.target]
            spans.update(range(where.start.line, where.end.line + 1))
        for tag, first, last, _, _ in difflib.SequenceMatcher(None, old, new).get_opcodes():
            if tag == "equal":
                continue
            changed = set(range(first + 1, last + 1))
            if whole_module:  # a new hook appended at the end, and the imports it needs
                assert tag == "insert" and (first == len(old) or first + 1 <= last_insert), \
                    finding.text
            elif tag == "insert":
                assert first + 1 in spans or first + 1 <= last_insert or first in spans, \
                    f"{finding.text}: inserted at line {first + 1}"
            else:
                assert changed <= spans | imports, \
                    f"{finding.text}: changed lines {sorted(changed - spans - imports)}"


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(FIXTURES)))
def test_fixing_twice_changes_nothing_the_second_time(path):
    forget_projects()
    source, settings = path.read_text(), settings_for(path)
    once = fix_source(source, str(path), settings, unsafe=True)
    twice = fix_source(once.source, str(path), settings, unsafe=True)
    assert twice.source == once.source and not twice.applied
    ast.parse(once.source)


def test_options_are_read_from_fixture_headers():
    path = FIXTURES / "engine" / "pol101_session_mode.py"
    assert shlex.join(fixture_options(path)).startswith("--pooling-sqlalchemy-version=2.0")
    assert settings_for(path).pooler_mode == "session"


# the opt-in rule too: its fix must pass the same checks
EVERY_RULE = Selection.of(extend_select=["POL107"])


def reviewer_problems(path: Path, source: str, fixed: str) -> list[str]:
    limit = style_for(str(path)).max_line_length
    problems = [f"new pyflakes finding: {finding}"
                for finding in new_pyflakes_findings(source, fixed)]
    problems += [f"newly over {limit} characters: {line}"
                 for line in new_long_lines(source, fixed, limit)]
    config = isort_config(str(path))
    if sorted_by_isort(source, config) and not sorted_by_isort(fixed, config):
        problems.append("imports isort sorted are no longer sorted")
    problems += [f"comment {problem}" for problem in moved_comments(source, fixed)]
    return problems


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(FIXTURES)))
def test_fixes_pass_a_reviewers_checks(path):
    forget_projects()
    source, settings = path.read_text(), settings_for(path)
    analysis = analyse(source, str(path), settings)
    noqa = NoqaMap(source)
    reported = [finding for finding in analysis.findings
                if EVERY_RULE.reports(finding, str(path), noqa)]
    fixable = [finding for finding in reported if finding.fix is not None]
    if not fixable:
        pytest.skip("no fixable finding")
    problems = []
    for finding in fixable:
        alone = apply_fixes(analysis, [finding], str(path))
        problems += [f"{finding.code} alone: {problem}"
                     for problem in reviewer_problems(path, source, alone)]
    result = fix_source(source, str(path), settings, unsafe=True, selection=EVERY_RULE)
    problems += [f"whole file: {problem}"
                 for problem in reviewer_problems(path, source, result.source)]
    assert not problems, "\n".join(problems)
    # the counts `fix` prints: what is gone plus what is left is what was reported, and what
    # is left is what `check` reports in the fixed file
    before = Counter(finding.code for finding in reported)
    left = Counter(finding.code for finding in result.remaining)
    assert result.fixed + left == before
    fixed_noqa = NoqaMap(result.source)
    assert left == Counter(finding.code for finding in analyse(result.source, str(path),
                                                               settings).findings
                           if EVERY_RULE.reports(finding, str(path), fixed_noqa))
