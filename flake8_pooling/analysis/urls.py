"""Database URLs, read with SQLAlchemy's own grammar: they mean what SQLAlchemy makes of them.

The grammar is SQLAlchemy's `_parse_url` (sqlalchemy/engine/url.py, the same from 1.4 to 2.1),
copied rather than imported: importing `sqlalchemy.engine` costs a fresh flake8 process about
0.16 s, for one regular expression (fact 117). A test holds the two to the same answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from .values import HOLE

_URL = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
        """,
    re.X,
)

# Stands for a hole in the port position, where make_url needs digits.
_PORT_HOLE = 59999


@dataclass(frozen=True)
class DatabaseUrl:
    backend: str | None  # "postgresql", "sqlite", ... ; None when unknown
    driver: str | None  # "asyncpg", "psycopg2", "" for the dialect's default; None when unknown
    host: str | None
    port: int | None
    database: str | None
    query: dict[str, str] = field(default_factory=dict)
    database_known: bool = True  # False when part of it is only known at run time

    @property
    def is_postgresql(self) -> bool:
        return self.backend == "postgresql"

    @property
    def is_sqlite(self) -> bool:
        return self.backend == "sqlite"

    @property
    def is_sqlite_memory(self) -> bool | None:
        """None when the database part is only known at run time."""
        if not self.is_sqlite or not self.database_known:
            return None if self.is_sqlite else False
        return self.database in (None, "", ":memory:")

    def effective_driver(self, sqlalchemy_version: tuple[int, ...]) -> str | None:
        """The DBAPI a bare `postgresql://` gets: psycopg 3 from SQLAlchemy 2.1 (migration_21)."""
        if self.driver != "" or not self.is_postgresql:
            return self.driver
        return "psycopg" if sqlalchemy_version >= (2, 1) else "psycopg2"


def parse_url(text: str) -> DatabaseUrl | None:
    """A DatabaseUrl for `text`, which may hold HOLEs for parts only known at run time."""
    if not isinstance(text, str) or "://" not in text:
        return None
    attempts = [(text, HOLE)]
    if HOLE in text:  # a hole in the port position: make_url needs digits there
        attempts.append((text.replace(HOLE, str(_PORT_HOLE)), str(_PORT_HOLE)))
    for candidate, marker in attempts:
        url = _split(candidate)
        if url is None:
            continue

        def known(value, marker=marker):
            return None if value is None or marker in str(value) else value

        name, host, port, database, query = url
        backend, _, driver = name.partition("+")
        return DatabaseUrl(
            backend=known(backend),
            driver=known(driver) if known(backend) else None,
            host=known(host),
            port=known(port),
            database=known(database),
            query={k: v for k, v in query.items() if isinstance(v, str) and known(v)},
            database_known=database is None or known(database) is not None,
        )
    return None


def _split(text: str):
    """(drivername, host, port, database, query) as SQLAlchemy's make_url reads `text`, or None
    where make_url raises. A key given twice in the query is a list there, as in SQLAlchemy."""
    match = _URL.match(text)
    if match is None:
        return None
    parts = match.groupdict()
    port = parts["port"]
    if port is not None:
        try:  # make_url refuses what is not an integer, an empty port too
            port = int(port)
        except ValueError:
            return None
    query: dict[str, str | list[str]] = {}
    for key, value in parse_qsl(parts["query"] or ""):
        if key in query:
            previous = query[key]
            query[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            query[key] = value
    database = unquote(parts["database"]) if parts["database"] is not None else None
    return (parts["name"], parts["ipv4host"] or parts["ipv6host"], port, database,
            query)
