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


def _separator(node: cst.Call | cst.Dict, elements: list) -> cst.Comma:
    """A comma laid out like the ones already there: `, ` in one line, newline+indent when split."""
    for element in elements[:-1]:
        if isinstance(element.comma, cst.Comma):
            return element.comma
    opening = node.whitespace_before_args if isinstance(node, cst.Call) \
        else node.lbrace.whitespace_after
    if isinstance(opening, cst.ParenthesizedWhitespace):
        return cst.Comma(whitespace_after=opening)
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def _new_element(node: cst.Call | cst.Dict, key: str, value: cst.BaseExpression):
    if isinstance(node, cst.Call):
        return cst.Arg(value=value, keyword=cst.Name(key),
                       equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                             whitespace_after=cst.SimpleWhitespace("")))
    return cst.DictElement(key=cst.SimpleString(repr(key).replace("'", '"')), value=value)


def set_option(node: cst.Call | cst.Dict, key: str, value: cst.BaseExpression):
    """Give option `key` the value `value`: replaced in place, or added after the last one."""
    elements = _elements(node)
    for index, element in enumerate(elements):
        if _key_of(element) == key:
            elements[index] = element.with_changes(value=value)
            return _with_elements(node, elements)
    new = _new_element(node, key, value)
    if elements:
        last = elements[-1]
        separator = _separator(node, elements)
        if isinstance(last.comma, cst.Comma):  # trailing comma: the new entry inherits it
            new = new.with_changes(comma=last.comma)
        elif isinstance(last, cst.Arg):
            # without a trailing comma, the whitespace before `)` is the last argument's:
            # it moves to the new one, so `)` stays where it was
            before_paren = last.whitespace_after_arg
            last = last.with_changes(whitespace_after_arg=cst.SimpleWhitespace(""))
            if isinstance(before_paren, cst.ParenthesizedWhitespace) and \
                    isinstance(separator.whitespace_after, cst.ParenthesizedWhitespace):
                # `pool_size=5  # why\n)`: the comment stays on its line
                separator = separator.with_changes(whitespace_after=before_paren.with_changes(
                    indent=separator.whitespace_after.indent,
                    last_line=separator.whitespace_after.last_line))
                before_paren = before_paren.with_changes(first_line=cst.TrailingWhitespace(),
                                                         empty_lines=())
            new = new.with_changes(whitespace_after_arg=before_paren)
        elements[-1] = last.with_changes(comma=separator)
    # a keyword may follow **splat in a call, but a positional `*args` may not follow keywords:
    # appending at the end is valid in both cases
    elements.append(new)
    return _with_elements(node, elements)


def remove_option(node: cst.Call | cst.Dict, key: str):
    """Drop option `key`, leaving the separators as they were laid out."""
    elements = _elements(node)
    for index, element in enumerate(elements):
        if _key_of(element) == key:
            del elements[index]
            if index == len(elements) and elements:  # removed the last one: its comma moves up
                elements[-1] = elements[-1].with_changes(comma=element.comma)
            return _with_elements(node, elements)
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
