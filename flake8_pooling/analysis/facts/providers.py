"""Session providers that leak (POL203): a generator that makes a session, yields it, and closes
it after the `yield` with no `finally:` or `with` around the `yield` (it leaks when the request
fails), or only in an `except:` (it leaks when the request succeeds).

FastAPI throws an endpoint's exception into its dependency at the `yield` (so does
`contextlib.contextmanager` for the body of the `with`), so code after the `yield` runs only
when nothing failed. Whether the call makes a session is known here for SQLAlchemy's classes
and this module's factories; a factory imported from the project is the context's to judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ...vocabulary import SCOPED_SESSIONS, SESSION_CLASSES, SESSION_MAKERS
from .scope import Family, Scope

CLOSING_METHODS = frozenset({"close", "remove"})


@dataclass(eq=False)
class SessionProvider:
    function: cst.FunctionDef
    assignment: cst.CSTNode  # `db = SessionLocal()`: where it is reported
    call: cst.Call
    name: str  # the local name: db
    made_by: str | None  # None: SQLAlchemy's own; else the qualified name of an imported factory
    is_async: bool  # awaits its close: `async with` in the fix
    # where the three statements (make, yield, close) start in the function's body, when they
    # stand alone and in a row: the fix's shape
    position: int | None = None
    closed_on_error_only: bool = False  # closed in an `except:`, never when all went well


@dataclass(eq=False)
class ProviderFacts:
    providers: list[SessionProvider] = field(default_factory=list)


class ProviderFamily(Family):
    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope
        self.facts = ProviderFacts()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if not isinstance(node.body, cst.IndentedBlock):
            return
        body = list(node.body.body)
        for index, statement in enumerate(body):
            made = _assigned_call(statement)
            if made is None:
                continue
            name, call, assignment = made
            made_by = self._session_maker(call)
            if made_by is False:
                continue
            leak = _leaks_after(body[index + 1:], name)
            if leak is None:
                continue
            awaited, shape, on_error_only = leak
            self.facts.providers.append(SessionProvider(
                node, assignment, call, name, made_by or None, awaited,
                index if shape else None, on_error_only))

    def _session_maker(self, call: cst.Call) -> str | bool:
        """"" for SQLAlchemy's sessions, the qualified name of an imported callable that may
        be a project's factory, False for anything else."""
        imports, constants = self.scope.imports, self.scope.constants
        func = call.func
        if isinstance(func, cst.Call):  # sessionmaker(...)()
            return "" if (imports.qualify(func.func) or "") in SESSION_MAKERS else False
        qualified = imports.qualify(func) or ""
        if qualified in SESSION_CLASSES:
            return ""
        if isinstance(func, cst.Name) and isinstance(constants.get(func.value), cst.Call):
            maker = imports.qualify(constants[func.value].func) or ""
            return "" if maker in SESSION_MAKERS or maker in SCOPED_SESSIONS else False
        if qualified and qualified not in SESSION_MAKERS:
            return qualified  # SessionLocal from app.database: the project scan knows
        return False

    def finish(self) -> ProviderFacts:
        return self.facts


def _assigned_call(statement: cst.BaseStatement):
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target, value = small.targets[0].target, small.value
    elif isinstance(small, cst.AnnAssign) and small.value is not None:
        target, value = small.target, small.value
    else:
        return None
    if isinstance(target, cst.Name) and isinstance(value, cst.Call):
        return target.value, value, small
    return None


def _leaks_after(rest: list[cst.BaseStatement], name: str) -> tuple[bool, bool, bool] | None:
    """(the close is awaited, the fix's shape, closed only on error) when `name` is yielded and
    closed on one way out of the generator only; None otherwise."""
    for position, statement in enumerate(rest):
        if _yields(statement, name):
            handlers = ()
        elif isinstance(statement, cst.Try) and any(_yields(inner, name)
                                                    for inner in statement.body.body):
            if statement.finalbody is not None:
                return None  # closed however the generator ends
            handlers = statement.handlers
        else:
            continue
        for later, after in enumerate(rest[position + 1:]):
            awaited = _closes(after, name)
            if awaited is not None:  # after the yield: only when nothing failed
                return awaited, position == 0 and later == 0 and not handlers, False
        for handler in handlers:  # in an except: only when something failed
            awaited = next((closed for closed in map(lambda inner: _closes(inner, name),
                                                     handler.body.body) if closed is not None),
                           None)
            if awaited is not None:
                return awaited, False, True
        return None
    return None


def _yields(statement: cst.BaseStatement, name: str) -> bool:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    return isinstance(small, cst.Expr) and isinstance(small.value, cst.Yield) \
        and isinstance(small.value.value, cst.Name) and small.value.value.value == name


def _closes(statement: cst.BaseStatement, name: str) -> bool | None:
    """True: `await db.close()`; False: `db.close()`; None: neither."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1 \
            or not isinstance(statement.body[0], cst.Expr):
        return None
    value = statement.body[0].value
    awaited = isinstance(value, cst.Await)
    call = value.expression if awaited else value
    if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) \
            and call.func.attr.value in CLOSING_METHODS and isinstance(call.func.value, cst.Name) \
            and call.func.value.value == name:
        return awaited
    return None
