"""POL204: session state through PgBouncer in transaction mode. A session advisory lock, a plain
`SET` (also one in a "connect" listener) and `LISTEN` stay on the server connection the client
happened to get: other clients inherit them, the client itself loses them on its next
transaction, and nobody clears them. The transaction-scoped alternatives the rule recommends
(`pg_advisory_xact_lock`, `SET LOCAL`) end with the transaction.

These tests run their own PgBouncer with two server connections (the shared fixture has one):
"lost" needs a second server connection for the client's next transaction, and a lock that
works must be seen to exclude a client that runs at the same time. PgBouncer reuses server
connections last-in first-out (`server_round_robin = 0`), so a client that starts after
another's transaction gets that client's server connection: the runs are deterministic.
"""

from __future__ import annotations

import json
import textwrap
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from flake8_pooling.lint import lint

from .scenario import BEHIND_PGBOUNCER, run
from .servers import Servers, available


def codes(code: str) -> set[str]:
    return {finding.code for finding in lint(textwrap.dedent(code), "scenario.py",
                                             BEHIND_PGBOUNCER)}


def outcome(*parts: str) -> dict:
    """Run the scenario in a fresh interpreter; what it printed last, as JSON."""
    result = run(*parts, timeout=30)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def query(servers: Servers, sql: str) -> list[tuple]:
    """Ask PostgreSQL directly, from a session of its own."""
    engine = create_engine(servers.direct("psycopg2"), poolclass=NullPool,
                           connect_args={"connect_timeout": 5})
    try:
        with engine.begin() as connection:
            result = connection.execute(text(sql))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def held_advisory_locks(servers: Servers) -> list[tuple]:
    return query(servers, "SELECT objid, granted FROM pg_locks WHERE locktype = 'advisory'")


@pytest.fixture(scope="module")
def two_server_connections():
    reason = available()
    if reason:
        pytest.skip(reason)
    with Servers(pool_mode="transaction", default_pool_size=2) as running:
        yield running


@pytest.fixture
def bouncer(two_server_connections):
    """PgBouncer with no server connection yet: none carries a lock or setting of an earlier
    test (that is the point of these tests)."""
    two_server_connections.restart_pgbouncer()
    deadline = time.monotonic() + 10
    # the backends of the stopped PgBouncer's server connections exit a moment later
    while query(two_server_connections, "SELECT pid FROM pg_stat_activity WHERE backend_type"
                " = 'client backend' AND pid <> pg_backend_pid()"):
        assert time.monotonic() < deadline, "PgBouncer's old server connections did not end"
        time.sleep(0.05)
    return two_server_connections


# -- advisory locks -------------------------------------------------------------------------------

SESSION_LOCK = """
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine("{url}", poolclass=NullPool)

    job = engine.connect()  # a job that holds the lock over several transactions of its work
    with job.begin():
        job.execute(text("SELECT pg_advisory_lock(42)"))
"""

SESSION_LOCK_RUNS = """
    import json
    import logging

    warnings = []


    class Keep(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())


    # SQLAlchemy's psycopg2 dialect logs the server's warnings here, at INFO (and clears them)
    logging.getLogger("sqlalchemy.dialects.postgresql").setLevel(logging.INFO)
    logging.getLogger("sqlalchemy.dialects.postgresql").addHandler(Keep())

    # another client while the job works (NullPool: each connect() is a new PgBouncer client)
    other = engine.connect()
    with other.begin():
        other_got_it = other.execute(text("SELECT pg_try_advisory_lock(42)")).scalar()
        # the job finishes while the other client is in a transaction
        with job.begin():
            released = job.execute(text("SELECT pg_advisory_unlock(42)")).scalar()
    print(json.dumps({"other_got_it": other_got_it, "released": released,
                      "warnings": warnings}))
"""

XACT_LOCK = """
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine("{url}", poolclass=NullPool)

    job = engine.connect()
    work = job.begin()  # the job's work is one transaction, and the lock lasts as long
    job.execute(text("SELECT pg_advisory_xact_lock(42)"))
"""

XACT_LOCK_RUNS = """
    import json

    other = engine.connect()
    with other.begin():
        during = other.execute(text("SELECT pg_try_advisory_xact_lock(42)")).scalar()
    work.commit()
    with other.begin():
        after = other.execute(text("SELECT pg_try_advisory_xact_lock(42)")).scalar()
    print(json.dumps({"other_got_it_during": during, "other_got_it_after": after}))
"""


