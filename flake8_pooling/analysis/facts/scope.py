"""Where the pass is in the module, kept for every fact family: imports, module constants, the
functions and classes around the current node, and what each function does with the names it
binds (returns them, keeps them beyond the call, disposes them).

The pass runs `ScopeEnter` before every family's `visit_*` and `ScopeLeave` after every family's
`leave_*`, so a family always sees the scope of the node it is looking at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ...vocabulary import (CACHING_DECORATORS, ENGINE_APIS, FLASK_SQLALCHEMY_CLASS,
                           KEEPING_PREFIXES, RUN_ONCE_DECORATORS, RUN_ONCE_NAMES,
                           RUN_ONCE_PREFIXES, RUN_ONCE_SIGNALS, SCRIPT_CALLS,
                           TRANSPARENT_CALL_ROOTS)
from ..names import ImportTable, dotted
from .walk import nodes
# Methods that keep their argument somewhere beyond the call: the engine outlives the function.
_KEEPING_METHODS = {"append", "add", "setdefault", "insert", "extend", "update", "put",
                    "register", "setattr", "__setitem__"}


@dataclass(eq=False)
class FunctionScope:
    node: cst.FunctionDef
    name: str
    cached: bool
    exempt: bool  # runs once: main(), a click command, an app factory, a bootstrap, a test
    returned: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)
    disposed: set[str] = field(default_factory=set)
    disposed_after_yield: set[str] = field(default_factory=set)  # not in `finally:`
    # while visiting: are we inside a return/yield, and which name is being assigned
    return_depth: int = 0
    carriers: list[str | None] = field(default_factory=list)
    yielded: bool = False  # a yield came before: what follows runs only on a clean exit
    finally_depth: int = 0  # inside a `finally:`, which runs however the generator ends


@dataclass(eq=False)
class Lifetime:
    """What happens to an object made inside a function: does it outlive the call?"""
    function: FunctionScope
    carrier: str | None  # the local name it (or the object built around it) is bound to
    escapes_directly: bool  # returned, yielded, or stored on an attribute/subscript

    @property
    def escapes(self) -> bool:
        name = self.carrier
        return (self.escapes_directly or self.function.cached
                or (name is not None and (name in self.function.returned
                                          or name in self.function.kept)))

    @property
    def disposed(self) -> bool:
        return self.carrier is not None and self.carrier in self.function.disposed

    @property
    def disposed_after_yield(self) -> bool:
        """Disposed after a `yield`, outside `finally:`: not when the caller's code raises."""
        return self.carrier is not None and self.carrier in self.function.disposed_after_yield


class Scope:
    """The state the families share; only ScopeEnter and ScopeLeave change it."""

    def __init__(self) -> None:
        self.imports = ImportTable()
        self.constants: dict[str, cst.BaseExpression] = {}
        self._not_constant: set[str] = set()
        self.functions: list[FunctionScope] = []
        self.classes: list[cst.ClassDef] = []
        self.main_guard = 0
        self.statement: cst.Expr | None = None  # the expression statement being visited
        self.module_functions: dict[str, FunctionScope] = {}
        self.module_imports: list[tuple[cst.CSTNode, str]] = []  # (node, module name)
        self.imports_alembic = False
        # module-level code exits or reads sys.argv: a command-line script, run once
        self.runs_as_script = False
        self._call: tuple[cst.Call | None, str | None] = (None, None)

    @property
    def at_module_level(self) -> bool:
        return not self.functions and not self.classes

    @property
    def at_import(self) -> bool:
        """Code that runs when the module is imported: module level or a class body."""
        return not self.functions and not self.main_guard

    @property
    def function(self) -> FunctionScope | None:
        return self.functions[-1] if self.functions else None

    def qualified_call(self, node: cst.Call) -> str | None:
        """The call's qualified name, worked out once for all the families."""
        if self._call[0] is not node:
            self._call = (node, self.imports.qualify(node.func))
        return self._call[1]

    def lifetime(self) -> Lifetime | None:
        if not self.functions:
            return None
        scope = self.functions[-1]
        carrier = next((name for name in reversed(scope.carriers) if name), None)
        escapes = scope.return_depth > 0 or "<kept>" in scope.carriers
        return Lifetime(scope, None if carrier == "<kept>" else carrier, escapes)

    def bind_module_name(self, name: str, value: cst.BaseExpression | None) -> None:
        self.imports.shadow(name)
        if name in self.constants or name in self._not_constant or value is None:
            self.constants.pop(name, None)
            self._not_constant.add(name)
        else:
            self.constants[name] = value

    def unbind_constant(self, name: str) -> None:
        self._not_constant.add(name)
        self.constants.pop(name, None)


