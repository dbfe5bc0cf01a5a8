"""POL307: psycopg2 waits for PostgreSQL in C, so under gunicorn's gevent worker one request's
query blocks every other greenlet of the worker: concurrent slow requests are served one after
another, without any error, until psycogreen's wait callback is installed
(`patch_psycopg()`, in the post_fork hook the rule asks for). psycopg 3 (>= 3.1.14) needs no
psycogreen: when it is imported after gevent patched `select`, it waits cooperatively (imported
before, as preload_app does in the master, it blocks like psycopg2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from .servers import free_port, wait_for_port

REQUESTS = 6
SLEEP = 0.5  # each request's query: 6 of them take 3 s one after another, 0.5 s side by side

APP = """\
import os
{patch}
from sqlalchemy import create_engine, text

engine = create_engine(os.environ["EVIDENCE_DATABASE_URL"], pool_size=10)


def application(environ, start_response):
    with engine.connect() as connection:  # a slow query: the worker has other requests waiting
        connection.execute(text("select pg_sleep({sleep})"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slept"]
"""

CONFIG = """\
bind = "127.0.0.1:PORT"
workers = 1
worker_class = "gevent"
control_socket_disable = True  # gunicorn 27 would otherwise share one socket under $HOME
{patch}"""

# Where the rule's message says the patch goes: in each worker, before it serves anything
POST_FORK = """
def post_fork(server, worker):
    from psycogreen.gevent import patch_psycopg
    patch_psycopg()
"""

# The same call where projects also put it works too: at the top of gunicorn.conf.py it runs in
# the master, and the worker inherits the wait callback (a process-wide setting of psycopg2; it
# waits on gevent's hub, which needs no monkey-patching); app.py is imported in the worker
AT_TOP = """
from psycogreen.gevent import patch_psycopg
patch_psycopg()
"""

# The URL comes from the environment: the requirements say which driver the project runs
PSYCOPG2 = "gunicorn>=23\ngevent>=24.10.1\npsycopg2-binary>=2.9\nsqlalchemy>=2.0\n"
PSYCOPG3 = "gunicorn>=23\ngevent>=24.10.1\npsycopg[binary]>=3.1.14\nsqlalchemy>=2.0\n"


@pytest.fixture
def project(tmp_path):
    (tmp_path / ".git").mkdir()  # the project root flake8-pooling reads the project from
    return tmp_path


def write(project, requirements: str, config_patch: str = "", app_patch: str = "") -> None:
    (project / "requirements.txt").write_text(requirements)
    (project / "app.py").write_text(APP.format(patch=app_patch, sleep=SLEEP))
    (project / "gunicorn.conf.py").write_text(CONFIG.format(patch=config_patch))


def pol307(project) -> list[str]:
    """The POL307 lines the real flake8 prints for the project, paths relative to it."""
    done = subprocess.run([sys.executable, "-m", "flake8", "--isolated", "--select=POL307", "."],
                          cwd=project, capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return [line.removeprefix("./") for line in done.stdout.splitlines() if "POL307" in line]


def wall_time(project, url: str) -> float:
    """Run gunicorn on the project and send it REQUESTS requests at once: the seconds until the
    last answer (every answer must be a 200)."""
    port = free_port()
    config = project / "gunicorn.conf.py"
    config.write_text(config.read_text().replace("PORT", str(port)))
    log = open(project / "gunicorn.log", "w")  # read after the run; a pipe could fill and block
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(config), "app:application"], cwd=project,
        env={**os.environ, "EVIDENCE_DATABASE_URL": url}, stdout=subprocess.DEVNULL,
        stderr=log, start_new_session=True)
    try:
        wait_for_port(port, 30)

        def ask(_) -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=15) as reply:
                return reply.read().decode()

        # the master listens before its worker has booted: one request first, so the timing
        # below measures the requests, not the worker's start
        assert ask(0) == "slept"
        with ThreadPoolExecutor(REQUESTS) as pool:
            started = time.monotonic()
            answers = list(pool.map(ask, range(REQUESTS)))
            elapsed = time.monotonic() - started
    finally:
        os.killpg(server.pid, signal.SIGQUIT)  # gunicorn's quick shutdown
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(15)
        log.close()
    assert answers == ["slept"] * REQUESTS, (project / "gunicorn.log").read_text()[-2000:]
    return elapsed


# Wide margins: the machine is shared. Serialized is 3 s, concurrent 0.5 s.
SERIALIZED = 2.5
CONCURRENT = 1.5


def test_psycopg2_serializes_a_gevent_worker_until_psycogreen_patches_it(servers, project):
    write(project, PSYCOPG2)
    lines = pol307(project)
    assert len(lines) == 1 and lines[0].startswith("gunicorn.conf.py:3:16: POL307 "), lines
    flagged = wall_time(project, servers.direct("psycopg2"))
    assert flagged >= SERIALIZED, f"{REQUESTS} requests took only {flagged:.2f}s"

    write(project, PSYCOPG2, config_patch=POST_FORK)
    assert pol307(project) == []
    fixed = wall_time(project, servers.direct("psycopg2"))
    assert fixed <= CONCURRENT, f"{REQUESTS} patched requests took {fixed:.2f}s"


@pytest.mark.parametrize("where", ["gunicorn.conf.py, module level", "top of app.py"])
def test_the_patch_works_elsewhere_too(servers, project, where):
    if where == "top of app.py":
        write(project, PSYCOPG2, app_patch=AT_TOP)
    else:
        write(project, PSYCOPG2, config_patch=AT_TOP)
    assert pol307(project) == []
    patched = wall_time(project, servers.direct("psycopg2"))
    assert patched <= CONCURRENT, f"{REQUESTS} patched requests took {patched:.2f}s"


def test_psycopg3_cooperates_with_gevent_without_psycogreen(servers, project):
    # gunicorn imports the app in the worker, after gevent's patch_all(): psycopg sees the
    # patched select and picks a cooperative wait function
    write(project, PSYCOPG3)
    assert pol307(project) == []
    elapsed = wall_time(project, servers.direct("psycopg"))
    assert elapsed <= CONCURRENT, f"{REQUESTS} psycopg 3 requests took {elapsed:.2f}s"


def test_psycopg3_imported_before_gevent_patches_blocks_like_psycopg2(servers, project):
    # preload_app imports the app, and psycopg with it, in the master: psycopg picks its C wait
    # function there, before the worker's patch_all(), and keeps it in the worker
    write(project, PSYCOPG3, config_patch="preload_app = True\n")
    lines = pol307(project)
    assert len(lines) == 1 and "psycopg 3, imported by the preloading master" in lines[0], lines
    elapsed = wall_time(project, servers.direct("psycopg"))
    assert elapsed >= SERIALIZED, f"{REQUESTS} preloaded psycopg 3 requests took {elapsed:.2f}s"
