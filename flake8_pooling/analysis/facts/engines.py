"""Engines and their options, as the code writes them.

An engine is an engine call (`ENGINE_APIS`, however imported) or a set of engine options that
reach one: Flask-SQLAlchemy's `SQLALCHEMY_ENGINE_OPTIONS` / `SQLALCHEMY_BINDS` in a config class,
a module or `app.config`, and `SQLAlchemy(engine_options=...)`. Each carries its options, the URL
the code gives (literal, a module constant, `URL.create(...)`, or a default of an environment
read), the environment variable it comes from, and, inside a function, what happens to it there.
Which pooler the URL reaches is not a fact of the code: `Context` judges it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ...vocabulary import (ENGINE_APIS, FLASK_CONFIG_KEYS, FLASK_SQLALCHEMY,
                           FLASK_SQLALCHEMY_CLASS, REMOVED_FLASK_KEYS, URL_CREATE, EngineApi)
from ..names import dotted
from ..urls import DatabaseUrl, parse_url
from ..values import HOLE, UNKNOWN, dict_key, evaluate, resolve
from .scope import Family, Lifetime, Scope, keyword
from .strings import EnvironmentRead, Parts, StringReader, text_of

# the keys read from config classes, modules and app.config: those that make engines, and those
# Flask-SQLAlchemy 3 no longer reads (POL110)
_CONFIG_KEYS = FLASK_CONFIG_KEYS | REMOVED_FLASK_KEYS.keys()
_ASYNC_DRIVERS = ("asyncpg", "psycopg_async", "aiosqlite", "aiomysql", "asyncmy")


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
class EngineCall:
    api: EngineApi
    node: cst.CSTNode  # where engine-level findings are reported: the call or the options dict
    options: dict[str, EngineOption]
    options_complete: bool  # False when a **splat or a config dict could not be read
    url: DatabaseUrl | None  # as far as the code tells: variables at their defaults
    url_variable: str | None  # the environment variable the whole URL comes from
    url_parts: Parts | None  # the URL as the code builds it, variables by name
    options_site: cst.Call | cst.Dict | None  # where a fix adds options; None: nowhere safe
    lifetime: Lifetime | None  # None at module or class level
    # the pool class named by `poolclass=` (short name), None when not given, UNKNOWN when
    # it is not a sqlalchemy.pool class we can name (a string, a conditional, a variable)
    declared_pool: object = None
    # a Flask config class's engine: the class, and whether the module's other config classes
    # derive from it (then it is a base, loaded itself only where the code says so)
    config_class: str | None = None
    config_base: bool = False

    def is_async(self, url: DatabaseUrl | None) -> bool:
        """Async by its API, or by the driver of the URL it connects to."""
        driver = url.driver if url else None
        return self.api.is_async or driver in _ASYNC_DRIVERS

    def option_value(self, name: str) -> object:
        option = self.options.get(name)
        return UNKNOWN if option is None else option.value


@dataclass(eq=False)
class FactoryCall:
    """A call, inside a function, of a function that may return a new engine."""
    node: cst.Call
    factory: str  # a function of this module, or the qualified name of an imported one
    lifetime: Lifetime
    # it stands in a return (or yield, as for the module's own factories): its function hands
    # the result on
    returned: bool = False


@dataclass(eq=False)
class RemovedKey:
    """A Flask-SQLAlchemy setting its version 3 no longer reads: `SQLALCHEMY_POOL_SIZE = 10`."""
    key: str
    node: cst.CSTNode  # the assignment, keyword or dict entry that sets it
    value: cst.BaseExpression
    container: cst.Call | cst.Dict | None  # where the keyword or entry lives; None: a statement
    # the same scope's SQLALCHEMY_ENGINE_OPTIONS: a dict literal, UNKNOWN when set otherwise
    options: object = None
    # a config class with bases: its options may be inherited, so a new one would hide them
    inherits: bool = False
    earlier: RemovedKey | None = None  # the first removed key of the same scope, when not this


@dataclass(eq=False)
class EngineFacts:
    engines: list[EngineCall] = field(default_factory=list)
    # calls of this module's functions that return a new engine (and are not cached)
    factory_calls: list[FactoryCall] = field(default_factory=list)
    # calls, inside functions, of functions imported from elsewhere: project factories, maybe
    imported_calls: list[FactoryCall] = field(default_factory=list)
    removed_keys: list[RemovedKey] = field(default_factory=list)
    # classes the module hands to `app.config.from_object()` or keeps in a dict of configs
    config_loads: frozenset[str] = frozenset()
    # calls, inside functions, of every function of this module called by its name
    local_calls: list[FactoryCall] = field(default_factory=list)


@dataclass(eq=False)
class _ConfigScope:
    """Flask-SQLAlchemy settings given together: a config class, a module, or `app.config`."""
    entries: dict[str, cst.BaseExpression] = field(default_factory=dict)
    # removed keys in the order written: (key, the node that sets it, its container)
    removed: list[tuple[str, cst.CSTNode, cst.Call | cst.Dict | None]] = field(
        default_factory=list)
    inherits: bool = False


def _base_names(node: cst.ClassDef) -> list[str]:
    return [name for base in node.bases if (name := _last_name(base.value))]


def _last_name(node: cst.BaseExpression) -> str | None:
    """`Config`, `config.Config`, "app.config.Config" -> "Config"."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value.rpartition(".")[2] if isinstance(value, str) else None
    return None


