"""Settings read by both front ends, validated once.

A bad value never stops a run: it is replaced by the default, and a one-line explanation is kept
in `problems` for the front end to print.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

POOLERS = ("auto", "pgbouncer", "none")
POOLER_MODES = ("transaction", "session", "statement")


@cache
def installed_version(package: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """The version of a package installed here, once per process; `default` without it.
    importlib.metadata is loaded here, not with the module: it is a twentieth of `check`'s
    start, and a file without the vocabulary never asks."""
    from importlib import metadata

    try:
        return parse_version(metadata.version(package)) or default
    except metadata.PackageNotFoundError:
        return default


def installed_sqlalchemy_version() -> tuple[int, ...]:
    return installed_version("sqlalchemy", (2, 0))


def parse_version(text: str) -> tuple[int, ...] | None:
    match = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not match:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def version_text(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


@dataclass(frozen=True)
class Settings:
    # auto: decide from evidence in the code; pgbouncer: every PostgreSQL engine goes through one
    pooler: str = "auto"
    # None: from the evidence (pgbouncer.ini, compose), else transaction: the URLs that give a
    # pooler away (port 6432, 6543, a pgbouncer host) are mostly transaction poolers, though
    # PgBouncer's own default is session. `session` silences POL101/POL103.
    pooler_mode: str | None = None
    # None: the installed SQLAlchemy's, looked up only when a rule needs it
    configured_version: tuple[int, ...] | None = None
    # engines a post_fork fix disposes, as (module, name): from `module:name` entries
    engines: tuple[tuple[str, str], ...] = ()
    # the server's connection limit when no PgBouncer max_client_conn applies: PostgreSQL's
    # default max_connections (fact 63)
    max_connections: int = 100
    problems: tuple[str, ...] = ()

    @property
    def sqlalchemy_version(self) -> tuple[int, ...]:
        return self.configured_version or installed_sqlalchemy_version()

    @classmethod
    def from_values(cls, pooler: str | None = None, pooler_mode: str | None = None,
                    sqlalchemy_version: str | None = None,
                    engines: str | list[str] | None = None,
                    max_connections: str | int | None = None) -> Settings:
        problems = []

        def choice(name: str, value: str | None, allowed: tuple[str, ...],
                   default: str | None) -> str | None:
            if value is None or value == "":
                return default
            value = value.strip().lower()
            if value in allowed:
                return value
            problems.append(f"pooling-{name} = {value!r} is not one of {', '.join(allowed)}; "
                            f"using {default or 'what the project shows'}")
            return default

        version = None
        if sqlalchemy_version:
            version = parse_version(sqlalchemy_version)
            if version is None:
                problems.append(f"pooling-sqlalchemy-version = {sqlalchemy_version!r} is not a "
                                f"version like 2.0.30; using the installed SQLAlchemy's")
        paths = []
        entries = engines.split(",") if isinstance(engines, str) else engines or []
        for entry in (entry.strip() for entry in entries):
            module, _, name = entry.replace(":", ".").rpartition(".")
            if entry and ":" in entry and module and name.isidentifier() \
                    and all(part.isidentifier() for part in module.split(".")):
                paths.append((module, name))
            elif entry:
                problems.append(f"pooling-engines entry {entry!r} is not like myapp.db:engine; "
                                f"ignored")
        limit = 100
        if max_connections not in (None, ""):
            try:
                limit = int(str(max_connections).strip())
                if limit < 1:
                    raise ValueError
            except ValueError:
                limit = 100
                problems.append(f"pooling-max-connections = {max_connections!r} is not a "
                                f"positive number; using 100")
        return cls(
            max_connections=limit,
            engines=tuple(paths),
            pooler=choice("pooler", pooler, POOLERS, "auto"),
            pooler_mode=choice("pooler-mode", pooler_mode, POOLER_MODES, None),
            configured_version=version,
            problems=tuple(problems),
        )
