"""Sessions made and connections checked out when a module is imported.

Code at module level or in a class body runs once per process, at import: a Session made there
is shared by every thread and task after it (fact 28), a connection checked out there by every
forked worker too. `if __name__ == "__main__":` blocks and functions are not import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ...vocabulary import (CHECKOUT_METHODS, ENGINE_APIS, SCOPED_SESSIONS, SESSION_CLASSES,
                           SESSION_MAKERS)
from .scope import Family, Scope


@dataclass(eq=False)
class ModuleSession:
    """A Session made at import: `session = Session(engine)`, `SessionLocal()`, ..."""
    node: cst.Call  # the call that makes it
    is_async: bool
    session_class: str | None  # qualified, when made from a class
    maker: cst.Call | None  # `sessionmaker(...)` in `sessionmaker(...)()`
    factory: str | None  # `SessionLocal` in `SessionLocal()`
    registry: bool = False  # `Session()` of a module-level `Session = scoped_session(...)`


@dataclass(eq=False)
class ModuleConnection:
    """A connection checked out at import: `connection = engine.connect()`."""
    node: cst.Call
    method: str


@dataclass(eq=False)
class SessionFacts:
    sessions: list[ModuleSession] = field(default_factory=list)
    connections: list[ModuleConnection] = field(default_factory=list)


class SessionFamily(Family):
    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope
        self.facts = SessionFacts()
        self._factories: dict[str, bool] = {}  # SessionLocal -> makes AsyncSessions
        self._registries: dict[str, bool] = {}  # Session = scoped_session(...)
        self._module_engines: set[str] = set()  # names bound to engines at module level

    def visit_Assign(self, node: cst.Assign) -> None:
        self._assigned_at_import([t.target for t in node.targets], node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._assigned_at_import([node.target], node.value)

    def visit_Expr(self, node: cst.Expr) -> None:
        if self.scope.at_import and isinstance(node.value, cst.Call):
            self._made_at_import(node.value)

    def _assigned_at_import(self, targets: list[cst.BaseExpression],
                            value: cst.BaseExpression) -> None:
        scope = self.scope
        if not scope.at_import or not isinstance(value, cst.Call):
            return
        names = [t.value for t in targets if isinstance(t, cst.Name)]
        qualified = scope.imports.qualify(value.func) or ""
        if qualified in ENGINE_APIS and not scope.classes:
            self._module_engines.update(names)
        elif qualified in SESSION_MAKERS and not scope.classes:
            for name in names:
                self._factories[name] = SESSION_MAKERS[qualified]
        elif qualified in SCOPED_SESSIONS and not scope.classes:
            for name in names:
                self._registries[name] = SCOPED_SESSIONS[qualified]
        self._made_at_import(value)

    def _made_at_import(self, call: cst.Call) -> None:
        """A call run at import: does it make a session or check out a connection?"""
        imports = self.scope.imports
        func = call.func
        qualified = imports.qualify(func) or ""
        if qualified in SESSION_CLASSES:
            self.facts.sessions.append(ModuleSession(call, SESSION_CLASSES[qualified], qualified,
                                                     None, None))
        elif isinstance(func, cst.Call) and (imports.qualify(func.func) or "") in SESSION_MAKERS:
            is_async = SESSION_MAKERS[imports.qualify(func.func)]
            self.facts.sessions.append(ModuleSession(call, is_async, None, func, None))
        elif isinstance(func, cst.Name) and func.value in self._factories:
            self.facts.sessions.append(ModuleSession(call, self._factories[func.value], None,
                                                     None, func.value))
        elif isinstance(func, cst.Name) and func.value in self._registries and not call.args:
            # the registry called at import hands back the importing thread's session
            self.facts.sessions.append(ModuleSession(call, self._registries[func.value], None,
                                                     None, func.value, registry=True))
        elif isinstance(func, cst.Attribute) and func.attr.value in CHECKOUT_METHODS:
            receiver = func.value
            engine = (isinstance(receiver, cst.Name) and receiver.value in self._module_engines) \
                or (isinstance(receiver, cst.Call)
                    and (imports.qualify(receiver.func) or "") in ENGINE_APIS)
            if engine:
                self.facts.connections.append(ModuleConnection(call, func.attr.value))

    def finish(self) -> SessionFacts:
        return self.facts
