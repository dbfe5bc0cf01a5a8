"""`# noqa`, read exactly the way flake8 reads it, so `check` and `fix` agree with flake8.

- `# noqa` or `# noqa: POL101,POL2` covers its line, and every line of a token that spans
  several (a triple-quoted string) together (flake8's processor._noqa_line_mapping; inside
  brackets the tokenizer ends a line at each line break, so those lines stay separate);
- a code matches when it equals or starts with a listed code;
- a line that is only `# flake8: noqa` exempts the whole file.
"""

from __future__ import annotations

import io
import re
import tokenize
from functools import cached_property

from flake8.defaults import NOQA_FILE, NOQA_INLINE_REGEXP

from .findings import Finding

_SEPARATORS = re.compile(r"[,\s]")


class NoqaMap:
    """Built on first use: most files have no finding to look up, and tokenizing is not free."""

    def __init__(self, source: str) -> None:
        self.source = source

    @cached_property
    def lines(self) -> list[str]:
        return self.source.splitlines(keepends=True)

    @cached_property
    def file_exempt(self) -> bool:
        return any(NOQA_FILE.match(line) for line in self.lines)

    @cached_property
    def _logical(self) -> dict[int, str]:
        return _logical_lines(self.source, self.lines)

    def suppresses(self, finding: Finding) -> bool:
        if self.file_exempt:
            return True
        text = self._logical.get(finding.line)
        if text is None:
            if not 1 <= finding.line <= len(self.lines):
                return False
            text = self.lines[finding.line - 1]
        match = NOQA_INLINE_REGEXP.search(text)
        if match is None:
            return False
        codes = match.group("codes")
        if not codes:
            return True
        listed = tuple(code for code in _SEPARATORS.split(codes) if code)
        return finding.code in listed or finding.code.startswith(listed)


def _logical_lines(source: str, lines: list[str]) -> dict[int, str]:
    mapping: dict[int, str] = {}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return mapping
    first, last = len(lines) + 2, -1
    for kind, _, (start, _), (end, _), _ in tokens:
        if kind in (tokenize.ENDMARKER, tokenize.DEDENT):
            continue
        first, last = min(first, start), max(last, end)
        if kind in (tokenize.NL, tokenize.NEWLINE):
            joined = "".join(lines[first - 1:last])
            mapping.update(dict.fromkeys(range(first, last + 1), joined))
            first, last = len(lines) + 2, -1
    return mapping
