"""POL203: a FastAPI generator dependency that closes its session after `yield`, without
try/finally or `with`, never closes it when the endpoint raises: FastAPI throws the endpoint's
exception into the generator at the `yield`. The abandoned session keeps its connection checked
out, in an open transaction, until CPython's cycle collector happens to free it (a session with a
transaction is a reference cycle, so reference counting never does); meanwhile requests wait
pool_timeout and fail with `QueuePool limit of size 2 overflow 0 reached`. The `with` the fix
writes closes the session whatever the endpoint does."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

import psycopg2

from flake8_pooling.settings import Settings

from .scenario import flagged_and_fixed
from .servers import free_port, wait_for_port

APP = """\
import gc
import os

from fastapi import Depends, FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

engine = create_engine(os.environ["EVIDENCE_DATABASE_URL"], pool_size=2, max_overflow=0,
                       pool_timeout=1)
SessionLocal = sessionmaker(bind=engine)
app = FastAPI()


def get_db():
    db = SessionLocal()
    yield db
    db.close()


@app.get("/fails")
def fails(db=Depends(get_db)):
    db.execute(text("select 1"))  # the session now holds a connection
    raise RuntimeError("the endpoint fails")


@app.get("/works")
def works(db=Depends(get_db)):
    return {"one": db.execute(text("select 1")).scalar()}


@app.get("/collect")
def collect():
    gc.collect()
    return {"checked_out": engine.pool.checkedout()}
"""

FIXED_GET_DB = """\
def get_db():
    with SessionLocal() as db:
        yield db
"""

POOL_EXHAUSTED = "QueuePool limit of size 2 overflow 0 reached, connection timed out, timeout 1.00"


def left_in_transaction(servers) -> int:
    """Backends of the scenario's application sitting in an open transaction."""
    # closing(): psycopg2's own `with` ends the transaction but leaves the connection open
    with closing(psycopg2.connect(host="127.0.0.1", port=servers.pg_port, user="app",
                                  dbname="app", connect_timeout=5)) as connection:
        with connection.cursor() as cursor:
            cursor.execute("select count(*) from pg_stat_activity"
                           " where application_name = 'pol203' and state = 'idle in transaction'")
            return cursor.fetchone()[0]


class Server:
    """The app under a real uvicorn process; its log is read after the requests."""

    def __init__(self, code: str, url: str) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="pol203-")
        (Path(self.dir.name) / "app.py").write_text(code)
        self.port = free_port()
        self.log_path = Path(self.dir.name) / "uvicorn.log"
        self.log = open(self.log_path, "w")  # a pipe could fill and block the server
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1",
             "--port", str(self.port)],
            cwd=self.dir.name, env={**os.environ, "EVIDENCE_DATABASE_URL": url},
            stdout=self.log, stderr=self.log)

    def __enter__(self) -> Server:
        try:
            wait_for_port(self.port, 30)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()
        self.dir.cleanup()

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}",
                                        timeout=10) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def logged(self, until: str, times: int) -> str:
        """The server's log once `until` shows `times` times in it (uvicorn writes a traceback
        after answering 500), or after 5 s."""
        deadline = time.monotonic() + 5
        while self.log_path.read_text().count(until) < times and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.log_path.read_text()


def test_a_raising_endpoint_keeps_the_connection_until_garbage_collection(servers):
    fixed = flagged_and_fixed(APP, "POL203", settings=Settings.from_values())
    assert FIXED_GET_DB in fixed
    url = servers.direct("psycopg2") + "?application_name=pol203"

    with Server(APP, url) as flagged:
        # as many failures as the pool holds: each leaves its session's connection checked out
        assert [flagged.get("/fails")[0] for _ in range(2)] == [500, 500]
        assert left_in_transaction(servers) == 2
        assert flagged.get("/works")[0] == 500
        log = flagged.logged(POOL_EXHAUSTED, 1)
        assert log.count("RuntimeError: the endpoint fails") == 2
        assert log.count(POOL_EXHAUSTED) == 1, log[-3000:]
        # not lost for good: the abandoned sessions are garbage the cycle collector frees, and
        # the pool's finalizer then checks the connections in again
        assert flagged.get("/collect") == (200, '{"checked_out":0}')
        assert left_in_transaction(servers) == 0
        assert flagged.get("/works") == (200, '{"one":1}')

    with Server(fixed, url) as cured:
        # twice as many failures as the pool holds, and no garbage collection asked for
        assert [cured.get("/fails")[0] for _ in range(4)] == [500] * 4
        assert left_in_transaction(servers) == 0
        assert [cured.get("/works") for _ in range(2)] == [(200, '{"one":1}')] * 2
        log = cured.logged("RuntimeError: the endpoint fails", 4)
        assert log.count("RuntimeError: the endpoint fails") == 4
        assert "QueuePool limit" not in log, log[-3000:]