def test_session_advisory_lock_excludes_nobody_cannot_be_released_and_outlives_its_client(
        bouncer):
    through = SESSION_LOCK.format(url=bouncer.through_pgbouncer("psycopg2"))
    assert "POL204" in codes(through)

    direct = outcome(SESSION_LOCK.format(url=bouncer.direct("psycopg2")), SESSION_LOCK_RUNS)
    assert direct == {"other_got_it": False, "released": True, "warnings": []}
    assert held_advisory_locks(bouncer) == []

    pooled = outcome(through, SESSION_LOCK_RUNS)
    # the other client got the server connection where the job's lock is: the lock is "its"
    assert pooled["other_got_it"] is True, pooled
    # the job's unlock ran on the pool's other server connection, which holds no lock
    assert pooled["released"] is False, pooled
    assert pooled["warnings"] == ["WARNING:  you don't own a lock of type ExclusiveLock"]
    # both clients have gone; the server connection still holds the lock, for good
    assert held_advisory_locks(bouncer) == [(42, True)]
    assert query(bouncer, "SELECT pg_try_advisory_lock(42)") == [(False,)]


def test_transaction_advisory_lock_excludes_the_other_client_and_ends_with_the_work(bouncer):
    through = XACT_LOCK.format(url=bouncer.through_pgbouncer("psycopg2"))
    assert "POL204" not in codes(through)
    pooled = outcome(through, XACT_LOCK_RUNS)
    assert pooled == {"other_got_it_during": False, "other_got_it_after": True}
    assert held_advisory_locks(bouncer) == []


# -- settings -------------------------------------------------------------------------------------

PLAIN_SET = """
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine("{url}", poolclass=NullPool)

    job = engine.connect()  # a job that wants its own queries cut short
    job.execute(text("SET statement_timeout = '100ms'"))
    job.commit()
"""

PLAIN_SET_RUNS = """
    import json
    from sqlalchemy.exc import DBAPIError

    other = engine.connect()  # another client: say, another request
    with other.begin():
        seen = other.execute(text("SHOW statement_timeout")).scalar()
        with job.begin():  # meanwhile the job's next transaction
            own = job.execute(text("SHOW statement_timeout")).scalar()
        try:
            other.execute(text("SELECT pg_sleep(0.3)"))
            slow_query = "ran"
        except DBAPIError as error:
            slow_query = str(error.orig).strip()
    print(json.dumps({"other_sees": seen, "job_sees": own, "other_slow_query": slow_query}))
"""

SET_LOCAL = """
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine("{url}", poolclass=NullPool)

    job = engine.connect()
    work = job.begin()
    job.execute(text("SET LOCAL statement_timeout = '100ms'"))
"""

SET_LOCAL_RUNS = """
    import json

    own = job.execute(text("SHOW statement_timeout")).scalar()
    job_server = job.execute(text("SELECT pg_backend_pid()")).scalar()
    work.commit()
    other = engine.connect()
    with other.begin():
        seen = other.execute(text("SHOW statement_timeout")).scalar()
        other_server = other.execute(text("SELECT pg_backend_pid()")).scalar()
        other.execute(text("SELECT pg_sleep(0.3)"))
    print(json.dumps({"other_sees": seen, "job_sees": own,
                      "same_server_connection": job_server == other_server}))
"""


def test_plain_set_leaks_to_other_clients_and_is_lost_to_its_own(bouncer):
    through = PLAIN_SET.format(url=bouncer.through_pgbouncer("psycopg2"))
    assert "POL204" in codes(through)

    direct = outcome(PLAIN_SET.format(url=bouncer.direct("psycopg2")), PLAIN_SET_RUNS)
    assert direct == {"other_sees": "0", "job_sees": "100ms", "other_slow_query": "ran"}

    pooled = outcome(through, PLAIN_SET_RUNS)
    assert pooled == {"other_sees": "100ms", "job_sees": "0",
                      "other_slow_query": "canceling statement due to statement timeout"}


def test_set_local_stays_in_its_transaction(bouncer):
    through = SET_LOCAL.format(url=bouncer.through_pgbouncer("psycopg2"))
    assert "POL204" not in codes(through)
    pooled = outcome(through, SET_LOCAL_RUNS)
    # the other client got the very server connection the job used, and none of its setting
    assert pooled == {"other_sees": "0", "job_sees": "100ms", "same_server_connection": True}


