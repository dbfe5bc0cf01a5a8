"""One libcst pass over a module that collects what the rules reason about.

Facts are plain data that point at the libcst nodes they came from, so a rule can report at a
node and a fix can edit it. Rules never walk the tree themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ..settings import Settings
from .names import ImportTable, dotted
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
class ModuleFacts:
    module: cst.Module
    imports: ImportTable
    constants: dict[str, cst.BaseExpression]
    engines: list[EngineCall]
    factories: dict[str, FunctionScope]  # functions that return a new engine, by name
    factory_calls: list[FactoryCall]
    is_migration_env: bool


@dataclass(eq=False)
class _ConfigScope:
    """Flask-SQLAlchemy settings given together: a config class, a module, or `app.config`."""
    entries: dict[str, cst.BaseExpression] = field(default_factory=dict)


def collect(module: cst.Module, settings: Settings) -> ModuleFacts:
    collector = _Collector()
    module.visit(collector)
    return collector.finish(module, settings)


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
        self._returning_engine: list[FunctionScope] = []  # `return create_engine(...)`
        self._named_engines: list[tuple[FunctionScope, str]] = []  # `engine = create_engine(...)`
        self._scopes: dict[object, _ConfigScope] = {}
        self.is_migration_env = False

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

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        self.imports.add(node)
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
        self._config_assignment(targets, node.value)
        self._enter_assignment(targets, node.value)

    def leave_Assign(self, original_node: cst.Assign) -> None:
        self._leave_assignment()

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if self._at_module_level and isinstance(node.target, cst.Name):
            self._bind_module_name(node.target.value, node.value)
        if node.value is not None:
            self._config_assignment([node.target], node.value)
        self._enter_assignment([node.target], node.value)

    def leave_AnnAssign(self, original_node: cst.AnnAssign) -> None:
        self._leave_assignment()

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Name):
            self._not_constant.add(node.target.value)
            self.constants.pop(node.target.value, None)

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
        if self._at_module_level:
            self.imports.shadow(name)
        self._functions.append(FunctionScope(node, name, bool(decorators & _CACHING_DECORATORS),
                                             exempt))

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
        if not self._functions:
            return
        scope = self._functions[-1]
        if isinstance(node.func, cst.Name):
            self._local_calls.append((node, node.func.value, self._lifetime()))
        elif isinstance(node.func, cst.Attribute):
            method, receiver = node.func.attr.value, node.func.value
            if method == "dispose" and isinstance(receiver, cst.Name):
                scope.disposed.add(receiver.value)
            elif method in _KEEPING_METHODS:
                for arg in node.args:
                    scope.kept.update(_names_in(arg.value))
        if isinstance(node.func, cst.Name) and node.func.value == "setattr":
            for arg in node.args[2:]:
                scope.kept.update(_names_in(arg.value))
        self._config_update_call(node)

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
    def finish(self, module: cst.Module, settings: Settings) -> ModuleFacts:
        constants = self.constants
        engines = [self._engine_call(call, api, lifetime)
                   for call, api, lifetime in self._engine_calls]
        for scope in self._scopes.values():
            engines.extend(self._flask_sqlalchemy_engines(scope))
        for call in self._fsa_calls:
            options = _keyword(call, "engine_options")
            if options is not None:
                engines.append(self._options_dict_engine(options, None))
        for engine in engines:
            engine.pooler = pooler_for(engine.url, engine.url_variable, settings)
            engine.declared_pool = self._declared_pool(engine.options)

        # A factory returns a new engine on every call; a cached one returns the same engine.
        returning = self._returning_engine + [function for function, name in self._named_engines
                                              if name in function.returned]
        factories = {function.name: function for function in returning if not function.cached}
        factory_calls = [FactoryCall(call, name, lifetime)
                         for call, name, lifetime in self._local_calls
                         if name in factories and lifetime.function.name != name]
        return ModuleFacts(module, self.imports, constants, engines, factories, factory_calls,
                           self.is_migration_env)

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
