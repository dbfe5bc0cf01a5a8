"""Fix safety as properties, over every fixable finding of every fixture file, each alone:
the output parses, the finding is gone, a second run changes nothing, and only the lines of the
nodes the fix edits (and the import block) change."""

from __future__ import annotations

import ast
import difflib
import shlex
from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from flake8_pooling.analysis.project import forget_projects
from flake8_pooling.fix import apply_fixes, fix_source
from flake8_pooling.lint import analyse
from flake8_pooling.settings import Settings

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
