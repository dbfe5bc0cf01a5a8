"""Wrapping the calls and dicts a fix made too long, one element a line.

A fix adds arguments (`poolclass=NullPool`, `connect_args={...}`) or writes a longer call
(`scoped_session(sessionmaker(...))`). When a line it rewrote no longer fits the project's
`max-line-length`, the call or dict on that line is laid out as black and most codebases do:
its elements one a line, indented one step (the file's own indent) below the line it starts on,
and the closing bracket back on that line's indentation, after a trailing comma unless the
file's wrapped calls go without. A rewritten option value (`poolclass=AsyncAdaptedQueuePool`)
wraps the call around it; a call already one argument a line wraps the dict on its long line.
Lines over the limit before the fix stay as they were: they are the project's, not the fix's.
A comment that ended the call's first line stays on its first line, after the opening bracket,
where flake8 reads a `# noqa` for a finding reported at the call.
"""

from __future__ import annotations

import difflib

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

# A call inside a call inside a call: wrapped from the outside in, one level a round
MAX_ROUNDS = 3
_BRACKETED = (cst.Call, cst.Dict)


def wrap_long_lines(original: cst.Module, fixed: cst.Module,
                    rewritten: list[tuple[cst.CSTNode, cst.CSTNode]], limit: int) -> cst.Module:
    """`fixed`, with what stands on the lines its `rewritten` nodes ((node in `original`, node
    in `fixed`) pairs) made longer than `limit` wrapped."""
    nodes = [new for old, new in rewritten if not isinstance(old, cst.Module)]
    if not nodes:
        return fixed
    layout = None
    for _ in range(MAX_ROUNDS):
        long_lines = _new_long_lines(original.code, fixed.code, limit)
        if not long_lines:
            break
        tree = _Tree(fixed)
        targets: list[cst.CSTNode] = []
        for node in nodes:
            lines = tree.lines_of(node) & long_lines
            if lines:
                targets += [target for target in tree.to_wrap(node, lines)
                            if all(target is not other for other in targets)]
        targets = [target for target in targets
                   if not any(other is not target and tree.within(target, other)
                              for other in targets)]  # the outermost: it takes the others along
        if not targets:
            break
        layout = layout or _Layout.of(original)
        wrap = _Wrap({id(target) for target in targets}, tree, layout)
        fixed = fixed.visit(wrap)
        nodes = [wrap.rebuilt.get(id(node), node) for node in nodes]
    return fixed


def _new_long_lines(old_code: str, new_code: str, limit: int) -> set[int]:
    """Lines (1-based) of the new code over `limit` where the lines they replace were all
    within it."""
    old, new = old_code.splitlines(), new_code.splitlines()
    if all(len(line) <= limit for line in new) \
            or {line for line in new if len(line) > limit} <= set(old):
        return set()  # the usual case, without aligning the two
    found = set()
    for tag, first, last, new_first, new_last in difflib.SequenceMatcher(
            None, old, new, autojunk=False).get_opcodes():
        if tag != "equal" and not any(len(line) > limit for line in old[first:last]):
            found |= {number + 1 for number in range(new_first, new_last)
                      if len(new[number]) > limit}
    return found


class _Tree(cst.CSTVisitor):
    """A module's lines, where its nodes stand in them and which node holds which."""

    def __init__(self, module: cst.Module) -> None:
        super().__init__()
        self.text = module.code.splitlines()
        self.positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
        self.parent: dict[int, cst.CSTNode] = {}
        self._stack: list[cst.CSTNode] = []
        module.visit(self)

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self._stack:
            self.parent[id(node)] = self._stack[-1]
        self._stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self._stack.pop()

    def lines_of(self, node: cst.CSTNode) -> set[int]:
        where = self.positions.get(node)
        return set(range(where.start.line, where.end.line + 1)) if where else set()

    def within(self, inner: cst.CSTNode, outer: cst.CSTNode) -> bool:
        node = self.parent.get(id(inner))
        while node is not None:
            if node is outer:
                return True
            node = self.parent.get(id(node))
        return False

    def to_wrap(self, node: cst.CSTNode, lines: set[int]) -> list[cst.CSTNode]:
        """What to wrap so the long `lines` of `node` get shorter: the node itself, the call
        around a rewritten value, or, in one already one element a line, what is on them."""
        if not isinstance(node, _BRACKETED):
            around = self.parent.get(id(node))
            while around is not None and not isinstance(around, _BRACKETED):
                around = self.parent.get(id(around))
            if around is None:  # a statement rewritten whole: what is on its long lines
                return self._inside(node, lines)
            node = around
        if _wrappable(node):
            return [node]
        return self._inside(node, lines)

    def _inside(self, node: cst.CSTNode, lines: set[int]) -> list[cst.CSTNode]:
        found = []
        for child in node.children:
            if not self.lines_of(child) & lines:
                continue
            if isinstance(child, _BRACKETED) and _wrappable(child):
                found.append(child)
            else:
                found += self._inside(child, lines)
        return found

    def indentation(self, node: cst.CSTNode) -> str:
        line = self.text[self.positions[node].start.line - 1]
        return line[:len(line) - len(line.lstrip())]

    def one_line(self, node: cst.CSTNode) -> bool:
        where = self.positions.get(node)
        return where is not None and where.start.line == where.end.line


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


