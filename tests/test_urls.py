"""The URL reader answers as SQLAlchemy's own make_url does, without importing SQLAlchemy."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st
from sqlalchemy.engine import make_url

from flake8_pooling.analysis.urls import _split

URLS = [
    "postgresql://app:secret@pgbouncer:6432/app",
    "postgresql+asyncpg://app@db/app?prepared_statement_cache_size=0",
    "postgresql+psycopg://app:p%40ss@[::1]:5432/app%2Fx?sslmode=require&options=-c%20x%3D1",
    "postgresql://user@host:/db",
    "postgresql://user@host:abc/db",
    "postgresql://host:0/db",
    "postgresql:///app?host=/var/run/postgresql",
    "mysql+pymysql://root@localhost/shop?charset=utf8mb4&charset=latin1",
    "sqlite://",
    "sqlite:///:memory:",
    "sqlite:////tmp/x.db",
    "sqlite:///file::memory:?cache=shared&uri=true",
    "oracle+cx_oracle://scott:tiger@tnsname",
    "mssql+pyodbc://u:p@dsn?driver=ODBC+Driver+17",
    "not a url",
    "://missing-name",
    "postgresql://u:p@h:5432/db?a=",
    "postgresql://a:b:c@h/d",
    "postgresql://a@b@h/d",
]


def sqlalchemy_reading(text: str):
    try:
        url = make_url(text)
    except Exception:  # ArgumentError, TypeError, ValueError: make_url refuses it
        return None
    return url.drivername, url.host, url.port, url.database, dict(url.query)


def own_reading(text: str):
    parts = _split(text)
    if parts is None:
        return None
    name, host, port, database, query = parts
    return name, host, port, database, {key: tuple(value) if isinstance(value, list) else value
                                        for key, value in query.items()}


@pytest.mark.parametrize("text", URLS)
def test_reads_urls_as_sqlalchemy_does(text):
    assert own_reading(text) == sqlalchemy_reading(text)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(r"[a-z+]{1,12}://[a-z0-9:@%/?=&.\[\]+-]{0,40}", fullmatch=True))
def test_reads_generated_urls_as_sqlalchemy_does(text):
    assert own_reading(text) == sqlalchemy_reading(text)


def test_linting_a_url_imports_no_sqlalchemy(tmp_path):
    # a fresh flake8 process pays for every module it imports (issue: 0.16 s for sqlalchemy)
    code = ("import sys\n"
            "from flake8_pooling.lint import lint\n"
            "lint('from sqlalchemy import create_engine\\n'\n"
            "     'engine = create_engine(\"postgresql://app@pgbouncer:6432/app\")\\n', 'db.py')\n"
            "print(sorted(name for name in sys.modules if name.split('.')[0] == 'sqlalchemy'))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=tmp_path)
    assert result.stdout.strip() == "[]"
