"""POL103 prepared-statements-behind-pooler: driver-side prepared statements through
transaction pooling."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis.facts import ModuleFacts
from ..base import Example, Rule
from ..pools import connect_args, connect_args_fix


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
    quiet_in = ("test",)  # a test's engine is not the deployment's
    asyncpg_message = (
        "asyncpg behind {pooler} in {mode} mode{caveat} prepares statements: queries fail with "
        "'prepared statement \"__asyncpg_stmt_1__\" already exists'; set "
        "connect_args={{\"statement_cache_size\": 0}} (asyncpg >= 0.31; older asyncpg also "
        "needs prepared_statement_name_func)")
    psycopg_message = (
        "psycopg 3 behind {pooler} in {mode} mode{caveat} prepares statements after 5 "
        "executions{bare}: queries fail with 'prepared statement \"_pg3_0\" already exists'; set "
        "connect_args={{\"prepare_threshold\": None}}")
    bare_url = " (postgresql:// means psycopg 3 from SQLAlchemy 2.1)"
    old_asyncpg = (
        "asyncpg {version} behind {pooler} in {mode} mode{caveat} still names its statements with "
        "statement_cache_size=0 (before asyncpg 0.31): queries fail with 'prepared statement "
        "\"__asyncpg_stmt_1__\" already exists'; add a prepared_statement_name_func that "
        "returns unique names, or upgrade asyncpg")
    # PgBouncer 1.24 and later track prepared statements by default (fact 85)
    version_unknown = (" (with PgBouncer before 1.24, or max_prepared_statements = 0; 1.24 and "
                       "later carry them)")
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
                "postgresql+asyncpg://app@pgbouncer:6432/app",
                poolclass=NullPool,
                connect_args={"statement_cache_size": 0}
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
            pooler, url = self.context.pooler(engine), self.context.url(engine)
            if pooler is None or not pooler.pools_transactions or url is None:
                continue
            if pooler.supports_prepared_statements or not pooler.prepared_statements_known:
                continue
            driver = url.effective_driver(version)
            arguments = connect_args(engine, facts)
            if arguments is None:
                continue
            caveat = self.version_unknown if pooler.prepared_statements is None \
                and pooler.max_prepared_statements is None else ""
            where = {"pooler": pooler.describe(), "mode": pooler.mode, "caveat": caveat}
            if driver == "asyncpg":
                if "prepared_statement_name_func" in arguments:
                    continue
                if arguments.get("statement_cache_size") == 0:
                    pin = self.context.project.deployment.pins.get("asyncpg") \
                        if self.context.path else None
                    if pin is not None and pin[0] < (0, 31):  # fact 34
                        yield self.finding(engine.node, self.old_asyncpg.format(
                            version=".".join(map(str, pin[0])), **where))
                    continue
                yield self.finding(engine.node, self.asyncpg_message.format(**where),
                                   connect_args_fix(engine, "statement_cache_size", "0"))
            elif driver in ("psycopg", "psycopg_async"):
                if "prepare_threshold" in arguments and arguments["prepare_threshold"] is None:
                    continue
                bare = self.bare_url if url.driver == "" else ""
                yield self.finding(engine.node,
                                   self.psycopg_message.format(bare=bare, **where),
                                   connect_args_fix(engine, "prepare_threshold", "None"))
