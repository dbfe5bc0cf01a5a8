"""Engine rules (POL1xx): the options an engine is created with, against where it connects.

Facts cited as (domain N) are in the project's fact sheet, section and number N.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

import libcst as cst

from ..analysis.facts import FLASK_SQLALCHEMY, EngineCall, EngineOption, ModuleFacts
from ..analysis.values import UNKNOWN, literal_dict
from ..findings import (SAFE, UNSAFE, Edit, Fix, parse_expression, remove_option, rename_option,
                        replace_with, set_nested_option, set_option)
from ..settings import version_text
from .base import Example, Rule

QUEUE_POOLS = {"QueuePool", "AsyncAdaptedQueuePool", "FallbackAsyncAdaptedQueuePool"}
# Arguments create_engine() rejects with TypeError for each pool class (domain 18)
_SIZING = ("pool_size", "max_overflow", "pool_timeout", "pool_use_lifo")
REJECTED_BY_POOL = {
    "NullPool": _SIZING, "StaticPool": _SIZING, "AssertionPool": _SIZING,
    "SingletonThreadPool": ("max_overflow", "pool_timeout", "pool_use_lifo"),
}
# When a numeric pool option given as a string fails (domain 19; the later ones checked on
# SQLAlchemy 2.1.9: they pass create_engine and break at checkout)
NUMERIC_STRING_FAILURE = {
    "pool_size": "create_engine() fails at start with TypeError: unsupported operand type(s) "
                 "for -: 'int' and 'str'",
    "max_overflow": "the first checkout fails with TypeError: '>' not supported between "
                    "instances of 'str' and 'int'",
    "pool_recycle": "the first checkout fails with TypeError: '>' not supported between "
                    "instances of 'str' and 'int'",
    "pool_timeout": "the first checkout that has to wait for a connection (under load) fails "
                    "with TypeError: '<' not supported between instances of 'str' and 'int'",
}
# Not coerced by engine_from_config either: "false" stays a truthy string (domain 23)
BOOLEAN_OPTIONS = ("pool_pre_ping", "pool_use_lifo")
_FALSE_WORDS = {"false", "f", "no", "n", "off", "0"}
# Every keyword create_engine() accepts on SQLAlchemy 1.3-2.1, dialect ones included; a name
# outside this set that is close to a pool option is a misspelling (TypeError at start).
KNOWN_OPTIONS = frozenset("""
    connect_args convert_unicode creator echo echo_pool empty_in_strategy enable_from_linting
    encoding execution_options future hide_parameters implicit_returning
    insertmanyvalues_page_size isolation_level json_deserializer json_serializer label_length
    listeners logging_name max_identifier_length max_overflow module paramstyle plugins pool
    pool_events pool_logging_name pool_pre_ping pool_recycle pool_reset_on_return pool_size
    pool_threadlocal pool_timeout pool_use_lifo poolclass query_cache_size
    skip_autocommit_rollback strategy tag use_insertmanyvalues case_sensitive
    arraysize auto_convert_lobs client_encoding coerce_to_decimal compiler_linting dbapi
    deprecate_large_types enable_offset_fetch encoding_errors exclude_tablespaces
    executemany_batch_page_size executemany_mode executemany_values_page_size fast_executemany
    ignore_no_transaction_on_rollback is_mariadb legacy_schema_aliasing native_datetime
    native_inet_types optimize_limits query_timeout schema_name server_side_cursors
    supports_comments supports_native_boolean thick_mode use_ansi use_batch_mode
    use_binds_for_limits use_native_hstore use_native_unicode use_nchar_for_unicode
    use_scope_identity use_setinputsizes async_creator _coerce_config
