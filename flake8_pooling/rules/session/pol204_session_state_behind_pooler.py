"""POL204 session-state-behind-pooler: SQL that needs its own server session, sent through a
transaction pooler that hands the session to someone else after each transaction."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis.facts import ModuleFacts
from ..base import Example, Rule


class SessionStateBehindPooler(Rule):
    """
    ## What it does
    Finds SQL that keeps state in the database session, sent by code whose engines go through
    a pooler in transaction (or statement) mode: session advisory locks (`pg_advisory_lock`,
    `pg_try_advisory_lock`, also as `func.pg_advisory_lock(...)`), plain `SET` and
    `set_config(..., false)` (in a `"connect"` event listener too), `LISTEN`, temporary tables
    without `ON COMMIT DROP`, `WITH HOLD` cursors and SQL `PREPARE`. The SQL is read from
    `text(...)`, `.execute(...)` and `.exec_driver_sql(...)`. A module without engines of its
    own counts as behind the pooler when every engine of the project is.

    ## Why is this bad?
    A transaction pooler gives the client a server connection for one transaction, then gives
    that connection to another client (facts 54, 95). Whatever the session kept stays behind:
    a session advisory lock stays held on a connection another client now uses (which can
    take the same lock, since it is the same session), and the unlock runs on a different
    connection and fails; `SET statement_timeout` applies to the next clients of that
    connection instead of this one; notifications for a `LISTEN` go to whoever holds the
    connection; a temporary table is missing in the next transaction (fact 115).

    ## Fix safety
    No fix: the replacement changes what the code does. Use `pg_advisory_xact_lock()`
    (released at commit), `SET LOCAL` inside the transaction, `ON COMMIT DROP`, or a direct
    connection to PostgreSQL for `LISTEN` and other session work.

    ## References
    - https://www.pgbouncer.org/features.html
    - https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
    - https://www.postgresql.org/docs/current/sql-set.html
    """

    code = "POL204"
    name = "session-state-behind-pooler"
    fix_availability = "none"
    quiet_in = ("test",)
    message = ("{kind} through {pooler}, which hands the server connection to other clients "
               "after each transaction: {what_happens}; use {instead}")
    invalid = (
        Example('''
            from sqlalchemy import create_engine, text
            from sqlalchemy.pool import NullPool

            engine = create_engine("postgresql://app@pgbouncer:6432/app", poolclass=NullPool)

            def run_alone(job):
                with engine.begin() as connection:
                    connection.execute(text("SELECT pg_advisory_lock(42)"))
                    job(connection)
        '''),
        Example('''
            from sqlalchemy import create_engine, event
            from sqlalchemy.pool import NullPool

            engine = create_engine("postgresql://app@pgbouncer:6432/app", poolclass=NullPool)

            @event.listens_for(engine, "connect")
            def set_timeout(dbapi_connection, record):
                with dbapi_connection.cursor() as cursor:
                    cursor.execute("SET statement_timeout = '5s'")
        '''),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine, text
            from sqlalchemy.pool import NullPool

            engine = create_engine("postgresql://app@pgbouncer:6432/app", poolclass=NullPool)

            def run_alone(job):
                with engine.begin() as connection:
                    connection.execute(text("SELECT pg_advisory_xact_lock(42)"))
                    connection.execute(text("SET LOCAL statement_timeout = '5s'"))
                    job(connection)
        '''),
        Example('''
            from sqlalchemy import create_engine, text

            engine = create_engine("postgresql://app@db:5432/app")

            def run_alone(job):
                with engine.begin() as connection:
                    connection.execute(text("SELECT pg_advisory_lock(42)"))
                    job(connection)
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        if not facts.session_statements or facts.is_migration_env:
            return
        pooler = self.context.transaction_pooler(facts)
        if pooler is None:
            return
        for statement in facts.session_statements:
            state = statement.state
            yield self.finding(statement.node, self.message.format(
                kind=state.kind, pooler=pooler.describe(), what_happens=state.what_happens,
                instead=state.instead))
