"""SQL the code sends that keeps state in the database session (POL204).

The text of `text("...")`, `.execute("...")` and `.exec_driver_sql("...")` (a connection, a
session or a DBAPI cursor, in a `"connect"` listener too), and SQLAlchemy's
`func.pg_advisory_lock(...)`. Which pooler the statements reach is the context's judgement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ..names import dotted
from ..sql import FUNCTIONS, SessionState, session_state
from ..values import resolve
from .scope import Family, Scope

TEXT_CONSTRUCTS = frozenset({"sqlalchemy.text", "sqlalchemy.sql.text",
                             "sqlalchemy.sql.expression.text", "sqlmodel.text"})
EXECUTE_METHODS = frozenset({"execute", "exec_driver_sql", "executemany"})


@dataclass(eq=False)
class SessionStatement:
    node: cst.CSTNode  # the string, or the func.<name>(...) call
    state: SessionState


@dataclass(eq=False)
class StatementFacts:
    statements: list[SessionStatement] = field(default_factory=list)


class StatementFamily(Family):
    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope
        self.facts = StatementFacts()

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in FUNCTIONS \
                and (dotted(func.value) or "").rpartition(".")[2] == "func":
            self.facts.statements.append(SessionStatement(node, FUNCTIONS[func.attr.value]))
            return
        sends_sql = (isinstance(func, cst.Attribute) and func.attr.value in EXECUTE_METHODS) \
            or (self.scope.imports.qualify(func) or "") in TEXT_CONSTRUCTS
        if not sends_sql or not node.args or node.args[0].keyword is not None:
            return
        argument = node.args[0].value
        sql = _literal_text(resolve(argument, self.scope.constants))
        state = session_state(sql) if sql else None
        if state is not None:
            self.facts.statements.append(SessionStatement(argument, state))

    def finish(self) -> StatementFacts:
        return self.facts


def _literal_text(node: cst.BaseExpression) -> str | None:
    """The literal text of a string expression; an f-string's literal parts."""
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    if isinstance(node, cst.ConcatenatedString):
        left, right = _literal_text(node.left), _literal_text(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, cst.FormattedString):
        return "".join(part.value if isinstance(part, cst.FormattedStringText) else " x "
                       for part in node.parts)
    return None
