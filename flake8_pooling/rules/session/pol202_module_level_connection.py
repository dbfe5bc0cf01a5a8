"""POL202 module-level-connection: a connection checked out at import."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis.facts import ModuleFacts
from ..base import Example, Rule


class ModuleLevelConnection(Rule):
    """
    ## What it does
    Finds connections checked out when a module is imported: `engine.connect()`,
    `engine.begin()` or `engine.raw_connection()` at module level, kept in a name or never
    closed. A `with engine.connect() as connection:` block at module level returns its
    connection and is not reported.

    ## Why is this bad?
    The connection stays checked out for the life of the process: every thread that uses it
    shares one database session and one transaction, and a forked worker (gunicorn with
    `preload_app`, Celery prefork) inherits the socket, so parent and children talk over it at
    once: "SSL error: decryption failed or bad record mac", "error with status PGRES_TUPLES_OK
    and no message from the libpq". libpq warns that forking with open connections "can lead to
    unpredictable results".

    ## Fix safety
    No fix: the code that uses the connection has to check one out where it runs, usually with
    `with engine.connect() as connection:` inside a function.

    ## References
    - https://docs.sqlalchemy.org/en/20/core/pooling.html#using-connection-pools-with-multiprocessing-or-os-fork
    - https://www.postgresql.org/docs/current/libpq-connect.html
    """

    code = "POL202"
    name = "module-level-connection"
    fix_availability = "none"
    quiet_in = ("test", "script")  # run once, shared with nothing
    message = ("connection checked out at import ({method}()) is shared by every thread and "
               "inherited by forked workers, which then talk over one socket ('SSL error: "
               "decryption failed or bad record mac'); check connections out where they are "
               "used: with engine.connect() as connection")
    invalid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@db/app")
            connection = engine.connect()
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
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        for connection in facts.connections:
            yield self.finding(connection.node, self.message.format(method=connection.method))
