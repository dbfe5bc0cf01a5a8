"""POL109 pool-outlives-server-timeout: a MySQL pool that keeps connections the server closes."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis.facts import ModuleFacts
from ...analysis.values import UNKNOWN
from ...vocabulary import FLASK_SQLALCHEMY
from ..base import Example, Rule
from ..pools import QUEUE_POOLS, pool_class, pre_ping_fix, pre_ping_on

MYSQL_BACKENDS = ("mysql", "mariadb")
DEFAULT_WAIT_TIMEOUT = 28800  # MySQL's and MariaDB's (fact 98)
FLASK_SQLALCHEMY_RECYCLE = 7200  # what Flask-SQLAlchemy sets for MySQL queue pools (fact 110)


class PoolOutlivesServerTimeout(Rule):
    """
    ## What it does
    Finds MySQL and MariaDB engines on a queue pool with neither `pool_pre_ping=True` nor a
    `pool_recycle` below the server's `wait_timeout`: 28800 seconds by default, or what the
    project configures (`wait_timeout` in a `[mysqld]` section of a `*.cnf` file, or
    `--wait-timeout` on the command of a compose `mysql`/`mariadb` service). Flask-SQLAlchemy
    engines count with the `pool_recycle=7200` Flask-SQLAlchemy gives MySQL pools itself.
    Quiet for an engine made and dropped within one call (POL106's business), and for a module
    that checks a connection out at import and runs everything on it (POL202's: a ping at
    checkout cannot help a connection that is never checked in).

    ## Why is this bad?
    The server closes a connection that has been idle for `wait_timeout` seconds. The pool does
    not notice: after a quiet night the first request gets a dead connection and fails with
    `(pymysql.err.OperationalError) (2006, "MySQL server has gone away (ConnectionResetError(104,
    'Connection reset by peer'))")` (observed with MariaDB 10.11 and PyMySQL), or `(2013, 'Lost
    connection to MySQL server during query')`. `pool_pre_ping=True` tests each connection at
    checkout and replaces a dead one; a `pool_recycle` below the timeout replaces connections
    before the server closes them (fact 98).

    ## Fix safety
    Safe: `pool_pre_ping=True` adds a ping per checkout and changes no results.

    ## References
    - https://docs.sqlalchemy.org/en/20/dialects/mysql.html#connection-timeouts-and-disconnects
    - https://dev.mysql.com/doc/refman/8.0/en/server-system-variables.html#sysvar_wait_timeout
    - https://mariadb.com/kb/en/server-system-variables/#wait_timeout
    """

    code = "POL109"
    name = "pool-outlives-server-timeout"
    fix_availability = "safe"
    quiet_in = ("test", "script")  # a test or a command never idles for hours
    message = ("{backend} {pool} {problem} the server's wait_timeout ({timeout}s, {source}): "
               "after an idle period the next query fails with (2006, 'MySQL server has gone "
               "away') or (2013, 'Lost connection to MySQL server during query'); set "
               "pool_pre_ping=True")
    no_check = "has neither pool_pre_ping nor a pool_recycle below"
    recycles_late = "recycles after {recycle}s, not below"
    invalid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("mysql+pymysql://app:secret@db/app", pool_size=10)
        ''', fixed='''
            from sqlalchemy import create_engine

            engine = create_engine("mysql+pymysql://app:secret@db/app", pool_size=10, pool_pre_ping=True)
        '''),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("mysql+pymysql://app:secret@db/app", pool_recycle=3600)
        ''', fixed='''
            from sqlalchemy import create_engine

            engine = create_engine(
                "mysql+pymysql://app:secret@db/app",
                pool_recycle=3600,
                pool_pre_ping=True,
            )
        ''', project={"docker-compose.yml": (
            "services:\n  db:\n    image: mariadb:10.11\n    command: --wait-timeout=600\n")}),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("mysql+pymysql://app:secret@db/app", pool_pre_ping=True)
        '''),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("mysql+pymysql://app:secret@db/app", pool_recycle=3600)
        '''),
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("mysql+pymysql://app:secret@db/app", poolclass=NullPool)
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        configured = self.context.project.deployment.mysql_wait_timeout \
            if self.context.path else None
        timeout, source = configured or (DEFAULT_WAIT_TIMEOUT, "the default")
        for engine in facts.engines:
            url = self.context.url(engine)
            if url is None or url.backend not in MYSQL_BACKENDS or not engine.options_complete:
                continue
            if engine.lifetime is not None and not engine.lifetime.escapes:
                continue  # a pool used for one call never hands out an idle connection
            if engine.lifetime is None and facts.connections:
                continue  # the module holds one connection for good: POL202's, no ping helps
            pool = pool_class(engine, self.context)
            if pool not in QUEUE_POOLS:
                continue
            if pre_ping_on(engine):
                continue
            recycle = engine.option_value("pool_recycle")
            if "pool_recycle" not in engine.options and engine.api is FLASK_SQLALCHEMY:
                recycle = FLASK_SQLALCHEMY_RECYCLE
            if recycle is UNKNOWN and "pool_recycle" in engine.options:
                continue  # chosen at run time
            recycles = isinstance(recycle, (int, float)) and not isinstance(recycle, bool) \
                and recycle > 0
            if recycles and recycle < timeout:
                continue
            problem = self.recycles_late.format(recycle=recycle) if recycles else self.no_check
            yield self.finding(engine.node, self.message.format(
                backend="MariaDB" if url.backend == "mariadb" else "MySQL", pool=pool,
                problem=problem, timeout=timeout, source=source), pre_ping_fix(engine))
