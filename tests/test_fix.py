"""The fix engine's contract: only what the finding names changes, imports once, noqa honoured."""

from __future__ import annotations

import ast
import textwrap

from flake8_pooling.analysis.project import forget_projects
from flake8_pooling.fix import fix_source
from flake8_pooling.lint import lint
from flake8_pooling.settings import Settings

SETTINGS = Settings.from_values(sqlalchemy_version="2.0")


def fixed(source: str, **kwargs) -> str:
    return fix_source(textwrap.dedent(source), "app/db.py", SETTINGS, **kwargs).source


def test_import_is_merged_into_an_existing_from_import():
    result = fixed("""\
        from sqlalchemy import create_engine
        from sqlalchemy.pool import QueuePool

        engine = create_engine("postgresql+psycopg2://app@pgbouncer:6432/app", pool_pre_ping=True)
        other = create_engine("postgresql+psycopg2://app@pgbouncer:6432/b", pool_pre_ping=True)
    """, unsafe=True)
    assert "from sqlalchemy.pool import NullPool, QueuePool\n" in result
    assert result.count("NullPool, QueuePool") == 1 and "import NullPool\n" not in result
    assert result.count("poolclass=NullPool") == 2


def test_a_taken_short_name_gets_the_full_spelling():
    result = fixed("""\
        from sqlalchemy import create_engine
        from myproject.pools import NullPool

        engine = create_engine("postgresql+psycopg2://app@pgbouncer:6432/app", pool_pre_ping=True)
    """, unsafe=True)
    assert "import sqlalchemy.pool\n" in result
    assert "poolclass=sqlalchemy.pool.NullPool" in result
    ast.parse(result)


def test_comments_and_layout_around_the_change_survive():
    source = """\
        from sqlalchemy import create_engine  # the engine
        from sqlalchemy.pool import NullPool

        # the pool, kept small on purpose
        engine = create_engine(
            "sqlite:///app.db",
            poolclass=NullPool,
            pool_size=5,  # remove me
            pool_recycle=300  # keep me
        )
    """
    result = fixed(source)
    assert result == textwrap.dedent("""\
        from sqlalchemy import create_engine  # the engine
        from sqlalchemy.pool import NullPool

        # the pool, kept small on purpose
        engine = create_engine(
            "sqlite:///app.db",
            poolclass=NullPool,
            pool_recycle=300  # keep me
        )
    """)


def test_fixes_to_one_call_compose():
    result = fixed("""\
        from sqlalchemy import create_engine

        engine = create_engine("postgresql://app@pgbouncer:6432/a", pool_size=5)
    """, unsafe=True)
    assert 'create_engine("postgresql://app@pgbouncer:6432/a", poolclass=NullPool, ' \
           'pool_pre_ping=True)' in result
    assert [f.code for f in lint(result, "app/db.py", SETTINGS)] == ["POL107"]  # opt-in only


def test_options_are_removed_where_they_are_written():
    result = fixed("""\
        from sqlalchemy import create_engine, engine_from_config
        from sqlalchemy.pool import NullPool

        OPTIONS = {"pool_size": 5, "echo": True}
        a = create_engine("sqlite:///a.db", poolclass=NullPool, **OPTIONS)
        b = engine_from_config({"sqlalchemy.url": "sqlite:///b.db", "sqlalchemy.max_overflow": 2},
                               poolclass=NullPool)
    """)
    assert 'OPTIONS = {"echo": True}' in result
    assert 'engine_from_config({"sqlalchemy.url": "sqlite:///b.db"},' in result


def test_noqa_is_honoured_like_flake8():
    source = """\
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        a = create_engine("sqlite:///a.db", poolclass=NullPool, pool_size=5)  # noqa: POL105
        b = create_engine("sqlite:///b.db", poolclass=NullPool, pool_size=5)  # noqa
        c = create_engine("sqlite:///c.db", poolclass=NullPool, pool_size=5)  # noqa: E501
        d = create_engine("sqlite:///d.db", poolclass=NullPool, pool_size=5)  # noqa:POL1
    """
    result = fix_source(textwrap.dedent(source), "app/db.py", SETTINGS)
    lines = result.source.splitlines()
    assert "pool_size" in lines[3] and "pool_size" in lines[4] and "pool_size" in lines[6]
    assert "pool_size" not in lines[5]
    assert len(result.applied) == 1 and result.remaining == []  # noqa: not reported, not left


