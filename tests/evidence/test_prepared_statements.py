"""POL103: asyncpg and psycopg 3 prepared statements through PgBouncer in transaction mode."""

from __future__ import annotations

from .scenario import flagged_and_fixed, run

ASYNCPG_RUNS = """
import asyncio
from sqlalchemy import text

async def main():
    # NullPool: every block is a new client, and PgBouncer (default_pool_size=1) hands each
    # the same server connection, where statements other processes prepared remain
    for round in range(4):
        async with engine.begin() as connection:
            await connection.execute(text("select 1 + :n"), {"n": round})
    await engine.dispose()

asyncio.run(main())
print("clean")
"""

PSYCOPG_RUNS = """
from sqlalchemy import text

# two clients take turns on PgBouncer's one server connection; psycopg prepares a statement
# after 5 executions, and each names it _pg3_0
first, second = engine.connect(), engine.connect()
for round in range(8):
    for connection in (first, second):
        with connection.begin():
            connection.execute(text("select 1 + :n"), {"n": round})
print("clean")
"""


def test_asyncpg_duplicate_prepared_statement_and_the_fix(servers):
    flagged = f"""
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        engine = create_async_engine("{servers.through_pgbouncer('asyncpg')}", poolclass=NullPool)
    """
    fixed = flagged_and_fixed(flagged, "POL103")
    # asyncpg numbers its statements per process: two worker processes behind one PgBouncer
    # server connection both prepare __asyncpg_stmt_1__
    failing = [run(flagged, ASYNCPG_RUNS) for worker in range(2)]
    assert any('prepared statement "__asyncpg_stmt_' in result.stderr
               and "already exists" in result.stderr for result in failing), \
        [result.stderr[-300:] for result in failing]
    for worker in range(2):
        passing = run(fixed, ASYNCPG_RUNS)
        assert passing.stdout.strip() == "clean", passing.stderr


def test_psycopg3_duplicate_prepared_statement_and_the_fix(servers):
    flagged = f"""
        from sqlalchemy import create_engine

        engine = create_engine("{servers.through_pgbouncer('psycopg')}", pool_size=2)
    """
    fixed = flagged_and_fixed(flagged, "POL103")
    failing = run(flagged, PSYCOPG_RUNS)
    assert failing.returncode != 0
    assert 'prepared statement "_pg3_0" already exists' in failing.stderr
    passing = run(fixed, PSYCOPG_RUNS)
    assert passing.stdout.strip() == "clean", passing.stderr
