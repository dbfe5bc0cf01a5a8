"""Wrapping the calls and dicts a fix made too long, one argument a line.

A fix adds arguments (`poolclass=NullPool`, `connect_args={...}`) or writes a longer call
(`scoped_session(sessionmaker(...))`). When a line it rewrote no longer fits the project's
`max-line-length`, the rewritten call is laid out as black and most codebases do: its arguments
one a line, indented one step (the file's own indent) below the line the call starts on, and the
closing bracket back on that line's indentation, after a trailing comma unless the file's wrapped
calls go without. Lines that were over the limit before the fix stay as they were: they are the
project's, not the fix's. A comment at the end of the statement stays on its first line, where
flake8 reads a `# noqa` for a finding on the call.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

# A call inside a call inside a call: wrapped from the outside in, one level a round
MAX_ROUNDS = 3


def wrap_long_lines(original: cst.Module, fixed: cst.Module,
                    rewritten: list[tuple[cst.CSTNode, cst.CSTNode]], limit: int) -> cst.Module:
    """`fixed`, with the calls and dicts of `rewritten` ((node in `original`, node in `fixed`)
    pairs) that now run over `limit` wrapped."""
    rewritten = [(old, new) for old, new in rewritten
                 if isinstance(new, (cst.Call, cst.Dict)) and not isinstance(old, cst.Module)]
    if not rewritten or not any(len(line) > limit for line in fixed.code.splitlines()):
        return fixed
    before = _Lines(original)
    layout = None
    for _ in range(MAX_ROUNDS):
        after = _Lines(fixed)
        too_long = [new for old, new in rewritten
                    if new in after.positions and after.over(new, limit)
                    and not before.over(old, limit) and _wrappable(new)]
        too_long = [node for node in too_long
                    if not any(other is not node and after.within(node, other)
                               for other in too_long)]  # the outermost first
        if not too_long:
            break
        layout = layout or _Layout.of(original)
        wrap = _Wrap({id(node) for node in too_long}, after, layout)
        fixed = fixed.visit(wrap)
        rewritten = [(old, wrap.wrapped.get(id(new), new)) for old, new in rewritten]
    return fixed


class _Lines:
    """A module's lines and where its nodes stand in them."""

    def __init__(self, module: cst.Module) -> None:
        self.text = module.code.splitlines()
        self.positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)

    def over(self, node: cst.CSTNode, limit: int) -> bool:
        where = self.positions.get(node)
        return where is not None and any(
            len(line) > limit for line in self.text[where.start.line - 1:where.end.line])

    def within(self, inner: cst.CSTNode, outer: cst.CSTNode) -> bool:
        a, b = self.positions[inner], self.positions[outer]
        return (b.start.line, b.start.column) <= (a.start.line, a.start.column) \
            and (a.end.line, a.end.column) <= (b.end.line, b.end.column)

    def indentation(self, node: cst.CSTNode) -> str:
        line = self.text[self.positions[node].start.line - 1]
        return line[:len(line) - len(line.lstrip())]


class _Layout:
    """How the file wraps: its indent step, and whether its wrapped calls end in a comma."""

    def __init__(self, indent: str, trailing_comma: bool) -> None:
        self.indent = indent
        self.trailing_comma = trailing_comma

    @classmethod
    def of(cls, module: cst.Module) -> _Layout:
        counter = _WrappedCalls()
        module.visit(counter)
        # no wrapped call to learn from: the trailing comma, as black writes them
        return cls(module.default_indent, counter.with_comma >= counter.without_comma)


class _WrappedCalls(cst.CSTVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.with_comma = self.without_comma = 0

    def visit_Call(self, node: cst.Call) -> None:
        if node.args and isinstance(node.whitespace_before_args, cst.ParenthesizedWhitespace):
            if isinstance(node.args[-1].comma, cst.Comma):
                self.with_comma += 1
            else:
                self.without_comma += 1


def _wrappable(node: cst.Call | cst.Dict) -> bool:
    """Not yet one element a line: wrapping again would change nothing."""
    elements = node.args if isinstance(node, cst.Call) else node.elements
    if not elements:
        return False
    opening = node.whitespace_before_args if isinstance(node, cst.Call) \
        else node.lbrace.whitespace_after
    return not isinstance(opening, cst.ParenthesizedWhitespace) or any(
        not isinstance(element.comma, cst.Comma)
        or not isinstance(element.comma.whitespace_after, cst.ParenthesizedWhitespace)
        for element in elements[:-1])


def _break(whitespace, indentation: str) -> cst.ParenthesizedWhitespace:
    """A line break followed by `indentation`, keeping a comment that ended the line."""
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace.with_changes(indent=False,
                                       last_line=cst.SimpleWhitespace(indentation))
    return cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), empty_lines=[],
                                       indent=False, last_line=cst.SimpleWhitespace(indentation))