""".split())
_SUGGESTIONS = ("poolclass", "pool_size", "max_overflow", "pool_timeout", "pool_recycle",
                "pool_pre_ping", "pool_use_lifo", "pool_reset_on_return", "pool_logging_name",
                "pool_events", "echo_pool", "isolation_level", "connect_args",
                "execution_options")
# The pool's own argument names, which create_engine() only takes with its pool_ prefix (domain 17)
_POOL_NATIVE = {"recycle": "pool_recycle", "pre_ping": "pool_pre_ping", "use_lifo": "pool_use_lifo",
                "reset_on_return": "pool_reset_on_return", "pool_class": "poolclass",
                "max_size": "pool_size"}


def pool_class(engine: EngineCall, version: tuple[int, ...]) -> str | None:
    """The pool class the engine gets (short name), or None when the code does not tell."""
    if engine.declared_pool is UNKNOWN:
        return None
    if engine.declared_pool is not None:
        return engine.declared_pool
    if not engine.options_complete:
        return None  # a **splat may carry poolclass
    url = engine.url
    if url is None or url.backend is None:
        # a pooler means PostgreSQL, whose default is a queue pool whatever the URL's details
        return None if engine.pooler is None else _queue_pool(engine)
    if url.is_sqlite:
        if engine.api is FLASK_SQLALCHEMY or url.is_sqlite_memory is None:
            # Flask-SQLAlchemy picks its own sqlite pools, per version (domain 70); a database
            # only known at run time may be a file or memory
            return None
        if url.driver == "aiosqlite":
            if url.is_sqlite_memory:
                return "StaticPool"
            return "AsyncAdaptedQueuePool" if version >= (2, 0, 38) else "NullPool"
        if url.is_sqlite_memory:
            return "SingletonThreadPool"
        return "QueuePool" if version >= (2, 0) else "NullPool"  # domain 20
    return _queue_pool(engine)


# Databases whose connections are server slots; sqlite, duckdb, gsheets and other in-process
# adapters hold none, so an engine left behind costs no connection limit.
SERVER_BACKENDS = frozenset({"postgresql", "mysql", "mariadb", "mssql", "oracle", "cockroachdb",
                             "redshift", "snowflake", "clickhouse", "trino", "presto", "db2",
                             "ibm_db_sa", "hana", "vertica", "teradatasql", "firebird", "sybase"})


def _holds_server_connections(engine: EngineCall) -> bool:
    backend = engine.url.backend if engine.url is not None else None
    return backend is None or backend in SERVER_BACKENDS


def _queue_pool(engine: EngineCall) -> str:
    return "AsyncAdaptedQueuePool" if engine.is_async else "QueuePool"


def _class_ref(facts: ModuleFacts, name: str) -> tuple[cst.BaseExpression, tuple]:
    spelling, needed = facts.imports.reference(f"sqlalchemy.pool.{name}")
    return parse_expression(spelling), (needed,) if needed else ()


def _connect_args(engine: EngineCall, facts: ModuleFacts) -> dict[str, object] | None:
    """The literal connect_args ({} when absent), or None when they cannot be read."""
    option = engine.options.get("connect_args")
    if option is None:
        return {} if engine.options_complete else None
    return literal_dict(option.value_node, facts.constants)


def _connect_args_fix(engine: EngineCall, key: str, value: str) -> Fix | None:
    option = engine.options.get("connect_args")
    target = option.container if option is not None else engine.options_site
    if target is None or (option is not None and not isinstance(option.value_node, cst.Dict)):
        return None
    name = option.key if option is not None else "connect_args"
    return Fix(SAFE, (Edit(target, lambda node: set_nested_option(
        node, name, key, parse_expression(value))),))


def _remove(option: EngineOption) -> Edit:
    return Edit(option.container, lambda node: remove_option(node, option.key))


class PooledBehindPooler(Rule):
    """
    ## What it does
    Finds engines whose connections go through a transaction pooler (PgBouncer in transaction
    mode, Supabase's transaction pooler on port 6543) but which still keep a client-side
    `QueuePool`.

    ## Why is this bad?
    Two pools stacked on each other: the application holds up to `pool_size + max_overflow`
    connections to PgBouncer per process, idle most of the time, while PgBouncer already shares
    server connections between transactions. When PgBouncer restarts or drops idle clients, the
    pooled connections are dead and the next checkout fails with `server closed the connection
    unexpectedly`. SQLAlchemy's own PgBouncer guidance is to use `NullPool` (asyncpg dialect docs,
    "Prepared Statement Name with PGBouncer").

    The rule stays quiet when the pooler runs in session mode (`pooling-pooler-mode = session`,
    or Supabase's session port 5432), when `poolclass` is chosen at run time, and when a
    `**kwargs` splat may carry it.

    ## Fix safety
    Unsafe: `poolclass=NullPool` opens a connection per checkout (to PgBouncer, which is cheap)
    and drops the pool sizing arguments NullPool rejects. Behaviour under load changes, so the
    fix runs only with `--unsafe-fixes`.

    ## References
    - https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#prepared-statement-name-with-pgbouncer
    - https://docs.sqlalchemy.org/en/20/core/pooling.html#switching-pool-implementations
    - https://www.pgbouncer.org/features.html
    """

    code = "POL101"
    name = "pooled-behind-pooler"
    fix_availability = "unsafe"
    invalid = (
        Example('''
            import sqlalchemy as sa

            engine = sa.create_engine(
                "postgresql+psycopg2://app:secret@pgbouncer:6432/app",
                pool_size=20,
            )
        ''', fixed='''
            import sqlalchemy as sa

            engine = sa.create_engine(
                "postgresql+psycopg2://app:secret@pgbouncer:6432/app",
                poolclass=sa.pool.NullPool,
            )
        '''),
        Example('''
            import os
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(os.environ["PGBOUNCER_URL"], pool_pre_ping=True)
        ''', fixed='''
            import os
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import NullPool

            engine = create_async_engine(os.environ["PGBOUNCER_URL"], pool_pre_ping=True, poolclass=NullPool)
        '''),
        Example('''
            class Config:
                SQLALCHEMY_DATABASE_URI = "postgresql://app@db.example.com:6432/app"
                SQLALCHEMY_ENGINE_OPTIONS = {"pool_size": 10, "pool_pre_ping": True}
        ''', fixed='''
            from sqlalchemy.pool import NullPool

            class Config:
                SQLALCHEMY_DATABASE_URI = "postgresql://app@db.example.com:6432/app"
                SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "poolclass": NullPool}
        '''),
    )
    valid = (
        Example('''
            import sqlalchemy as sa
            from sqlalchemy.pool import NullPool

            engine = sa.create_engine(
                "postgresql+psycopg2://app:secret@pgbouncer:6432/app",
                poolclass=NullPool,
            )
        '''),
        Example('''
            import os
            from sqlalchemy import create_engine

            # no evidence of a pooler: a plain server, or a URL only known at run time
            engine = create_engine(os.environ["DATABASE_URL"], pool_size=10)
        '''),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@pgbouncer:6432/app", pool_pre_ping=True)
        ''', settings={"pooler-mode": "session"}),
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool, QueuePool

            def make(url, pooled):
                return create_engine(url, poolclass=QueuePool if pooled else NullPool)
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        version = self.context.sqlalchemy_version
        for engine in facts.engines:
            pooler = engine.pooler
            pool = pool_class(engine, version)
            if pooler is None or not pooler.pools_transactions or pool not in QUEUE_POOLS:
                continue
            yield self.finding(
                engine.node,
                f"engine behind {pooler.describe()} keeps a client-side {pool}: connections go "
                f"stale and double-pool; use poolclass=NullPool",
                self._fix(engine, facts))

    def _fix(self, engine: EngineCall, facts: ModuleFacts) -> Fix | None:
        if engine.options_site is None:
            return None
        null_pool, imports = _class_ref(facts, "NullPool")
        edits = [_remove(engine.options[name]) for name in _SIZING if name in engine.options]
        edits.append(Edit(engine.options_site,
                          lambda node: set_option(node, "poolclass", null_pool)))
        return Fix(UNSAFE, tuple(edits), imports)


class PooledWithoutLiveness(Rule):
    """
    ## What it does
    Finds client-side pools in front of a pooler with neither `pool_pre_ping=True` nor a
    `pool_recycle`, or with a `pool_recycle` not below PgBouncer's `client_idle_timeout`.

    ## Why is this bad?
    A restart, failover or idle timeout of PgBouncer closes every client connection the pool
    holds. The pool does not notice: the next checkout hands out a dead connection and the
    request fails with `(psycopg2.OperationalError) server closed the connection unexpectedly`.
    `pool_pre_ping=True` tests each connection at checkout and replaces dead ones; it works
    through PgBouncer in transaction mode (checked with SQLAlchemy 2.0.58, psycopg2 and asyncpg).
    The one exception is asyncpg on SQLAlchemy 2.0.0 to 2.0.20, whose ping broke transaction
    mode (fixed in 2.0.21): there the rule says to upgrade instead of offering the fix.

    `pool_recycle` only helps when it is below PgBouncer's `client_idle_timeout`; PgBouncer's
    `server_lifetime` and `server_idle_timeout` act on its server connections, never on the
    application's, so they are not a reason to set it.

    ## Fix safety
    Safe: `pool_pre_ping=True` adds a ping per checkout and changes no results.

    ## References
    - https://docs.sqlalchemy.org/en/20/core/pooling.html#disconnect-handling-pessimistic
    - https://www.pgbouncer.org/config.html#client_idle_timeout
    """

    code = "POL102"
    name = "pooled-without-liveness"
    fix_availability = "safe"
    invalid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@pgbouncer:6432/app", pool_size=10)
        ''', fixed='''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@pgbouncer:6432/app", pool_size=10, pool_pre_ping=True)
        ''', settings={"pooler-mode": "session"}),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine(
                "postgresql://app@pgbouncer:6432/app", pool_size=10, pool_pre_ping=True
            )
        ''', settings={"pooler-mode": "session"}),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@pgbouncer:6432/app", pool_recycle=300)
        ''', settings={"pooler-mode": "session"}),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@db.internal:5432/app", pool_size=10)
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        version = self.context.sqlalchemy_version
        for engine in facts.engines:
            pooler = engine.pooler
            pool = pool_class(engine, version)
            if pooler is None or pool not in QUEUE_POOLS or not engine.options_complete:
                continue
            pre_ping = engine.option_value("pool_pre_ping")
            if "pool_pre_ping" in engine.options and (pre_ping is UNKNOWN or pre_ping):
                continue  # on, or decided at run time ("false" is truthy: POL104's business)
            recycle = engine.option_value("pool_recycle")
            if "pool_recycle" in engine.options:
                if not isinstance(recycle, (int, float)) or isinstance(recycle, bool):
                    continue
                timeout = pooler.client_idle_timeout
                if recycle > 0 and not (timeout and recycle >= timeout):
                    continue
            recycles = isinstance(recycle, (int, float)) and recycle > 0
            problem = (f"recycles after {recycle}s, not before client_idle_timeout "
                       f"({pooler.client_idle_timeout:g}s)") if recycles \
                else "has no liveness check"
            consequence = (f"client-side {pool} behind {pooler.describe()} {problem}: after a "
                           f"pooler restart or idle timeout the next checkout fails with "
                           f"'server closed the connection unexpectedly'")
            driver = engine.url.effective_driver(version) if engine.url else None
            if driver == "asyncpg" and (2, 0) <= version < (2, 0, 21) \
                    and pooler.pools_transactions:
                yield self.finding(engine.node, f"{consequence}; pool_pre_ping breaks asyncpg in "
                                   f"transaction mode before SQLAlchemy 2.0.21 (targeting "
                                   f"{version_text(version)}): upgrade, then set "
                                   f"pool_pre_ping=True")
                continue
            fix = None
            if engine.options_site is not None:
                fix = Fix(SAFE, (Edit(engine.options_site, lambda node: set_option(
                    node, "pool_pre_ping", cst.Name("True"))),))
            yield self.finding(engine.node, f"{consequence}; set pool_pre_ping=True", fix)


class PreparedStatementsBehindPooler(Rule):
    """
    ## What it does
    Finds asyncpg and psycopg 3 engines behind a transaction pooler that leave the driver's
    prepared statements on. A bare `postgresql://` URL counts as psycopg 3 from SQLAlchemy 2.1,
    whose default PostgreSQL driver it is.

    ## Why is this bad?
    Both drivers prepare statements by name on the server connection. In transaction mode,
    PgBouncer hands each transaction to whichever server connection is free, so a statement
    prepared on one is missing or already present on the next:

    - asyncpg: `prepared statement "__asyncpg_stmt_1__" already exists`
      (`DuplicatePreparedStatementError`), or `... does not exist`;
    - psycopg 3 (after 5 executions of a query): `prepared statement "_pg3_0" already exists`.

    The failures are intermittent and only show under concurrency. PgBouncer 1.21 and later can
    track protocol-level prepared statements when `max_prepared_statements` is above 0; the rule
    stays quiet when the project says so.

    ## Fix safety
    Safe: turning the driver's statement cache off changes no results. For asyncpg it adds
    `connect_args={"statement_cache_size": 0}`, which suffices from asyncpg 0.31; asyncpg 0.30
    and older still name their statements and also need a `prepared_statement_name_func` that
    returns unique names. For psycopg 3 it adds `connect_args={"prepare_threshold": None}`.

    ## References
    - https://magicstack.github.io/asyncpg/current/faq.html#why-am-i-getting-prepared-statement-errors
    - https://www.psycopg.org/psycopg3/docs/advanced/prepare.html#using-prepared-statements-with-pgbouncer
    - https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#prepared-statement-cache
    - https://www.pgbouncer.org/config.html#max_prepared_statements
    """

    code = "POL103"
    name = "prepared-statements-behind-pooler"
    fix_availability = "safe"
    invalid = (
        Example('''
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import NullPool

            engine = create_async_engine(
                "postgresql+asyncpg://app@pgbouncer:6432/app", poolclass=NullPool
            )
        ''', fixed='''
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import NullPool

            engine = create_async_engine(
                "postgresql+asyncpg://app@pgbouncer:6432/app", poolclass=NullPool, connect_args={"statement_cache_size": 0}
            )
        '''),
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine(
                "postgresql+psycopg://app@pgbouncer:6432/app",
                poolclass=NullPool,
                connect_args={"connect_timeout": 5},
            )
        ''', fixed='''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine(
                "postgresql+psycopg://app@pgbouncer:6432/app",
                poolclass=NullPool,
                connect_args={"connect_timeout": 5, "prepare_threshold": None},
            )
        '''),
    )
    valid = (
        Example('''
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import NullPool

            engine = create_async_engine(
                "postgresql+asyncpg://app@pgbouncer:6432/app",
                poolclass=NullPool,
                connect_args={"statement_cache_size": 0},
            )
        '''),
        Example('''
            from sqlalchemy.pool import NullPool
            from sqlalchemy import create_engine

            # psycopg2 prepares nothing
            engine = create_engine("postgresql+psycopg2://app@pgbouncer:6432/app",
                                   poolclass=NullPool)
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        version = self.context.sqlalchemy_version
        for engine in facts.engines:
            pooler = engine.pooler
            if pooler is None or not pooler.pools_transactions or engine.url is None:
                continue
            if pooler.supports_prepared_statements:
                continue
            driver = engine.url.effective_driver(version)
            connect_args = _connect_args(engine, facts)
            if connect_args is None:
                continue
            where = f"behind {pooler.describe()} in {pooler.mode} mode"
            if driver == "asyncpg":
                if connect_args.get("statement_cache_size") == 0 \
                        or "prepared_statement_name_func" in connect_args:
                    continue
                yield self.finding(
                    engine.node,
                    f"asyncpg {where} prepares statements: queries fail with 'prepared "
                    f"statement \"__asyncpg_stmt_1__\" already exists'; set "
                    f"connect_args={{\"statement_cache_size\": 0}} (asyncpg >= 0.31; older "
                    f"asyncpg also needs prepared_statement_name_func)",
                    _connect_args_fix(engine, "statement_cache_size", "0"))
            elif driver in ("psycopg", "psycopg_async"):
                if "prepare_threshold" in connect_args and \
                        connect_args["prepare_threshold"] is None:
                    continue
                bare = " (postgresql:// means psycopg 3 from SQLAlchemy 2.1)" \
                    if engine.url.driver == "" else ""
                yield self.finding(
                    engine.node,
                    f"psycopg 3 {where} prepares statements after 5 executions{bare}: queries "
                    f"fail with 'prepared statement \"_pg3_0\" already exists'; set "
                    f"connect_args={{\"prepare_threshold\": None}}",
                    _connect_args_fix(engine, "prepare_threshold", "None"))


class OptionWrongType(Rule):
    """
    ## What it does
    Finds engine options given as strings where SQLAlchemy needs another type:

    - `poolclass` as a dotted string (`"sqlalchemy.pool.NullPool"`), anywhere: SQLAlchemy never
      imports strings and fails at start with `AttributeError: 'str' object has no attribute
      '__dict__'`;
    - numeric pool options as strings passed straight to `create_engine()`, literally or read
      from the environment (`os.environ.get("POOL_SIZE", "5")` is always a string): `pool_size="7"`
      fails at start; `max_overflow` and `pool_recycle` fail at the first checkout;
      `pool_timeout` fails only when a checkout has to wait, that is, under load
      (`engine_from_config()` converts these, so it is quiet there);
    - `pool_pre_ping` or `pool_use_lifo` as a string meaning false (`"false"`, `"0"`, `"no"`):
      no SQLAlchemy API converts them, and any non-empty string is truthy, so the option is
      on.

    ## Why is this bad?
    Configuration copied from environment files and INI settings arrives as strings. The popular
    advice `SQLALCHEMY_ENGINE_OPTIONS = {"poolclass": "sqlalchemy.pool.NullPool"}` crashes
    every Flask-SQLAlchemy version at start.

    ## Fix safety
    Safe for `poolclass` (the class, imported) and numeric strings (the number, or `int(...)`
    around an environment read): the code failed before and now runs as written. Booleans read
    from the environment get no fix: how the variable is meant is not in the code. Unsafe for
    boolean strings: `"false"` -> `False` turns an option off that was on until now.

    ## References
    - https://docs.sqlalchemy.org/en/20/core/engines.html#sqlalchemy.create_engine
    - https://docs.sqlalchemy.org/en/20/core/engines.html#sqlalchemy.engine_from_config
    """

    code = "POL104"
    level = "error"
    name = "option-wrong-type"
    fix_availability = "safe or unsafe"
    invalid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", poolclass="sqlalchemy.pool.NullPool")
        ''', fixed='''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("sqlite:///app.db", poolclass=NullPool)
        ''', raises="AttributeError"),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", pool_size="7")
        ''', fixed='''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", pool_size=7)
        ''', raises="TypeError"),
        Example('''
            from sqlalchemy import engine_from_config

            engine = engine_from_config({
                "sqlalchemy.url": "sqlite:///app.db",
                "sqlalchemy.poolclass": "sqlalchemy.pool.StaticPool",
            })
        ''', fixed='''
            from sqlalchemy import engine_from_config
            from sqlalchemy.pool import StaticPool

            engine = engine_from_config({
                "sqlalchemy.url": "sqlite:///app.db",
                "sqlalchemy.poolclass": StaticPool,
            })
        ''', raises="AttributeError"),
        Example('''
            class Config:
                SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": "false"}
        ''', fixed='''
            class Config:
                SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": False}
        '''),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("sqlite:///app.db", poolclass=NullPool, pool_recycle=3600)
        '''),
        Example('''
            from sqlalchemy import engine_from_config

            # engine_from_config converts numeric strings
            engine = engine_from_config({"sqlalchemy.url": "sqlite:///app.db",
                                         "sqlalchemy.pool_size": "7"})
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        for engine in facts.engines:
            for option in engine.options.values():
                if option.from_environment:
                    yield from self._environment_string(option, engine)
                    continue
                value = option.value
                if not isinstance(value, str):
                    continue
                if option.name == "poolclass":
                    yield self._string_poolclass(option, value, facts)
                elif option.name in NUMERIC_STRING_FAILURE and engine.api.strings_unconverted:
                    yield self._numeric_string(option, value, engine)
                elif option.name in BOOLEAN_OPTIONS and value.strip().lower() in _FALSE_WORDS:
                    yield self.finding(
                        option.holder,
                        f"{option.name} is the string {value!r}, which is truthy: SQLAlchemy "
                        f"does not convert it and turns {option.name} on; use False",
                        Fix(UNSAFE, (Edit(option.value_node, replace_with(cst.Name("False"))),)))

    def _string_poolclass(self, option: EngineOption, value: str, facts: ModuleFacts):
        name = value.rpartition(".")[2].rpartition(":")[2]
        fix = None
        if name in REJECTED_BY_POOL or name in QUEUE_POOLS:
            reference, imports = _class_ref(facts, name)
            fix = Fix(SAFE, (Edit(option.value_node, replace_with(reference)),), imports)
        return self.finding(
            option.holder,
            f"poolclass is the string {value!r}: SQLAlchemy fails at start with AttributeError: "
            f"'str' object has no attribute '__dict__'; pass the class"
            f"{' ' + name if fix else ''}", fix)

    def _environment_string(self, option: EngineOption, engine: EngineCall) -> Iterator:
        variable = option.from_environment
        if option.name in NUMERIC_STRING_FAILURE and engine.api.strings_unconverted:
            convert = "float" if option.name == "pool_timeout" else "int"
            failure = NUMERIC_STRING_FAILURE[option.name].replace("create_engine()",
                                                                  engine.api.label)
            yield self.finding(
                option.holder,
                f"{option.name} is read from ${variable}, which is always a string: {failure}; "
                f"use {convert}(...)",
                Fix(SAFE, (Edit(option.value_node, lambda node: cst.Call(
                    cst.Name(convert), [cst.Arg(node.with_changes(lpar=(), rpar=()))])),)))
        elif option.name in BOOLEAN_OPTIONS:  # no API converts these (domain 23)
            yield self.finding(
                option.holder,
                f"{option.name} is read from ${variable}, which is always a string: any "
                f"non-empty value, 'false' and '0' included, turns {option.name} on; compare "
                f"it, e.g. os.environ.get({variable!r}) == \"1\"")

    def _numeric_string(self, option: EngineOption, value: str, engine: EngineCall):
        try:
            number = int(value.strip())
        except ValueError:
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        fix = None if number is None else \
            Fix(SAFE, (Edit(option.value_node, replace_with(parse_expression(repr(number)))),))
        failure = NUMERIC_STRING_FAILURE[option.name].replace("create_engine()", engine.api.label)
        use = f"use {number!r}" if number is not None else "use a number"
        return self.finding(option.holder,
                            f"{option.name} is the string {value!r}: {failure}; {use}", fix)


class OptionRejected(Rule):
    """
    ## What it does
    Finds engine arguments SQLAlchemy rejects when the engine is created:

    - pool sizing (`pool_size`, `max_overflow`, `pool_timeout`, `pool_use_lifo`) with `NullPool`,
      `StaticPool` or `AssertionPool`, and all but `pool_size` with `SingletonThreadPool`,
      including the default pool of a sqlite file on SQLAlchemy before 2.0 (`NullPool`);
    - `poolclass=QueuePool` on an async engine (SQLAlchemy 2.0.28 and later);
    - `autocommit=...`, which `create_engine()` has never accepted;
    - misspelled options (`pool_pre_pign`, `pool_class`, `recycle`), with the nearest option.

    ## Why is this bad?
    Each fails at start: `TypeError: Invalid argument(s) 'pool_size' sent to create_engine(),
    using configuration PGDialect_psycopg2/NullPool/Engine`, or `ArgumentError: Pool class
    QueuePool cannot be used with asyncio engine`. The common advice "set autocommit=True on the
    engine" is wrong on every version; real autocommit is `isolation_level="AUTOCOMMIT"`.

    ## Fix safety
    Safe: dropping arguments the pool rejects, and `QueuePool` -> `AsyncAdaptedQueuePool` (the
    same pool, made for asyncio). Unsafe: `autocommit=True` -> `isolation_level="AUTOCOMMIT"`
    (every statement then commits on its own) and renaming a misspelled option (it then takes
    effect).

    ## References
    - https://docs.sqlalchemy.org/en/20/core/pooling.html#switching-pool-implementations
    - https://docs.sqlalchemy.org/en/20/errors.html#pool-class-cannot-be-used-with-asyncio-engine-or-vice-versa
    - https://docs.sqlalchemy.org/en/20/core/connections.html#setting-transaction-isolation-levels-including-dbapi-autocommit
    """

    code = "POL105"
    level = "error"
    name = "option-rejected"
    fix_availability = "safe or unsafe"
    invalid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("sqlite:///app.db", poolclass=NullPool, pool_size=10)
        ''', fixed='''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("sqlite:///app.db", poolclass=NullPool)
        ''', raises="TypeError"),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", autocommit=True)
        ''', fixed='''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", isolation_level="AUTOCOMMIT")
        ''', raises="TypeError"),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", pool_pre_pign=True)
        ''', fixed='''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", pool_pre_ping=True)
        ''', raises="TypeError"),
        Example('''
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import QueuePool

            engine = create_async_engine("sqlite+aiosqlite:///app.db", poolclass=QueuePool)
        ''', fixed='''
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

            engine = create_async_engine("sqlite+aiosqlite:///app.db", poolclass=AsyncAdaptedQueuePool)
        ''', raises="ArgumentError"),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("sqlite:///app.db", poolclass=NullPool, pool_recycle=300)
        '''),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", isolation_level="AUTOCOMMIT",
                                   pool_size=10)
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        version = self.context.sqlalchemy_version
        for engine in facts.engines:
            pool = pool_class(engine, version)
            label = "create_engine()" if engine.api is FLASK_SQLALCHEMY else engine.api.label
            default = "" if engine.declared_pool else \
                f" (the default for this URL on SQLAlchemy {version_text(version)})"
            for name in REJECTED_BY_POOL.get(pool, ()):
                option = engine.options.get(name)
                if option is not None:
                    yield self.finding(
                        option.holder,
                        f"{name} is rejected with {pool}{default}: {label} fails at start with "
                        f"TypeError: Invalid argument(s) '{name}'; drop it",
                        Fix(SAFE, (_remove(option),)))
            if engine.is_async and engine.declared_pool == "QueuePool":
                yield self._queue_pool_on_async(engine, facts, version)
            yield from self._invalid_arguments(engine, label)

    def _queue_pool_on_async(self, engine: EngineCall, facts: ModuleFacts, version):
        option = engine.options["poolclass"]
        reference, imports = _class_ref(facts, "AsyncAdaptedQueuePool")
        failure = "fails at start with ArgumentError: Pool class QueuePool cannot be used " \
            "with asyncio engine" if version >= (2, 0, 28) else \
            "accepts it before SQLAlchemy 2.0.28, but QueuePool is not safe with asyncio"
        return self.finding(
            option.holder, f"QueuePool on an async engine: SQLAlchemy {failure}; use "
            f"AsyncAdaptedQueuePool",
            Fix(SAFE, (Edit(option.value_node, replace_with(reference)),), imports))

    def _invalid_arguments(self, engine: EngineCall, label: str) -> Iterator:
        for option in engine.options.values():
            if option.name == "autocommit":
                yield self._autocommit(engine, option, label)
                continue
            if option.name in KNOWN_OPTIONS or option.name.startswith("_"):
                continue
            nearest = _POOL_NATIVE.get(option.name) or next(iter(difflib.get_close_matches(
                option.name, _SUGGESTIONS, n=1, cutoff=0.8)), None)
            if nearest is None or nearest in engine.options:
                continue  # not close to an option: perhaps a dialect argument we do not know
            key = option.key[:len(option.key) - len(option.name)] + nearest
            yield self.finding(
                option.holder,
                f"{option.name} is not an engine option: {label} fails at start with "
                f"TypeError: Invalid argument(s) '{option.name}'; did you mean {nearest}?",
                Fix(UNSAFE, (Edit(option.container, lambda node, old=option.key, new=key:
                                  rename_option(node, old, new)),)))

    def _autocommit(self, engine: EngineCall, option: EngineOption, label: str):
        message = (f"{label} has no autocommit option on any SQLAlchemy version: it fails at "
                   f"start with TypeError: Invalid argument(s) 'autocommit'")
        if option.value is True and "isolation_level" not in engine.options:
            prefix = option.key[:len(option.key) - len("autocommit")]
            autocommit = parse_expression('"AUTOCOMMIT"')
            return self.finding(
                option.holder, f"{message}; use isolation_level=\"AUTOCOMMIT\"",
                Fix(UNSAFE, (Edit(option.container, lambda node: rename_option(
                    node, option.key, prefix + "isolation_level", autocommit)),)))
        return self.finding(option.holder, f"{message}; drop it", Fix(SAFE, (_remove(option),)))


class EnginePerCall(Rule):
    """
    ## What it does
    Finds functions that build a new engine each time they run (directly, or by calling a
    function of the project, in this module or another, that returns a new engine) and
    neither keep it, return it, cache the function nor dispose the engine.

    ## Why is this bad?
    Each engine owns a pool. An engine made per request or per task opens new connections on
    every call; they stay open until the garbage collector reaches the abandoned engine, so
    under load the database runs out of connection slots (`FATAL: sorry, too many clients
    already`, `remaining connection slots are reserved`). Engines are meant to be created once
    per process, at module level or in the application factory, and shared.

    Quiet for: functions that return the engine (factories: their callers are checked),
    functions that store it (`self.engine = ...`, `ENGINES[key] = engine`, a module global) or
    dispose it, cached functions (`functools.cache`, `lru_cache`), `NullPool` engines (no pool
    to leak), databases without server connections (sqlite, duckdb, ...), and code that runs once
    by convention (`main()`, `if __name__ == "__main__":`, tests, functions named `migrate*`,
    `upgrade`, `downgrade` or `run_migrations*`, modules that import alembic).

    ## Fix safety
    No fix: where the engine should live depends on the application.

    ## References
    - https://docs.sqlalchemy.org/en/20/core/connections.html#basic-usage
    - https://docs.sqlalchemy.org/en/20/core/pooling.html
    """

    code = "POL106"
    name = "engine-per-call"
    fix_availability = "none"
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
        version = self.context.sqlalchemy_version
        for engine in facts.engines:
            lifetime = engine.lifetime
            if lifetime is None or lifetime.escapes or lifetime.disposed \
                    or lifetime.function.exempt or facts.is_migration_env:
                continue
            if pool_class(engine, version) == "NullPool" or not _holds_server_connections(engine):
                continue
            yield self.finding(
                engine.node,
                f"{lifetime.function.name}() builds a new engine on every call and never "
                f"disposes it: each call opens a new pool whose connections stay open until "
                f"garbage collection ('too many clients'); create the engine once and reuse it")
        for call in facts.factory_calls + self._project_factory_calls(facts):
            lifetime = call.lifetime
            if lifetime.escapes or lifetime.disposed or lifetime.function.exempt \
                    or facts.is_migration_env:
                continue
            yield self.finding(
                call.node,
                f"{lifetime.function.name}() gets a new engine from {call.factory}() on every "
                f"call and never disposes it: each call opens a new pool whose connections stay "
                f"open until garbage collection ('too many clients'); cache "
                f"{call.factory.rpartition('.')[2]}() (functools.cache) or create the engine "
                f"once")

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
        return [call for call in ours if call.factory in factories]


class MissingApplicationName(Rule):
    """
    ## What it does
    Finds engines behind a pooler whose connections carry no `application_name`. Opt-in: enable
    it with `--extend-select=POL107`.

    ## Why is this bad?
    Behind PgBouncer every client looks alike: `SHOW CLIENTS` and `pg_stat_activity` cannot tell
    which service holds the connections when the pooler runs out of slots. `application_name`
    is a startup parameter PgBouncer forwards in every pooling mode.

    ## Fix safety
    Safe: adds `connect_args={"application_name": ...}` (for asyncpg, inside
    `server_settings`), named after the module's package; rename it as you like.

    ## References
    - https://www.pgbouncer.org/features.html
    - https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-APPLICATION-NAME
    """

    code = "POL107"
    name = "missing-application-name"
    fix_availability = "safe"
    opt_in = True
    invalid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("postgresql://app@pgbouncer:6432/app", poolclass=NullPool)
        ''', fixed='''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("postgresql://app@pgbouncer:6432/app", poolclass=NullPool, connect_args={"application_name": "app"})
        ''', settings={"sqlalchemy-version": "2.0"}),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine(
                "postgresql://app@pgbouncer:6432/app?application_name=orders",
                poolclass=NullPool,
            )
        ''', settings={"sqlalchemy-version": "2.0"}),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        version = self.context.sqlalchemy_version
        for engine in facts.engines:
            if engine.pooler is None or (engine.url and "application_name" in engine.url.query):
                continue
            connect_args = _connect_args(engine, facts)
            if connect_args is None or "application_name" in connect_args:
                continue
            driver = engine.url.effective_driver(version) if engine.url else None
            name = self.context.application_name
            if driver == "asyncpg":
                settings = connect_args.get("server_settings")
                if isinstance(settings, dict) and "application_name" in settings:
                    continue
                fix = None if "server_settings" in connect_args else _connect_args_fix(
                    engine, "server_settings", f'{{"application_name": "{name}"}}')
                spelled = f'{{"server_settings": {{"application_name": "{name}"}}}}'
            else:
                fix = _connect_args_fix(engine, "application_name", f'"{name}"')
                spelled = f'{{"application_name": "{name}"}}'
            yield self.finding(
                engine.node,
                f"engine behind {engine.pooler.describe()} sets no application_name: its "
                f"connections cannot be told apart in SHOW CLIENTS or pg_stat_activity; add "
                f"connect_args={spelled}", fix)
