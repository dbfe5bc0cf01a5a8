"""Findings, and the fixes rules attach to them as data.

A fix is a list of edits (a node of the analysed tree and a function that rewrites it) plus the
imports the new code needs. Rules build fixes from the primitives below; `fix.py` applies them.
Every primitive works on the node as it stands when its turn comes, so several fixes to one call
compose (POL101 adds `poolclass`, POL102 adds `pool_pre_ping`, both to the same call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst

SAFE = "safe"  # keeps what the code means (or makes code that crashed at start work)
UNSAFE = "unsafe"  # changes run-time behaviour: applied only when asked for


@dataclass(frozen=True, eq=False)
class Edit:
    target: cst.CSTNode
    change: Callable[[cst.CSTNode], cst.CSTNode]


@dataclass(frozen=True, eq=False)
class Fix:
    safety: str
    edits: tuple[Edit, ...]
    # (module, name): `from module import name`; (module, None): `import module`
    imports: tuple[tuple[str, str | None], ...] = ()


@dataclass(eq=False)
class Finding:
    code: str
    message: str
    node: cst.CSTNode | None  # where it is reported; None: line 1
    fix: Fix | None = None
    line: int = 1
    col: int = 0
    # where the reported node ends (editors underline line:col to end_line:end_col)
    end_line: int = 1
    end_col: int = 0

    @property
    def text(self) -> str:
        suffix = f" [{self.fix.safety} fix]" if self.fix else ""
        return f"{self.code} {self.message}{suffix}"


# -- edit primitives ------------------------------------------------------------------------------

def parse_expression(code: str) -> cst.BaseExpression:
    return cst.parse_expression(code)


def _key_of(element: cst.CSTNode) -> str | None:
    if isinstance(element, cst.Arg):
        return element.keyword.value if element.keyword is not None else None
    if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString):
        return element.key.evaluated_value
    return None


def _elements(node: cst.Call | cst.Dict) -> list:
    return list(node.args if isinstance(node, cst.Call) else node.elements)


def _with_elements(node: cst.Call | cst.Dict, elements: list) -> cst.Call | cst.Dict:
    return node.with_changes(args=elements) if isinstance(node, cst.Call) \
        else node.with_changes(elements=elements)


def _bare(whitespace: cst.BaseParenthesizableWhitespace) -> cst.BaseParenthesizableWhitespace:
    """The same line break and indentation, without the comments another element wrote there."""
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())
    return whitespace


def _gap(node: cst.Call | cst.Dict, elements: list) -> cst.BaseParenthesizableWhitespace:
    """What follows a separating comma, laid out like the ones already there: ` ` in one line,
    a line break and the elements' indentation when split (never another element's comment)."""
    for element in elements[:-1]:
        if isinstance(element.comma, cst.Comma):
            return _bare(element.comma.whitespace_after)
    opening = node.whitespace_before_args if isinstance(node, cst.Call) \
        else node.lbrace.whitespace_after
    if isinstance(opening, cst.ParenthesizedWhitespace):
        return _bare(opening)
    return cst.SimpleWhitespace(" ")


def _closing(node: cst.Call | cst.Dict, last) -> cst.BaseParenthesizableWhitespace:
    """The whitespace between the last element and the closing bracket: the rest of the last
    element's line (its comment), and the bracket's indentation when it stands on its own line.
    libcst keeps it in the last argument, or in a dict's closing brace."""
    if isinstance(node, cst.Dict):
        return node.rbrace.whitespace_before
    return last.comma.whitespace_after if isinstance(last.comma, cst.Comma) \
        else last.whitespace_after_arg


def _with_closing(node: cst.Call | cst.Dict, elements: list, closing, trailing: bool):
    """The node with these elements, `closing` before its bracket and a trailing comma if
    `trailing`."""
    last = elements[-1]
    if isinstance(node, cst.Dict):
        comma = cst.Comma(whitespace_after=cst.SimpleWhitespace("")) if trailing \
            else cst.MaybeSentinel.DEFAULT
        elements[-1] = last.with_changes(comma=comma)
        return node.with_changes(elements=elements,
                                 rbrace=node.rbrace.with_changes(whitespace_before=closing))
    if trailing:
        before = last.comma.whitespace_before if isinstance(last.comma, cst.Comma) \
            else cst.SimpleWhitespace("")
        elements[-1] = last.with_changes(comma=cst.Comma(whitespace_before=before,
                                                         whitespace_after=closing))
    else:
        elements[-1] = last.with_changes(comma=cst.MaybeSentinel.DEFAULT,
                                         whitespace_after_arg=closing)
    return node.with_changes(args=elements)


