"""POL111: a module-level AsyncEngine with its default pool, used from code that starts an event
loop per call (`asyncio.run` in a Celery task or a CLI command), hands the second loop an asyncpg
connection bound to the first: `got Future ... attached to a different loop`, and then `another
operation is in progress`. With `poolclass=NullPool` every call connects on its own loop."""

from __future__ import annotations

from flake8_pooling.settings import Settings

from .scenario import flagged_and_fixed, run

CALLS = """
for call in (1, 2, 3):
    try:
        print(call, task())
    except Exception as error:  # each call reports, so the third shows what the second left
        print(call, type(error).__name__, str(error).splitlines()[0])
"""


def test_a_pooled_async_engine_fails_on_the_second_event_loop(servers):
    flagged = f"""
        import asyncio

        from celery import shared_task
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine("{servers.direct('asyncpg')}")


        async def count():
            async with engine.connect() as connection:
                return (await connection.execute(text("select 1"))).scalar()


        @shared_task  # called directly it runs here, as a worker runs it: once per task
        def task():
            return asyncio.run(count())
    """
    fixed = flagged_and_fixed(flagged, "POL111", settings=Settings.from_values(), unsafe=True)
    assert "from sqlalchemy.pool import NullPool" in fixed
    assert f"""create_async_engine("{servers.direct('asyncpg')}", poolclass=NullPool)""" in fixed

    failing = run(flagged, CALLS, timeout=30)
    assert failing.returncode == 0, failing.stderr
    first, second, third = failing.stdout.splitlines()
    assert first == "1 1"  # the first loop opens the pool's connection and returns it
    # asyncpg's protocol creates its futures on the loop the connection was opened on
    assert second.startswith("2 RuntimeError Task <Task pending"), second
    assert second.endswith("attached to a different loop"), second
    # the failed call left the connection's protocol waiting on the first loop's future
    assert third == ("3 InterfaceError (sqlalchemy.dialects.postgresql.asyncpg.InterfaceError) "
                     "cannot perform operation: another operation is in progress"), third

    passing = run(fixed, CALLS, timeout=30)
    assert passing.returncode == 0, passing.stderr
    assert passing.stdout.splitlines() == ["1 1", "2 1", "3 1"], passing.stdout + passing.stderr
