"""POL106 engine-per-call: a function that makes a new engine, and a new pool, on every call."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis.context import Context
from ...analysis.facts import EngineCall, ModuleFacts
from ..base import Example, Rule
from ..pools import pool_class

# Databases whose connections are server slots; sqlite, duckdb, gsheets and other in-process
# adapters hold none, so an engine left behind costs no connection limit.
SERVER_BACKENDS = frozenset({"postgresql", "mysql", "mariadb", "mssql", "oracle", "cockroachdb",
                             "redshift", "snowflake", "clickhouse", "trino", "presto", "db2",
                             "ibm_db_sa", "hana", "vertica", "teradatasql", "firebird", "sybase"})


def _holds_server_connections(engine: EngineCall, context: Context) -> bool:
    url = context.url(engine)
    backend = url.backend if url is not None else None
    return backend is None or backend in SERVER_BACKENDS


class EnginePerCall(Rule):
    """
    ## What it does
    Finds functions that build a new engine each time they run (directly, or by calling a
    function of the project, in this module or another, that returns a new engine, or a
    function of this module that returns what such a function makes) and neither keep it,
    return it, cache the function nor dispose the engine.

    ## Why is this bad?
    Each engine owns a pool. An engine made per request or per task opens new connections on
    every call; they stay open until the garbage collector reaches the abandoned engine, so
    under load the database runs out of connection slots (`FATAL: sorry, too many clients
    already`, `remaining connection slots are reserved`). Engines are meant to be created once
    per process, at module level or in the application factory, and shared.

    An engine handed to a local `sessionmaker(bind=...)` or `Session(bind=...)` is still made per
    call, and so is one a factory returns beside its sessionmaker (`engine, maker = factory()`).
    A `dispose()` after a `yield` counts only inside `finally:`: otherwise an exception in the
    caller's code skips it.

    Quiet for: functions that return the engine (factories: their callers are checked),
    functions that store it (`self.engine = ...`, `ENGINES[key] = engine`, a module global, or
    hand it to an initialiser or registry, `registry.init_engine(engine)`) or dispose it,
    cached functions (`functools.cache`, `lru_cache`), `NullPool` engines (no pool to leak),
    databases without server connections (sqlite, duckdb, ...), and code that runs once: `main()`
    and other entry points, app factories, bootstraps (`init_db`, `create_all`, `seed_*`),
    click and typer commands, startup hooks, Celery worker-init signals, pytest fixtures,
    migrations (modules that import alembic), test code and stand-alone scripts (`tests/`,
    `scripts/`, `tools/`, `cli.py`, modules that exit or read `sys.argv` at import).

    ## Fix safety
    No fix: where the engine should live depends on the application.

    ## References
    - https://docs.sqlalchemy.org/en/20/core/connections.html#basic-usage
    - https://docs.sqlalchemy.org/en/20/core/pooling.html
    """

    code = "POL106"
    name = "engine-per-call"
    fix_availability = "none"
    quiet_in = ("test", "script")  # run once, shared with nothing
    message = ("{function}() builds a new engine on every call and never disposes it: each call "
               "opens a new pool whose connections stay open until garbage collection ('too "
               "many clients'); create the engine once and reuse it")
    # the dispose is there, after the yield: the message says why it does not count
    disposed_after_yield = ("{function}() disposes {what} only after its yield, outside "
                            "finally: when the caller's code raises, the dispose is skipped and "
                            "the pool's connections stay open until garbage collection ('too "
                            "many clients'); dispose it in a finally: block, or create the "
                            "engine once")
    through_factory = ("{function}() gets a new engine from {factory}() on every call and never "
                       "disposes it: each call opens a new pool whose connections stay open "
                       "until garbage collection ('too many clients'); cache {short}() "
                       "(functools.cache) or create the engine once")
    invalid = (
        Example('''
            from sqlalchemy import create_engine, text

            def count_orders(url):
                engine = create_engine(url)
                with engine.connect() as connection:
                    return connection.execute(text("select count(*) from orders")).scalar()
        '''),
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import Session

            def get_engine():
                return create_engine("postgresql://app@db/app")

            def get_db():
                with Session(get_engine()) as session:
                    yield session
        '''),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine, text

            engine = create_engine("postgresql://app@db/app")

            def count_orders():
                with engine.connect() as connection:
                    return connection.execute(text("select count(*) from orders")).scalar()
        '''),
        Example('''
            import functools
            from sqlalchemy import create_engine

            @functools.cache
            def get_engine():
                return create_engine("postgresql://app@db/app")

            def handler():
                with get_engine().connect() as connection:
                    ...
        '''),
        Example('''
            from sqlalchemy import create_engine

            def export(url):
                engine = create_engine(url)
                try:
                    ...
                finally:
                    engine.dispose()
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        for engine in facts.engines:
            lifetime = engine.lifetime
            if lifetime is None or lifetime.escapes or lifetime.disposed \
                    or lifetime.function.exempt or facts.is_migration_env:
                continue
            if pool_class(engine, self.context) == "NullPool" \
                    or not _holds_server_connections(engine, self.context):
                continue
            yield self.finding(engine.node, self._message(
                lifetime, self.message.format(function=lifetime.function.name), "the engine"))
        for call in facts.factory_calls + self._project_factory_calls(facts):
            lifetime = call.lifetime
            if lifetime.escapes or lifetime.disposed or lifetime.function.exempt \
                    or facts.is_migration_env:
                continue
            yield self.finding(call.node, self._message(lifetime, self.through_factory.format(
                function=lifetime.function.name, factory=call.factory,
                short=call.factory.rpartition(".")[2]), f"the engine from {call.factory}()"))

    def _message(self, lifetime, message: str, what: str) -> str:
        if lifetime.disposed_after_yield:
            return self.disposed_after_yield.format(function=lifetime.function.name, what=what)
        return message

    def _project_factory_calls(self, facts: ModuleFacts) -> list:
        """Calls of the project's engine factories defined in other modules."""
        if not facts.imported_calls or not self.context.path:
            return []
        project = self.context.project
        ours = [call for call in facts.imported_calls
                if call.factory.partition(".")[0] in project.top_level]
        if not ours:
            return []  # only library calls: the project's modules need not be scanned
        factories = {f"{obj.module}.{obj.name}" for obj in project.of_kind("engine_factory")}
        found = [call for call in ours if call.factory in factories]
        # a function of this module that returns what the project's factory makes is one too
        # (`def create_main_engine(): return create_engine(settings...)`): its callers here
        wrappers = {call.lifetime.function.name for call in found
                    if call.returned and not call.lifetime.function.cached}
        return found + [call for call in facts.local_calls if call.factory in wrappers
                        and call.lifetime.function.name not in wrappers]