def _ends_line(last, line_end) -> object:
    """The element followed by a comma and `line_end` (the rest of its line, then the next
    element's indentation)."""
    if isinstance(last.comma, cst.Comma):
        return last.with_changes(comma=last.comma.with_changes(whitespace_after=line_end))
    comma = cst.Comma(whitespace_after=line_end)
    if isinstance(last, cst.Arg):  # its whitespace_after_arg was the closing bracket's
        return last.with_changes(comma=comma, whitespace_after_arg=cst.SimpleWhitespace(""))
    return last.with_changes(comma=comma)


def _new_element(node: cst.Call | cst.Dict, key: str, value: cst.BaseExpression):
    if isinstance(node, cst.Call):
        return cst.Arg(value=value, keyword=cst.Name(key),
                       equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                             whitespace_after=cst.SimpleWhitespace("")))
    return cst.DictElement(key=cst.SimpleString(repr(key).replace("'", '"')), value=value)


def set_option(node: cst.Call | cst.Dict, key: str, value: cst.BaseExpression):
    """Give option `key` the value `value`: replaced in place, or added after the last one.

    A comment at the end of the last element's line stays on that line, and a closing bracket
    on a line of its own stays there, after the new element.
    """
    elements = _elements(node)
    for index, element in enumerate(elements):
        if _key_of(element) == key:
            elements[index] = element.with_changes(value=value)
            return _with_elements(node, elements)
    new = _new_element(node, key, value)
    if not elements:
        return _with_elements(node, [new])
    last = elements[-1]
    closing, gap = _closing(node, last), _gap(node, elements)
    if isinstance(closing, cst.ParenthesizedWhitespace) \
            and isinstance(gap, cst.ParenthesizedWhitespace):
        # one element a line, `pool_recycle=3000,  # below server_lifetime` then `)`: the
        # comment still ends the last element's line, the new element takes the next one
        line_end = closing.with_changes(indent=gap.indent, last_line=gap.last_line)
        closing = _bare(closing)
    else:  # elements side by side: the new one joins the last one's line, before its comment
        line_end = gap
    elements[-1] = _ends_line(last, line_end)
    # a keyword may follow **splat in a call, but a positional `*args` may not follow keywords:
    # appending at the end is valid in both cases
    elements.append(new)
    return _with_closing(node, elements, closing, isinstance(last.comma, cst.Comma))


def remove_option(node: cst.Call | cst.Dict, key: str):
    """Drop option `key` with the comment on its line, leaving the others' lines as they were."""
    elements = _elements(node)
    for index, element in enumerate(elements):
        if _key_of(element) != key:
            continue
        del elements[index]
        if not elements:  # `f(\n    pool_size=5,\n)` becomes `f()`
            empty = cst.SimpleWhitespace("")
            if isinstance(node, cst.Call):
                return node.with_changes(args=[], whitespace_before_args=empty)
            return node.with_changes(elements=[], lbrace=node.lbrace.with_changes(
                whitespace_after=empty), rbrace=node.rbrace.with_changes(whitespace_before=empty))
        if index < len(elements):
            return _with_elements(node, elements)
        # the last one went: the one before it keeps the rest of its own line (its comment)
        # and takes the closing bracket's place
        closing = _closing(node, element)
        line_end = elements[-1].comma.whitespace_after
        if isinstance(line_end, cst.ParenthesizedWhitespace):
            closing = line_end.with_changes(indent=closing.indent, last_line=closing.last_line) \
                if isinstance(closing, cst.ParenthesizedWhitespace) \
                else line_end.with_changes(last_line=cst.SimpleWhitespace(""))
        return _with_closing(node, elements, closing, isinstance(element.comma, cst.Comma))
    return node


def rename_option(node: cst.Call | cst.Dict, old: str, new: str,
                  value: cst.BaseExpression | None = None):
    """Rename option `old` to `new` in place, keeping its value unless one is given."""
    elements = [element.with_changes(
        **({"keyword": cst.Name(new)} if isinstance(element, cst.Arg)
           else {"key": cst.SimpleString(f'"{new}"')}),
        value=value or element.value)
        if _key_of(element) == old else element for element in _elements(node)]
    return _with_elements(node, elements)


def set_nested_option(node: cst.Call | cst.Dict, key: str, inner_key: str,
                      value: cst.BaseExpression):
    """Add `inner_key: value` to the dict given as option `key` (`connect_args`), creating it.

    Leaves the node alone when `key` holds something other than a dict literal.
    """
    for element in _elements(node):
        if _key_of(element) == key:
            if not isinstance(element.value, cst.Dict):
                return node
            return set_option(node, key, set_option(element.value, inner_key, value))
    return set_option(node, key, set_option(cst.Dict([]), inner_key, value))


def replace_with(new: cst.BaseExpression) -> Callable[[cst.CSTNode], cst.CSTNode]:
    """An edit that replaces an expression, keeping its parentheses."""
    def change(old: cst.CSTNode) -> cst.CSTNode:
        if isinstance(old, cst.BaseExpression) and (old.lpar or old.rpar):
            return new.with_changes(lpar=old.lpar, rpar=old.rpar)
        return new
    return change
