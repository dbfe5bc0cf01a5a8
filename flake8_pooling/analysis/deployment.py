"""What a project's deployment files say about the database path: PgBouncer configs, docker
compose services, .env files, and the SQLAlchemy version the project pins.

Only small text files near the project root are read (a few directory levels, a bounded number
of directories), never Python: this is cheap enough to run once per flake8 process.
Facts cited as (fact N) are in docs/facts.md.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..settings import parse_version
from ..vocabulary import NOT_SOURCE_DIRS

MAX_DEPTH = 3
MAX_DIRECTORIES = 400
_COMPOSE = re.compile(r"^(docker-)?compose[\w.-]*\.ya?ml$")
_PGBOUNCER_IMAGE = re.compile(r"pgbouncer", re.IGNORECASE)
_POSTGRES_IMAGE = re.compile(r"(^|/)(postgres|postgis/postgis|bitnami/postgresql|"
                             r"timescale/timescaledb)[^/]*$", re.IGNORECASE)
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_REQUIREMENT = re.compile(r"^\s*sqlalchemy(?:\[[^\]]*\])?\s*(.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class PgBouncer:
    """One PgBouncer the project runs: from an ini file or a compose service."""
    source: str  # "deploy/pgbouncer.ini", "docker-compose.yml service 'pgbouncer'"
    listen_port: int = 6432  # fact 48
    pool_mode: str = "session"  # PgBouncer's default (fact 48)
    mode_source: str = "PgBouncer's default"
    database_modes: dict[str, str] = field(default_factory=dict)  # [databases] pool_mode=
    client_idle_timeout: float | None = None
    max_prepared_statements: int | None = None
    max_client_conn: int = 100
    hosts: frozenset[str] = frozenset()  # compose service names that reach it


@dataclass(frozen=True)
class EnvironmentUrl:
    variable: str
    url: str
    source: str  # ".env", "docker-compose.yml service 'web'"


@dataclass(frozen=True)
class Deployment:
    pgbouncers: tuple[PgBouncer, ...] = ()
    env_urls: dict[str, EnvironmentUrl] = field(default_factory=dict)
    # host ports a plain PostgreSQL image publishes: a URL on them is no pooler (counter-evidence)
    postgres_ports: dict[int, str] = field(default_factory=dict)
    sqlalchemy_pin: tuple[tuple[int, ...], str] | None = None  # (version, where)


def read_deployment(root: Path) -> Deployment:
    pgbouncers: list[PgBouncer] = []
    env_urls: dict[str, EnvironmentUrl] = {}
    postgres_ports: dict[int, str] = {}
    pins: list[tuple[int, tuple[int, ...], str]] = []  # (preference, version, source)
    for path in _nearby_files(root):
        name, shown = path.name, str(path.relative_to(root))
        try:
            if name.endswith(".ini") and name != "tox.ini":
                found = _pgbouncer_ini(path, shown)
                if found is not None:
                    pgbouncers.append(found)
            elif _COMPOSE.match(name):
                _compose(path, shown, pgbouncers, env_urls, postgres_ports)
            elif name == ".env" or name.startswith(".env."):
                for variable, value in _env_file(path).items():
                    if "://" in value:
                        env_urls.setdefault(variable, EnvironmentUrl(variable, value, shown))
            pin = _pin(path, shown)
            if pin is not None:
                pins.append(pin)
        except (OSError, UnicodeDecodeError, ValueError, configparser.Error,
                tomllib.TOMLDecodeError, json.JSONDecodeError):
            continue  # a file we cannot read says nothing
        except Exception:  # yaml errors and the like: same
            continue
    pin = min(pins, key=lambda item: item[0])[1:] if pins else None
    return Deployment(tuple(pgbouncers), env_urls, postgres_ports, pin)


def _nearby_files(root: Path):
    directories = 0
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        directories += 1
        if depth >= MAX_DEPTH or directories > MAX_DIRECTORIES:
            dirs[:] = []
        else:
            dirs[:] = sorted(d for d in dirs if d not in NOT_SOURCE_DIRS)
        for name in sorted(files):
            yield Path(folder) / name


# -- PgBouncer ini -------------------------------------------------------------------------------

def _pgbouncer_ini(path: Path, shown: str) -> PgBouncer | None:
    parser = configparser.RawConfigParser(strict=False, inline_comment_prefixes=(";", "#"))
    text = path.read_text(encoding="utf-8")
    if "[pgbouncer]" not in text.lower():
        return None
    parser.read_string("\n".join(line for line in text.splitlines()
                                 if not line.lstrip().startswith("%include")))
    section = next((s for s in parser.sections() if s.lower() == "pgbouncer"), None)
    if section is None:
        return None
    values = {key.lower(): value.strip() for key, value in parser.items(section)}
    databases = {}
    for name in parser.sections():
        if name.lower() == "databases":
            for database, connstring in parser.items(name):
                match = re.search(r"pool_mode\s*=\s*(\w+)", connstring)
                if match:
                    databases[database] = match.group(1).lower()
    mode = values.get("pool_mode", "").lower()
    return PgBouncer(
        source=shown,
        listen_port=_int(values.get("listen_port"), 6432),
        pool_mode=mode or "session",
        mode_source=f"pool_mode in {shown}" if mode else f"PgBouncer's default, {shown} sets none",
        database_modes=databases,
        client_idle_timeout=_float(values.get("client_idle_timeout")),
        max_prepared_statements=_int(values.get("max_prepared_statements"), None),
        max_client_conn=_int(values.get("max_client_conn"), 100))


def _int(value: str | None, default):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _float(value: str | None) -> float | None:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


# -- docker compose ------------------------------------------------------------------------------

def _compose(path: Path, shown: str, pgbouncers: list[PgBouncer],
             env_urls: dict[str, EnvironmentUrl], postgres_ports: dict[int, str]) -> None:
    import yaml  # libcst's own dependency; loaded only for projects with compose files

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        return
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        image = str(service.get("image") or "")
        environment = _compose_environment(service.get("environment"))
        where = f"{shown} service {name!r}"
        infrastructure = _PGBOUNCER_IMAGE.search(image) or _PGBOUNCER_IMAGE.search(str(name)) \
            or _POSTGRES_IMAGE.search(image)
        if not infrastructure:  # a pgbouncer's DATABASE_URL is its upstream, not the app's
            for variable, value in environment.items():
                if "://" in value:
                    env_urls.setdefault(variable, EnvironmentUrl(variable, value, where))
        if _PGBOUNCER_IMAGE.search(image) or _PGBOUNCER_IMAGE.search(str(name)):
            # the images configure PgBouncer from the environment (edoburu: POOL_MODE,
            # bitnami: PGBOUNCER_POOL_MODE); unset, PgBouncer's default applies
            mode = next((value.lower() for key, value in environment.items()
                         if key.upper() in ("POOL_MODE", "PGBOUNCER_POOL_MODE")), "")
            aliases = {str(name)}
            hostname = service.get("hostname") or service.get("container_name")
            if hostname:
                aliases.add(str(hostname))
            pgbouncers.append(PgBouncer(
                source=where,
                listen_port=_int(environment.get("LISTEN_PORT")
                                 or environment.get("PGBOUNCER_PORT"), 6432),
                pool_mode=mode or "session",
                mode_source=f"POOL_MODE in {where}" if mode else
                f"PgBouncer's default, {where} sets no POOL_MODE",
                max_client_conn=_int(environment.get("MAX_CLIENT_CONN")
                                     or environment.get("PGBOUNCER_MAX_CLIENT_CONN"), 100),
                max_prepared_statements=_int(environment.get("MAX_PREPARED_STATEMENTS") or
                                             environment.get("PGBOUNCER_MAX_PREPARED_STATEMENTS"),
                                             None),
                client_idle_timeout=_float(environment.get("CLIENT_IDLE_TIMEOUT")),
                hosts=frozenset(aliases)))
        elif _POSTGRES_IMAGE.search(image):
            for port in service.get("ports") or []:
                published = _published_port(port)
                if published is not None:
                    postgres_ports[published] = where


def _compose_environment(environment) -> dict[str, str]:
    if isinstance(environment, dict):
        return {str(key): str(value) for key, value in environment.items() if value is not None}
    if isinstance(environment, list):
        pairs = (str(item).partition("=") for item in environment)
        return {key: value for key, _, value in pairs if value}
    return {}


def _published_port(port) -> int | None:
    """The host side of "6432:5432", "127.0.0.1:6432:5432" or {published: 6432}."""
    if isinstance(port, dict):
        return _int(port.get("published"), None)
    parts = str(port).split("/")[0].split(":")
    return _int(parts[-2], None) if len(parts) >= 2 else None


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ENV_LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            values[match.group(1)] = match.group(2).strip("'\"")
    return values


# -- the SQLAlchemy version pinned -----------------------------------------------------------------
# Lock files are exact; pins next; a range gives its lower bound, the oldest version the project
# claims to run on (where close=False or a 2.x default may be missing).

def _pin(path: Path, shown: str) -> tuple[int, tuple[int, ...], str] | None:
    name = path.name
    if name in ("poetry.lock", "uv.lock", "pdm.lock"):
        match = re.search(r'name = "sqlalchemy"\s*\nversion = "([^"]+)"', path.read_text(
            encoding="utf-8"), re.IGNORECASE)
        return _found(0, match.group(1) if match else None, shown)
    if name == "Pipfile.lock":
        data = json.loads(path.read_text(encoding="utf-8"))
        for group in ("default", "develop"):
            entry = {key.lower(): value for key, value in data.get(group, {}).items()}
            if "sqlalchemy" in entry:
                return _found(0, str(entry["sqlalchemy"].get("version", "")), shown)
        return None
    if re.match(r"requirements.*\.(txt|in)$", name) or name == "constraints.txt":
        for line in path.read_text(encoding="utf-8").splitlines():
            match = _REQUIREMENT.match(line.split("#")[0])
            if match and match.group(1):
                return _found(1, match.group(1), shown)
        return None
    if name == "pyproject.toml":
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        requirements = list(data.get("project", {}).get("dependencies", []))
        poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
        for key, value in poetry.items():
            if key.lower() == "sqlalchemy":
                version = value.get("version") if isinstance(value, dict) else value
                return _found(1, str(version), shown)
        for requirement in requirements:
            match = _REQUIREMENT.match(str(requirement))
            if match and match.group(1):
                return _found(1, match.group(1), shown)
        return None
    if name in ("setup.cfg", "Pipfile"):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip().replace('"', "").replace("'", "")
            match = re.match(r"^sqlalchemy\s*(?:=\s*)?(.*)$", line, re.IGNORECASE)
            if match and re.search(r"\d", match.group(1)):
                return _found(1, match.group(1), shown)
    return None


def _found(preference: int, specifier: str | None, shown: str):
    """The version a specifier pins, or the lower bound of its range (^1.4.20, >=2.0,<2.1)."""
    if not specifier:
        return None
    match = re.search(r"(==|~=|>=|\^|~|===)?\s*v?(\d+\.\d+(?:\.\d+)?)", specifier)
    if match is None or (match.group(1) is None and not re.match(r"^\s*v?\d", specifier)):
        return None
    version = parse_version(match.group(2))
    return (preference, version, shown) if version else None
