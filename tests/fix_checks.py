"""What a reviewer checks before merging a fix unchanged, as functions over the source before and
after it: new pyflakes findings, lines newly over the project's limit, imports isort sorted that
it no longer does, comments that moved to other code. The fixture tests and
benchmarks/real_world/fix_properties.py both use them."""

from __future__ import annotations

import difflib
import io
import tokenize
from collections import Counter
from pathlib import Path

import isort
from pyflakes.api import check as pyflakes_check

from flake8_pooling.analysis.project import project_root
from flake8_pooling.code_style import style_for


class _Collect:
    """A pyflakes reporter that keeps the messages."""

    def __init__(self) -> None:
        self.messages: list = []

    def flake(self, message) -> None:
        self.messages.append(message)

    def unexpectedError(self, filename, message) -> None:
        self.messages.append(message)

    def syntaxError(self, filename, message, line, offset, text) -> None:
        self.messages.append(message)


def pyflakes_findings(source: str) -> Counter:
    """pyflakes' findings, without their line numbers (a fix moves lines)."""
    reporter = _Collect()
    pyflakes_check(source, "module.py", reporter)
    return Counter(f"{type(message).__name__} {message.message % message.message_args}"
                   if hasattr(message, "message_args") else str(message)
                   for message in reporter.messages)


def new_pyflakes_findings(original: str, fixed: str) -> list[str]:
    return sorted((pyflakes_findings(fixed) - pyflakes_findings(original)).elements())


def new_long_lines(original: str, fixed: str, limit: int) -> list[str]:
    """Lines of `fixed` over `limit` where the lines they replace were all within it."""
    old, new = original.splitlines(), fixed.splitlines()
    found = []
    for tag, first, last, new_first, new_last in difflib.SequenceMatcher(
            None, old, new, autojunk=False).get_opcodes():
        if tag == "equal" or any(len(line) > limit for line in old[first:last]):
            continue
        found += [line for line in new[new_first:new_last] if len(line) > limit]
    return found


def isort_config(path: str) -> isort.Config:
    """isort as the project runs it: its own settings, or ruff's isort rules translated, or
    isort's defaults from the project's root."""
    style = style_for(path).imports
    if style.source == "ruff":
        return isort.Config(profile="black", line_length=style.line_length,
                            known_first_party=style.first_party,
                            known_third_party=style.third_party, src_paths=style.src_paths)
    folder = style.folder or project_root(path)
    if style.source == "isort":
        return isort.Config(settings_path=str(folder))
    return isort.Config(settings_path=str(folder), src_paths=(folder, Path(folder) / "src"))


def sorted_by_isort(source: str, config: isort.Config) -> bool:
    try:
        return isort.check_code(source, config=config)
    except Exception:  # isort cannot read it: it sorts nothing
        return False


def _comments(source: str) -> list[tuple[str, str | None, str, int]]:
    """(comment, the first code token of its line or None, the line, its number) for every
    comment."""
    first: dict[int, str] = {}
    lines = source.splitlines()
    found = []
    skipped = (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
               tokenize.ENDMARKER, tokenize.ENCODING)
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in skipped:
                continue
            row = token.start[0]
            if token.type == tokenize.COMMENT:
                found.append((token.string, first.get(row), lines[row - 1].strip(), row))
            else:
                first.setdefault(row, token.string)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return found


def _same_lines(original: str, fixed: str) -> dict[int, int]:
    """Line numbers of `fixed` -> the line of `original` each stands for: unchanged, or
    rewritten in place, in order (`SQLALCHEMY_POOL_SIZE = 20  # why` becoming the engine options
    that hold the pool size)."""
    old, new = original.splitlines(), fixed.splitlines()
    same = {}
    for tag, first, last, new_first, new_last in difflib.SequenceMatcher(
            None, old, new, autojunk=False).get_opcodes():
        if tag in ("equal", "replace"):  # a replaced block's lines pair up in order
            same.update({new_first + offset + 1: first + offset + 1
                         for offset in range(min(last - first, new_last - new_first))})
    return same


def moved_comments(original: str, fixed: str) -> list[str]:
    """Comments now on a line whose code is not the code they were written beside, and
    comments gone while their code is still there. A comment the fix wrote itself is new."""
    unplaced = _comments(original)
    same = _same_lines(original, fixed)
    problems = []
    elsewhere = []
    for comment, code, line, row in _comments(fixed):
        match = next((entry for entry in unplaced
                      if entry[3] == same.get(row) and entry[0] == comment), None)
        if match is None:
            elsewhere.append((comment, code))
        else:
            unplaced.remove(match)
    for comment, code in elsewhere:
        match = next((entry for entry in unplaced if entry[:2] == (comment, code)), None) \
            or next((entry for entry in unplaced if entry[0] == comment), None)
        if match is None:
            continue  # written by the fix
        unplaced.remove(match)
        if match[1] != code:
            problems.append(f"{comment!r} moved from {match[1]!r} onto {code!r}")
    living_code = {line.split("#")[0].strip() for line in fixed.splitlines()}
    for comment, code, line, _ in unplaced:
        beside = line[:line.find(comment)].strip()
        if beside and beside in living_code:
            problems.append(f"{comment!r} removed from {beside!r}, which is still there")
    return problems
