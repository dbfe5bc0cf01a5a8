"""Where nodes start and end, as libcst's PositionProvider says, in one code generation pass.

Resolving PositionProvider through a MetadataWrapper walks the tree with libcst's visitor
first (which rebuilds every node) and then generates the code: half of what a warm lint of a
file with findings cost. Positions come from the code generation alone: this is
PositionProvider's code generation state, kept to what the findings use, with libcst's own
hooks (`before_codegen`, `after_codegen`, `record_syntactic_position`). A test holds the two
to the same ranges for every node.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field

import libcst as cst
from libcst._nodes.internal import CodegenState

_NEWLINE = re.compile(r"\r\n?|\n")

Position = tuple[int, int]  # (line from 1, column from 0, in code points)


class _Computed:
    """Stands where libcst's provider stands: code generation reads and writes `_computed`.
    `inclusive`, where it is kept, is what WhitespaceInclusivePositionProvider would hold: all
    a node prints."""

    def __init__(self, inclusive: bool) -> None:
        self._computed: dict[cst.CSTNode, tuple[Position, Position]] = {}
        self.inclusive: dict[cst.CSTNode, tuple[Position, Position]] | None = \
            {} if inclusive else None


@dataclass
class _PositionState(CodegenState):
    line: int = 1
    column: int = 0
    _stack: list[Position] = field(default_factory=list)

    def add_indent_tokens(self) -> None:
        self.tokens.extend(self.indent_tokens)
        for token in self.indent_tokens:
            self._advance(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self._advance(value)

    def _advance(self, value: str) -> None:
        segments = _NEWLINE.split(value)
        if len(segments) == 1:
            self.column += len(value)
        else:
            self.line += len(segments) - 1
            self.column = len(segments[-1])

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._stack.append((self.line, self.column))

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self._stack.pop()
        end = (self.line, self.column)
        computed = self.provider._computed
        if node not in computed:  # a syntactic position recorded inside wins
            computed[node] = (start, end)
        inclusive = self.provider.inclusive
        if inclusive is not None:
            inclusive.setdefault(node, (start, end))

    @contextmanager
    def record_syntactic_position(self, node: cst.CSTNode, *, start_node=None, end_node=None):
        start = (self.line, self.column)
        try:
            yield
        finally:
            end = (self.line, self.column)
            computed = self.provider._computed
            start = computed[start_node][0] if start_node is not None else start
            end = computed[end_node][1] if end_node is not None else end
            computed[node] = (start, end)


Ranges = dict[cst.CSTNode, tuple[Position, Position]]


def node_ranges(module: cst.Module) -> Ranges:
    """Every node of the module -> ((line, column), (end line, end column)), whitespace that
    is not syntactically part of it left out, as PositionProvider reports it."""
    return _ranges(module, False)[0]


def both_ranges(module: cst.Module) -> tuple[Ranges, Ranges]:
    """`node_ranges`, and the ranges of all each node prints, as
    WhitespaceInclusivePositionProvider reports them (what a fix's edits replace), from the
    same pass (a quarter more work: only where edits are printed)."""
    return _ranges(module, True)


def _ranges(module: cst.Module, inclusive: bool) -> tuple[Ranges, Ranges | None]:
    ranges = _Computed(inclusive)
    state = _PositionState(default_indent=module.default_indent,
                           default_newline=module.default_newline, provider=ranges)
    module._codegen(state)
    return ranges._computed, ranges.inclusive
