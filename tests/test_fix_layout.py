"""Fixes laid out as the project lays out its code: calls they make too long wrapped the way the
file wraps calls, at the project's line length; imports they add where isort puts them."""

from __future__ import annotations

import textwrap

import isort
import pytest

from flake8_pooling.analysis.project import forget_projects
from flake8_pooling.code_style import forget_styles
from flake8_pooling.fix import fix_source
from flake8_pooling.settings import Settings

SETTINGS = Settings.from_values(sqlalchemy_version="2.0")


@pytest.fixture
def project(tmp_path):
    """A project folder with the given config files, and a function that fixes a module in it."""
    forget_projects()
    forget_styles()
    (tmp_path / ".git").mkdir()

    def fix(source: str, config: dict[str, str] | None = None, **kwargs) -> str:
        for name, text in (config or {}).items():
            (tmp_path / name).write_text(textwrap.dedent(text))
        forget_styles()
        path = tmp_path / "app" / "db.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return fix_source(path.read_text(), str(path), SETTINGS, unsafe=True, **kwargs).source
    return fix


FLAKE8_100 = {"setup.cfg": "[flake8]\nmax-line-length = 100\n"}
ONLY_POL101 = {"select": ["POL101"]}  # adds poolclass=NullPool: 20 characters


def test_a_call_the_fix_made_too_long_is_wrapped_one_argument_a_line(project):
    result = project("""\
        from sqlalchemy import create_engine

        engine = create_engine("postgresql+psycopg2://app@pgbouncer:6432/app")  # the main one


        def make():
            return create_engine("postgresql+psycopg2://reports@pgbouncer:6432/reports_db")
    """, FLAKE8_100, **ONLY_POL101)
    assert result.endswith(textwrap.dedent("""\
        engine = create_engine(  # the main one
            "postgresql+psycopg2://app@pgbouncer:6432/app",
            poolclass=NullPool,
        )


        def make():
            return create_engine(
                "postgresql+psycopg2://reports@pgbouncer:6432/reports_db",
                poolclass=NullPool,
            )
    """))
    assert max(map(len, result.splitlines())) <= 100


def test_a_line_over_the_limit_before_the_fix_is_left_as_it_was(project):
    long_line = ('engine = create_engine("postgresql+psycopg2://app@pgbouncer:6432/app", '
                 'echo=True, future=True, pool_size=5)')
    assert len(long_line) > 100
    result = project(f"from sqlalchemy import create_engine\n\n{long_line}\n", FLAKE8_100,
                     **ONLY_POL101)
    assert result.splitlines()[-1] == long_line.replace("pool_size=5", "poolclass=NullPool")


def test_wrapping_follows_the_files_indent_and_trailing_commas(project):
    result = project("""\
        from sqlalchemy import create_engine

        if True:
          other = create_engine(
            "sqlite:///other.db"
          )
          engine = create_engine("postgresql+psycopg2://app@pgbouncer:6432/app", echo=True)
    """, FLAKE8_100, **ONLY_POL101)
    assert result.endswith('\n  engine = create_engine(\n'
                           '    "postgresql+psycopg2://app@pgbouncer:6432/app",\n'
                           '    echo=True,\n'
                           '    poolclass=NullPool\n'
                           '  )\n')


def test_the_limit_is_flake8s_then_ruffs_then_79(project):
    source = """\
        from sqlalchemy import create_engine

        engine = create_engine("postgresql://app@pgbouncer:6432/app")
    """  # 82 characters once poolclass=NullPool is added: over 79, within 88
    assert "engine = create_engine(\n" in project(source, **ONLY_POL101)
    ruff = {"pyproject.toml": "[tool.ruff]\nline-length = 88\n"}
    assert "engine = create_engine(\n" not in project(source, ruff, **ONLY_POL101)
    flake8_first = {**ruff, "tox.ini": "[flake8]\n"}  # flake8's section, without a value: 79
    assert "engine = create_engine(\n" in project(source, flake8_first, **ONLY_POL101)


def test_an_added_import_lands_where_isort_puts_it(project):
    source = """\
        import os

        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session

        from app.settings import DATABASE_URL

        engine = create_engine(os.environ.get("URL", DATABASE_URL))
        session = Session(engine)
    """
    result = project(source)
    assert result.startswith(textwrap.dedent("""\
        import os

        from sqlalchemy import create_engine
        from sqlalchemy.orm import scoped_session, sessionmaker

        from app.settings import DATABASE_URL
    """))


@pytest.mark.parametrize("config", [{}, {"pyproject.toml": '[tool.isort]\nprofile = "black"\n'},
                                    {"setup.cfg": "[isort]\nline_length = 100\n"}],
                         ids=["isort defaults", "black profile", "setup.cfg"])
def test_sorted_imports_stay_sorted_for_isort(project, tmp_path, config):
    source = """\
        from asyncio import gather

        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

        engine = create_async_engine("postgresql+asyncpg://app@pgbouncer:6432/app")
        session = AsyncSession(engine, expire_on_commit=False)
    """
    (tmp_path / "app").mkdir(exist_ok=True)
    for name, text in config.items():
        (tmp_path / name).write_text(text)
    settings = isort.Config(settings_path=str(tmp_path), src_paths=(tmp_path,))
    assert isort.check_code(textwrap.dedent(source), config=settings)
    result = project(source, config)
    assert "from sqlalchemy.pool import NullPool" in result and "current_task" in result
    assert isort.check_code(result, config=settings, show_diff=True)


def test_unsorted_imports_are_not_sorted_by_the_fix(project):
    source = """\
        from sqlalchemy import create_engine
        import os

        engine = create_engine(os.environ["URL"] or "postgresql://app@pgbouncer:6432/app")
    """
    result = project(source)
    assert result.startswith("from sqlalchemy import create_engine\nimport os\n")
    assert "from sqlalchemy.pool import NullPool\n" in result


def test_a_noqa_on_the_call_still_applies_after_wrapping(project):
    chosen = {"select": ["POL101", "POL107"]}
    result = project("""\
        from sqlalchemy import create_engine

        e = create_engine("postgresql://orders@pgbouncer:6432/orders_db")  # noqa: POL107
    """, FLAKE8_100, **chosen)
    assert "e = create_engine(  # noqa: POL107\n" in result and "poolclass=NullPool,\n" in result
    again = fix_source(result, "app/db.py", SETTINGS, **chosen)
    assert not again.changed and again.remaining == []  # the noqa still covers the call


def test_an_import_a_fix_made_too_long_is_wrapped_in_an_unsorted_file(project):
    result = project("""\
        from sqlalchemy.ext.asyncio import create_async_engine, AsyncSession, AsyncEngine
        import os

        engine: AsyncEngine = create_async_engine(os.environ["DATABASE_URL"])
        session = AsyncSession(engine)
    """, FLAKE8_100)
    assert result.startswith(textwrap.dedent("""\
        from sqlalchemy.ext.asyncio import (
            async_scoped_session,
            async_sessionmaker,
            create_async_engine,
            AsyncEngine,
        )
        import os
    """))
