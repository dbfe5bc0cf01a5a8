"""A process that lints again and again (an editor's flake8, the language server) sees the
project's files as they are now, not as they were at the first lint."""

from __future__ import annotations

import textwrap

from flake8.main.application import Application

from flake8_pooling.analysis.project import forget_projects

ENGINE = textwrap.dedent("""\
    import os

    from sqlalchemy import create_engine

    engine = create_engine(os.environ["DATABASE_URL"])
""")

COMPOSE_WITH_PGBOUNCER = textwrap.dedent("""\
    services:
      web:
        build: .
        environment:
          DATABASE_URL: postgresql://app@pgbouncer:6432/app
      pgbouncer:
        image: edoburu/pgbouncer:1.18.0
        environment:
          POOL_MODE: transaction
""")

COMPOSE_WITHOUT = textwrap.dedent("""\
    services:
      web:
        build: .
        environment:
          DATABASE_URL: postgresql://app@db:5432/app
      db:
        image: postgres:16
""")


def flake8_codes(path) -> list[str]:
    """flake8's application API, in this process, as editors that keep flake8 alive call it."""
    output = path.parent / "flake8.out"
    output.unlink(missing_ok=True)  # flake8 appends to its output file
    Application().run(["--isolated", "--select=POL", f"--output-file={output}", str(path)])
    return sorted(line.split()[1] for line in output.read_text().splitlines())


def test_a_changed_compose_file_changes_the_next_lint(tmp_path):
    forget_projects()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE_WITH_PGBOUNCER)
    module = tmp_path / "db.py"
    module.write_text(ENGINE)

    assert {"POL101", "POL102"} <= set(flake8_codes(module))
    compose.write_text(COMPOSE_WITHOUT)  # PgBouncer removed: the engine reaches PostgreSQL
    assert flake8_codes(module) == []
    compose.write_text(COMPOSE_WITH_PGBOUNCER)  # and back
    assert {"POL101", "POL102"} <= set(flake8_codes(module))


def test_a_new_env_file_and_a_changed_pin_are_read_on_the_next_lint(tmp_path):
    forget_projects()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    module = tmp_path / "db.py"
    module.write_text(ENGINE)
    assert flake8_codes(module) == []

    (tmp_path / ".env").write_text("DATABASE_URL=postgresql://app@pgbouncer:6432/app\n")
    assert {"POL101", "POL102"} <= set(flake8_codes(module))  # a file added to the project

    # a gunicorn config whose hook calls dispose(close=False): SQLAlchemy 1.4.33 has it,
    # 1.4.20 does not (POL306); the pin decides which
    (tmp_path / "gunicorn.conf.py").write_text(textwrap.dedent("""\
        preload_app = True

        def post_fork(server, worker):
            from db import engine
            engine.dispose(close=False)
    """))
    (tmp_path / "requirements.txt").write_text("sqlalchemy==1.4.46\n")
    assert "POL306" not in flake8_codes(tmp_path / "gunicorn.conf.py")
    (tmp_path / "requirements.txt").write_text("sqlalchemy==1.4.20\n")
    assert "POL306" in flake8_codes(tmp_path / "gunicorn.conf.py")


def test_an_engine_module_edited_between_lints_is_read_again(tmp_path):
    forget_projects()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    (tmp_path / "db.py").write_text('DATABASE_URL = "postgresql://app@db/app"\n')
    config = tmp_path / "gunicorn.conf.py"
    config.write_text("preload_app = True\nworkers = 4\nimport db\n")
    assert flake8_codes(config) == []  # no engine for the workers to inherit
    (tmp_path / "db.py").write_text(textwrap.dedent("""\
        from sqlalchemy import create_engine

        engine = create_engine("postgresql://app@db/app", pool_size=5)
    """))
    assert flake8_codes(config) == ["POL301"]
