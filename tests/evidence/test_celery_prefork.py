"""Celery's default prefork pool forks its children from the main worker process, which has
imported the app module: a module-level engine that already holds a pooled connection there
(the module checks its database at import) hands that one connection to every child, so the
children share a PostgreSQL backend or read each other's replies. A `worker_process_init`
handler that disposes the inherited pool with `close=False` gives each child its own backend,
and `-P solo` (no fork) never shares at all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import sqlalchemy

from flake8_pooling.analysis.project import forget_projects
from flake8_pooling.fix import fix_source
from flake8_pooling.lint import lint
from flake8_pooling.settings import Settings


TASKS = """\
import os

from celery import Celery
from sqlalchemy import create_engine, text

engine = create_engine(os.environ["EVIDENCE_DATABASE_URL"], pool_size=1, max_overflow=0)

with engine.connect() as connection:  # the application checks its database at import
    connection.execute(text("select 1"))

app = Celery("tasks")
app.config_from_object("celeryconfig")


@app.task(name="tasks.probe")
def probe(number):
    try:
        with engine.connect() as connection:  # a task that takes a moment: all children get some
            backend = connection.execute(text("select pg_backend_pid(), pg_sleep(0.1)")).first()[0]
        answer = f"{os.getpid()} {os.getppid()} {backend}"
    except Exception as error:  # a reply meant for another child, a closed socket, ...
        answer = f"{os.getpid()} {os.getppid()} ERROR {type(error).__name__}: {error}"
    written = os.path.join("results", f"{number}.part")
    with open(written, "w") as out:
        out.write(answer)
    os.replace(written, os.path.join("results", f"{number}.txt"))  # the test sees whole answers