_VISITOR_NAMES: dict[type, tuple[str, ...]] = {}


class Family(cst.BatchableCSTVisitor):
    """A visitor of the one batched pass. libcst finds a visitor's visit_/leave_ methods by
    inspecting each instance, about 5 ms a visitor and so most of a small file's cost; the
    names belong to the class, so they are looked up once per class."""

    def get_visitors(self):
        names = _VISITOR_NAMES.get(type(self))
        if names is None:
            names = _VISITOR_NAMES[type(self)] = tuple(super().get_visitors())
        return {name: getattr(self, name) for name in names}


class ScopeEnter(Family):
    """Runs before the families' visit_* methods."""

    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope

    def visit_Import(self, node: cst.Import) -> None:
        scope = self.scope
        scope.imports.add(node)
        if scope.at_module_level:
            for alias in node.names:
                scope.module_imports.append((node, dotted(alias.name) or ""))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        scope = self.scope
        scope.imports.add(node)
        module = (dotted(node.module) or "") if node.module is not None else None
        if scope.at_module_level and module is not None and not node.relative:
            scope.module_imports.append((node, module))
        # alembic's env.py and migration scripts run once per command, not per request
        if module is not None and module.split(".")[0] == "alembic":
            scope.imports_alembic = True

    def visit_Assign(self, node: cst.Assign) -> None:
        targets = [t.target for t in node.targets]
        if self.scope.at_module_level:
            value = node.value
            if isinstance(value, cst.Subscript) and dotted(value.value) == "sys.argv":
                self.scope.runs_as_script = True  # pid = sys.argv[1]
            for target in targets:
                if isinstance(target, cst.Name):
                    self.scope.bind_module_name(target.value,
                                                node.value if len(targets) == 1 else None)
        self._enter_assignment(targets, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if self.scope.at_module_level and isinstance(node.target, cst.Name):
            self.scope.bind_module_name(node.target.value, node.value)
        self._enter_assignment([node.target], node.value)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name):
            self.scope.unbind_constant(node.target.value)

    def _enter_assignment(self, targets: list[cst.BaseExpression],
                          value: cst.BaseExpression | None) -> None:
        function = self.scope.function
        if function is None:
            return
        unpacked = _unpacked_names(targets)
        if unpacked:  # engine, sessions = make_engine_and_session(): the first is the engine
            function.carriers.append("<kept>" if unpacked[0] in function.kept else unpacked[0])
            return
        if any(not isinstance(t, cst.Name) for t in targets):
            function.carriers.append("<kept>")  # self.engine = ..., cache[key] = ...
            if value is not None:  # ENGINES[key] = engine: what it names outlives the call
                function.kept.update(names_in(value))
        else:
            name = targets[0].value if len(targets) == 1 else None
            function.carriers.append("<kept>" if name in function.kept else name)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        scope = self.scope
        name = node.name.value
        targets = [d.decorator.func if isinstance(d.decorator, cst.Call) else d.decorator
                   for d in node.decorators]
        decorators = {(dotted(target) or "").rpartition(".")[2] for target in targets}
        exempt = (name in RUN_ONCE_NAMES or name.startswith(RUN_ONCE_PREFIXES)
                  or bool(decorators & RUN_ONCE_DECORATORS)
                  or any(scope.imports.qualify(target) in RUN_ONCE_SIGNALS for target in targets)
                  or scope.main_guard > 0 or scope.imports_alembic
                  or any(outer.exempt for outer in scope.functions))
        function = FunctionScope(node, name, bool(decorators & CACHING_DECORATORS), exempt)
        if scope.at_module_level:
            scope.imports.shadow(name)
            scope.module_functions[name] = function
        scope.functions.append(function)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if self.scope.at_module_level:
            self.scope.imports.shadow(node.name.value)
        self.scope.classes.append(node)

    def visit_If(self, node: cst.If) -> None:
        if self.scope.at_module_level and is_main_guard(node.test):
            self.scope.main_guard += 1

    def visit_Global(self, node: cst.Global) -> None:
        if self.scope.function is not None:
            self.scope.function.kept.update(item.name.value for item in node.names)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        if self.scope.function is not None:
            self.scope.function.kept.update(item.name.value for item in node.names)

    def visit_Return(self, node: cst.Return) -> None:
        self._enter_return(node.value)

    def visit_Yield(self, node: cst.Yield) -> None:
        self._enter_return(yielded(node))
        if self.scope.function is not None:
            self.scope.function.yielded = True

    def visit_Try_finalbody(self, node: cst.Try) -> None:
        if self.scope.function is not None:
            self.scope.function.finally_depth += 1

    def _enter_return(self, value: cst.BaseExpression | None) -> None:
        function = self.scope.function
        if function is not None and value is not None:
            function.return_depth += 1
            function.returned.update(names_in(value))

    def visit_Expr(self, node: cst.Expr) -> None:
        self.scope.statement = node

    def visit_Call(self, node: cst.Call) -> None:
        """What the call does to the names of the function it is in: keeps or disposes them."""
        function = self.scope.function
        qualified = self.scope.qualified_call(node)
        if function is None and self.scope.at_module_level and not self.scope.main_guard:
            called = dotted(node.func) or ""
            if called in SCRIPT_CALLS or called.endswith(".parse_args"):
                self.scope.runs_as_script = True
        if function is None or qualified in ENGINE_APIS or qualified == FLASK_SQLALCHEMY_CLASS:
            return
        func = node.func
        if isinstance(func, cst.Name) and func.value == "setattr":
            for arg in node.args[2:]:
                function.kept.update(names_in(arg.value))
        called = (dotted(func) or "").rpartition(".")[2]
        if called.lstrip("_").startswith(KEEPING_PREFIXES):  # registry.init_engine(engine)
            for arg in node.args:
                function.kept.update(names_in(arg.value))
        if not isinstance(func, cst.Attribute):
            return
        method, receiver = func.attr.value, func.value
        root = (dotted(func) or "").partition(".")[0]
        if method == "dispose":
            # after a yield, outside finally: skipped when the caller's code raises
            if isinstance(receiver, cst.Name):
                skipped = function.yielded and not function.finally_depth
                (function.disposed_after_yield if skipped else function.disposed).add(
                    receiver.value)
        elif root and root not in TRANSPARENT_CALL_ROOTS and method != "recreate" \
                and self.scope.imports.is_bound(root):
            pass  # handed to an imported module's function: we cannot tell what it keeps
        elif method in _KEEPING_METHODS:
            for arg in node.args:
                function.kept.update(names_in(arg.value))


