"""Forks configured outside gunicorn config files: command lines in Procfiles, Dockerfiles,
compose files and scripts, Celery prefork workers; and the fixes, run with the real libraries."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from flake8_pooling.analysis.commands import commands_in, substitute
from flake8_pooling.analysis.deployment import read_deployment
from flake8_pooling.analysis.project import forget_projects
from flake8_pooling.fix import fix_source
from flake8_pooling.lint import lint

from .helpers import FIXTURES

FORK = FIXTURES / "fork"


def check(root) -> set[tuple[str, int, str]]:
    """`flake8-pooling check` in a project: (file, line, code) of every finding."""
    run = subprocess.run([sys.executable, "-m", "flake8_pooling.cli", "check", "--isolated",
                          "--format", "json", "."], capture_output=True, text=True, cwd=root,
                         timeout=120)
    assert run.returncode in (0, 1), run.stderr

    return {(finding["path"].removeprefix("./"), finding["line"], finding["code"])
            for finding in json.loads(run.stdout)["findings"]}


@pytest.mark.parametrize("text, kind, expected", [
    ("web: gunicorn app:app --preload -w 4\n", "procfile",
     {"preload_app": True, "workers": "4", "app": "app:app"}),
    ('CMD ["gunicorn", "--workers=3", "-k", "gthread", "--threads", "8", "app.wsgi:app"]\n',
     "dockerfile", {"workers": "3", "worker_class": "gthread", "threads": "8",
                    "app": "app.wsgi:app"}),
    ('ENTRYPOINT ["sh", "-c", "alembic upgrade head && exec gunicorn -w2 main:app"]\n',
     "dockerfile", {"workers": "2", "app": "main:app"}),
    ("exec poetry run gunicorn \\\n    --workers ${WORKERS:-6} \\\n    app:create_app()\n",
     "shell", {"workers": "6", "app": "app:create_app()"}),
    ("python -m celery -A proj.worker worker -P threads -c 20 -l info\n", "shell",
     {"app": "proj.worker", "pool": "threads", "concurrency": "20", "loglevel": "info"}),
    ("command=uvicorn app.main:app --workers 4 --port 8000\n", "shell",
     {"app": "app.main:app", "workers": "4", "port": "8000"}),
])
def test_command_lines_are_read_as_their_programs_read_them(text, kind, expected):
    (command,) = commands_in(text, "Procfile", kind)
    options = command.options({})
    assert {key: options.get(key) for key in expected} == expected, options


def test_words_that_install_or_mention_a_program_start_nothing():
    assert commands_in("RUN pip install gunicorn celery\n", "Dockerfile", "dockerfile") == []
    assert commands_in("# gunicorn --preload app:app\n", "run.sh", "shell") == []
    assert commands_in("echo starting gunicorn\n", "run.sh", "shell") == []
    assert commands_in('check_command "uvicorn"\n', "run.sh", "shell") == []
    assert commands_in("which celery && exec celery -A app worker\n", "run.sh", "shell")


def test_variables_come_from_the_service_the_project_then_their_defaults():
    assert substitute("${WEB_CONCURRENCY:-2}", {}) == "2"
    assert substitute("${WEB_CONCURRENCY:-2}", {"WEB_CONCURRENCY": "9"}) == "9"
    assert substitute("$WORKERS", {}) is None  # nobody sets it: not known


def test_gunicorn_cmd_args_and_web_concurrency_from_the_deployment(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "docker-compose.yml").write_text(textwrap.dedent("""\
        services:
          web:
            build: .
            command: gunicorn app:app
            environment:
              GUNICORN_CMD_ARGS: "--preload --threads 4"
              WEB_CONCURRENCY: "5"
        """))
    deployment = read_deployment(tmp_path)
    (command,) = deployment.commands.of("gunicorn")
    assert command.line == 4
    options = deployment.commands.options(command)
    assert options["preload_app"] is True and options["threads"] == "4"
    assert deployment.commands.environment["WEB_CONCURRENCY"] == "5"


def test_check_reports_the_command_and_flake8_the_engine_it_inherits():
    forget_projects()
    assert check(FORK / "pol301_command_preload") == {("Procfile", 2, "POL301"),
                                                      ("app/db.py", 6, "POL301")}
    for quiet in ("pol301_quiet_command_disposed", "pol301_quiet_command_without_preload",
                  "pol301_quiet_import_dispose"):
        assert not {f for f in check(FORK / quiet) if f[2] == "POL301"}, quiet


def test_gevent_workers_on_command_lines_and_in_config_files():
    """POL307: a Procfile's `-k gevent` and `-P gevent` as well as the config file's setting;
    psycogreen anywhere in the project, or psycopg 3, keeps it quiet."""
    forget_projects()
    assert {f for f in check(FORK / "pol307_gevent") if f[2] == "POL307"} == {
        ("Procfile", 1, "POL307"), ("Procfile", 2, "POL307"), ("gunicorn.conf.py", 4, "POL307")}
    for quiet in ("pol307_quiet_psycogreen", "pol307_quiet_psycopg3"):
        assert not {f for f in check(FORK / quiet) if f[2] == "POL307"}, quiet


def test_command_budgets_in_check_and_budget():
    forget_projects()
    assert {f for f in check(FORK / "pol304_commands") if f[2] == "POL304"} == {
        ("Procfile", 2, "POL304"), ("app/worker.py", 7, "POL304")}
    run = subprocess.run([sys.executable, "-m", "flake8_pooling.cli", "budget", "."],
                         capture_output=True, text=True, cwd=FORK / "pol304_commands",
                         timeout=120)
    assert run.returncode == 1, run.stderr
    assert "flake8-pooling budget: Procfile:2 (gunicorn)" in run.stdout
    assert "8 x 30 = 240" in run.stdout and "OVER the limit by 140" in run.stdout
    assert "Procfile:4 (uvicorn)" in run.stdout and "2 x 30 = 60" in run.stdout
    # the engine of the Celery module a web process imports to send tasks is the worker's
    assert not check(FORK / "pol304_quiet_worker_engine")


def test_the_celery_fix_connects_a_handler_that_gives_the_child_a_fresh_pool(
        tmp_path, monkeypatch):
    root = tmp_path / "project"
    (root / "proj").mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    (root / "proj" / "__init__.py").write_text("")
    (root / "proj" / "db.py").write_text(textwrap.dedent(f"""\
        from sqlalchemy import create_engine, text

        engine = create_engine("sqlite:///{tmp_path / 'app.db'}")
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        """))
    worker = root / "proj" / "worker.py"
    worker.write_text((FORK / "pol301_celery_prefork" / "proj" / "worker.py").read_text())
    forget_projects()
    result = fix_source(worker.read_text(), str(worker), select=["POL301"])
    assert [finding.code for finding in result.applied] == ["POL301"]
    assert "from celery.signals import worker_process_init" in result.source
    assert textwrap.dedent("""\
        @worker_process_init.connect
        def dispose_inherited_engines(**kwargs):""") in result.source
    assert "    from proj.db import engine\n\n    engine.dispose(close=False)" in result.source
    worker.write_text(result.source)
    forget_projects()
    assert not [f for f in lint(result.source, str(worker)) if f.code == "POL301"]

    monkeypatch.syspath_prepend(str(root))
    for module in [name for name in sys.modules if name.split(".")[0] == "proj"]:
        monkeypatch.delitem(sys.modules, module)
    from celery.signals import worker_process_init

    import proj.worker  # noqa: F401  (connects the handler)
    from proj.db import engine
    before = engine.pool
    worker_process_init.send(sender=None)  # what billiard's prefork child does first (fact 66)
    assert engine.pool is not before