"""

# Errors the children report when they talk over one inherited socket at the same time.
SHARED_SOCKET_ERRORS = (
    "error with status PGRES_TUPLES_OK and no message from the libpq",
    "This result object does not return rows",
    "server closed the connection unexpectedly",
    "SSL error",
    "lost synchronization",
)

TASKS_SENT = 30
STALLED = 2  # seconds without an answer: a healthy child answers ten times a second


def transport_options(project) -> dict:
    queue = str(project / "queue")
    return {"data_folder_in": queue, "data_folder_out": queue, "store_processed": True,
            "processed_folder": str(project / "processed"),
            "control_folder": str(project / "control"), "polling_interval": 0.05}


def write_project(project) -> None:
    for folder in ("queue", "processed", "control", "results"):
        (project / folder).mkdir(exist_ok=True)
    (project / "tasks.py").write_text(TASKS)
    (project / "celeryconfig.py").write_text(
        'broker_url = "filesystem://"\n'
        f"broker_transport_options = {transport_options(project)!r}\n"
        "broker_connection_retry_on_startup = True\n"
        "worker_prefetch_multiplier = 1\n"
        "worker_enable_remote_control = False\n"
        "task_ignore_result = True\n")


def enqueue(project, tasks: int) -> None:
    """Put the tasks on the filesystem queue before the worker starts, so that it never reads a
    message file still being written."""
    from celery import Celery

    sender = Celery("sender", set_as_current=False)
    sender.conf.update(broker_url="filesystem://",
                       broker_transport_options=transport_options(project))
    with sender.connection_for_write() as connection:
        for number in range(tasks):
            sender.send_task("tasks.probe", args=[number], connection=connection)


def stop(worker: subprocess.Popen, graceful: bool) -> None:
    """Celery's cold shutdown (the main process terminates its children, in about 4 s on this
    transport), then SIGKILL for whatever is left of the process group. A child stuck in libpq
    reading a reply that went to another one ignores the SIGTERM, so a stalled run goes
    straight to SIGKILL."""
    if graceful:
        os.kill(worker.pid, signal.SIGQUIT)
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(worker.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    worker.wait(10)


class Run:
    """What the worker's processes answered: {backend: process pids}, the errors they reported,
    how many tasks never answered, and which processes ran them (pid -> parent pid)."""

    def __init__(self, main: int, answers: list[str], sent: int) -> None:
        self.main = main
        self.processes_of = defaultdict(set)
        self.errors = []
        self.parent_of = {}
        self.lost = sent - len(answers)
        for answer in answers:
            process, parent, backend = answer.split(" ", 2)
            self.parent_of[process] = parent
            if backend.startswith("ERROR "):
                self.errors.append(backend[len("ERROR "):])
            else:
                self.processes_of[backend].add(process)

    def __repr__(self) -> str:
        return (f"Run(main={self.main}, processes_of={dict(self.processes_of)}, "
                f"errors={self.errors[:3]}, lost={self.lost})")


def run_worker(project, url: str, pool: str, tasks: int = TASKS_SENT,
               seconds: float = 20) -> Run:
    """Run a real Celery worker on the queued tasks until all have answered or none has for a
    while (bounded), then stop it."""
    enqueue(project, tasks)
    command = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "-P", pool,
               "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    if pool == "prefork":
        command += ["-c", "3", "-O", "fair"]
    results = project / "results"
    with open(project / "worker.log", "w") as log:  # read after the run; a pipe could fill up
        worker = subprocess.Popen(command, cwd=project, stdout=log, stderr=subprocess.STDOUT,
                                  env={**os.environ, "EVIDENCE_DATABASE_URL": url},
                                  start_new_session=True)
        answered, progress = 0, None
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and worker.poll() is None and answered < tasks:
                now = len(list(results.glob("*.txt")))
                if now > answered:
                    answered, progress = now, time.monotonic()
                elif progress is not None and time.monotonic() - progress > STALLED:
                    break  # the children left are stuck reading a reply that went to another
                time.sleep(0.05)
        finally:
            stop(worker, graceful=answered == tasks)
    return Run(worker.pid, [answer.read_text() for answer in results.glob("*.txt")], tasks)


def test_prefork_children_share_the_parents_backend_until_worker_process_init(servers, tmp_path):
    flagged, fixed = tmp_path / "flagged", tmp_path / "fixed"
    flagged.mkdir()
    fixed.mkdir()

    write_project(flagged)
    run = run_worker(flagged, servers.direct("psycopg2"), "prefork")
    assert set(run.parent_of.values()) == {str(run.main)}, run  # forked by the main process
    by_several = {backend: pids for backend, pids in run.processes_of.items() if len(pids) > 1}
    assert by_several or run.errors, ("the forked children neither shared a backend nor failed",
                                      run, (flagged / "worker.log").read_text()[-2000:])
    unexplained = [error for error in run.errors
                   if not any(message in error for message in SHARED_SOCKET_ERRORS)]
    assert not unexplained, unexplained[:3]

    # flake8-pooling reports the app and its fix adds the handler
    write_project(fixed)
    (fixed / "pyproject.toml").write_text("")
    tasks = fixed / "tasks.py"
    forget_projects()
    settings = Settings.from_values(sqlalchemy_version=sqlalchemy.__version__)
    findings = [f for f in lint(tasks.read_text(), str(tasks), settings) if f.code == "POL301"]
    assert [f.line for f in findings] == [tasks.read_text().splitlines().index(
        'app = Celery("tasks")') + 1], findings
    result = fix_source(tasks.read_text(), str(tasks), settings, select=["POL301"])
    assert "@worker_process_init.connect" in result.source \
        and "engine.dispose(close=False)" in result.source, result.source
    tasks.write_text(result.source)
    forget_projects()
    run = run_worker(fixed, servers.direct("psycopg2"), "prefork")
    assert not run.errors and not run.lost, (run, (fixed / "worker.log").read_text()[-2000:])
    assert set(run.parent_of.values()) == {str(run.main)}, run
    assert all(len(pids) == 1 for pids in run.processes_of.values()), run
    assert len(run.processes_of) >= 2, run  # several children answered, each on its own backend


def test_solo_pool_does_not_fork_so_nothing_is_shared(servers, tmp_path):
    write_project(tmp_path)  # the flagged application, run without a fork
    run = run_worker(tmp_path, servers.direct("psycopg2"), "solo", tasks=10)
    assert not run.errors and not run.lost, run
    assert list(run.processes_of.values()) == [{str(run.main)}], run  # one process, one backend