class ScopeLeave(Family):
    """Runs after the families' leave_* methods."""

    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._leave_assignment()

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        self._leave_assignment()

    def _leave_assignment(self) -> None:
        if self.scope.function is not None:
            self.scope.function.carriers.pop()

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.scope.functions.pop()

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.scope.classes.pop()

    def leave_If(self, original_node: cst.If) -> None:
        if self.scope.at_module_level and is_main_guard(original_node.test):
            self.scope.main_guard -= 1

    def leave_Return(self, original_node: cst.Return) -> None:
        self._leave_return(original_node.value)

    def leave_Try_finalbody(self, original_node: cst.Try) -> None:
        if self.scope.function is not None:
            self.scope.function.finally_depth -= 1

    def leave_Yield(self, original_node: cst.Yield) -> None:
        self._leave_return(yielded(original_node))

    def _leave_return(self, value: cst.BaseExpression | None) -> None:
        if self.scope.function is not None and value is not None:
            self.scope.function.return_depth -= 1

    def leave_Expr(self, original_node: cst.Expr) -> None:
        self.scope.statement = None


def _unpacked_names(targets: list[cst.BaseExpression]) -> list[str]:
    """`a, b = ...`: the names, when the one target is a tuple or list of plain names."""
    if len(targets) != 1 or not isinstance(targets[0], (cst.Tuple, cst.List)):
        return []
    elements = [element.value for element in targets[0].elements]
    return [element.value for element in elements] \
        if elements and all(isinstance(element, cst.Name) for element in elements) else []


def yielded(node: cst.Yield) -> cst.BaseExpression | None:
    return node.value.item if isinstance(node.value, cst.From) else node.value


def names_in(expr: cst.CSTNode) -> set[str]:
    """Names an expression mentions directly (not inside nested calls' arguments' lambdas)."""
    return {node.value for node in nodes(expr, prune=(cst.Lambda,))
            if isinstance(node, cst.Name)}


def is_main_guard(test: cst.BaseExpression) -> bool:
    return (isinstance(test, cst.Comparison) and isinstance(test.left, cst.Name)
            and test.left.value == "__name__")


def keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None
