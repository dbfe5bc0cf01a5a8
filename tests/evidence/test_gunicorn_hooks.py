"""The gunicorn hooks a widely shared investigation recommends for Flask-SQLAlchemy 3 stop every
worker at boot ("Worker failed to boot."), each on its own exception; the post_fork hook that
disposes `db.engines` inside an application context boots, and gives each worker its own
backend. Also: `str(engine.url)` masks the password, so an engine rebuilt from it logs in with
the password "***", and `Engine.dispose` takes the `close` parameter the hook relies on."""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys

import pytest
import sqlalchemy
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url

from flake8_pooling.analysis.project import forget_projects
from flake8_pooling.fix import fix_source
from flake8_pooling.lint import lint
from flake8_pooling.settings import Settings

from .servers import free_port
from .test_gunicorn import serve_and_ask

APP = """\
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["EVIDENCE_DATABASE_URL"]
app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 1, "max_overflow": 0}
db = SQLAlchemy(app)

with app.app_context():  # the application checks its database at import: the master's pool
    db.session.execute(text("select 1"))  # keeps that connection


@app.route("/")
def index():
    backend = db.session.execute(text("select pg_backend_pid(), pg_sleep(0.2)")).first()[0]
    return f"{os.getpid()} {backend}"


application = app  # the name test_gunicorn.serve_and_ask serves
"""

CONFIG = """\
bind = "127.0.0.1:PORT"
workers = 2
preload_app = True
control_socket_disable = True  # gunicorn 27 would otherwise share one socket under $HOME

"""


NO_APP_CONTEXT = "RuntimeError: Working outside of application context."
NO_OPTIONS = "AttributeError: 'Engine' object has no attribute 'options'"
NO_SETTER = "AttributeError: property 'engine' of 'SQLAlchemy' object has no setter"

BAD_HOOKS = {
    # Flask-SQLAlchemy 3 keeps its engines per application: db.engine needs an app context
    "post_fork dispose": ("""\
def post_fork(server, worker):
    from app import db
    db.engine.dispose(close=False)
""", NO_APP_CONTEXT),
    # db.engine.dispose() is reached first, and fails the same way
    "post_worker_init replace": ("""\
def post_worker_init(worker):
    from app import db
    from sqlalchemy import create_engine
    db.engine.dispose()
    db.engine = create_engine(db.engine.url, **db.engine.options)
""", NO_APP_CONTEXT),
    # with the app context it lacked, the right-hand side fails before the assignment
    "post_worker_init replace in app context": ("""\
def post_worker_init(worker):
    from app import app, db
    from sqlalchemy import create_engine
    with app.app_context():
        db.engine.dispose()
        db.engine = create_engine(db.engine.url, **db.engine.options)
""", NO_OPTIONS),
    # and without the options, the assignment itself fails: db.engine is a read-only property
    # (the wording of Python 3.11+, which this project requires)
    "post_worker_init assign in app context": ("""\
def post_worker_init(worker):
    from app import app, db
    from sqlalchemy import create_engine
    with app.app_context():
        db.engine.dispose()
        db.engine = create_engine(db.engine.url)
""", NO_SETTER),
    # an Engine keeps no copy of create_engine's keyword arguments to rebuild it from
    "post_fork rebuild in app context": ("""\
def post_fork(server, worker):
    from app import app, db
    from sqlalchemy import create_engine
    with app.app_context():
        engine = db.engine
        new = create_engine(engine.url, **engine.options)
""", NO_OPTIONS),
}

WORKER_BOOT_ERROR = 3  # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR: the master halts with it
# ... unless the second worker's exit 3 is reaped while the master halts for the first: gunicorn
# 27.0.1's Arbiter.stop() reaps workers, raises HaltServer again outside run()'s handler, and the
# master dies on that traceback with status 1
HALTED_WHILE_HALTING = "gunicorn.errors.HaltServer: <HaltServer 'Worker failed to boot.' 3>"


