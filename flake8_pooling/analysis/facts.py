"""One libcst pass over a module that collects what the rules reason about.

Facts are plain data that point at the libcst nodes they came from, so a rule can report at a
node and a fix can edit it. Rules never walk the tree themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import libcst as cst

from ..settings import Settings
from .deployment import Deployment
from .forks import (GUNICORN_HOOKS, GUNICORN_SETTINGS, PROCESS_POOLS, ChildCode, Disposal,
                    GunicornConfig, near_hooks)
from .names import ImportTable, dotted
from .prefilter import is_gunicorn_config_name
from .pooler import PoolerEvidence, pooler_for
from .urls import DatabaseUrl, parse_url
from .values import HOLE, UNKNOWN, dict_key, evaluate, resolve


@dataclass(frozen=True)
class EngineApi:
    label: str  # how messages name it
    is_async: bool
    from_config: bool  # engine_from_config: options arrive as a prefixed dict
    # option strings arrive at create_engine() unconverted; engine_from_config converts numeric
    # ones, Flask-SQLAlchemy 3 does too (2.x does not: unknown, so treated as converted)
    strings_unconverted: bool


ENGINE_APIS = {
    "sqlalchemy.create_engine": EngineApi("create_engine()", False, False, True),
    "sqlalchemy.ext.asyncio.create_async_engine":
        EngineApi("create_async_engine()", True, False, True),
    "sqlalchemy.engine_from_config": EngineApi("engine_from_config()", False, True, False),
    "sqlalchemy.ext.asyncio.async_engine_from_config":
        EngineApi("async_engine_from_config()", True, True, False),
}
FLASK_SQLALCHEMY = EngineApi("Flask-SQLAlchemy", False, False, False)
_FLASK_SQLALCHEMY_CLASS = "flask_sqlalchemy.SQLAlchemy"
# Session classes whose instances must not be shared (domain 28), and the factories that make them
SESSION_CLASSES = {"sqlalchemy.orm.Session": False, "sqlalchemy.orm.session.Session": False,
                   "sqlmodel.Session": False, "sqlmodel.orm.session.Session": False,
                   "sqlalchemy.ext.asyncio.AsyncSession": True,
                   "sqlalchemy.ext.asyncio.session.AsyncSession": True,
                   "sqlmodel.ext.asyncio.session.AsyncSession": True}
SESSION_MAKERS = {"sqlalchemy.orm.sessionmaker": False,
                  "sqlalchemy.orm.session.sessionmaker": False,
                  "sqlalchemy.ext.asyncio.async_sessionmaker": True,
                  "sqlalchemy.ext.asyncio.session.async_sessionmaker": True}
_CHECKOUTS = ("connect", "begin", "raw_connection")
# Calls in a hook that cannot hide an engine disposal: logging and the hook's own arguments.
_TRANSPARENT_ROOTS = {"server", "worker", "arbiter", "print", "logging", "logger", "log", "os",
                      "sys", "time", "signal", "str", "int", "len", "range", "isinstance"}
_URL_CREATE = {"sqlalchemy.engine.URL.create", "sqlalchemy.URL.create",
               "sqlalchemy.engine.url.URL.create"}
_CONFIG_KEYS = ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_ENGINE_OPTIONS", "SQLALCHEMY_BINDS")
# Calls that read a URL from the environment or a settings store: getenv("DATABASE_URL"), ...
_ENV_READERS = {"getenv", "get", "config", "env", "str", "url", "db_url", "environ"}
# Decorators that make a function return the same object on every call.
_CACHING_DECORATORS = {"cache", "lru_cache", "cached_property", "cached", "alru_cache",
                       "memoize", "memoized", "once"}
# Functions that run once by convention: an engine there is not made per request.
_RUN_ONCE_PREFIXES = ("run_migrations", "migrate", "upgrade", "downgrade", "test_")
# Methods that keep their argument somewhere beyond the call: the engine outlives the function.
_KEEPING_METHODS = {"append", "add", "setdefault", "insert", "extend", "update", "put",
                    "register", "setattr", "__setitem__"}


@dataclass(eq=False)
class EngineOption:
    name: str
    key: str  # as written: "pool_size", or "sqlalchemy.pool_size" in a config dict
    value_node: cst.BaseExpression
    value: object  # literal value or UNKNOWN
    holder: cst.Arg | cst.DictElement  # the argument or dict entry that spells it
    container: cst.Call | cst.Dict  # where the holder lives
    from_environment: str | None = None  # read from this environment variable: a string


@dataclass(eq=False)
class FunctionScope:
    node: cst.FunctionDef
    name: str
    cached: bool
    exempt: bool  # runs once by convention: main(), alembic's run_migrations_*, tests
    returned: set[str] = field(default_factory=set)
    kept: set[str] = field(default_factory=set)
    disposed: set[str] = field(default_factory=set)
    disposals: list[Disposal] = field(default_factory=list)
    opaque_calls: bool = False  # calls functions we cannot see into
    # while visiting: are we inside a return/yield, and which name is being assigned
    return_depth: int = 0
    carriers: list[str | None] = field(default_factory=list)


@dataclass(eq=False)
class Lifetime:
    """What happens to an engine made inside a function: does it outlive the call?"""
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


@dataclass(eq=False)
class EngineCall:
    api: EngineApi
    node: cst.CSTNode  # where engine-level findings are reported: the call or the options dict
    options: dict[str, EngineOption]
    options_complete: bool  # False when a **splat or a config dict could not be read
    url: DatabaseUrl | None
    url_variable: str | None  # the environment variable the URL comes from
    options_site: cst.Call | cst.Dict | None  # where a fix adds options; None: nowhere safe
    lifetime: Lifetime | None  # None at module or class level
    pooler: PoolerEvidence | None = None
    # the pool class named by `poolclass=` (short name), None when not given, UNKNOWN when
    # it is not a sqlalchemy.pool class we can name (a string, a conditional, a variable)
    declared_pool: object = None

    @property
    def is_async(self) -> bool:
        driver = self.url.driver if self.url else None
        return self.api.is_async or driver in ("asyncpg", "psycopg_async", "aiosqlite",
                                               "aiomysql", "asyncmy")

    def option_value(self, name: str) -> object:
        option = self.options.get(name)
        return UNKNOWN if option is None else option.value


@dataclass(eq=False)
class FactoryCall:
    """A call, inside a function, of a function of this module that returns a new engine."""
    node: cst.Call
    factory: str
    lifetime: Lifetime


@dataclass(eq=False)
class ModuleSession:
    """A Session made at import: `session = Session(engine)`, `SessionLocal()`, ..."""
    node: cst.Call  # the call that makes it
    is_async: bool
    session_class: str | None  # qualified, when made from a class
    maker: cst.Call | None  # `sessionmaker(...)` in `sessionmaker(...)()`
    factory: str | None  # `SessionLocal` in `SessionLocal()`


@dataclass(eq=False)
class ModuleConnection:
    """A connection checked out at import: `connection = engine.connect()`."""
    node: cst.Call
    method: str


@dataclass(eq=False)
class ModuleFacts:
    module: cst.Module
    imports: ImportTable
    constants: dict[str, cst.BaseExpression]
    engines: list[EngineCall]
    factory_calls: list[FactoryCall]
    is_migration_env: bool
    # calls, inside functions, of functions imported from elsewhere: project factories, maybe
    imported_calls: list[FactoryCall] = field(default_factory=list)
    sessions: list[ModuleSession] = field(default_factory=list)
    connections: list[ModuleConnection] = field(default_factory=list)
    child_code: list[ChildCode] = field(default_factory=list)
    gunicorn: GunicornConfig | None = None


@dataclass(eq=False)
class _ConfigScope:
    """Flask-SQLAlchemy settings given together: a config class, a module, or `app.config`."""
    entries: dict[str, cst.BaseExpression] = field(default_factory=dict)


def collect(module: cst.Module, settings: Settings, path: str = "",
            deployment: Callable[[], Deployment] | None = None) -> ModuleFacts:
    """`deployment` gives the project's deployment files, read only if the module has engines."""
    collector = _Collector()
    module.visit(collector)
    return collector.finish(module, settings, path, deployment)


