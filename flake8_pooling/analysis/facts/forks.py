"""Code that runs after a fork (or just before one), and what it does to engines there.

Child-side code runs in the forked process, which shares the parent's sockets: plain
`dispose()` there closes connections the parent still uses (fact 6). Parent-side code runs
before the fork, where plain `dispose()` is one of the documented approaches (fact 2).
Registered as child-side: gunicorn's child hooks (from the config file), Celery
`worker_process_init` handlers, uWSGI `@postfork` functions and `uwsgi.post_fork_hook`,
`os.register_at_fork(after_in_child=...)`, and initializers of process pools that fork.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ...vocabulary import (CELERY_CLASS, CELERY_WORKER_PROCESS_INIT, ENGINE_APIS,
                           FLASK_SQLALCHEMY_CLASS,
                           GET_CONTEXT, GUNICORN_HOOKS, POOL_TASK_METHODS, PROCESS_CLASS,
                           PROCESS_POOLS, REGISTER_AT_FORK,
                           TRANSPARENT_CALL_ROOTS, UWSGI_POST_FORK_HOOK, UWSGI_POSTFORK)
from ..names import dotted
from ..values import evaluate, resolve
from .gunicorn import GunicornConfig
from .scope import Family, FunctionScope, Scope, keyword
from .walk import nodes


@dataclass(eq=False)
class Disposal:
    """`engine.dispose(...)`, or `engine.pool = engine.pool.recreate()`, in a function."""
    node: cst.CSTNode  # the dispose call (or the recreate assignment, or a bound method)
    receiver: cst.BaseExpression  # what is disposed: `engine`, `db.engine`, ...
    close: object  # the close= argument: True when absent, UNKNOWN when not a literal
    statement: cst.Expr | None = None  # the statement, when the call stands alone
    bound_method: bool = False  # `after_in_child=engine.dispose`: called with no arguments
    # `self.dispose_engine()`: a call of a method or function whose body disposes (`node` is
    # the call, `receiver` what that body disposes); its name, for messages
    helper: str | None = None


@dataclass(eq=False)
class ChildCode:
    """A function (or lambda, or bound method) that runs in a forked process, or just before."""
    origin: str  # for messages: "gunicorn post_fork hook", "Celery worker_process_init handler"
    side: str  # "child" (just after the fork), "worker" (later in the child) or "parent"
    disposals: list[Disposal] = field(default_factory=list)
    # calls it makes that we cannot see into: it may dispose engines we do not see
    opaque_calls: bool = False
    gunicorn_hook: bool = False  # a hook of the module's gunicorn config
    function: FunctionScope | None = None  # the function that runs, when it is one


@dataclass(eq=False)
class CeleryApp:
    """`app = Celery(...)` at module level: the module a worker is started with (`-A`)."""
    name: str  # the module-level name it is bound to
    node: cst.Call


@dataclass(eq=False)
class ForkingPool:
    """A process pool (or Process) that forks, with no initializer: its children run `tasks`
    with whatever the parent held when it forked."""
    node: cst.Call
    tasks: dict[str, set[str]]  # the module-level functions it runs -> the names they use
    used_before: set[str]  # names the creating code used before it made the pool


@dataclass(eq=False)
class _FunctionDisposals:
    disposals: list[Disposal] = field(default_factory=list)
    opaque_calls: bool = False


@dataclass(eq=False)
class _PidBranch:
    """`if self._pid != os.getpid():`: code that runs when the process finds it is a fork."""
    cls: cst.ClassDef | None  # the class whose method it is in, for `self.<method>()` calls
    disposals: list[Disposal] = field(default_factory=list)
    calls: list[tuple[cst.Call, str, bool]] = field(default_factory=list)  # (call, name, self.)


class ChildCodeFamily(Family):
    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope
        self._functions: dict[FunctionScope, _FunctionDisposals] = {}
        # (origin, side, what runs: a function name, a lambda, a bound method)
        self._registered: list[tuple[str, str, cst.BaseExpression]] = []
        self.celery_apps: list[CeleryApp] = []
        # (the call, the function it is in) of pools that fork and have no initializer
        self._pools: list[tuple[cst.Call, FunctionScope | None, str | None]] = []
        # `app.conf.worker_concurrency = 10`, `conf.update(worker_concurrency=10)`
        self.celery_concurrency: cst.BaseExpression | None = None
        self._pid_branches: list[_PidBranch] = []
        self._open_branches: list[tuple[cst.If, _PidBranch]] = []
        self._methods: dict[tuple[int, str], FunctionScope] = {}  # (class, name) -> method
        self._pid_names: dict[FunctionScope, set[str]] = {}  # `current = os.getpid()`

    def _of(self, function: FunctionScope) -> _FunctionDisposals:
        return self._functions.setdefault(function, _FunctionDisposals())

    def visit_If(self, node: cst.If) -> None:
        function = self.scope.function
        if function is not None and _checks_pid(node.test, self.scope,
                                                self._pid_names.get(function, set())):
            branch = _PidBranch(self.scope.classes[-1] if self.scope.classes else None)
            self._pid_branches.append(branch)
            self._open_branches.append((node, branch))

    def leave_If_body(self, node: cst.If) -> None:
        if self._open_branches and self._open_branches[-1][0] is node:
            self._open_branches.pop()  # the `else:` is the parent's side

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        scope = self.scope
        if scope.classes and len(scope.functions) == 1:
            self._methods[(id(scope.classes[-1]), node.name.value)] = scope.functions[-1]
        for decorator in node.decorators:
            expr = decorator.decorator
            expr = expr.func if isinstance(expr, cst.Call) else expr
            qualified = self.scope.imports.qualify(expr) or ""
            if qualified == UWSGI_POSTFORK:
                self._registered.append(("uWSGI @postfork function", "child", node.name))
            elif qualified == CELERY_WORKER_PROCESS_INIT:
                self._registered.append(("Celery worker_process_init handler", "child",
                                         node.name))

    def visit_Assign(self, node: cst.Assign) -> None:
        function = self.scope.function
        value = node.value
        if function is not None and isinstance(value, cst.Call) \
                and self.scope.imports.qualify(value.func) == "os.getpid":
            self._pid_names.setdefault(function, set()).update(
                t.target.value for t in node.targets if isinstance(t.target, cst.Name))
        if self.scope.at_module_level and isinstance(value, cst.Call) \
                and self.scope.qualified_call(value) == CELERY_CLASS:
            target = node.targets[0].target
            self.celery_apps.append(CeleryApp(target.value if isinstance(target, cst.Name)
                                              else "app", value))
        for target in node.targets:
            if self.scope.at_module_level and isinstance(target.target, cst.Attribute) \
                    and target.target.attr.value == "worker_concurrency":
                self.celery_concurrency = value
        for target in (t.target for t in node.targets):
            if self.scope.imports.qualify(target) == UWSGI_POST_FORK_HOOK:
                self._registered.append(("uWSGI post_fork_hook", "child", value))
            # engine.pool = engine.pool.recreate(): the pre-1.4.33 form of dispose(close=False)
            if function is not None and isinstance(target, cst.Attribute) \
                    and target.attr.value == "pool" and isinstance(value, cst.Call) \
                    and isinstance(value.func, cst.Attribute) \
                    and value.func.attr.value == "recreate":
                self._of(function).disposals.append(Disposal(value, target.value, False))

    def visit_Call(self, node: cst.Call) -> None:
        scope = self.scope
        if scope.at_module_level:
            concurrency = keyword(node, "worker_concurrency")
            if concurrency is not None:
                self.celery_concurrency = concurrency
        qualified = scope.qualified_call(node) or ""
        if qualified in ENGINE_APIS or qualified == FLASK_SQLALCHEMY_CLASS:
            return
        self._registration(node, qualified)
        function = scope.function
        if function is None:
            return
        root = (dotted(node.func) or "").partition(".")[0]
        for _, branch in self._open_branches:
            if isinstance(node.func, cst.Name):
                branch.calls.append((node, node.func.value, False))
            elif isinstance(node.func, cst.Attribute) and root == "self" \
                    and isinstance(node.func.value, cst.Name):
                branch.calls.append((node, node.func.attr.value, True))
        if isinstance(node.func, cst.Name):
            if root not in TRANSPARENT_CALL_ROOTS:
                self._of(function).opaque_calls = True
        elif isinstance(node.func, cst.Attribute):
            method, receiver = node.func.attr.value, node.func.value
            if method == "dispose":
                close = keyword(node, "close")
                statement = scope.statement if scope.statement is not None \
                    and scope.statement.value is node else None
                disposal = Disposal(node, receiver,
                                    True if close is None else evaluate(close, scope.constants),
                                    statement)
                self._of(function).disposals.append(disposal)
                for _, branch in self._open_branches:
                    branch.disposals.append(disposal)
            elif root and root not in TRANSPARENT_CALL_ROOTS and method != "recreate" \
                    and scope.imports.is_bound(root):
                self._of(function).opaque_calls = True  # a function of an imported module

    def _registration(self, node: cst.Call, qualified: str) -> None:
        if qualified == REGISTER_AT_FORK:
            for arg in node.args:
                if arg.keyword is not None and arg.keyword.value == "after_in_child":
                    self._registered.append(("os.register_at_fork(after_in_child=...)", "child",
                                             arg.value))
                elif arg.keyword is not None and arg.keyword.value == "before":
                    self._registered.append(("os.register_at_fork(before=...)", "parent",
                                             arg.value))
        elif qualified == CELERY_WORKER_PROCESS_INIT and node.args:
            self._registered.append(("Celery worker_process_init handler", "child",
                                     node.args[0].value))
        elif qualified == PROCESS_CLASS or (
                isinstance(node.func, cst.Attribute) and node.func.attr.value == "Process"
                and self._start_method(node.func.value) == "fork"):
            target = keyword(node, "target")
            if isinstance(target, cst.Name):
                self._pools.append((node, self.scope.function, target.value))
        elif qualified in PROCESS_POOLS or self._is_forking_context_pool(node):
            initializer = keyword(node, "initializer")
            position = PROCESS_POOLS.get(qualified, 1)
            positional = [arg.value for arg in node.args if arg.keyword is None and not arg.star]
            if initializer is None and len(positional) > position:
                initializer = positional[position]
            context = keyword(node, "mp_context")
            if initializer is None and (context is None
                                        or self._start_method(context) == "fork"):
                self._pools.append((node, self.scope.function, None))
            if initializer is not None and (context is None or self._start_method(context)
                                            == "fork"):
                self._registered.append(("process pool initializer (fork start method)",
                                         "child", initializer))

    def _start_method(self, expr: cst.BaseExpression) -> str | None:
        """"fork" for get_context("fork"), None when not known."""
        constants = self.scope.constants
        expr = resolve(expr, constants)
        if isinstance(expr, cst.Call) and self.scope.imports.qualify(expr.func) == GET_CONTEXT \
                and expr.args:
            method = evaluate(expr.args[0].value, constants)
            return method if isinstance(method, str) else None
        return None

    def _is_forking_context_pool(self, node: cst.Call) -> bool:
        # multiprocessing.get_context("fork").Pool(...): spawn and forkserver contexts do not fork
        func = node.func
        return isinstance(func, cst.Attribute) and func.attr.value == "Pool" \
            and self._start_method(func.value) == "fork"

    def finish(self, gunicorn: GunicornConfig | None) -> list[ChildCode]:
        functions = self.scope.module_functions
        found, seen = [], set()
        if gunicorn is not None:
            for name, node in gunicorn.hooks.items():
                if name in GUNICORN_HOOKS:
                    function = next(scope for scope in functions.values() if scope.node is node)
                    seen.add(function)
                    code = self._child_code(f"gunicorn {name} hook", GUNICORN_HOOKS[name][1],
                                            function)
                    code.gunicorn_hook = True
                    found.append(code)
        for origin, side, what in self._registered:
            if isinstance(what, cst.Name) and what.value in functions:
                function = functions[what.value]
                if function in seen:  # one function given to two pools runs as one
                    continue
                seen.add(function)
                found.append(self._child_code(origin, side, function))
            elif isinstance(what, cst.Attribute) and what.attr.value == "dispose":
                found.append(ChildCode(origin, side, [Disposal(what, what.value, True,
                                                               bound_method=True)]))
            elif isinstance(what, cst.Lambda):
                found.append(ChildCode(origin, side,
                                       _disposals_in(what.body, self.scope.constants)))
        for branch in self._pid_branches:
            disposals = list(branch.disposals)
            for call, name, method in branch.calls:
                target = self._methods.get((id(branch.cls), name)) if method and branch.cls \
                    else functions.get(name) if not method else None
                inner = self._functions.get(target) if target is not None else None
                plain = [d for d in inner.disposals if d.close is True] if inner else []
                if plain:
                    disposals.append(Disposal(call, plain[0].receiver, True,
                                              helper=f"{'self.' if method else ''}{name}()"))
            if disposals:
                found.append(ChildCode("branch that finds the process is a fork (os.getpid() "
                                       "changed)", "child", disposals))
        return found

    def forking_pools(self) -> list[ForkingPool]:
        """The pools that fork without an initializer, with the module functions they run."""
        found = []
        functions = self.scope.module_functions
        for node, function, target in self._pools:
            where = function.node if function is not None else None
            tasks = {target} if target else set()
            used_before: set[str] = set()
            if where is not None:
                tasks |= _tasks_of(where, node)
                used_before = _names_before(where, node)
            named = {name: _names_in(functions[name].node) for name in tasks
                     if name in functions}
            if named:
                found.append(ForkingPool(node, named, used_before))
        return found

    def _child_code(self, origin: str, side: str, function: FunctionScope) -> ChildCode:
        own = self._functions.get(function, _FunctionDisposals())
        return ChildCode(origin, side, own.disposals, own.opaque_calls, function=function)


def _checks_pid(test: cst.BaseExpression, scope: Scope, pid_names: set[str]) -> bool:
    """`x != os.getpid()`, `os.getpid() != x`, `x is not os.getpid()`, or with a local bound to
    os.getpid(): true in a fork."""
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    if not isinstance(test.comparisons[0].operator, (cst.NotEqual, cst.IsNot)):
        return False
    sides = (test.left, test.comparisons[0].comparator)
    return any((isinstance(side, cst.Call) and scope.imports.qualify(side.func) == "os.getpid")
               or (isinstance(side, cst.Name) and side.value in pid_names) for side in sides)


def _disposals_in(expr: cst.CSTNode, constants) -> list[Disposal]:
    """dispose() calls inside an expression (a lambda's body)."""
    found: list[Disposal] = []
    for node in nodes(expr):
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) \
                and node.func.attr.value == "dispose":
            close = keyword(node, "close")
            found.append(Disposal(node, node.func.value,
                                  True if close is None else evaluate(close, constants)))
    return found


