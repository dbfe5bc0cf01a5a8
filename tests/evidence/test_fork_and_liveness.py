"""POL302 (dispose in a forked child) and POL102 (a pool without liveness checks behind a
restarting PgBouncer), against real servers."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import sqlalchemy

from flake8_pooling.settings import Settings

from .scenario import flagged_and_fixed, run

FORK_RUNS = """
import os
from sqlalchemy import text

with engine.connect() as connection:  # the parent's connection, back in its pool
    connection.execute(text("select 1"))
child = os.fork()
if child == 0:
    os._exit(0)  # the hook registered above has run in the child
os.waitpid(child, 0)
with engine.connect() as connection:
    print("parent still works:", connection.execute(text("select 1")).scalar())
"""


def test_dispose_in_the_child_kills_the_parents_connection_and_close_false_does_not(servers):
    flagged = f"""
        import os
        from sqlalchemy import create_engine

        engine = create_engine("{servers.direct('psycopg2')}")


        def reset_pool():
            engine.dispose()


        os.register_at_fork(after_in_child=reset_pool)
    """
    # the SQLAlchemy the scenario runs on (this repository's own pin, >=1.4, would ask for the
    # pool.recreate() form)
    fixed = flagged_and_fixed(flagged, "POL302",
                              Settings.from_values(sqlalchemy_version=sqlalchemy.__version__))
    assert "engine.dispose(close=False)" in fixed
    failing = run(flagged, FORK_RUNS)
    assert failing.returncode != 0
    assert "server closed the connection unexpectedly" in failing.stderr
    passing = run(fixed, FORK_RUNS)
    assert passing.stdout.strip() == "parent still works: 1", passing.stderr


RESTART_RUNS = """
from sqlalchemy import text

with engine.connect() as connection:
    connection.execute(text("select 1"))
print("ready", flush=True)
input()  # PgBouncer restarts now
with engine.connect() as connection:
    print("after the restart:", connection.execute(text("select 1")).scalar())
"""


def test_a_pgbouncer_restart_breaks_a_pool_without_pre_ping_and_the_fix_recovers(servers):
    flagged = f"""
        from sqlalchemy import create_engine

        engine = create_engine("{servers.through_pgbouncer('psycopg2')}", pool_size=2)
    """
    fixed = flagged_and_fixed(flagged, "POL102")
    assert "pool_pre_ping=True" in fixed
    for code, works in ((flagged, False), (fixed, True)):
        process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code) +
                                    textwrap.dedent(RESTART_RUNS)],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout.readline().strip() == "ready"
            servers.restart_pgbouncer()
            out, err = process.communicate("\n", timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        if works:
            assert out.strip() == "after the restart: 1", err
        else:
            assert process.returncode != 0
            assert "server closed the connection unexpectedly" in err


THREAD_RUNS = """
import threading, time
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError

failures = []


def request():
    try:
        with engine.connect() as connection:
            connection.execute(text("select pg_sleep(0.5)"))
    except TimeoutError as error:
        failures.append(str(error).splitlines()[0])


threads = [threading.Thread(target=request) for _ in range(6)]  # a worker's 6 threads
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(failures[0] if failures else "all served")
"""


def test_more_threads_than_the_pool_holds_time_out(servers, tmp_path):
    from flake8_pooling.lint import lint

    small = f'create_engine("{servers.direct("psycopg2")}", pool_size=2, max_overflow=0, ' \
            f'pool_timeout=0.2)'
    fitting = f'create_engine("{servers.direct("psycopg2")}", pool_size=6, max_overflow=0, ' \
              f'pool_timeout=0.2)'
    # the rule, on a project with this engine and a gunicorn config of 6 threads
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "gunicorn.conf.py").write_text("workers = 1\nthreads = 6\n")
    for engine, reported in ((small, True), (fitting, False)):
        (tmp_path / "app.py").write_text(f"from sqlalchemy import create_engine\n"
                                         f"engine = {engine}\n")
        from flake8_pooling.analysis.project import forget_projects
        forget_projects()
        codes = {f.code for f in lint("workers = 1\nthreads = 6\n",
                                      str(tmp_path / "gunicorn.conf.py"))}
        assert ("POL305" in codes) is reported
    failing = run(f"from sqlalchemy import create_engine\nengine = {small}", THREAD_RUNS)
    assert "QueuePool limit of size 2 overflow 0 reached, connection timed out" in \
        failing.stdout, failing.stderr
    passing = run(f"from sqlalchemy import create_engine\nengine = {fitting}", THREAD_RUNS)
    assert passing.stdout.strip() == "all served", passing.stderr


START_RUNS = """
from sqlalchemy import text

with engine.connect() as connection:
    print("connected:", connection.execute(text("select 1")).scalar())
"""


def test_rejected_options_fail_at_start_and_the_fixed_ones_connect(servers):
    cases = [
        ("POL104", f'create_engine("{servers.direct("psycopg2")}", '
                   f'poolclass="sqlalchemy.pool.NullPool")', "AttributeError"),
        ("POL105", f'create_engine("{servers.direct("psycopg2")}", poolclass=NullPool, '
                   f'pool_size=10)', "TypeError: Invalid argument(s) 'pool_size'"),
        ("POL105", f'create_engine("{servers.direct("psycopg2")}", autocommit=True)',
         "TypeError: Invalid argument(s) 'autocommit'"),
    ]
    for rule, call, error in cases:
        flagged = "from sqlalchemy import create_engine\nfrom sqlalchemy.pool import " \
                  f"NullPool\n\nengine = {call}\n"
        fixed = flagged_and_fixed(flagged, rule, Settings(), unsafe=True)
        failing = run(flagged, START_RUNS)
        assert failing.returncode != 0 and error in failing.stderr, failing.stderr[-300:]
        passing = run(fixed, START_RUNS)
        assert passing.stdout.strip() == "connected: 1", passing.stderr
