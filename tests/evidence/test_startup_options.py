"""POL108: PgBouncer refuses the settings a driver sends in the startup packet: psycopg2's and
psycopg's `options` (in `connect_args` or in the URL) and asyncpg's `server_settings`. Every
connection fails at its first connect; directly to PostgreSQL the same code works. Set there,
server-side (`ALTER ROLE ... SET`), the setting reaches every connection PgBouncer opens.
"""

from __future__ import annotations

import re
import subprocess
import textwrap

import psycopg2
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from flake8_pooling.lint import lint

from .scenario import BEHIND_PGBOUNCER, run


def codes(code: str) -> set[str]:
    return {finding.code for finding in lint(textwrap.dedent(code), "scenario.py",
                                             BEHIND_PGBOUNCER)}


def refusal_of_options() -> str:
    """What PgBouncer answers `options` with: 1.20 began to parse it and accept in it only the
    parameters it tracks (fact 94)."""
    banner = subprocess.run(["pgbouncer", "--version"], capture_output=True, text=True,
                            timeout=10).stdout
    version = tuple(int(part) for part in re.search(r"PgBouncer (\d+)\.(\d+)", banner).groups())
    if version < (1, 20):
        return "unsupported startup parameter: options"
    return "unsupported startup parameter in options: statement_timeout"


def refused_at_connect(servers, driver: str) -> str:
    """The error a psycopg2 or psycopg connection through PgBouncer fails with on `options`."""
    libpq = (f'connection to server at "127.0.0.1", port {servers.bouncer_port} failed: '
             f"FATAL:  {refusal_of_options()}")
    if driver == "psycopg":
        return f"(psycopg.OperationalError) connection failed: {libpq}"
    return f"({driver}.OperationalError) {libpq}"


SHOW_TIMEOUT = """
    from sqlalchemy import text

    with engine.connect() as connection:
        print(connection.execute(text("SHOW statement_timeout")).scalar())
"""

SHOW_JIT = """
    import asyncio
    from sqlalchemy import text

    async def main():
        async with engine.connect() as connection:
            print((await connection.execute(text("SHOW jit"))).scalar())
        await engine.dispose()

    asyncio.run(main())
"""


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_options_in_connect_args_are_refused_by_pgbouncer(servers, driver):
    def code(url: str) -> str:
        return f"""
            from sqlalchemy import create_engine

            engine = create_engine("{url}",
                                   connect_args={{"options": "-c statement_timeout=5000"}})
        """
    flagged = code(servers.through_pgbouncer(driver))
    assert "POL108" in codes(flagged)
    refused = run(flagged, SHOW_TIMEOUT, timeout=30)
    assert refused.returncode != 0
    assert refused_at_connect(servers, driver) in refused.stderr, refused.stderr[-800:]
    direct = run(code(servers.direct(driver)), SHOW_TIMEOUT, timeout=30)
    assert direct.stdout.strip() == "5s", direct.stderr[-800:]


def test_options_in_the_url_are_refused_too(servers):
    def code(url: str) -> str:
        return f"""
            from sqlalchemy import create_engine

            engine = create_engine("{url}?options=-c%20statement_timeout%3D5000")
        """
    flagged = code(servers.through_pgbouncer("psycopg2"))
    assert "POL108" in codes(flagged)
    refused = run(flagged, SHOW_TIMEOUT, timeout=30)
    assert refused.returncode != 0
    assert refused_at_connect(servers, "psycopg2") in refused.stderr, refused.stderr[-800:]
    direct = run(code(servers.direct("psycopg2")), SHOW_TIMEOUT, timeout=30)
    assert direct.stdout.strip() == "5s", direct.stderr[-800:]


def test_asyncpg_server_settings_are_refused_by_pgbouncer(servers):
    def code(url: str) -> str:
        return f"""
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine("{url}",
                                         connect_args={{"server_settings": {{"jit": "off"}}}})
        """
    flagged = code(servers.through_pgbouncer("asyncpg"))
    assert "POL108" in codes(flagged)
    refused = run(flagged, SHOW_JIT, timeout=30)
    assert refused.returncode != 0
    # asyncpg's ProtocolViolationError, as SQLAlchemy wraps it
    assert ("(sqlalchemy.dialects.postgresql.asyncpg.Error) unsupported startup parameter: jit"
            in refused.stderr), refused.stderr[-800:]
    direct = run(code(servers.direct("asyncpg")), SHOW_JIT, timeout=30)
    assert direct.stdout.strip() == "off", direct.stderr[-800:]


def test_asyncpg_server_settings_pgbouncer_tracks_pass(servers):
    # application_name is one of the startup parameters PgBouncer accepts (POL107's fix for
    # asyncpg puts it in server_settings): not a finding. statement_cache_size is POL103's fix:
    # earlier tests leave asyncpg's statements on the shared server connection
    code = f"""
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(
            "{servers.through_pgbouncer('asyncpg')}",
            connect_args={{"server_settings": {{"application_name": "scenario"}},
                          "statement_cache_size": 0}})
    """
    assert "POL108" not in codes(code)
    shown = run(code, SHOW_JIT.replace("SHOW jit", "SHOW application_name"), timeout=30)
    assert shown.stdout.strip() == "scenario", shown.stderr[-800:]


def reconnect(servers) -> None:
    """PgBouncer's RECONNECT: its server connections close, so the next ones start afresh."""
    admin = psycopg2.connect(host="127.0.0.1", port=servers.bouncer_port, dbname="pgbouncer",
                             user="app", connect_timeout=5)
    try:
        admin.autocommit = True  # the admin console knows no transactions
        with admin.cursor() as cursor:
            cursor.execute("RECONNECT app")
    finally:
        admin.close()


def on_postgresql(servers, *statements: str) -> None:
    engine = create_engine(servers.direct("psycopg2"), poolclass=NullPool,
                           connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def test_settings_made_server_side_reach_connections_through_pgbouncer(servers):
    sync = f"""
        from sqlalchemy import create_engine

        engine = create_engine("{servers.through_pgbouncer('psycopg2')}")
    """
    asynchronous = f"""
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine("{servers.through_pgbouncer('asyncpg')}",
                                     connect_args={{"statement_cache_size": 0}})  # POL103
    """
    assert "POL108" not in codes(sync) and "POL108" not in codes(asynchronous)
    # a server connection exists already, as it will in any PgBouncer that has been running
    before = run(sync, SHOW_TIMEOUT, timeout=30)
    assert before.stdout.strip() == "0", before.stderr[-800:]
    try:
        on_postgresql(servers, "ALTER ROLE app SET statement_timeout = 5000",
                      "ALTER ROLE app SET jit = off")
        # PostgreSQL reads role settings when a session starts: the old server connection
        # has none of them
        stale = run(sync, SHOW_TIMEOUT, timeout=30)
        assert stale.stdout.strip() == "0", stale.stderr[-800:]
        reconnect(servers)
        timeout = run(sync, SHOW_TIMEOUT, timeout=30)
        assert timeout.stdout.strip() == "5s", timeout.stderr[-800:]
        jit = run(asynchronous, SHOW_JIT, timeout=30)
        assert jit.stdout.strip() == "off", jit.stderr[-800:]
    finally:  # the servers are shared with the other tests
        on_postgresql(servers, "ALTER ROLE app RESET statement_timeout",
                      "ALTER ROLE app RESET jit")
        reconnect(servers)
    after = run(sync, SHOW_TIMEOUT, timeout=30)
    assert after.stdout.strip() == "0", after.stderr[-800:]
