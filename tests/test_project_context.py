"""What the project's files say: pinned versions, PgBouncer configs, compose services."""

from __future__ import annotations

import textwrap

import pytest

from flake8_pooling.analysis import deployment
from flake8_pooling.analysis.deployment import read_deployment
from flake8_pooling.analysis.project import forget_projects
from flake8_pooling.analysis.seen import Seen
from flake8_pooling.fix import fix_source

from .helpers import FIXTURES, ROOT, run_flake8

PROJECTS = FIXTURES / "project"


@pytest.fixture(autouse=True)
def fresh_projects():
    forget_projects()
    yield
    forget_projects()


def test_a_project_pinned_to_1_4_20_gets_the_recreate_form_of_the_fork_fix():
    config = PROJECTS / "pinned_sqlalchemy_1_4_20" / "gunicorn.conf.py"
    fixed = fix_source(config.read_text(), str(config)).source
    assert "engine.pool = engine.pool.recreate()" in fixed and "close=False" not in fixed
    tasks = PROJECTS / "pinned_sqlalchemy_1_4_20" / "app" / "tasks.py"
    assert "engine.pool = engine.pool.recreate()" in fix_source(tasks.read_text(),
                                                                str(tasks)).source


@pytest.mark.parametrize("name, text, version", [
    ("requirements.txt", "flask\nSQLAlchemy==1.4.20  # pinned\n", (1, 4, 20)),
    ("requirements-prod.txt", "sqlalchemy[asyncio]>=2.0.30,<2.1\n", (2, 0, 30)),
    ("pyproject.toml", '[project]\ndependencies = ["sqlalchemy~=2.0.10"]\n', (2, 0, 10)),
    ("pyproject.toml", '[tool.poetry.dependencies]\nSQLAlchemy = "^1.4.46"\n', (1, 4, 46)),
    ("pyproject.toml", '[tool.poetry.dependencies]\nsqlalchemy = {version = "1.3.24"}\n',
     (1, 3, 24)),
    ("setup.cfg", "[options]\ninstall_requires =\n    SQLAlchemy>=1.4.33\n", (1, 4, 33)),
    ("Pipfile", '[packages]\nsqlalchemy = "==2.0.1"\n', (2, 0, 1)),
    ("poetry.lock", '[[package]]\nname = "sqlalchemy"\nversion = "2.0.36"\n', (2, 0, 36)),
    ("uv.lock", '[[package]]\nname = "sqlalchemy"\nversion = "2.1.9"\n', (2, 1, 9)),
    ("Pipfile.lock", '{"default": {"sqlalchemy": {"version": "==1.4.54"}}}', (1, 4, 54)),
    ("requirements.txt", "sqlalchemy<2\n", None),  # only an upper bound: nothing to go on
])
def test_the_pinned_sqlalchemy_version_is_read(tmp_path, name, text, version):
    (tmp_path / name).write_text(text)
    pin = read_deployment(tmp_path).sqlalchemy_pin
    assert (pin[0] if pin else None) == version


def test_a_lock_file_wins_over_a_range(tmp_path):
    (tmp_path / "requirements.txt").write_text("sqlalchemy>=1.4\n")
    (tmp_path / "poetry.lock").write_text('[[package]]\nname = "SQLAlchemy"\nversion = "2.0.36"\n')
    assert read_deployment(tmp_path).sqlalchemy_pin == ((2, 0, 36), "poetry.lock")


def test_pgbouncer_ini_and_compose_settings_are_read(tmp_path):
    (tmp_path / "pgbouncer.ini").write_text(textwrap.dedent("""\
        [databases]
        reports = host=db dbname=reports pool_mode=session
        [pgbouncer]
        listen_port = 6543 ; a comment
        pool_mode = transaction
        max_client_conn = 400
        client_idle_timeout = 120
        max_prepared_statements = 0
        %include /etc/pgbouncer/extra.ini
    """))
    (tmp_path / "compose.yaml").write_text(textwrap.dedent("""\
        services:
          bouncer:
            image: bitnami/pgbouncer:1.24
            hostname: pooler
            container_name: app-pgbouncer
            environment:
              PGBOUNCER_POOL_MODE: transaction
          db:
            image: postgres:16
            ports: [{published: 15432, target: 5432}]
    """))
    deployment = read_deployment(tmp_path)
    ini = next(b for b in deployment.pgbouncers if b.source == "pgbouncer.ini")
    assert (ini.listen_port, ini.pool_mode, ini.max_client_conn, ini.client_idle_timeout,
            ini.max_prepared_statements) == (6543, "transaction", 400, 120.0, 0)
    assert ini.database_modes == {"reports": "session"}
    compose = next(b for b in deployment.pgbouncers if b.hosts)
    # compose's network resolves the service, its hostname and its container name alike
    assert compose.hosts == {"bouncer", "pooler", "app-pgbouncer"}
    assert compose.pool_mode == "transaction"
    assert deployment.postgres_ports == {15432: "compose.yaml service 'db'"}