def test_unsafe_fixes_need_asking():
    source = ('from sqlalchemy import create_engine\n'
              'e = create_engine("sqlite:///a.db", autocommit=True)\n')
    assert fixed(source) == source
    assert 'isolation_level="AUTOCOMMIT"' in fixed(source, unsafe=True)


def test_select_and_ignore_pick_the_fixes():
    source = textwrap.dedent("""\
        from sqlalchemy import create_engine

        engine = create_engine("postgresql+psycopg2://app@pgbouncer:6432/app", pool_size=5)
    """)
    only_102 = fix_source(source, "app/db.py", SETTINGS, unsafe=True, select=["POL102"])
    assert [f.code for f in only_102.applied] == ["POL102"]
    not_102 = fix_source(source, "app/db.py", SETTINGS, unsafe=True, ignore=["POL102"])
    assert [f.code for f in not_102.applied] == ["POL101"]


def test_crlf_files_stay_crlf():
    source = ('from sqlalchemy import create_engine\r\n\r\n'
              'engine = create_engine("postgresql+psycopg2://app@pgbouncer:6432/app")\r\n')
    result = fix_source(source, "app/db.py", SETTINGS, unsafe=True).source
    assert "poolclass=NullPool" in result
    assert result.count("\r\n") == result.count("\n")


def test_nothing_to_fix_returns_the_source_untouched():
    source = "import os\nprint(os.getcwd())\n"
    result = fix_source(source)
    assert result.source is source and not result.changed


def test_a_trailing_comment_stays_on_the_line_of_its_argument():
    result = fixed("""\
        from sqlalchemy import create_engine

        engine = create_engine(
            "postgresql+psycopg2://app@pgbouncer:6432/app",  # through the pooler
            pool_size=5,
            pool_recycle=3000,  # below server_lifetime
        )
        other = create_engine(
            "postgresql+psycopg2://app@pgbouncer:6432/app",
            pool_recycle=3000  # temporary, for debugging
        )
    """, unsafe=True)
    assert result.endswith(textwrap.dedent("""\
        engine = create_engine(
            "postgresql+psycopg2://app@pgbouncer:6432/app",  # through the pooler
            pool_recycle=3000,  # below server_lifetime
            poolclass=NullPool,
            pool_pre_ping=True,
        )
        other = create_engine(
            "postgresql+psycopg2://app@pgbouncer:6432/app",
            pool_recycle=3000,  # temporary, for debugging
            poolclass=NullPool,
            pool_pre_ping=True
        )
    """))


def test_a_trailing_comment_in_a_dict_stays_on_its_entry():
    result = fixed("""\
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        engine = create_engine(
            "postgresql+psycopg2://app@pgbouncer:6432/app",
            poolclass=NullPool,
            connect_args={
                "sslmode": "require",  # production only
            },
        )
    """, select=["POL107"])
    lines = result.splitlines()
    at = lines.index('        "sslmode": "require",  # production only')
    assert lines[at + 1].startswith('        "application_name": "') and lines[at + 1].endswith(",")
    assert lines[at + 2] == "    },"


def test_removing_the_last_option_keeps_the_comment_of_the_one_before():
    result = fixed("""\
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        a = create_engine(
            "sqlite:///a.db",
            poolclass=NullPool,
            pool_recycle=300,  # keep me
            pool_size=5,  # remove me
        )
        b = create_engine(
            "sqlite:///b.db",
            poolclass=NullPool,
            pool_recycle=300,  # keep me
            pool_size=5  # remove me
        )
        OPTIONS = {
            "pool_recycle": 300,  # keep me
            "max_overflow": 5,  # remove me
        }
        c = create_engine("sqlite:///c.db", poolclass=NullPool, **OPTIONS)
    """)
    assert "remove me" not in result
    assert "    pool_recycle=300,  # keep me\n)" in result  # a: the trailing comma stays
    assert "    pool_recycle=300  # keep me\n)" in result  # b: none, as before
    assert '"pool_recycle": 300,  # keep me\n}' in result


SESSION_AT_IMPORT = """\
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    import os{extra}

    engine = create_engine("postgresql://app@db/app")
    session = Session(engine)
"""


def test_an_import_only_the_replaced_code_used_is_removed_and_no_other():
    source = textwrap.dedent(SESSION_AT_IMPORT.format(extra=""))
    result = fix_source(source, "app/db.py", SETTINGS, unsafe=True).source
    assert result == textwrap.dedent("""\
        from sqlalchemy import create_engine
        from sqlalchemy.orm import scoped_session, sessionmaker
        import os

        engine = create_engine("postgresql://app@db/app")
        session = scoped_session(sessionmaker(engine))
    """)  # `os` was unused before the fix: not the fix's to remove
    messages = [str(message.message % message.message_args) for message in pyflakes(result)]
    assert messages == ["%r imported but unused" % "os"]


