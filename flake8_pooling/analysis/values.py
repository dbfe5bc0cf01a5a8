"""Literal values of expressions: what the code says without running it.

Only what can be read off the source counts: literals, dict literals, module-level constants bound
once, and f-strings whose unknown parts become holes. Everything else is UNKNOWN, and rules treat
UNKNOWN as "no evidence" (stay quiet), never as a default.
"""

from __future__ import annotations

from collections.abc import Mapping

import libcst as cst


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        return False


UNKNOWN = _Unknown()

# Stands for an unknown part of an f-string; a URL component containing it is unknown.
HOLE = "\x00"

_NAMED = {"True": True, "False": False, "None": None}


def evaluate(expr: cst.BaseExpression, constants: Mapping[str, cst.BaseExpression] = {},
             _depth: int = 0) -> object:
    """The Python value of `expr`, or UNKNOWN. Strings may contain HOLEs."""
    if _depth > 20:
        return UNKNOWN
    if isinstance(expr, (cst.Integer, cst.Float)):
        return expr.evaluated_value
    if isinstance(expr, cst.SimpleString):
        try:
            return expr.evaluated_value
        except Exception:  # bytes literals with odd escapes and the like
            return UNKNOWN
    if isinstance(expr, cst.ConcatenatedString):
        left = evaluate(expr.left, constants, _depth + 1)
        right = evaluate(expr.right, constants, _depth + 1)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        return UNKNOWN
    if isinstance(expr, cst.FormattedString):
        parts = []
        for part in expr.parts:
            if isinstance(part, cst.FormattedStringText):
                parts.append(part.value)
                continue
            value = evaluate(part.expression, constants, _depth + 1)
            plain = part.conversion is None and part.format_spec is None
            parts.append(str(value) if plain and isinstance(value, (str, int)) else HOLE)
        return "".join(parts)
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        value = evaluate(expr.expression, constants, _depth + 1)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        return -value if numeric else UNKNOWN
    if isinstance(expr, cst.Name):
        if expr.value in _NAMED:
            return _NAMED[expr.value]
        bound = constants.get(expr.value)
        if bound is not None:
            return evaluate(bound, constants, _depth + 1)
    return UNKNOWN


def resolve(expr: cst.BaseExpression, constants: Mapping[str, cst.BaseExpression],
            _depth: int = 0) -> cst.BaseExpression:
    """Follow module-level constants: `OPTIONS` -> the dict literal it was bound to."""
    while isinstance(expr, cst.Name) and expr.value in constants and _depth < 20:
        expr = constants[expr.value]
        _depth += 1
    return expr


def dict_key(element: cst.BaseDictElement,
             constants: Mapping[str, cst.BaseExpression]) -> str | None:
    """The string key of a dict entry, or None (for `**splat` or a computed key)."""
    if isinstance(element, cst.DictElement):
        key = evaluate(element.key, constants)
        return key if isinstance(key, str) and HOLE not in key else None
    return None


def literal_dict(expr: cst.BaseExpression, constants: Mapping[str, cst.BaseExpression]
                 ) -> dict[str, object] | None:
    """A dict literal's entries (nested dicts as dicts), or None if any key is not a literal."""
    node = resolve(expr, constants)
    if not isinstance(node, cst.Dict):
        return None
    entries: dict[str, object] = {}
    for element in node.elements:
        key = dict_key(element, constants)
        if key is None:
            return None
        nested = literal_dict(element.value, constants)
        entries[key] = nested if nested is not None else evaluate(element.value, constants)
    return entries