def test_unreadable_deployment_files_say_nothing(tmp_path):
    (tmp_path / "docker-compose.yml").write_text("services: [unclosed\n")
    (tmp_path / "pgbouncer.ini").write_bytes(b"[pgbouncer]\npool_mode = \xff\n")
    (tmp_path / "pyproject.toml").write_text("[project\n")
    deployment = read_deployment(tmp_path)
    assert deployment.pgbouncers == () and deployment.sqlalchemy_pin is None


def cli(*arguments, cwd):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "flake8_pooling.cli", *map(str, arguments)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_budget_prints_240_against_100():
    run = cli("budget", cwd=PROJECTS / "pol304_over_the_limit")
    assert run.returncode == 1, run.stderr
    assert "8 x 30 = 240" in run.stdout
    assert "limit         100 (PostgreSQL's default max_connections" in run.stdout
    assert "OVER the limit by 140" in run.stdout
    import json
    [report] = json.loads(cli("budget", "--format", "json",
                              cwd=PROJECTS / "pol304_over_the_limit").stdout)["budgets"]
    assert (report["workers"], report["per_worker"], report["total"], report["limit"],
            report["over"]) == (8, 30, 240, 100, True)
    assert report["engines"][0]["name"] == "app.db:engine"


def test_budget_uses_pgbouncer_max_client_conn_and_says_what_it_assumed():
    run = cli("budget", cwd=PROJECTS / "pol304_quiet_within_pgbouncer_limit")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "limit         1000 (PgBouncer max_client_conn" in run.stdout
    assert "cpu_count() = " in run.stdout and "gthread" in run.stdout


def test_a_uwsgi_ini_without_lazy_apps_is_reported_by_check(tmp_path):
    import shutil
    project = tmp_path / "uwsgi"
    shutil.copytree(PROJECTS / "pol301_uwsgi_ini", project)
    run = cli("check", "--isolated", ".", cwd=project)
    assert run.stdout.startswith("./uwsgi.ini:1:1: POL301 uWSGI loads the application in the "
                                 "master"), run.stdout + run.stderr
    assert "uwsgi-lazy.ini" not in run.stdout
    (project / "app" / "hooks.py").write_text(textwrap.dedent("""\
        from uwsgidecorators import postfork

        from app.db import engine


        @postfork
        def reset():
            engine.dispose(close=False)
    """))
    assert cli("check", "--isolated", ".", cwd=project).stdout == ""


def test_a_build_context_without_project_markers_still_has_its_compose_file_read(tmp_path):
    """No .git, pyproject.toml or setup.*: a docker build context. Its compose file marks the
    root, and real flake8 run in it sees the PgBouncer the compose file runs."""
    (tmp_path / "app").mkdir()
    (tmp_path / "docker-compose.yml").write_text(textwrap.dedent("""\
        services:
          pgbouncer:
            image: edoburu/pgbouncer:1.20.0
            environment: {POOL_MODE: transaction}
          web:
            environment: {DATABASE_URL: "postgresql://app@pgbouncer:6432/app"}
    """))
    (tmp_path / "app" / "db.py").write_text(
        "import os\nfrom sqlalchemy import create_engine\n"
        "engine = create_engine(os.environ['DATABASE_URL'], pool_pre_ping=True)\n")
    run = run_flake8(["app/db.py"], "--pooling-sqlalchemy-version=2.0", cwd=tmp_path)
    assert run.stdout.startswith("app/db.py:3:10: POL101 engine behind PgBouncer (DATABASE_URL "
                                 "in docker-compose.yml service 'web'"), run.stdout + run.stderr


def test_requirements_in_utf16_are_read(tmp_path):
    (tmp_path / "requirements.txt").write_bytes("SQLAlchemy==2.0.31\r\n".encode("utf-16"))
    assert read_deployment(tmp_path).sqlalchemy_pin == ((2, 0, 31), "requirements.txt")


