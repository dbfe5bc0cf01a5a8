"""Database URLs, read with SQLAlchemy's own parser: they mean what SQLAlchemy makes of them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

from .values import HOLE

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
        try:
            url = make_url(candidate)
        except Exception:  # ArgumentError, ValueError, ... on odd input
            continue

        def known(value, marker=marker):
            return None if value is None or marker in str(value) else value

        backend, _, driver = url.drivername.partition("+")
        return DatabaseUrl(
            backend=known(backend),
            driver=known(driver) if known(backend) else None,
            host=known(url.host),
            port=known(url.port),
            database=known(url.database),
            query={k: v for k, v in url.query.items() if isinstance(v, str) and known(v)},
            database_known=url.database is None or known(url.database) is not None,
        )
    return None