class EngineFamily(Family):
    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope
        self.strings = StringReader(scope)
        self._engine_calls: list[tuple[cst.Call, EngineApi, Lifetime | None]] = []
        self._fsa_calls: list[cst.Call] = []
        self._local_calls: list[FactoryCall] = []  # calls of any function by its name
        self._imported_calls: list[FactoryCall] = []
        self._returning_engine = []  # functions with `return create_engine(...)`
        self._named_engines = []  # (function, name) for `engine = create_engine(...)`
        self._config_scopes: dict[object, _ConfigScope] = {}
        self._classes: dict[str, cst.ClassDef] = {}  # module-level classes by name
        self._config_loads: set[str] = set()

    # -- calls ---------------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        scope = self.scope
        if isinstance(node.func, cst.Attribute) and node.func.attr.value == "from_object" \
                and node.args:
            loaded = _last_name(node.args[0].value)
            if loaded:
                self._config_loads.add(loaded)
        qualified = scope.qualified_call(node)
        api = ENGINE_APIS.get(qualified or "")
        if api is not None:
            lifetime = scope.lifetime()
            self._engine_calls.append((node, api, lifetime))
            if lifetime is not None and lifetime.function.return_depth > 0:
                self._returning_engine.append(lifetime.function)
            elif lifetime is not None and lifetime.carrier is not None:
                self._named_engines.append((lifetime.function, lifetime.carrier))
            return
        if qualified == FLASK_SQLALCHEMY_CLASS:
            self._fsa_calls.append(node)
            return
        self._config_update_call(node)  # app.config.update(...) at module level too
        if scope.function is None:
            return
        root = (dotted(node.func) or "").partition(".")[0]
        if qualified and scope.imports.is_bound(root):
            self._imported_calls.append(FactoryCall(node, qualified, scope.lifetime(),
                                                    scope.function.return_depth > 0))
        if isinstance(node.func, cst.Name):
            self._local_calls.append(FactoryCall(node, node.func.value, scope.lifetime()))

    # -- Flask-SQLAlchemy settings -------------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if len(self.scope.classes) == 1 and self.scope.function is None:
            self._classes[node.name.value] = node

    def visit_Dict(self, node: cst.Dict) -> None:
        # CONFIGS = {"production": ProductionConfig, ...}: from_object(CONFIGS[name])
        if self.scope.function is None and not self.scope.classes:
            self._config_loads.update(element.value.value for element in node.elements
                                      if isinstance(element, cst.DictElement)
                                      and isinstance(element.value, cst.Name))

    def _config_key(self, receiver: str | None) -> object:
        scope = self.scope
        if receiver is not None:  # app.config[...] inside create_app() and friends
            return (receiver, id(scope.function) if scope.function else None)
        return scope.classes[-1] if scope.classes else "module"

    def _record_setting(self, key: object, name: str, value: cst.BaseExpression,
                        holder: cst.CSTNode | None = None,
                        container: cst.Call | cst.Dict | None = None) -> None:
        config = self._config_scopes.setdefault(key, _ConfigScope())
        config.entries[name] = value
        if name in REMOVED_FLASK_KEYS and holder is not None:
            config.removed.append((name, holder, container))
            config.inherits = isinstance(key, cst.ClassDef) and any(
                dotted(base.value) not in ("object", None) for base in key.bases)

    def visit_Assign(self, node: cst.Assign) -> None:
        self._config_assignment([t.target for t in node.targets], node.value, node)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._config_assignment([node.target], node.value, node)

    def _config_assignment(self, targets: list[cst.BaseExpression],
                           value: cst.BaseExpression, statement: cst.CSTNode) -> None:
        holder = statement if len(targets) == 1 else None
        for target in targets:
            if isinstance(target, cst.Name) and target.value in _CONFIG_KEYS \
                    and self.scope.function is None:
                self._record_setting(self._config_key(None), target.value, value, holder)
            elif isinstance(target, cst.Attribute) and target.attr.value in _CONFIG_KEYS \
                    and isinstance(target.value, cst.Name) \
                    and target.value.value in self._classes and self.scope.function is None:
                # Config.SQLALCHEMY_ENGINE_OPTIONS = {...} after the class
                self._record_setting(self._classes[target.value.value], target.attr.value, value,
                                     holder)
            elif isinstance(target, cst.Subscript) and len(target.slice) == 1:
                receiver = dotted(target.value)
                index = target.slice[0].slice
                key = evaluate(index.value) if isinstance(index, cst.Index) else None
                if receiver and receiver.endswith("config") and key in _CONFIG_KEYS:
                    self._record_setting(self._config_key(receiver), key, value, holder)

    def _config_update_call(self, node: cst.Call) -> None:
        if not isinstance(node.func, cst.Attribute) or \
                node.func.attr.value not in ("update", "from_mapping"):
            return
        receiver = dotted(node.func.value)
        if not receiver or not receiver.endswith("config"):
            return
        for arg in node.args:
            if arg.keyword is not None and arg.keyword.value in _CONFIG_KEYS:
                self._record_setting(self._config_key(receiver), arg.keyword.value, arg.value,
                                     arg, node)
            elif arg.keyword is None and isinstance(arg.value, cst.Dict):
                for element in arg.value.elements:
                    key = dict_key(element, {})
                    if key in _CONFIG_KEYS:
                        self._record_setting(self._config_key(receiver), key, element.value,
                                             element, arg.value)

    # -- after the pass ------------------------------------------------------------------------
    def finish(self, settings=None) -> EngineFacts:
        """`settings`: the module's settings objects, which URLs may be read from."""
        self.strings.settings = settings
        engines = [self._engine_call(call, api, lifetime)
                   for call, api, lifetime in self._engine_calls]
        engines.extend(self._config_engines())
        for call in self._fsa_calls:
            options = keyword(call, "engine_options")
            if options is not None:
                engines.append(self._options_dict_engine(options, None))
        for engine in engines:
            engine.declared_pool = self._declared_pool(engine.options)

        # A factory returns a new engine on every call; a cached one returns the same engine.
        # (one kept in a cache as well, ENGINES[url] = engine, is handed out again: no factory)
        returning = self._returning_engine + [function for function, name in self._named_engines
                                              if name in function.returned
                                              and name not in function.kept]
        factories = {function.name: function for function in returning if not function.cached}
        factory_calls = [call for call in self._local_calls if call.factory in factories
                         and call.lifetime.function.name != call.factory]
        return EngineFacts(engines, factory_calls, self._imported_calls, self._removed_keys(),
                           frozenset(self._config_loads), self._local_calls)

    def _config_engines(self) -> list[EngineCall]:
        """Flask-SQLAlchemy engines of the module's config scopes. Flask reads a config class's
        attributes with its bases' (`app.config.from_object(ProductionConfig)`), so a class's
        settings are merged over those of the config classes it derives from in this module;
        subclasses that inherit the same settings are one engine, reported once."""
        classes = {key.name.value: key for key in self._config_scopes
                   if isinstance(key, cst.ClassDef)}
        bases = {name: [base for base in _base_names(key) if base in classes]
                 for name, key in classes.items()}
        derived_from = {base for names in bases.values() for base in names}

        def entries(name: str, seen: frozenset[str]) -> dict[str, cst.BaseExpression]:
            merged: dict[str, cst.BaseExpression] = {}
            for base in reversed(bases[name]):  # the first base wins, as in the MRO
                if base not in seen:
                    merged.update(entries(base, seen | {base}))
            merged.update(self._config_scopes[classes[name]].entries)
            return merged

        engines, reported = [], set()
        for key, config in self._config_scopes.items():
            name = key.name.value if isinstance(key, cst.ClassDef) else None
            if name is not None and bases[name]:
                config = _ConfigScope(entries(name, frozenset({name})))
            uri = config.entries.get("SQLALCHEMY_DATABASE_URI")
            for engine in self._flask_sqlalchemy_engines(config):
                sources = (id(engine.node), id(engine.options_site), id(uri))
                if sources in reported:
                    continue  # the same settings, inherited by another class
                reported.add(sources)
                engine.config_class, engine.config_base = name, name in derived_from
                engines.append(engine)
        return engines

    def _removed_keys(self) -> list[RemovedKey]:
        found = []
        for config in self._config_scopes.values():
            options = config.entries.get("SQLALCHEMY_ENGINE_OPTIONS")
            if options is not None:
                options = resolve(options, self.scope.constants)
                options = options if isinstance(options, cst.Dict) else UNKNOWN
            first = None
            for key, holder, container in config.removed:
                removed = RemovedKey(key, holder, holder.value, container, options,
                                     config.inherits, first)
                first = first or removed
                found.append(removed)
        return found

    def _declared_pool(self, options: dict[str, EngineOption]) -> object:
        if "pool" in options:  # a ready-made pool instance
            return UNKNOWN
        option = options.get("poolclass")
        if option is None:
            return None
        qualified = self.scope.imports.qualify(option.value_node) or ""
        module, _, name = qualified.rpartition(".")
        return name if module == "sqlalchemy.pool" else UNKNOWN

    def _url(self, expr: cst.BaseExpression | None
             ) -> tuple[DatabaseUrl | None, str | None, Parts | None]:
        """The URL an expression gives (variables at their defaults), the environment variable
        the whole URL comes from, and its parts."""
        if expr is None:
            return None, None, None
        constants = self.scope.constants
        resolved = resolve(expr, constants)
        if isinstance(resolved, cst.Call) and self.scope.imports.qualify(resolved.func) \
                in URL_CREATE:
            return self._url_from_parts(resolved), None, None
        parts = self.strings.parts(resolved)
        if parts is None:
            return None, None, None
        variable = parts[0].name if len(parts) == 1 and isinstance(parts[0], EnvironmentRead) \
            else None
        text = text_of(parts)
        return (parse_url(text) if text else None), variable, parts

    def _url_from_parts(self, call: cst.Call) -> DatabaseUrl | None:
        """URL.create("postgresql+asyncpg", host=..., port=...): the parts the code tells."""
        positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
        driver_expr = positional[0] if positional else keyword(call, "drivername")
        drivername = text_of(self.strings.parts(driver_expr))
        if not isinstance(drivername, str) or HOLE in drivername:
            return None
        backend, _, driver = drivername.partition("+")

        def part(name: str):
            value = text_of(self.strings.parts(keyword(call, name)))
            return None if value is None or HOLE in value else value

        port = part("port")
        return DatabaseUrl(backend, driver, part("host"),
                           int(port) if port and port.isdigit() else None, part("database"), {})

    def _option(self, name: str, key: str, value: cst.BaseExpression,
                holder: cst.Arg | cst.DictElement, container: cst.Call | cst.Dict) -> EngineOption:
        read = self.strings.environment_read(value)
        # once the variable is set its value is a string, whatever the default's type
        return EngineOption(name, key, value, evaluate(value, self.scope.constants), holder,
                            container, read.name if read is not None and read.raw else None)

    def _engine_call(self, call: cst.Call, api: EngineApi,
                     lifetime: Lifetime | None) -> EngineCall:
        constants = self.scope.constants
        options: dict[str, EngineOption] = {}
        complete = True
        url_expr = None
        positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
        if api.from_config:
            config_expr = positional[0].value if positional else keyword(call, "configuration")
            prefix = evaluate(keyword(call, "prefix") or cst.SimpleString('"sqlalchemy."'))
            config = resolve(config_expr, constants) if config_expr is not None else None
            if isinstance(config, cst.Dict) and isinstance(prefix, str):
                complete &= self._read_dict(config, options, prefix)
                url_option = options.pop("url", None)
                url_expr = url_option.value_node if url_option else None
            else:
                complete = False
        else:
            url_expr = positional[0].value if positional else keyword(call, "url")
        for arg in call.args:
            if arg.star == "**":
                splat = resolve(arg.value, constants)
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
        url, variable, parts = self._url(url_expr)
        return EngineCall(api, call, options, complete, url, variable, parts, call, lifetime)

    def _read_dict(self, node: cst.Dict, options: dict[str, EngineOption], prefix: str) -> bool:
        """Options from a dict literal; False if some entry could not be read."""
        complete = True
        for element in node.elements:
            key = dict_key(element, self.scope.constants)
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
        node = resolve(options_expr, self.scope.constants)
        complete = isinstance(node, cst.Dict) and self._read_dict(node, options, "")
        url_option = options.pop("url", None)  # SQLALCHEMY_BINDS entries carry their own url
        if url_option is not None:
            url_expr = url_option.value_node
        url, variable, parts = self._url(url_expr)
        site = node if isinstance(node, cst.Dict) else None
        return EngineCall(FLASK_SQLALCHEMY, report_at or options_expr, options, complete, url,
                          variable, parts, site, None)

    def _flask_sqlalchemy_engines(self, config: _ConfigScope) -> list[EngineCall]:
        engines = []
        uri = config.entries.get("SQLALCHEMY_DATABASE_URI")
        options = config.entries.get("SQLALCHEMY_ENGINE_OPTIONS")
        if options is not None:
            engines.append(self._options_dict_engine(options, uri))
        elif uri is not None:
            engine = self._options_dict_engine(cst.Dict([]), uri, report_at=uri)
            engine.options_site = None  # nowhere to write options without adding a setting
            engines.append(engine)
        binds = resolve(config.entries.get("SQLALCHEMY_BINDS", cst.Name("None")),
                        self.scope.constants)
        if isinstance(binds, cst.Dict):
            for element in binds.elements:
                if not isinstance(element, cst.DictElement):
                    continue
                value = resolve(element.value, self.scope.constants)
                if isinstance(value, cst.Dict):
                    engines.append(self._options_dict_engine(value, None))
                else:
                    engine = self._options_dict_engine(cst.Dict([]), value,
                                                       report_at=element.value)
                    engine.options_site = None
                    engines.append(engine)
        return engines