def _elements(node: cst.Call | cst.Dict) -> list:
    return list(node.args if isinstance(node, cst.Call) else node.elements)


def _opening(node: cst.Call | cst.Dict):
    return node.whitespace_before_args if isinstance(node, cst.Call) \
        else node.lbrace.whitespace_after


def _wrappable(node: cst.Call | cst.Dict) -> bool:
    """Not yet one element a line: wrapping again would change nothing."""
    elements = _elements(node)
    if not elements:
        return False
    return not isinstance(_opening(node), cst.ParenthesizedWhitespace) or any(
        not isinstance(_after(element), cst.ParenthesizedWhitespace)
        for element in elements[:-1])


def _after(element):
    """What follows the element's comma (None without one)."""
    return element.comma.whitespace_after if isinstance(element.comma, cst.Comma) else None


def _break(whitespace, indentation: str) -> cst.ParenthesizedWhitespace:
    """A line break followed by `indentation`, keeping a comment that ended the line."""
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace.with_changes(indent=False,
                                       last_line=cst.SimpleWhitespace(indentation))
    return cst.ParenthesizedWhitespace(first_line=cst.TrailingWhitespace(), empty_lines=[],
                                       indent=False, last_line=cst.SimpleWhitespace(indentation))


def _without_comment(whitespace: cst.ParenthesizedWhitespace) -> cst.ParenthesizedWhitespace:
    return whitespace.with_changes(first_line=cst.TrailingWhitespace())


def one_per_line(node: cst.Call | cst.Dict, base: str, layout: _Layout):
    """The call or dict with each element on a line of its own, one step below `base`.

    The comment that ended the first line (`f(a, b,  # why` in a call written with its
    arguments aligned under the bracket) stays there, after the opening bracket."""
    inner = base + layout.indent
    elements = _elements(node)
    opening = _opening(node)
    first_comment = None
    if not isinstance(opening, cst.ParenthesizedWhitespace):
        for index, element in enumerate(elements[:-1]):
            if "\n" in cst.Module([]).code_for_node(element.value):
                break  # the first line ends inside this element
            after = _after(element)
            if isinstance(after, cst.ParenthesizedWhitespace):
                if after.first_line.comment is not None:
                    first_comment = after.first_line
                    elements[index] = element.with_changes(comma=element.comma.with_changes(
                        whitespace_after=_without_comment(after)))
                break
    opening = _break(opening, inner)
    if first_comment is not None:
        opening = opening.with_changes(first_line=first_comment)
    *others, last = elements
    laid_out = [element.with_changes(comma=cst.Comma(whitespace_after=_break(
        _after(element), inner))) for element in others]
    trailing = layout.trailing_comma or isinstance(last.comma, cst.Comma)
    if isinstance(node, cst.Call):
        laid_out = [arg.with_changes(whitespace_after_arg=cst.SimpleWhitespace(""))
                    for arg in laid_out]
        closing = _after(last) if isinstance(last.comma, cst.Comma) else last.whitespace_after_arg
        if trailing:
            last = last.with_changes(whitespace_after_arg=cst.SimpleWhitespace(""),
                                     comma=cst.Comma(whitespace_after=_break(closing, base)))
        else:
            last = last.with_changes(whitespace_after_arg=_break(closing, base))
        return node.with_changes(args=[*laid_out, last], whitespace_before_args=opening)
    closing = _after(last) if isinstance(_after(last), cst.ParenthesizedWhitespace) \
        else node.rbrace.whitespace_before
    last = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(""))
                             if trailing else cst.MaybeSentinel.DEFAULT)
    return node.with_changes(
        elements=[*laid_out, last], lbrace=node.lbrace.with_changes(whitespace_after=opening),
        rbrace=node.rbrace.with_changes(whitespace_before=_break(closing, base)))