CONNECT_LISTENER = """
    from sqlalchemy import create_engine, event, text
    from sqlalchemy.pool import NullPool

    engine = create_engine("{url}", poolclass=NullPool)


    @event.listens_for(engine, "connect")
    def set_search_path(dbapi_connection, connection_record):
        cursor = dbapi_connection.cursor()
        cursor.execute("SET search_path TO other")
        cursor.close()
"""

BEGIN_LISTENER = """
    from sqlalchemy import create_engine, event, text
    from sqlalchemy.pool import NullPool

    engine = create_engine("{url}", poolclass=NullPool)


    @event.listens_for(engine, "begin")
    def set_search_path(connection):
        connection.exec_driver_sql("SET LOCAL search_path TO other")
"""

LISTENER_RUNS = """
    import json

    # another application on the same PgBouncer, without the listener
    neighbour = create_engine(engine.url, poolclass=NullPool)

    job = engine.connect()
    with job.begin():
        first = job.execute(text("SHOW search_path")).scalar()
    other = neighbour.connect()
    with other.begin():
        seen = other.execute(text("SHOW search_path")).scalar()
        with job.begin():  # meanwhile the job's next transaction
            own = job.execute(text("SHOW search_path")).scalar()
    print(json.dumps({"job_first": first, "other_sees": seen, "job_next": own}))
"""

DEFAULT_PATH = '"$user", public'


def test_set_in_a_connect_listener_leaks_to_other_clients_and_is_lost_to_its_own(bouncer):
    through = CONNECT_LISTENER.format(url=bouncer.through_pgbouncer("psycopg2"))
    assert "POL204" in codes(through)

    direct = outcome(CONNECT_LISTENER.format(url=bouncer.direct("psycopg2")), LISTENER_RUNS)
    assert direct == {"job_first": "other", "other_sees": DEFAULT_PATH, "job_next": "other"}

    pooled = outcome(through, LISTENER_RUNS)
    assert pooled == {"job_first": "other", "other_sees": "other", "job_next": DEFAULT_PATH}


def test_set_local_in_a_begin_listener_holds_in_every_transaction_and_nowhere_else(bouncer):
    through = BEGIN_LISTENER.format(url=bouncer.through_pgbouncer("psycopg2"))
    assert "POL204" not in codes(through)
    pooled = outcome(through, LISTENER_RUNS)
    assert pooled == {"job_first": "other", "other_sees": DEFAULT_PATH, "job_next": "other"}


# -- LISTEN ---------------------------------------------------------------------------------------

LISTEN = """
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine("{url}", poolclass=NullPool)

    listener = engine.connect()
    with listener.begin():
        listener.execute(text("LISTEN jobs"))
"""

LISTEN_RUNS = """
    import json
    import select

    notifier = engine.connect()  # NOTIFY itself works through transaction pooling
    with notifier.begin():
        notifier.execute(text("NOTIFY jobs, 'job 1'"))
    waiting = listener.connection.dbapi_connection
    select.select([waiting], [], [], 1.0)  # directly, it arrives at once
    waiting.poll()
    print(json.dumps({
        "listener_got": [note.payload for note in waiting.notifies],
        "notifier_got": [note.payload for note in notifier.connection.dbapi_connection.notifies],
    }))
"""


def test_listen_through_pgbouncer_never_hears_its_notification(bouncer):
    through = LISTEN.format(url=bouncer.through_pgbouncer("psycopg2"))
    assert "POL204" in codes(through)

    direct = outcome(LISTEN.format(url=bouncer.direct("psycopg2")), LISTEN_RUNS)
    assert direct == {"listener_got": ["job 1"], "notifier_got": []}

    pooled = outcome(through, LISTEN_RUNS)
    # the notifier got the listening server connection, and with it the notification
    assert pooled == {"listener_got": [], "notifier_got": ["job 1"]}
    # the server connection listens on with nobody behind it: PgBouncer drops what comes
    log = bouncer.dir / "pgbouncer.log"
    logged_before = len(log.read_text())
    query(bouncer, "NOTIFY jobs, 'job 2'")
    deadline = time.monotonic() + 5
    while "got packet 'A' from server when not linked" not in log.read_text()[logged_before:]:
        assert time.monotonic() < deadline, log.read_text()[logged_before:]
        time.sleep(0.05)