def _pool_name(function: cst.CSTNode, pool: cst.Call) -> str | None:
    """The name a pool is bound to: `with Pool() as pool`, `pool = Pool()`."""
    for node in nodes(function):
        if isinstance(node, cst.WithItem) and node.item is pool and node.asname is not None \
                and isinstance(node.asname.name, cst.Name):
            return node.asname.name.value
        if isinstance(node, cst.Assign) and node.value is pool \
                and isinstance(node.targets[0].target, cst.Name):
            return node.targets[0].target.value
    return None


def _tasks_of(function: cst.CSTNode, pool: cst.Call) -> set[str]:
    """The functions given to `pool.map(f, ...)`, `pool.submit(f, ...)` and the like."""
    name = _pool_name(function, pool)
    if name is None:
        return set()
    return {node.args[0].value.value for node in nodes(function)
            if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
            and node.func.attr.value in POOL_TASK_METHODS
            and isinstance(node.func.value, cst.Name) and node.func.value.value == name
            and node.args and isinstance(node.args[0].value, cst.Name)}


def _names_in(node: cst.CSTNode) -> set[str]:
    return {inner.value for inner in nodes(node) if isinstance(inner, cst.Name)}


def _names_before(function: cst.FunctionDef, pool: cst.Call) -> set[str]:
    """Names the function's statements use before the one that makes the pool."""
    names: set[str] = set()
    for statement in function.body.body:
        inside = _contains(statement, pool)
        if inside:
            break
        names |= _names_in(statement)
    return names


def _contains(node: cst.CSTNode, target: cst.CSTNode) -> bool:
    return any(inner is target for inner in nodes(node))
