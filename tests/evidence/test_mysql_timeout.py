"""POL109: MySQL and MariaDB close a connection that stays idle longer than `wait_timeout`
(28800 s by default); a pooled connection idle that long fails on its next use with
`(2006, "MySQL server has gone away ...")`. `pool_pre_ping=True` (the fix) tests the connection
at checkout and replaces it; a `pool_recycle` below `wait_timeout` avoids it too.

The server here runs with wait_timeout=2 so that "eight hours idle" takes a few seconds.
"""

from __future__ import annotations

import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from flake8_pooling.lint import lint
from flake8_pooling.settings import Settings

from .mariadb import MariaDB, available, binary
from .scenario import flagged_and_fixed, run

WAIT_TIMEOUT = 2
IDLE = WAIT_TIMEOUT + 1.5  # the margin: the server's idle check is not to the millisecond

SCENARIO = f"""
import time
from sqlalchemy import text

with engine.connect() as connection:
    first = connection.execute(text("select connection_id()")).scalar()
# back in the pool; idle past the server's wait_timeout, as on a quiet night
time.sleep({IDLE})
with engine.connect() as connection:
    second = connection.execute(text("select connection_id()")).scalar()
print("new server connection" if second != first else "same server connection")
"""


@pytest.fixture(scope="module")
def mariadb():
    reason = available()
    if reason:
        pytest.skip(reason)
    with MariaDB(wait_timeout=WAIT_TIMEOUT) as running:
        yield running


def test_the_default_wait_timeout_is_eight_hours():
    reason = available()
    if reason:
        pytest.skip(reason)
    # --no-defaults: the compiled-in values, not whatever /etc/mysql sets
    shown = subprocess.run([binary("mariadbd"), "--no-defaults", "--verbose", "--help"],
                           capture_output=True, text=True, timeout=30).stdout
    values = dict(line.split() for line in shown.splitlines()
                  if line.startswith(("wait-timeout ", "interactive-timeout ")))
    assert values == {"wait-timeout": "28800", "interactive-timeout": "28800"}


def test_a_pymysql_session_takes_the_global_wait_timeout(mariadb):
    import pymysql
    from pymysql.constants import CLIENT

    def session_timeouts(client_flag: int = 0) -> tuple:
        connection = pymysql.connect(host="127.0.0.1", port=mariadb.port, user="app",
                                     database="app", client_flag=client_flag,
                                     connect_timeout=5, read_timeout=5, write_timeout=5)
        try:
            with connection.cursor() as cursor:
                cursor.execute("select @@session.wait_timeout, @@global.wait_timeout, "
                               "@@global.interactive_timeout")
                return cursor.fetchone()
        finally:
            connection.close()

    # pymysql (and so SQLAlchemy) connects as a non-interactive client: wait_timeout applies
    assert session_timeouts() == (WAIT_TIMEOUT, WAIT_TIMEOUT, 28800)
    # only a client that says it is interactive gets interactive_timeout instead
    assert session_timeouts(CLIENT.INTERACTIVE) == (28800, WAIT_TIMEOUT, 28800)


def test_an_idle_pooled_connection_is_gone_and_pre_ping_replaces_it(mariadb):
    flagged = f"""
        from sqlalchemy import create_engine
        engine = create_engine("{mariadb.url('pymysql')}")
    """
    fixed = flagged_and_fixed(flagged, "POL109", settings=Settings.from_values())
    assert "pool_pre_ping=True" in fixed
    # both sleep past the timeout: side by side, the test waits once
    with ThreadPoolExecutor(2) as pool:
        failing, passing = pool.map(lambda code: run(code, SCENARIO, timeout=30),
                                    (flagged, fixed))
    assert failing.returncode != 0
    # MariaDB 10.11 resets the idle connection (no error packet): the query's write fails,
    # e.g. (2006, "MySQL server has gone away (ConnectionResetError(104, 'Connection reset by
    # peer'))")
    assert ('sqlalchemy.exc.OperationalError: (pymysql.err.OperationalError) '
            '(2006, "MySQL server has gone away (') in failing.stderr, failing.stderr[-600:]
    assert passing.returncode == 0, passing.stderr[-600:]
    assert passing.stdout.strip() == "new server connection"


def test_a_pool_recycle_below_wait_timeout_avoids_it(mariadb):
    recycled = f"""
        from sqlalchemy import create_engine
        engine = create_engine("{mariadb.url('pymysql')}", pool_recycle=1)
    """
    findings = lint(textwrap.dedent(recycled), "scenario.py", Settings.from_values())
    assert "POL109" not in {finding.code for finding in findings}
    passing = run(recycled, SCENARIO, timeout=30)
    assert passing.returncode == 0, passing.stderr[-600:]
    assert passing.stdout.strip() == "new server connection"