class _Collector(cst.CSTVisitor):
    def __init__(self) -> None:
        self.imports = ImportTable()
        self.constants: dict[str, cst.BaseExpression] = {}
        self._not_constant: set[str] = set()
        self._functions: list[FunctionScope] = []
        self._classes: list[cst.ClassDef] = []
        self._main_guard = 0
        self._engine_calls: list[tuple[cst.Call, EngineApi, Lifetime | None]] = []
        self._fsa_calls: list[cst.Call] = []
        self._local_calls: list[tuple[cst.Call, str, Lifetime]] = []
        self._imported_calls: list[FactoryCall] = []
        self._returning_engine: list[FunctionScope] = []  # `return create_engine(...)`
        self._named_engines: list[tuple[FunctionScope, str]] = []  # `engine = create_engine(...)`
        self._scopes: dict[object, _ConfigScope] = {}
        self.is_migration_env = False
        # sessions, connections and fork hooks
        self._sessions: list[ModuleSession] = []
        self._connections: list[ModuleConnection] = []
        self._session_factories: dict[str, bool] = {}  # SessionLocal -> makes AsyncSessions
        self._module_engines: set[str] = set()  # names bound to engines at module level
        self._module_functions: dict[str, FunctionScope] = {}
        self._module_imports: list[tuple[cst.CSTNode, str]] = []
        self._gunicorn_settings: dict[str, cst.BaseExpression] = {}
        # (origin, side, what runs: a function name, a lambda, a bound method)
        self._fork_code: list[tuple[str, str, cst.BaseExpression]] = []
        self._statement: cst.Expr | None = None

    # -- where we are --------------------------------------------------------------------------
    @property
    def _at_module_level(self) -> bool:
        return not self._functions and not self._classes

    def _lifetime(self) -> Lifetime | None:
        if not self._functions:
            return None
        scope = self._functions[-1]
        carrier = next((name for name in reversed(scope.carriers) if name), None)
        escapes = scope.return_depth > 0 or "<kept>" in scope.carriers
        return Lifetime(scope, None if carrier == "<kept>" else carrier, escapes)

    # -- imports and module constants ----------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> None:
        self.imports.add(node)
        if self._at_module_level:
            for alias in node.names:
                self._module_imports.append((node, dotted(alias.name) or ""))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.imports.add(node)
        if self._at_module_level and node.module is not None and not node.relative:
            self._module_imports.append((node, dotted(node.module) or ""))
        # alembic's env.py and migration scripts run once per command, not per request
        if node.module is not None and (dotted(node.module) or "").split(".")[0] == "alembic":
            self.is_migration_env = True

    def _bind_module_name(self, name: str, value: cst.BaseExpression | None) -> None:
        self.imports.shadow(name)
        if name in self.constants or name in self._not_constant or value is None:
            self.constants.pop(name, None)
            self._not_constant.add(name)
        else:
            self.constants[name] = value

    def visit_Assign(self, node: cst.Assign) -> None:
        targets = [t.target for t in node.targets]
        if self._at_module_level:
            for target in targets:
                if isinstance(target, cst.Name):
                    self._bind_module_name(target.value, node.value if len(targets) == 1 else None)
                    if target.value in GUNICORN_SETTINGS:
                        self._gunicorn_settings[target.value] = node.value
        self._config_assignment(targets, node.value)
        self._at_import(targets, node.value)
        self._fork_assignment(targets, node.value)
        self._enter_assignment(targets, node.value)

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._leave_assignment()

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if self._at_module_level and isinstance(node.target, cst.Name):
            self._bind_module_name(node.target.value, node.value)
        if node.value is not None:
            self._config_assignment([node.target], node.value)
            self._at_import([node.target], node.value)
        self._enter_assignment([node.target], node.value)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        self._leave_assignment()

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name):
            self._not_constant.add(node.target.value)
            self.constants.pop(node.target.value, None)

    # -- sessions and connections made at import (module level and class bodies) ----------------
    def _at_import(self, targets: list[cst.BaseExpression], value: cst.BaseExpression) -> None:
        if self._functions or self._main_guard or not isinstance(value, cst.Call):
            return
        names = [t.value for t in targets if isinstance(t, cst.Name)]
        qualified = self.imports.qualify(value.func) or ""
        if qualified in ENGINE_APIS and not self._classes:
            self._module_engines.update(names)
        elif qualified in SESSION_MAKERS and not self._classes:
            for name in names:
                self._session_factories[name] = SESSION_MAKERS[qualified]
        self._module_call(value)

    def _module_call(self, call: cst.Call) -> None:
        """A call run at import: does it make a session or check out a connection?"""
        func = call.func
        qualified = self.imports.qualify(func) or ""
        if qualified in SESSION_CLASSES:
            self._sessions.append(ModuleSession(call, SESSION_CLASSES[qualified], qualified,
                                                None, None))
        elif isinstance(func, cst.Call) and (self.imports.qualify(func.func) or "") \
                in SESSION_MAKERS:
            is_async = SESSION_MAKERS[self.imports.qualify(func.func)]
            self._sessions.append(ModuleSession(call, is_async, None, func, None))
        elif isinstance(func, cst.Name) and func.value in self._session_factories:
            self._sessions.append(ModuleSession(call, self._session_factories[func.value], None,
                                                None, func.value))
        elif isinstance(func, cst.Attribute) and func.attr.value in _CHECKOUTS:
            receiver = func.value
            engine = (isinstance(receiver, cst.Name) and receiver.value in self._module_engines) \
                or (isinstance(receiver, cst.Call)
                    and (self.imports.qualify(receiver.func) or "") in ENGINE_APIS)
            if engine:
                self._connections.append(ModuleConnection(call, func.attr.value))

    def visit_Expr(self, node: cst.Expr) -> None:
        self._statement = node
        if not self._functions and not self._main_guard and isinstance(node.value, cst.Call):
            self._module_call(node.value)

    def leave_Expr(self, original_node: cst.Expr) -> None:
        self._statement = None

    # -- fork hooks ------------------------------------------------------------------------------
    def _fork_assignment(self, targets: list[cst.BaseExpression],
                         value: cst.BaseExpression) -> None:
        for target in targets:
            if self.imports.qualify(target) == "uwsgi.post_fork_hook":
                self._fork_code.append(("uWSGI post_fork_hook", "child", value))
            # engine.pool = engine.pool.recreate(): the pre-1.4.33 form of dispose(close=False)
            if self._functions and isinstance(target, cst.Attribute) \
                    and target.attr.value == "pool" and isinstance(value, cst.Call) \
                    and isinstance(value.func, cst.Attribute) \
                    and value.func.attr.value == "recreate":
                self._functions[-1].disposals.append(
                    Disposal(value, target.value, False))

    def _fork_decorators(self, node: cst.FunctionDef) -> None:
        for decorator in node.decorators:
            expr = decorator.decorator
            expr = expr.func if isinstance(expr, cst.Call) else expr
            qualified = self.imports.qualify(expr) or ""
            if qualified == "uwsgidecorators.postfork":
                self._fork_code.append(("uWSGI @postfork function", "child", node.name))
            elif qualified == "celery.signals.worker_process_init.connect":
                self._fork_code.append(("Celery worker_process_init handler", "child",
                                        node.name))

    def _fork_call(self, node: cst.Call, qualified: str) -> None:
        if qualified == "os.register_at_fork":
            for arg in node.args:
                if arg.keyword is not None and arg.keyword.value == "after_in_child":
                    self._fork_code.append(("os.register_at_fork(after_in_child=...)", "child",
                                            arg.value))
                elif arg.keyword is not None and arg.keyword.value == "before":
                    self._fork_code.append(("os.register_at_fork(before=...)", "parent",
                                            arg.value))
        elif qualified == "celery.signals.worker_process_init.connect" and node.args:
            self._fork_code.append(("Celery worker_process_init handler", "child",
                                    node.args[0].value))
        elif qualified in PROCESS_POOLS or self._is_forking_context_pool(node):
            initializer = _keyword(node, "initializer")
            position = PROCESS_POOLS.get(qualified, 1)
            positional = [arg.value for arg in node.args if arg.keyword is None and not arg.star]
            if initializer is None and len(positional) > position:
                initializer = positional[position]
            context = _keyword(node, "mp_context")
            if initializer is not None and (context is None or self._start_method(context)
                                            == "fork"):
                self._fork_code.append(("process pool initializer (fork start method)", "child",
                                        initializer))

    def _start_method(self, expr: cst.BaseExpression) -> str | None:
        """"fork" for get_context("fork"), None when not known."""
        expr = resolve(expr, self.constants)
        if isinstance(expr, cst.Call) and self.imports.qualify(expr.func) == \
                "multiprocessing.get_context" and expr.args:
            method = evaluate(expr.args[0].value, self.constants)
            return method if isinstance(method, str) else None
        return None

    def _is_forking_context_pool(self, node: cst.Call) -> bool:
        # multiprocessing.get_context("fork").Pool(...): spawn and forkserver contexts do not fork
        func = node.func
        return isinstance(func, cst.Attribute) and func.attr.value == "Pool" \
            and self._start_method(func.value) == "fork"

    def _enter_assignment(self, targets: list[cst.BaseExpression],
                          value: cst.BaseExpression | None) -> None:
        if not self._functions:
            return
        scope = self._functions[-1]
        if any(not isinstance(t, cst.Name) for t in targets):
            scope.carriers.append("<kept>")  # self.engine = ..., cache[key] = ...
            if value is not None:  # ENGINES[key] = engine: what it names outlives the call
                scope.kept.update(_names_in(value))
        else:
            name = targets[0].value if len(targets) == 1 else None
            scope.carriers.append("<kept>" if name in scope.kept else name)

    def _leave_assignment(self) -> None:
        if self._functions:
            self._functions[-1].carriers.pop()

    # -- functions and classes -----------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        name = node.name.value
        decorators = {(dotted(d.decorator.func if isinstance(d.decorator, cst.Call)
                              else d.decorator) or "").rpartition(".")[2]
                      for d in node.decorators}
        exempt = (name == "main" or name.startswith(_RUN_ONCE_PREFIXES)
                  or self._main_guard > 0 or self.is_migration_env)
        at_module_level = self._at_module_level
        if at_module_level:
            self.imports.shadow(name)
        scope = FunctionScope(node, name, bool(decorators & _CACHING_DECORATORS), exempt)
        if at_module_level:
            self._module_functions[name] = scope
        self._fork_decorators(node)
        self._functions.append(scope)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._functions.pop()

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if self._at_module_level:
            self.imports.shadow(node.name.value)
        self._classes.append(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._classes.pop()

    def visit_If(self, node: cst.If) -> None:
        if self._at_module_level and _is_main_guard(node.test):
            self._main_guard += 1

    def leave_If(self, original_node: cst.If) -> None:
        if self._at_module_level and _is_main_guard(original_node.test):
            self._main_guard -= 1

    def visit_Global(self, node: cst.Global) -> None:
        if self._functions:
            self._functions[-1].kept.update(item.name.value for item in node.names)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        if self._functions:
            self._functions[-1].kept.update(item.name.value for item in node.names)

    def _enter_return(self, value: cst.BaseExpression | None) -> None:
        if self._functions and value is not None:
            scope = self._functions[-1]
            scope.return_depth += 1
            scope.returned.update(_names_in(value))

    def _leave_return(self, value: cst.BaseExpression | None) -> None:
        if self._functions and value is not None:
            self._functions[-1].return_depth -= 1

    def visit_Return(self, node: cst.Return) -> None:
        self._enter_return(node.value)

    def leave_Return(self, original_node: cst.Return) -> None:
        self._leave_return(original_node.value)

    def visit_Yield(self, node: cst.Yield) -> None:
        value = node.value.item if isinstance(node.value, cst.From) else node.value
        self._enter_return(value)

    def leave_Yield(self, original_node: cst.Yield) -> None:
        value = original_node.value
        self._leave_return(value.item if isinstance(value, cst.From) else value)

    # -- calls ---------------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        qualified = self.imports.qualify(node.func)
        api = ENGINE_APIS.get(qualified or "")
        if api is not None:
            lifetime = self._lifetime()
            self._engine_calls.append((node, api, lifetime))
            if lifetime is not None and lifetime.function.return_depth > 0:
                self._returning_engine.append(lifetime.function)
            elif lifetime is not None and lifetime.carrier is not None:
                self._named_engines.append((lifetime.function, lifetime.carrier))
            return
        if qualified == _FLASK_SQLALCHEMY_CLASS:
            self._fsa_calls.append(node)
            return
        self._fork_call(node, qualified or "")
        self._config_update_call(node)  # app.config.update(...) at module level too
        if not self._functions:
            return
        scope = self._functions[-1]
        root = (dotted(node.func) or "").partition(".")[0]
        if qualified and self.imports.is_bound(root):
            self._imported_calls.append(FactoryCall(node, qualified, self._lifetime()))
        if isinstance(node.func, cst.Name):
            self._local_calls.append((node, node.func.value, self._lifetime()))
            if root not in _TRANSPARENT_ROOTS:
                scope.opaque_calls = True
        elif isinstance(node.func, cst.Attribute):
            method, receiver = node.func.attr.value, node.func.value
            if method == "dispose":
                close = _keyword(node, "close")
                statement = self._statement if self._statement is not None \
                    and self._statement.value is node else None
                scope.disposals.append(Disposal(
                    node, receiver, True if close is None else evaluate(close, self.constants),
                    statement))
                if isinstance(receiver, cst.Name):
                    scope.disposed.add(receiver.value)
            elif root and root not in _TRANSPARENT_ROOTS and method not in ("recreate",) \
                    and self.imports.is_bound(root):
                scope.opaque_calls = True  # a function of an imported module
            elif method in _KEEPING_METHODS:
                for arg in node.args:
                    scope.kept.update(_names_in(arg.value))
        if isinstance(node.func, cst.Name) and node.func.value == "setattr":
            for arg in node.args[2:]:
                scope.kept.update(_names_in(arg.value))

    # -- Flask-SQLAlchemy settings -------------------------------------------------------------
    def _scope_key(self, receiver: str | None) -> object:
        if receiver is not None:  # app.config[...] inside create_app() and friends
            return (receiver, id(self._functions[-1]) if self._functions else None)
        return self._classes[-1] if self._classes else "module"

    def _record_setting(self, key: object, name: str, value: cst.BaseExpression) -> None:
        self._scopes.setdefault(key, _ConfigScope()).entries[name] = value

    def _config_assignment(self, targets: list[cst.BaseExpression],
                           value: cst.BaseExpression) -> None:
        for target in targets:
            if isinstance(target, cst.Name) and target.value in _CONFIG_KEYS \
                    and not self._functions:
                self._record_setting(self._scope_key(None), target.value, value)
            elif isinstance(target, cst.Subscript) and len(target.slice) == 1:
                receiver = dotted(target.value)
                index = target.slice[0].slice
                key = evaluate(index.value) if isinstance(index, cst.Index) else None
                if receiver and receiver.endswith("config") and key in _CONFIG_KEYS:
                    self._record_setting(self._scope_key(receiver), key, value)

    def _config_update_call(self, node: cst.Call) -> None:
        if not isinstance(node.func, cst.Attribute) or \
                node.func.attr.value not in ("update", "from_mapping"):
            return
        receiver = dotted(node.func.value)
        if not receiver or not receiver.endswith("config"):
            return
        for arg in node.args:
            if arg.keyword is not None and arg.keyword.value in _CONFIG_KEYS:
                self._record_setting(self._scope_key(receiver), arg.keyword.value, arg.value)
            elif arg.keyword is None and isinstance(arg.value, cst.Dict):
                for element in arg.value.elements:
                    key = dict_key(element, {})
                    if key in _CONFIG_KEYS:
                        self._record_setting(self._scope_key(receiver), key, element.value)

    # -- after the pass ------------------------------------------------------------------------
    def finish(self, module: cst.Module, settings: Settings, path: str = "",
               deployment: Callable[[], Deployment] | None = None) -> ModuleFacts:
        constants = self.constants
        engines = [self._engine_call(call, api, lifetime)
                   for call, api, lifetime in self._engine_calls]
        for scope in self._scopes.values():
            engines.extend(self._flask_sqlalchemy_engines(scope))
        for call in self._fsa_calls:
            options = _keyword(call, "engine_options")
            if options is not None:
                engines.append(self._options_dict_engine(options, None))
        project_files = deployment() if deployment is not None and engines else None
        for engine in engines:
            engine.pooler, engine.url = pooler_for(engine.url, engine.url_variable, settings,
                                                   project_files)
            engine.declared_pool = self._declared_pool(engine.options)

        # A factory returns a new engine on every call; a cached one returns the same engine.
        returning = self._returning_engine + [function for function, name in self._named_engines
                                              if name in function.returned]
        factories = {function.name: function for function in returning if not function.cached}
        factory_calls = [FactoryCall(call, name, lifetime)
                         for call, name, lifetime in self._local_calls
                         if name in factories and lifetime.function.name != name]
        gunicorn = self._gunicorn_config(path)
        return ModuleFacts(module, self.imports, constants, engines, factory_calls,
                           self.is_migration_env, self._imported_calls, self._sessions,
                           self._connections, self._child_code(gunicorn), gunicorn)

    def _gunicorn_config(self, path: str) -> GunicornConfig | None:
        hooks = {name: scope.node for name, scope in self._module_functions.items()}
        named_hooks = set(hooks) & set(GUNICORN_HOOKS)
        if is_gunicorn_config_name(path):
            # named like one, and reading like one: a test_gunicorn.py is no config
            if not (self._gunicorn_settings or named_hooks or any(
                    near_hooks(name) for name in hooks if name not in GUNICORN_HOOKS)):
                return None
        elif not (named_hooks and self._gunicorn_settings):
            return None
        preload = self._gunicorn_settings.get("preload_app")
        preload = preload if preload is not None and evaluate(preload) is True else None
        return GunicornConfig(preload, self._module_imports, hooks,
                              [scope.node for scope in self._module_functions.values()],
                              dict(self._gunicorn_settings))

    def _child_code(self, gunicorn: GunicornConfig | None) -> list[ChildCode]:
        found = []
        if gunicorn is not None:
            for name in gunicorn.hooks:
                if name in GUNICORN_HOOKS:
                    scope = self._module_functions[name]
                    found.append(ChildCode(f"gunicorn {name} hook", GUNICORN_HOOKS[name][1],
                                           scope.disposals,
                                           scope.opaque_calls))
        seen = {id(self._module_functions[name]) for name in gunicorn.hooks
                if name in GUNICORN_HOOKS} if gunicorn is not None else set()
        for origin, side, what in self._fork_code:
            if isinstance(what, cst.Name) and what.value in self._module_functions:
                scope = self._module_functions[what.value]
                if id(scope) in seen:  # one function given to two pools runs as one
                    continue
                seen.add(id(scope))
                found.append(ChildCode(origin, side, scope.disposals, scope.opaque_calls))
            elif isinstance(what, cst.Attribute) and what.attr.value == "dispose":
                found.append(ChildCode(origin, side, [Disposal(what, what.value, True,
                                                               bound_method=True)]))
            elif isinstance(what, cst.Lambda):
                found.append(ChildCode(origin, side, _disposals_in(what.body, self.constants)))
        return found

    def _declared_pool(self, options: dict[str, EngineOption]) -> object:
        if "pool" in options:  # a ready-made pool instance
            return UNKNOWN
        option = options.get("poolclass")
        if option is None:
            return None
        qualified = self.imports.qualify(option.value_node) or ""
        module, _, name = qualified.rpartition(".")
        return name if module == "sqlalchemy.pool" else UNKNOWN

    def _url(self, expr: cst.BaseExpression | None) -> tuple[DatabaseUrl | None, str | None]:
        """The URL an expression gives, and the environment variable it comes from."""
        if expr is None:
            return None, None
        expr = resolve(expr, self.constants)
        value = evaluate(expr, self.constants)
        if isinstance(value, str):
            return parse_url(value), None
        if isinstance(expr, cst.Call) and self.imports.qualify(expr.func) in _URL_CREATE:
            return _url_from_parts(expr, self.constants), None
        read = self._environment_read(expr)
        if read is not None:
            name, default = read
            url = parse_url(evaluate(default, self.constants)) if default is not None else None
            return url, name
        return None, None

    def _environment_read(self, expr: cst.BaseExpression
                          ) -> tuple[str, cst.BaseExpression | None] | None:
        """`os.environ["X"]`, `os.getenv("X", default)`, `settings("X")`: (X, default)."""
        expr = resolve(expr, self.constants)
        if isinstance(expr, cst.Subscript) and len(expr.slice) == 1 \
                and self.imports.qualify(expr.value) == "os.environ":
            index = expr.slice[0].slice
            name = evaluate(index.value, self.constants) if isinstance(index, cst.Index) else None
            return (name, None) if isinstance(name, str) else None
        if isinstance(expr, cst.Call) and expr.args:
            func = dotted(expr.func) or ""
            if func.rpartition(".")[2] in _ENV_READERS:
                name = evaluate(expr.args[0].value, self.constants)
                if isinstance(name, str) and name.isupper() and HOLE not in name:
                    default = expr.args[1].value if len(expr.args) > 1 else \
                        _keyword(expr, "default")
                    return name, default
        return None

    def _option(self, name: str, key: str, value: cst.BaseExpression,
                holder: cst.Arg | cst.DictElement, container: cst.Call | cst.Dict) -> EngineOption:
        read = self._environment_read(value)
        # once the variable is set its value is a string, whatever the default's type
        return EngineOption(name, key, value, evaluate(value, self.constants), holder, container,
                            read[0] if read is not None else None)

    def _engine_call(self, call: cst.Call, api: EngineApi,
                     lifetime: Lifetime | None) -> EngineCall:
        options: dict[str, EngineOption] = {}
        complete = True
        url_expr = None
        positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
        if api.from_config:
            config_expr = positional[0].value if positional else _keyword(call, "configuration")
            prefix = evaluate(_keyword(call, "prefix") or cst.SimpleString('"sqlalchemy."'))
            config = resolve(config_expr, self.constants) if config_expr is not None else None
            if isinstance(config, cst.Dict) and isinstance(prefix, str):
                complete &= self._read_dict(config, options, prefix)
                url_option = options.pop("url", None)
                url_expr = url_option.value_node if url_option else None
            else:
                complete = False
        else:
            url_expr = positional[0].value if positional else _keyword(call, "url")
        for arg in call.args:
            if arg.star == "**":
                splat = resolve(arg.value, self.constants)
                if isinstance(splat, cst.Dict):
                    complete &= self._read_dict(splat, options, "")
                else:
                    complete = False
            elif arg.star == "*":
                complete = False
            elif arg.keyword is not None and arg.keyword.value not in ("url", "configuration",
                                                                       "prefix"):
                options[arg.keyword.value] = self._option(
                    arg.keyword.value, arg.keyword.value, arg.value, arg, call)
        url, variable = self._url(url_expr)
        return EngineCall(api, call, options, complete, url, variable, call, lifetime)

    def _read_dict(self, node: cst.Dict, options: dict[str, EngineOption], prefix: str) -> bool:
        """Options from a dict literal; False if some entry could not be read."""
        complete = True
        for element in node.elements:
            key = dict_key(element, self.constants)
            if key is None:
                complete = False
            elif key.startswith(prefix):
                name = key[len(prefix):]
                options[name] = self._option(name, key, element.value, element, node)
        return complete

    def _options_dict_engine(self, options_expr: cst.BaseExpression,
                             url_expr: cst.BaseExpression | None,
                             report_at: cst.CSTNode | None = None) -> EngineCall:
        """A Flask-SQLAlchemy engine: its options dict, its URL (engines built at init_app)."""
        options: dict[str, EngineOption] = {}
        node = resolve(options_expr, self.constants)
        complete = isinstance(node, cst.Dict) and self._read_dict(node, options, "")
        url_option = options.pop("url", None)  # SQLALCHEMY_BINDS entries carry their own url
        if url_option is not None:
            url_expr = url_option.value_node
        url, variable = self._url(url_expr)
        site = node if isinstance(node, cst.Dict) else None
        return EngineCall(FLASK_SQLALCHEMY, report_at or options_expr, options, complete, url,
                          variable, site, None)

    def _flask_sqlalchemy_engines(self, scope: _ConfigScope) -> list[EngineCall]:
        engines = []
        uri = scope.entries.get("SQLALCHEMY_DATABASE_URI")
        options = scope.entries.get("SQLALCHEMY_ENGINE_OPTIONS")
        if options is not None:
            engines.append(self._options_dict_engine(options, uri))
        elif uri is not None:
            engine = self._options_dict_engine(cst.Dict([]), uri, report_at=uri)
            engine.options_site = None  # nowhere to write options without adding a setting
            engines.append(engine)
        binds = resolve(scope.entries.get("SQLALCHEMY_BINDS", cst.Name("None")), self.constants)
        if isinstance(binds, cst.Dict):
            for element in binds.elements:
                if not isinstance(element, cst.DictElement):
                    continue
                value = resolve(element.value, self.constants)
                if isinstance(value, cst.Dict):
                    engines.append(self._options_dict_engine(value, None))
                else:
                    engine = self._options_dict_engine(cst.Dict([]), value, report_at=element.value)
                    engine.options_site = None
                    engines.append(engine)
        return engines


def _keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg.value
    return None


def _url_from_parts(call: cst.Call, constants) -> DatabaseUrl | None:
    """URL.create("postgresql+asyncpg", host=..., port=...): the parts that are literals."""
    positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
    driver_expr = positional[0] if positional else _keyword(call, "drivername")
    drivername = evaluate(driver_expr, constants) if driver_expr is not None else UNKNOWN
    if not isinstance(drivername, str) or HOLE in drivername:
        return None
    backend, _, driver = drivername.partition("+")

    def part(name: str):
        expr = _keyword(call, name)
        value = evaluate(expr, constants) if expr is not None else None
        return None if value is UNKNOWN or (isinstance(value, str) and HOLE in value) else value

    port = part("port")
    return DatabaseUrl(backend, driver, part("host"), port if isinstance(port, int) else None,
                       part("database"), {})


def _names_in(expr: cst.CSTNode) -> set[str]:
    """Names an expression mentions directly (not inside nested calls' arguments' lambdas)."""
    found: set[str] = set()

    class _Names(cst.CSTVisitor):
        def visit_Name(self, node: cst.Name) -> None:
            found.add(node.value)

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

    expr.visit(_Names())
    return found


def _is_main_guard(test: cst.BaseExpression) -> bool:
    return (isinstance(test, cst.Comparison) and isinstance(test.left, cst.Name)
            and test.left.value == "__name__")


def _disposals_in(expr: cst.CSTNode, constants) -> list[Disposal]:
    """dispose() calls inside an expression (a lambda's body)."""
    found: list[Disposal] = []

    class _Dispose(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            if isinstance(node.func, cst.Attribute) and node.func.attr.value == "dispose":
                close = _keyword(node, "close")
                found.append(Disposal(node, node.func.value,
                                      True if close is None else evaluate(close, constants)))

    expr.visit(_Dispose())
    return found