class _Wrap(cst.CSTTransformer):
    """Wraps the target nodes; a comment at the end of the line a target starts on, held by
    the statement or by the comma after the target, moves to the target's opening line."""

    def __init__(self, targets: set[int], tree: _Tree, layout: _Layout) -> None:
        super().__init__()
        self.targets, self.tree, self.layout = targets, tree, layout
        self.rebuilt: dict[int, cst.CSTNode] = {}  # every node this pass rebuilt, by the old
        self.opened: dict[int, tuple] = {}  # wrapped targets: id(old) -> (old, new)

    def on_leave(self, original_node, updated_node):
        if id(original_node) in self.targets:
            updated_node = one_per_line(updated_node, self.tree.indentation(original_node),
                                        self.layout)
            self.opened[id(original_node)] = (original_node, updated_node)
        elif isinstance(original_node, (cst.Arg, cst.DictElement, cst.Element)):
            updated_node = self._comment_from_comma(original_node, updated_node)
        elif isinstance(original_node, cst.SimpleStatementLine):
            updated_node = self._comment_from_statement(original_node, updated_node)
        if updated_node is not original_node:
            self.rebuilt[id(original_node)] = updated_node
        return updated_node

    def _comment_from_comma(self, original_node, updated_node):
        """`OPTIONS={"pool_pre_ping": True},  # why`: the comment follows the `{`."""
        after = _after(updated_node)
        value = original_node.value
        if id(value) not in self.opened or not isinstance(after, cst.ParenthesizedWhitespace) \
                or after.first_line.comment is None or not self.tree.one_line(original_node):
            return updated_node
        return updated_node.with_changes(
            value=_with_first_line(updated_node.value, after.first_line),
            comma=updated_node.comma.with_changes(whitespace_after=_without_comment(after)))

    def _comment_from_statement(self, original_node, updated_node):
        """`engine = create_engine(...)  # why`: the comment follows the `(`."""
        comment = updated_node.trailing_whitespace.comment
        if comment is None or not self.tree.one_line(original_node):
            return updated_node
        line = self.tree.positions[original_node].start.line
        opened = sorted((self.tree.positions[old].start.column, id(old), new)
                        for old, new in self.opened.values()
                        if self.tree.positions[old].start.line == line)
        if not opened:
            return updated_node
        new = opened[0][2]
        moved = _with_first_line(new, updated_node.trailing_whitespace)
        if moved is new:
            return updated_node
        return updated_node.deep_replace(new, moved).with_changes(
            trailing_whitespace=cst.TrailingWhitespace(
                newline=updated_node.trailing_whitespace.newline))


def _with_first_line(node: cst.Call | cst.Dict, first_line: cst.TrailingWhitespace):
    """The wrapped node with `first_line`'s comment after its opening bracket (unless one is
    there already)."""
    opening = _opening(node)
    if not isinstance(opening, cst.ParenthesizedWhitespace) \
            or opening.first_line.comment is not None:
        return node
    opening = opening.with_changes(first_line=cst.TrailingWhitespace(
        whitespace=first_line.whitespace, comment=first_line.comment))
    if isinstance(node, cst.Call):
        return node.with_changes(whitespace_before_args=opening)
    return node.with_changes(lbrace=node.lbrace.with_changes(whitespace_after=opening))


def wrap_long_imports(original: cst.Module, fixed: cst.Module, limit: int) -> cst.Module:
    """`fixed`, with the `from` imports a fix made longer than `limit` in parentheses, one name
    a line (in a file whose imports isort does not order: there isort's layout decides)."""
    long_lines = _new_long_lines(original.code, fixed.code, limit)
    if not long_lines:
        return fixed
    tree = _Tree(fixed)
    indent = fixed.default_indent
    body = list(fixed.body)
    for index, statement in enumerate(body):
        if not (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
                and isinstance(statement.body[0], cst.ImportFrom)
                and not isinstance(statement.body[0].names, cst.ImportStar)
                and tree.lines_of(statement) & long_lines):
            continue
        names = list(statement.body[0].names)
        names = [name.with_changes(comma=cst.Comma(whitespace_after=cst.ParenthesizedWhitespace(
            first_line=cst.TrailingWhitespace(), indent=False,
            last_line=cst.SimpleWhitespace(indent if position < len(names) - 1 else ""))))
            for position, name in enumerate(names)]
        body[index] = statement.with_changes(body=[statement.body[0].with_changes(
            names=names, lpar=cst.LeftParen(whitespace_after=cst.ParenthesizedWhitespace(
                first_line=cst.TrailingWhitespace(), indent=False,
                last_line=cst.SimpleWhitespace(indent))),
            rpar=cst.RightParen())])
    return fixed.with_changes(body=body)