def test_a_package_in_a_repository_reads_the_repository_root_deployment_too(tmp_path):
    """A monorepo's compose and Kubernetes files live at the repository root, above the
    package's own pyproject.toml; the package's files win where both set a variable."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "docker-compose.yml").write_text(textwrap.dedent("""\
        services:
          pgbouncer:
            image: edoburu/pgbouncer:v1.23.1-p2
            environment:
              POOL_MODE: transaction
          api:
            build: backend/api
            environment:
              DB_HOST: pgbouncer
              DB_NAME: shop
        """))
    package = tmp_path / "backend" / "api"
    (package / "api").mkdir(parents=True)
    (package / "pyproject.toml").write_text("")
    (package / ".env").write_text("DB_NAME=api\n")
    module = package / "api" / "db.py"
    module.write_text(textwrap.dedent("""\
        import os

        from sqlalchemy import create_engine

        HOST = os.getenv("DB_HOST", "localhost")
        NAME = os.getenv("DB_NAME", "app")
        engine = create_engine(f"postgresql://app@{HOST}/{NAME}")
        """))
    forget_projects()
    run = run_flake8([module])
    assert ":7:10: POL101" in run.stdout and "../../docker-compose.yml" in run.stdout, run.stdout
    from flake8_pooling.analysis.project import project_for
    deployment = project_for(str(module)).deployment
    assert deployment.environment["DB_NAME"].url == "api"  # the package's own .env wins
    assert deployment.environment["DB_HOST"].source.startswith("../../docker-compose.yml")
    forget_projects()


def test_a_repository_inside_another_reads_only_its_own_deployment(tmp_path):
    """A checkout kept inside another repository (a vendored project, a tree of checkouts)
    is a repository of its own: the outer one's compose does not describe it."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "docker-compose.yml").write_text(textwrap.dedent("""\
        services:
          pgbouncer:
            image: edoburu/pgbouncer:v1.23.1-p2
          web:
            environment:
              DATABASE_URL: postgresql://app@pgbouncer:6432/app
        """))
    inner = tmp_path / "vendor" / "shop"
    (inner / ".git").mkdir(parents=True)
    module = inner / "db.py"
    module.write_text(textwrap.dedent("""\
        import os

        from sqlalchemy import create_engine

        engine = create_engine(os.environ["DATABASE_URL"])
        """))
    forget_projects()
    run = run_flake8([module])
    assert run.returncode == 0 and run.stdout == "", run.stdout


def _deployment_folders():
    """Every folder of the fixtures and the example that holds deployment files."""
    folders = {path.parent for base in (FIXTURES, ROOT / "examples") for path in base.rglob("*")
               if path.is_file() and deployment.may_be_read(path.name)
               and path.suffix != ".py"}
    return sorted(folders)


@pytest.mark.parametrize("folder", _deployment_folders(), ids=lambda folder: str(
    folder.relative_to(ROOT)))
def test_reading_deployment_files_by_name_drops_none_of_them(folder, monkeypatch):
    """The walk passes over names no reader takes: what it finds is what a walk that offers
    every file finds."""
    by_name = read_deployment(folder)
    monkeypatch.setattr(deployment, "may_be_read", lambda name: True)
    assert read_deployment(folder) == by_name


@pytest.mark.parametrize("name, read", [
    ("docker-compose.yml", True), ("compose.prod.yaml", True), ("pgbouncer.ini", True),
    ("my.cnf", True), (".env", True), (".env.production", True), ("prod.env", True),
    ("env.sample", True), ("Dockerfile", True), ("Dockerfile.web", True), ("api.dockerfile", True),
    ("Procfile", True), ("start.sh", True), ("Makefile", True), ("supervisord.conf", True),
    ("entrypoint", True), ("fly.toml", True), ("app.json", True), ("poetry.lock", True),
    ("requirements-dev.in", True), ("constraints.txt", True), ("pyproject.toml", True),
    ("setup.cfg", True), ("Pipfile", True), ("odyssey.conf", True), (".bashrc", True),
    ("app.py", False), ("index.html", False), ("logo.png", False), ("package.json", False),
    ("README.md", False), ("tox.toml", False),
])
def test_deployment_files_are_known_by_name(name, read):
    assert deployment.may_be_read(name) is read


def test_a_file_read_through_seen_is_stamped_and_seen_to_change(tmp_path):
    path = tmp_path / "engine.py"
    path.write_bytes(b"x" * 70000)  # over one read's chunk after the first
    seen = Seen()
    assert seen.read(str(path)) == path.read_bytes()
    assert seen.unchanged()
    path.write_bytes(b"y")
    assert not seen.unchanged()
    with pytest.raises(OSError):
        seen.read(str(tmp_path / "gone.py"))
    missing = Seen()
    with pytest.raises(OSError):
        missing.read(str(tmp_path / "never.py"))
    (tmp_path / "never.py").write_text("")
    assert not missing.unchanged()  # a file that was missing and now is there: a change
