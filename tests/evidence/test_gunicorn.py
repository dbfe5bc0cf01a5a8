"""POL301: gunicorn with preload_app shares the master's pooled connection with every worker;
the post_fork hook flake8-pooling writes gives each worker its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy

from flake8_pooling.analysis.project import forget_projects
from flake8_pooling.fix import fix_source
from flake8_pooling.lint import lint
from flake8_pooling.settings import Settings

from .servers import free_port, wait_for_port

APP = """\
import os

from sqlalchemy import create_engine, text

engine = create_engine(os.environ["EVIDENCE_DATABASE_URL"], pool_size=1, max_overflow=0)

with engine.connect() as connection:  # the application checks its database at import
    connection.execute(text("select 1"))


def application(environ, start_response):
    with engine.connect() as connection:  # a request that takes a moment: all workers get some
        backend = connection.execute(text("select pg_backend_pid(), pg_sleep(0.2)")).first()[0]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getpid()} {backend}".encode()]
"""


def serve_and_ask(project, url: str, requests: int = 30) -> tuple[dict, list]:
    """Run gunicorn on the project; ask it `requests` times from 6 threads (bounded)."""
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

        def ask(_):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as reply:
                    worker, backend = reply.read().decode().split()
                    return worker, backend
            except Exception as error:  # a worker stuck on a shared socket, a 500, ...
                return None, f"{type(error).__name__}: {error}"

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(ask, range(requests)))
    finally:
        os.killpg(server.pid, signal.SIGQUIT)  # gunicorn's quick shutdown
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(15)
        log.close()
    workers_of = defaultdict(set)
    errors = []
    for worker, backend in answers:
        if worker is None:
            errors.append(backend)
        else:
            workers_of[backend].add(worker)
    return workers_of, errors


@pytest.fixture
def project(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "gunicorn.conf.py").write_text(textwrap.dedent("""\
        bind = "127.0.0.1:PORT"
        workers = 3
        preload_app = True
    """))
    forget_projects()
    yield tmp_path
    forget_projects()


def test_preloaded_workers_share_a_backend_until_the_post_fork_hook(servers, project):
    config = project / "gunicorn.conf.py"
    settings = Settings.from_values(sqlalchemy_version=sqlalchemy.__version__)
    assert [f.code for f in lint(config.read_text(), str(config), settings)] == ["POL301"]
    flagged = config.read_text()

    shared, errors = serve_and_ask(project, servers.direct("psycopg2"))
    by_several = {backend: workers for backend, workers in shared.items() if len(workers) > 1}
    assert by_several or errors, "the preloaded workers neither shared a backend nor failed"
    if errors:  # the workers answered each other's queries on the one socket they share
        log = (project / "gunicorn.log").read_text()
        assert "error with status PGRES_TUPLES_OK and no message from the libpq" in log \
            or "This result object does not return rows" in log, log[-2000:]

    config.write_text(flagged)
    fixed = fix_source(flagged, str(config), settings).source
    assert "def post_fork(server, worker):" in fixed and "engine.dispose(close=False)" in fixed
    config.write_text(fixed)
    own, errors = serve_and_ask(project, servers.direct("psycopg2"))
    assert not errors, errors[:3]
    assert len(own) == 3 and all(len(workers) == 1 for workers in own.values()), own