def test_an_import_that_is_exported_stays():
    exported = {
        "app/db.py": '\n    __all__ = ["Session", "session"]',  # listed in __all__
        "app/__init__.py": "",  # a package's surface
    }
    for path, extra in exported.items():
        source = textwrap.dedent(SESSION_AT_IMPORT.format(extra=extra))
        result = fix_source(source, path, SETTINGS, unsafe=True).source
        assert "from sqlalchemy.orm import scoped_session, sessionmaker, Session\n" in result, path
    aliased = textwrap.dedent(SESSION_AT_IMPORT.format(extra="")).replace(
        "import Session\n", "import Session as Session\n")  # the explicit re-export spelling
    result = fix_source(aliased, "app/db.py", SETTINGS, unsafe=True).source
    assert "Session as Session" in result


def pyflakes(source: str) -> list:
    from pyflakes.api import check
    from pyflakes.reporter import Reporter

    class Collect(Reporter):
        def __init__(self) -> None:
            self.messages = []

        def flake(self, message) -> None:
            self.messages.append(message)

    reporter = Collect()
    check(source, "app/db.py", reporter)
    return reporter.messages


def test_a_finding_another_fix_removed_counts_as_fixed_not_left():
    # before 2.0.21 POL102 offers no fix for asyncpg (pre_ping broke it in transaction mode);
    # POL101's NullPool leaves no pool to check, so it removes POL102 too
    source = textwrap.dedent("""\
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine("postgresql+asyncpg://app@pgbouncer:6432/app",
                                     connect_args={"statement_cache_size": 0})
    """)
    settings = Settings.from_values(sqlalchemy_version="2.0.10")
    reported = sorted(f.code for f in lint(source, "app/db.py", settings) if f.code != "POL107")
    assert reported == ["POL101", "POL102"]
    result = fix_source(source, "app/db.py", settings, unsafe=True)
    assert [f.code for f in result.applied] == ["POL101"]
    assert result.fixed == {"POL101": 1, "POL102": 1} and result.remaining == []
    safe_only = fix_source(source, "app/db.py", settings)  # nothing applies: both are left
    assert not safe_only.fixed and sorted(f.code for f in safe_only.remaining) == reported


BEHIND_POOLER = """\
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

engine = create_engine("postgresql://app@pgbouncer:6432/app", poolclass=NullPool)
"""


def test_the_application_name_is_the_projects_not_the_modules(tmp_path):
    projects = {  # what a project's files say -> the name its connections get
        "orders": {"pyproject.toml": '[project]\nname = "orders-service"\n',
                   "setup.cfg": "[metadata]\nname = other\n"},
        "billing": {"setup.cfg": "[metadata]\nname = billing-api\n"},
        "payments": {"setup.cfg": "[metadata]\nname = attr: payments.NAME\n"},  # not a name
        "ledger": {"pyproject.toml": "[project\n"},  # unreadable: the folder names it
    }
    expected = {"orders": "orders-service", "billing": "billing-api", "payments": "payments",
                "ledger": "ledger"}
    forget_projects()
    for folder, files in projects.items():
        for name, text in files.items():
            (tmp_path / folder / "config").mkdir(parents=True, exist_ok=True)
            (tmp_path / folder / name).write_text(text)
        module = tmp_path / folder / "config" / "config.py"
        module.write_text(BEHIND_POOLER)
        result = fix_source(BEHIND_POOLER, str(module), SETTINGS, select=["POL107"]).source
        assert f'connect_args={{"application_name": "{expected[folder]}"}}' in result, folder


def test_the_fix_summary_counts_what_the_fixes_removed(tmp_path):
    import subprocess
    import sys
    (tmp_path / "db.py").write_text(textwrap.dedent("""\
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine("postgresql+asyncpg://app@pgbouncer:6432/app",
                                     connect_args={"statement_cache_size": 0})
    """))
    run = subprocess.run([sys.executable, "-m", "flake8_pooling.cli", "fix", "--isolated",
                          "--unsafe-fixes", "--pooling-sqlalchemy-version=2.0.10", "db.py"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "flake8-pooling: fixed 2 findings in 1 file (POL101 x1, POL102 x1)"