def one_per_line(node: cst.Call | cst.Dict, base: str, layout: _Layout):
    """The call or dict with each element on a line of its own, one step below `base`."""
    inner = base + layout.indent
    if isinstance(node, cst.Call):
        *others, last = node.args
        args = [arg.with_changes(whitespace_after_arg=cst.SimpleWhitespace(""),
                                 comma=cst.Comma(whitespace_after=_break(_after(arg), inner)))
                for arg in others]
        closing = _after(last) if isinstance(last.comma, cst.Comma) else last.whitespace_after_arg
        if layout.trailing_comma or isinstance(last.comma, cst.Comma):
            last = last.with_changes(whitespace_after_arg=cst.SimpleWhitespace(""),
                                     comma=cst.Comma(whitespace_after=_break(closing, base)))
        else:
            last = last.with_changes(whitespace_after_arg=_break(closing, base))
        return node.with_changes(args=[*args, last], whitespace_before_args=_break(
            node.whitespace_before_args, inner))
    *others, last = node.elements
    elements = [element.with_changes(comma=cst.Comma(whitespace_after=_break(
        _after(element), inner))) for element in others]
    closing = _after(last) if isinstance(_after(last), cst.ParenthesizedWhitespace) \
        else node.rbrace.whitespace_before
    trailing = layout.trailing_comma or isinstance(last.comma, cst.Comma)
    last = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(""))
                             if trailing else cst.MaybeSentinel.DEFAULT)
    return node.with_changes(
        elements=[*elements, last],
        lbrace=node.lbrace.with_changes(whitespace_after=_break(node.lbrace.whitespace_after,
                                                                inner)),
        rbrace=node.rbrace.with_changes(whitespace_before=_break(closing, base)))


def _after(element):
    """What follows the element's comma (None without one)."""
    return element.comma.whitespace_after if isinstance(element.comma, cst.Comma) else None


class _Wrap(cst.CSTTransformer):
    def __init__(self, targets: set[int], lines: _Lines, layout: _Layout) -> None:
        super().__init__()
        self.targets, self.lines, self.layout = targets, lines, layout
        self.wrapped: dict[int, cst.CSTNode] = {}
        self.statements: list[list] = []  # [statement, comment moved?]

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self.statements.append([node, False])

    def leave_SimpleStatementLine(self, original_node, updated_node):
        _, moved = self.statements.pop()
        if moved:
            return updated_node.with_changes(trailing_whitespace=cst.TrailingWhitespace(
                newline=updated_node.trailing_whitespace.newline))
        return updated_node

    def on_leave(self, original_node, updated_node):
        if id(original_node) not in self.targets:
            return super().on_leave(original_node, updated_node)
        wrapped = one_per_line(updated_node, self.lines.indentation(original_node), self.layout)
        wrapped = self._take_statement_comment(original_node, wrapped)
        self.wrapped[id(original_node)] = wrapped
        return wrapped

    def _take_statement_comment(self, original_node, wrapped):
        """`engine = create_engine(...)  # why`: the comment stays on the statement's first
        line, after the opening bracket."""
        if not self.statements:
            return wrapped
        entry = self.statements[-1]
        statement, moved = entry
        comment = statement.trailing_whitespace.comment
        where, at = self.lines.positions[statement], self.lines.positions[original_node]
        if moved or comment is None or where.start.line != where.end.line \
                or at.start.line != where.start.line:
            return wrapped
        entry[1] = True
        first_line = cst.TrailingWhitespace(
            whitespace=statement.trailing_whitespace.whitespace, comment=comment)
        if isinstance(wrapped, cst.Call):
            return wrapped.with_changes(whitespace_before_args=wrapped.whitespace_before_args
                                        .with_changes(first_line=first_line))
        return wrapped.with_changes(lbrace=wrapped.lbrace.with_changes(
            whitespace_after=wrapped.lbrace.whitespace_after.with_changes(first_line=first_line)))