@pytest.fixture
def project(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def boot(project, url: str, seconds: float = 30) -> tuple[int | None, str]:
    """Start gunicorn on the project; its exit status (None if it still ran after `seconds`)
    and its log."""
    config = project / "gunicorn.conf.py"
    config.write_text(config.read_text().replace("PORT", str(free_port())))
    with open(project / "gunicorn.log", "w") as log:  # a pipe could fill up and block
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(config), "app:app"], cwd=project,
            env={**os.environ, "EVIDENCE_DATABASE_URL": url}, stdout=subprocess.DEVNULL,
            stderr=log, start_new_session=True)
        try:
            status = server.wait(seconds)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            try:  # the master, or workers it left behind
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            server.wait(15)
    return status, (project / "gunicorn.log").read_text()


@pytest.mark.parametrize("hook", BAD_HOOKS)
def test_the_recommended_hooks_stop_every_worker_at_boot(servers, project, hook):
    text, exception = BAD_HOOKS[hook]
    config = project / "gunicorn.conf.py"
    config.write_text(CONFIG + text)
    forget_projects()
    assert "POL306" in {finding.code for finding in lint(config.read_text(), str(config))}
    status, log = boot(project, servers.direct("psycopg2"))
    assert status == WORKER_BOOT_ERROR or status == 1 and HALTED_WHILE_HALTING in log, \
        (status, log[-3000:])
    # "Reason: Worker failed to boot." or, when the master halts while halting, HaltServer's
    assert "Worker failed to boot." in log, log[-3000:]
    assert exception in log, log[-3000:]
    assert "Booting worker with pid" in log  # the app loaded; the hook is what failed


@pytest.mark.parametrize("hook", ["post_fork dispose", "post_worker_init replace"])
def test_the_fixed_hook_boots_and_gives_each_worker_its_own_backend(servers, project, hook):
    """`flake8-pooling fix --unsafe-fixes` rewrites the hook: app context, every engine of
    db.engines, dispose(close=False)."""
    config = project / "gunicorn.conf.py"
    config.write_text(CONFIG + BAD_HOOKS[hook][0])
    forget_projects()
    settings = Settings.from_values(sqlalchemy_version=sqlalchemy.__version__)
    fixed = fix_source(config.read_text(), str(config), settings, unsafe=True).source
    assert "with app.app_context():" in fixed and "db.engines.values()" in fixed, fixed
    assert not [f for f in lint(fixed, str(config), settings) if f.code == "POL306"], fixed
    config.write_text(fixed)
    own, errors = serve_and_ask(project, servers.direct("psycopg2"), requests=20)
    log = (project / "gunicorn.log").read_text()
    assert not errors, (errors[:3], log[-3000:])
    # (a worker that gunicorn's quick shutdown interrupts mid-reply may log a traceback: no boot)
    assert "Exception in worker process" not in log and "Worker failed to boot" not in log, \
        log[-3000:]
    assert len(own) == 2 and all(len(workers) == 1 for workers in own.values()), own


def test_str_of_a_url_masks_the_password_so_an_engine_rebuilt_from_it_has_the_wrong_one():
    url = make_url("postgresql://u:secret@h/d")
    assert str(url) == "postgresql://u:***@h/d"
    assert url.render_as_string(hide_password=False) == "postgresql://u:secret@h/d"
    assert create_engine(url).url.password == "secret"  # the URL object keeps it
    engine = create_engine(url)
    assert create_engine(str(engine.url)).url.password == "***"  # the string does not
    assert create_engine(engine.url.render_as_string(hide_password=False)).url.password == "secret"


def test_engine_dispose_takes_close():
    """SQLAlchemy 1.4.33 added it (its docstring's versionadded); before, the hook's
    `close=False` is a TypeError."""
    close = inspect.signature(Engine.dispose).parameters["close"]
    assert close.default is True, close  # dispose() alone still closes what the pool holds
    Engine.dispose(create_engine("postgresql://u@h/d"), close=False)  # accepted, connects nothing
