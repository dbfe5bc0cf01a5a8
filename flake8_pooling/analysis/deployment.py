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
import shlex
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from ..settings import parse_version
from ..vocabulary import NOT_SOURCE_DIRS
from .commands import (Commands, ServerCommand, commands_in, commands_in_cloud_foundry,
                       commands_in_compose)
from .seen import Seen

MAX_DEPTH = 3
MAX_DIRECTORIES = 400
_COMPOSE = re.compile(r"^(docker-)?compose[\w.-]*\.ya?ml$")
_PGBOUNCER_IMAGE = re.compile(r"pgbouncer", re.IGNORECASE)
# other transaction poolers' images, by the name their project gives the pooler (fact 118)
_OTHER_POOLER_IMAGES = {"pgcat": "PgCat", "pgdog": "PgDog"}
_OTHER_POOLER_IMAGE = re.compile(r"(?:^|/)(pgcat|pgdog)(?::|@|$)", re.IGNORECASE)
# Odyssey's images, by the last part of the name (`odyssey:1.3`, `ghcr.io/yandex/odyssey`); its
# pool mode is its config's, route by route: it has no default (fact 119)
_ODYSSEY_IMAGE = re.compile(r"(?:^|/)odyssey(?::|@|$)", re.IGNORECASE)
# Odyssey's own image writes /etc/odyssey/odyssey.conf from its environment when none is there
_ODYSSEY_OWN_IMAGE = re.compile(r"^ghcr\.io/yandex/odyssey(?::|@|$)", re.IGNORECASE)
ODYSSEY_CONFIG = "odyssey.conf"
ODYSSEY_PORT = 6432  # a listen block's port when it names none (fact 119)
UNKNOWN_MODE = "unknown"  # a pooler whose mode the project's files do not give
_POSTGRES_IMAGE = re.compile(r"(^|/)(postgres|postgis/postgis|bitnami/postgresql|"
                             r"timescale/timescaledb)[^/]*$", re.IGNORECASE)
# .env, .env.production, .env.example, env.sample, prod.env, docker/app.env
# Cloud Foundry (cloud.gov) application manifests: manifest.yml, manifests/manifest_api_prod.yml
_CLOUD_FOUNDRY = re.compile(r"^manifest[\w.-]*\.ya?ml$")
_MYSQL_IMAGE = re.compile(r"(^|/)(mysql|mariadb|percona)(:|$)", re.IGNORECASE)
# the server's wait_timeout on a command line (`--wait-timeout=600`, `--wait_timeout 600`)
_WAIT_TIMEOUT_FLAG = re.compile(r"--wait[-_]timeout[= ]+(\d+)")
_ENV_FILE = re.compile(r"^(\.env(\..+)?|env\.[\w.-]+|[\w.-]+\.env)$")
_EXAMPLE = re.compile(r"example|sample|template|dist", re.IGNORECASE)
_DOCKER_ENV = re.compile(r"^\s*ENV\s+(.+)$", re.IGNORECASE)
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
# The packages whose versions rules depend on: SQLAlchemy (defaults, dispose(close=)), asyncpg
# (what statement_cache_size=0 is enough for, fact 34), Flask-SQLAlchemy (app contexts, fact 72)
PINNED_PACKAGES = ("sqlalchemy", "asyncpg", "flask-sqlalchemy")
# read only when pinned exactly (a lock file, ==): a range says little about what runs
EXACT_PINS = ("asyncpg",)
_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*(.*)$")
_SETUP_LINE = re.compile(r"^([A-Za-z0-9_.-]+)\s*(?:=\s*)?(.*)$")
LATEST = (99,)  # an untagged image: whatever is current


@dataclass(frozen=True)
class PgBouncer:
    """One PgBouncer the project runs: from an ini file or a compose service; or another
    pooler that speaks the same part (`kind` PgCat, PgDog or Odyssey, from a compose image)."""
    source: str  # "deploy/pgbouncer.ini", "docker-compose.yml service 'pgbouncer'"
    listen_port: int = 6432  # fact 48
    pool_mode: str = "session"  # PgBouncer's default (fact 48); UNKNOWN_MODE: not in the files
    mode_source: str = "PgBouncer's default"
    database_modes: dict[str, str] = field(default_factory=dict)  # [databases] pool_mode=
    database_mode_sources: dict[str, str] = field(default_factory=dict)  # where each is set
    mode_setting: str = "pool_mode"  # what the pooler's config calls it: Odyssey's is `pool`
    client_idle_timeout: float | None = None
    max_prepared_statements: int | None = None
    max_client_conn: int | None = 100  # None: a pooler whose limit the facts do not give
    hosts: frozenset[str] = frozenset()  # compose service names that reach it
    version: tuple[int, ...] | None = None  # from the image tag; LATEST when untagged
    kind: str = "PgBouncer"
    # protocol-level prepared statements through transaction pooling, where the config says so
    # in so many words (Odyssey's pool_reserve_prepared_statement, fact 119), overall and for
    # the databases with routes of their own; None: max_prepared_statements or the version decide
    prepared_statements: bool | None = None
    database_prepared_statements: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class EnvironmentUrl:
    variable: str
    url: str  # the value: a URL in env_urls, any text in environment
    source: str  # ".env", "docker-compose.yml service 'web'"


# Which file's value of a variable wins: what the running service is given (compose, the
# Dockerfile, the platform's manifest) before a local .env, before the examples and templates.
_PRECEDENCE = {"compose": 0, "dockerfile": 1, "platform": 2, "dotenv": 3, "example": 4}


@dataclass(frozen=True)
class Deployment:
    pgbouncers: tuple[PgBouncer, ...] = ()
    env_urls: dict[str, EnvironmentUrl] = field(default_factory=dict)
    # every variable the deployment files set, URLs or not (DB_HOST=pgbouncer)
    environment: dict[str, EnvironmentUrl] = field(default_factory=dict)
    # host ports a plain PostgreSQL image publishes: a URL on them is no pooler (counter-evidence)
    postgres_ports: dict[int, str] = field(default_factory=dict)
    pins: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)  # (version, where)
    # Heroku's PgBouncer buildpack, started by the Procfile (fact 89): where it is started
    heroku_pgbouncer: str | None = None
    # gunicorn, uvicorn and Celery command lines (Procfile, Dockerfile, compose, scripts)
    commands: Commands = field(default_factory=Commands)
    # the MySQL or MariaDB server's wait_timeout the project configures, and where (fact 98)
    mysql_wait_timeout: tuple[int, str] | None = None

    @property
    def sqlalchemy_pin(self) -> tuple[tuple[int, ...], str] | None:
        return self.pins.get("sqlalchemy")

    def within(self, outer: Deployment, prefix: str) -> Deployment:
        """This package's deployment inside a repository whose root has its own (a monorepo's
        compose, Kubernetes and OpenShift files): what the package's files say wins; the
        repository's fill in, named from the repository root (`prefix`). Version pins stay the
        package's own: its requirements are what it runs with."""
        def shown(value: EnvironmentUrl) -> EnvironmentUrl:
            return EnvironmentUrl(value.variable, value.url, f"{prefix}{value.source}")

        environment = {name: shown(value) for name, value in outer.environment.items()}
        environment.update(self.environment)
        return Deployment(
            self.pgbouncers + tuple(PgBouncer(**{**vars(bouncer),
                                                 "source": f"{prefix}{bouncer.source}"})
                                    for bouncer in outer.pgbouncers),
            {name: value for name, value in environment.items() if "://" in value.url},
            environment, {**outer.postgres_ports, **self.postgres_ports},
            self.pins, self.heroku_pgbouncer or outer.heroku_pgbouncer,
            Commands(self.commands.commands, {**outer.commands.environment,
                                              **self.commands.environment}),
            self.mysql_wait_timeout or outer.mysql_wait_timeout)


def read_deployment(root: Path, seen: Seen | None = None) -> Deployment:
    """`seen` stamps every folder listed and file found, for a long-lived process to know
    when this is stale."""
    seen = seen if seen is not None else Seen()
    pgbouncers: list[PgBouncer] = []
    # Odyssey services wait for the walk to end: their config may be listed after the compose
    # file, in a subfolder
    odysseys: list[_OdysseyService] = []
    odyssey_configs: list[Path] = []
    found: dict[str, tuple[int, EnvironmentUrl]] = {}  # variable -> (precedence, value)
    postgres_ports: dict[int, str] = {}
    heroku = None
    pins: list[tuple[str, int, tuple[int, ...], str]] = []  # (package, preference, ...)
    commands: list[ServerCommand] = []
    wait_timeouts: list[tuple[int, str]] = []

    def setting(kind: str, variable: str, value: str, source: str) -> None:
        rank = _PRECEDENCE[kind]
        if variable not in found or rank < found[variable][0]:
            found[variable] = (rank, EnvironmentUrl(variable, value, source))

    for path in _nearby_files(root, seen):
        name, shown = path.name, str(path.relative_to(root))
        if name == ODYSSEY_CONFIG:
            odyssey_configs.append(path)
        try:
            if name.endswith(".ini") and name != "tox.ini":
                bouncer = _pgbouncer_ini(path, shown)
                if bouncer is not None:
                    pgbouncers.append(bouncer)
            elif name.endswith(".cnf"):
                wait_timeouts += _mysql_cnf(path, shown)
            elif _COMPOSE.match(name):
                commands += _compose(path, shown, pgbouncers, setting, postgres_ports,
                                     wait_timeouts, odysseys)
            elif _CLOUD_FOUNDRY.match(name):
                commands += _cloud_foundry(path, shown)
            elif name.endswith((".yaml", ".yml")):
                _kubernetes(path, shown, pgbouncers, setting)
            elif _ENV_FILE.match(name):
                kind = "example" if _EXAMPLE.search(name) else "dotenv"
                for variable, value in _env_file(path).items():
                    setting(kind, variable, value, shown)
            elif name.startswith("Dockerfile") or name.endswith(".dockerfile"):
                for variable, value in _dockerfile_env(path).items():
                    setting("dockerfile", variable, value, shown)
                commands += commands_in(_text(path), shown, "dockerfile")
            elif name == "Procfile":
                text = _text(path)
                heroku = shown if "start-pgbouncer" in text else heroku
                commands += commands_in(text, shown, "procfile")
            elif _is_script(path, root):
                commands += commands_in(_text(path), shown, "shell")
            elif name == "fly.toml":
                env = tomllib.loads(_text(path)).get("env", {})
                for variable, value in (env.items() if isinstance(env, dict) else ()):
                    setting("platform", str(variable), str(value), shown)
            elif name == "app.json":
                env = json.loads(_text(path)).get("env", {})
                for variable, value in (env.items() if isinstance(env, dict) else ()):
                    value = value.get("value") if isinstance(value, dict) else value
                    if isinstance(value, (str, int)):
                        setting("platform", str(variable), str(value), shown)
            pins += _pins(path, shown)
        except (OSError, UnicodeDecodeError, ValueError, configparser.Error,
                tomllib.TOMLDecodeError, json.JSONDecodeError, AttributeError):
            continue  # a file we cannot read says nothing
        except Exception:  # yaml errors and the like: same
            continue
    for service in odysseys:
        pgbouncers.append(_odyssey(service, odyssey_configs, root, seen))
    chosen = {}
    # the most exact file's (a lock file's), and of those the first found
    for package, _, version, source in reversed(sorted(pins, key=lambda pin: pin[1])):
        chosen[package] = (version, source)
    environment = {variable: value for variable, (_, value) in sorted(found.items())}
    env_urls = {variable: value for variable, value in environment.items()
                if "://" in value.url}
    return Deployment(tuple(pgbouncers), env_urls, environment, postgres_ports, chosen, heroku,
                      Commands(tuple(commands), {variable: value.url
                                                 for variable, value in environment.items()}),
                      min(wait_timeouts) if wait_timeouts else None)


_SCRIPT_SUFFIXES = (".sh", ".bash", ".conf", ".mk")


_SCRIPT_FOLDERS = frozenset({"bin", "scripts", "script", "docker", "deploy", "deployment"})


def _is_script(path: Path, root: Path) -> bool:
    """A shell script, Makefile or supervisord config that may start a server: by its name,
    or, without a suffix, by its `#!` line (bin/docker-entrypoint)."""
    name = path.name
    if name.endswith(_SCRIPT_SUFFIXES) or name in ("Makefile", "makefile", "justfile"):
        return True
    # without a suffix, only where start-up scripts live: the root, bin/, scripts/, docker/
    if path.suffix or path.parent.name not in _SCRIPT_FOLDERS and path.parent != root \
            or path.stat().st_size > 65536:
        return False
    with open(path, "rb") as script:
        first = script.readline(200)
    return first.startswith(b"#!") and b"sh" in first


def _text(path: Path) -> str:
    """A small text file, in UTF-8 or, as `pip freeze >` writes it on Windows, UTF-16."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


# What read_deployment reads, by name: the suffixes and names its branches (and _pins) take
_READ_SUFFIXES = (".ini", ".cnf", ".yaml", ".yml", ".lock", ".txt", ".in", ".dockerfile",
                  *_SCRIPT_SUFFIXES)
_READ_NAMES = frozenset({"Procfile", "Makefile", "makefile", "justfile", "fly.toml", "app.json",
                         "pyproject.toml", "setup.cfg", "Pipfile", ODYSSEY_CONFIG})


def may_be_read(name: str) -> bool:
    """Could read_deployment read a file of this name? Most of a project's files (its code,
    templates, images) are passed over before a Path is made or a stamp taken. A name without
    a suffix may be a script (`bin/start`), known by its first line."""
    dot = name.rfind(".")
    return not 0 < dot < len(name) - 1 or name.endswith(_READ_SUFFIXES) \
        or name in _READ_NAMES or name.startswith("Dockerfile") \
        or _ENV_FILE.match(name) is not None


def _nearby_files(root: Path, seen: Seen):
    directories = 0
    top = str(root)

    def near(folder: str, dirs: list[str]) -> list[str]:
        nonlocal directories
        # how far below the root: os.walk joins each folder onto the one above
        depth = 0 if folder == top else folder[len(top):].lstrip(os.sep).count(os.sep) + 1
        directories += 1
        if depth >= MAX_DEPTH or directories > MAX_DIRECTORIES:
            return []
        return sorted(d for d in dirs if d not in NOT_SOURCE_DIRS)

    for folder, dirs, files in seen.walk(root, near):
        for name in sorted(files):
            if may_be_read(name):
                path = Path(folder) / name
                seen.file(path)  # it may be read, by its name or by its first line
                yield path


# -- MySQL and MariaDB option files ----------------------------------------------------------

def _mysql_cnf(path: Path, shown: str) -> list[tuple[int, str]]:
    """wait_timeout in a server section of a my.cnf-style file."""
    parser = configparser.RawConfigParser(strict=False, allow_no_value=True,
                                          inline_comment_prefixes=(";", "#"))
    parser.read_string(_text(path))
    found = []
    for section in parser.sections():
        if section.lower().partition("-")[0] not in ("mysqld", "mariadb", "server", "mariadbd"):
            continue
        for key, value in parser.items(section):
            if key.replace("-", "_") == "wait_timeout" and value and value.strip().isdigit():
                found.append((int(value.strip()), f"{shown} [{section}]"))
    return found


# -- PgBouncer ini -------------------------------------------------------------------------------

def _pgbouncer_ini(path: Path, shown: str) -> PgBouncer | None:
    parser = configparser.RawConfigParser(strict=False, inline_comment_prefixes=(";", "#"))
    text = _text(path)
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


def _yaml_documents(text: str, single: bool = False):
    """The documents of a YAML file (with `single`, its one document), read safely; with
    libyaml's parser where PyYAML has it, which reads the same YAML several times faster (a
    project's manifests and CI files were most of what reading its deployment cost)."""
    import yaml  # libcst's own dependency; loaded only for projects with such files

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader) if single else list(yaml.load_all(text, Loader=loader))


# -- docker compose ------------------------------------------------------------------------------

def _compose(path: Path, shown: str, pgbouncers: list[PgBouncer], setting,
             postgres_ports: dict[int, str], wait_timeouts: list[tuple[int, str]],
             odysseys: list[_OdysseyService]) -> list[ServerCommand]:
    text = _text(path)
    document = _yaml_documents(text, single=True)
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict):
        return []
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        image = str(service.get("image") or "")
        environment = _compose_environment(service.get("environment"))
        where = f"{shown} service {name!r}"
        other_pooler = _OTHER_POOLER_IMAGE.search(image)
        odyssey = _ODYSSEY_IMAGE.search(image)
        infrastructure = _PGBOUNCER_IMAGE.search(image) or _PGBOUNCER_IMAGE.search(str(name)) \
            or _POSTGRES_IMAGE.search(image) or other_pooler or odyssey
        if not infrastructure:  # a pgbouncer's DATABASE_URL is its upstream, not the app's
            # `environment:` wins over `env_file:`, which is read after it
            for variable, value in environment.items():
                setting("compose", variable, value, where)
            for env_file in _env_files(service.get("env_file")):
                try:
                    values = _env_file(path.parent / env_file)
                except OSError:
                    continue
                for variable, value in values.items():
                    setting("compose", variable, value, f"{where} env_file {env_file}")
        if _PGBOUNCER_IMAGE.search(image) or _PGBOUNCER_IMAGE.search(str(name)):
            # the images configure PgBouncer from the environment (edoburu: POOL_MODE,
            # bitnami: PGBOUNCER_POOL_MODE); unset, PgBouncer's default applies
            mode = next((value.lower() for key, value in environment.items()
                         if key.upper() in ("POOL_MODE", "PGBOUNCER_POOL_MODE")), "")
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
                hosts=_service_hosts(name, service),
                version=_image_version(image) if _PGBOUNCER_IMAGE.search(image) else None))
        elif other_pooler:
            # PgCat and PgDog pool transactions unless their config says otherwise; both
            # listen on 6432 by default (fact 118). Their config files are not read here.
            kind = _OTHER_POOLER_IMAGES[other_pooler.group(1).lower()]
            pgbouncers.append(PgBouncer(source=where, pool_mode="transaction",
                                        mode_source=f"{kind}'s default", max_client_conn=None,
                                        hosts=_service_hosts(name, service), kind=kind))
        elif odyssey:
            # its mode is in its config, read once the walk has listed every odyssey.conf
            own_environment = {}  # what its own image's entrypoint reads; environment: wins
            for env_file in _env_files(service.get("env_file")):
                try:
                    own_environment.update(_env_file(path.parent / env_file))
                except OSError:
                    continue
            own_environment.update(environment)
            odysseys.append(_OdysseyService(
                where, _service_hosts(name, service), path.parent,
                tuple(_bind_mounts(service.get("volumes"))),
                own_environment if _ODYSSEY_OWN_IMAGE.search(image) else None))
        elif _MYSQL_IMAGE.search(image):
            command = service.get("command") or ""
            command = " ".join(map(str, command)) if isinstance(command, list) else str(command)
            wait_timeouts += [(int(value), where)
                              for value in _WAIT_TIMEOUT_FLAG.findall(command)]
        elif _POSTGRES_IMAGE.search(image):
            for port in service.get("ports") or []:
                published = _published_port(port)
                if published is not None:
                    postgres_ports[published] = where
    return commands_in_compose(services, text, shown)


def _service_hosts(name, service: dict) -> frozenset[str]:
    """The names other compose services reach a service by: its own, its hostname and its
    container name."""
    return frozenset({str(name), *(str(alias) for alias in (service.get("hostname"),
                                                            service.get("container_name"))
                                   if alias)})


# -- Odyssey ---------------------------------------------------------------------------------------
# Odyssey (yandex/odyssey) sets the pool mode per route, a `user` or `group` block inside a
# `database` block, and has no default: a route without `pool` fails its config check (fact 119).

@dataclass(frozen=True)
class _OdysseyService:
    where: str  # "docker-compose.yml service 'odyssey'"
    hosts: frozenset[str]
    folder: Path  # the compose file's
    mounts: tuple[tuple[str, str], ...]  # (host path, container path) of its bind mounts
    # its own image's environment (ghcr.io/yandex/odyssey); None for any other image
    own_image_environment: dict[str, str] | None


@dataclass(frozen=True)
class OdysseyRoute:
    database: str | None  # None: `database default`
    user: str | None  # None: `user default`; a group's name for a `group` block
    mode: str | None  # `pool`; None: not set
    reserves_prepared_statements: bool = False  # `pool_reserve_prepared_statement yes`


@dataclass(frozen=True)
class OdysseyConfig:
    routes: tuple[OdysseyRoute, ...] = ()
    listen_port: int | None = None  # the first `listen` block's


_ODYSSEY_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|([{}])|(#.*)|([^\s{}"#]+)')
_ODYSSEY_ROUTES = ("user", "group")


def odyssey_config(text: str) -> OdysseyConfig:
    """The routes and the listen port of an Odyssey config. Statements are a keyword and its
    values on one line; blocks open with `{` and close with `}`; `#` starts a comment. An
    `include` is not followed."""
    blocks: list[tuple[str, str | None]] = []  # the open blocks: (keyword, name)
    routes: list[OdysseyRoute] = []
    route: dict | None = None  # the route block being read
    ports: list[int] = []

    def statement(words: list[tuple[str, bool]]) -> None:
        keyword, values = words[0][0].lower(), [word for word, _ in words[1:]]
        inside = [block for block, _ in blocks]
        if route is not None and len(inside) == 2 and values:
            if keyword == "pool":
                route["mode"] = values[0].lower()
            elif keyword == "pool_reserve_prepared_statement":
                route["reserves_prepared_statements"] = values[0].lower() == "yes"
        elif inside == ["listen"] and keyword == "port" and values and values[0].isdigit():
            ports.append(int(values[0]))

    def name(words: list[tuple[str, bool]]) -> str | None:
        """A block's name: `database "app"` -> "app"; `database default` -> None."""
        if len(words) < 2 or (words[1][0] == "default" and not words[1][1]):
            return None
        return words[1][0]

    for line in text.splitlines():
        words: list[tuple[str, bool]] = []  # (word, quoted)
        for match in _ODYSSEY_TOKEN.finditer(line):
            quoted, brace, comment, bare = match.groups()
            if comment is not None:
                break
            if brace is None:
                words.append((quoted, True) if quoted is not None else (bare, False))
                continue
            if brace == "{":
                keyword = words[0][0].lower() if words else ""
                if keyword in _ODYSSEY_ROUTES and [b for b, _ in blocks] == ["database"]:
                    route = {"database": blocks[0][1], "user": name(words), "mode": None}
                blocks.append((keyword, name(words)))
            else:
                if words:
                    statement(words)
                if blocks and blocks.pop()[0] in _ODYSSEY_ROUTES and len(blocks) == 1 \
                        and route is not None:
                    routes.append(OdysseyRoute(**route))
                    route = None
            words = []
        if words:
            statement(words)
    return OdysseyConfig(tuple(routes), ports[0] if ports else None)


def _bind_mounts(volumes) -> list[tuple[str, str]]:
    """Compose `volumes:` that mount a host path (`./odyssey.conf:/etc/odyssey/odyssey.conf:ro`,
    or `{type: bind, source: ..., target: ...}`), not named volumes."""
    mounts = []
    for volume in volumes if isinstance(volumes, list) else ():
        if isinstance(volume, dict):
            source, target = volume.get("source"), volume.get("target")
        else:
            source, _, rest = _interpolate(str(volume)).partition(":")
            target = rest.partition(":")[0]
        if isinstance(source, str) and isinstance(target, str) \
                and source.startswith((".", "/", "~")):
            mounts.append((source, target))
    return mounts


def _odyssey(service: _OdysseyService, configs: list[Path], root: Path, seen: Seen
             ) -> PgBouncer:
    """An Odyssey compose service, read from its config where the project holds it: a host file
    mounted onto the container, else its own image's environment (when nothing is mounted where
    that image keeps its config), else an odyssey.conf in or below the compose file's folder.
    Without one its mode is unknown (fact 119)."""
    record = PgBouncer(source=service.where, hosts=service.hosts, kind="Odyssey",
                       mode_setting="pool", max_client_conn=None, listen_port=ODYSSEY_PORT,
                       pool_mode=UNKNOWN_MODE,
                       mode_source="Odyssey has no default, and no config of it is in the project")
    mounted = [(source, target) for source, target in service.mounts
               if PurePosixPath(target).name.endswith(".conf")]
    # a target named odyssey.conf first: the path Odyssey's own image starts it with
    mounted.sort(key=lambda mount: PurePosixPath(mount[1]).name != ODYSSEY_CONFIG)
    for source, _ in mounted:
        path = _project_file(service.folder / source, root)
        if path is not None:
            seen.file(path)
            found = _from_odyssey_config(record, path, root)
            if found is not None:
                return found
    own_config_mounted = any(PurePosixPath("/etc/odyssey/odyssey.conf").is_relative_to(target)
                             for _, target in service.mounts)
    if service.own_image_environment is not None and not own_config_mounted:
        return _from_odyssey_image(record, service.own_image_environment)
    folder = service.folder.resolve()
    below = sorted((path for path in configs if path.resolve().is_relative_to(folder)),
                   key=lambda path: (len(path.parts), str(path)))
    for path in below:
        found = _from_odyssey_config(record, path, root)
        if found is not None:
            return found
    return record


def _project_file(path: Path, root: Path) -> Path | None:
    """`path` when it is a file of the project (the host side of a mount may be anywhere)."""
    try:
        resolved = path.resolve()
        return path if resolved.is_relative_to(root.resolve()) and resolved.is_file() else None
    except (OSError, RuntimeError):
        return None


def _from_odyssey_config(record: PgBouncer, path: Path, root: Path) -> PgBouncer | None:
    """A pooler in transaction mode when any route pools transactions (or statements), with the
    databases whose routes say otherwise; None when the file has no route with a pool mode."""
    try:
        config = odyssey_config(_text(path))
    except (OSError, UnicodeDecodeError):
        return None
    routes = [route for route in config.routes if route.mode]
    if not routes:
        return None
    shown = str(path.relative_to(root)) if path.is_relative_to(root) else \
        str(path.resolve().relative_to(root.resolve()))
    mode, route = _odyssey_mode(routes)
    databases = {route.database: [other for other in routes if other.database == route.database]
                 for route in routes if route.database is not None}
    chosen = {database: _odyssey_mode(own) for database, own in databases.items()}
    return replace(
        record, pool_mode=mode, mode_source=f"{_odyssey_route(route)} in {shown}",
        listen_port=config.listen_port or ODYSSEY_PORT,
        database_modes={database: mode for database, (mode, _) in chosen.items()},
        database_mode_sources={database: f"{_odyssey_route(route)} in {shown}"
                               for database, (_, route) in chosen.items()},
        prepared_statements=_odyssey_prepared_statements(routes),
        database_prepared_statements={database: _odyssey_prepared_statements(own)
                                      for database, own in databases.items()})


def _odyssey_mode(routes: list[OdysseyRoute]) -> tuple[str, OdysseyRoute]:
    """transaction (or statement) when any of the routes pools so, else session; and the first
    route that does."""
    for mode in ("transaction", "statement"):
        for route in routes:
            if route.mode == mode:
                return mode, route
    return routes[0].mode, routes[0]


def _odyssey_prepared_statements(routes: list[OdysseyRoute]) -> bool:
    """Carried only when every route that pools transactions reserves them (fact 119)."""
    return all(route.reserves_prepared_statements for route in routes
               if route.mode in ("transaction", "statement"))


def _odyssey_route(route: OdysseyRoute) -> str:
    def named(name: str | None) -> str:
        return repr(name) if name is not None else "default"
    return f"database {named(route.database)}, user {named(route.user)}"


def _from_odyssey_image(record: PgBouncer, environment: dict[str, str]) -> PgBouncer:
    """Odyssey's own image writes its config from these variables when none is mounted: its
    route's `pool "${POOL_TYPE:-session}"`, `pool_reserve_prepared_statement
    ${POOL_RESERVE_PREPARED_STATEMENT:-yes}`, `port ${LISTEN_PORT:-6432}` (fact 119)."""
    mode = environment.get("POOL_TYPE", "").strip().lower()
    reserves = environment.get("POOL_RESERVE_PREPARED_STATEMENT", "yes").strip().lower()
    return replace(
        record, pool_mode=mode or "session",
        mode_source=f"POOL_TYPE in {record.source}" if mode else
        f"the image's default, {record.source} sets no POOL_TYPE",
        listen_port=_int(environment.get("LISTEN_PORT"), ODYSSEY_PORT),
        prepared_statements=reserves == "yes")


# -- Kubernetes and OpenShift manifests ---------------------------------------------------------

# The key of Crunchy PGO's user secret that holds its PgBouncer's host name (fact 109)
CRUNCHY_PGBOUNCER_HOST = "pgbouncer-host"


def _kubernetes(path: Path, shown: str, pgbouncers: list[PgBouncer], setting) -> None:
    """Container `env:` lists (`value:`, or a secret key that names a PgBouncer host, as
    Crunchy's operator writes `pgbouncer-host` into its user secrets) and Crunchy's
    PostgresCluster `proxy.pgBouncer`, whose `config.global` is PgBouncer's own settings."""
    # a lock file (pnpm-lock.yaml) or an API description, not a manifest: parsing one took
    # longer than the rest of a project's deployment
    if path.name.endswith(("-lock.yaml", ".lock.yaml", "-lock.yml")) \
            or path.stat().st_size > 262_144:
        return
    text = _text(path)
    if "env:" not in text and "pgBouncer" not in text:
        return
    pending = list(_yaml_documents(text))
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        pending.extend(node.values())
        environment = node.get("env")
        if isinstance(environment, list) and all(isinstance(item, dict) for item in environment):
            for item in environment:
                name = item.get("name")
                if not isinstance(name, str):
                    continue
                if isinstance(item.get("value"), (str, int, float)):
                    setting("platform", name, _interpolate(str(item["value"])), shown)
                    continue
                key = ((item.get("valueFrom") or {}).get("secretKeyRef") or {}).get("key") \
                    if isinstance(item.get("valueFrom"), dict) else None
                if key == CRUNCHY_PGBOUNCER_HOST:
                    setting("platform", name, key, f"{shown} (secret key {key})")
        bouncer = node.get("pgBouncer")
        if isinstance(bouncer, dict) and isinstance(bouncer.get("config"), dict):
            values = {str(key).lower(): str(value) for key, value in
                      (bouncer["config"].get("global") or {}).items()}
            mode = values.get("pool_mode", "").lower()
            pgbouncers.append(PgBouncer(
                source=f"{shown} pgBouncer", listen_port=_int(bouncer.get("port"), 5432),
                pool_mode=mode or "session",
                mode_source=f"pool_mode in {shown}" if mode else
                f"PgBouncer's default, {shown} sets none",
                client_idle_timeout=_float(values.get("client_idle_timeout")),
                max_prepared_statements=_int(values.get("max_prepared_statements"), None),
                max_client_conn=_int(values.get("max_client_conn"), 100),
                # clients reach it through the host its operator writes into the secret
                hosts=frozenset({CRUNCHY_PGBOUNCER_HOST}),
                version=_image_version(str(bouncer.get("image") or ""))))


def _cloud_foundry(path: Path, shown: str) -> list[ServerCommand]:
    text = _text(path)
    document = _yaml_documents(text, single=True)
    if not isinstance(document, dict):
        return []
    return commands_in_cloud_foundry(document, text, shown)


def _compose_environment(environment) -> dict[str, str]:
    if isinstance(environment, dict):
        pairs = [(str(key), str(value)) for key, value in environment.items()
                 if value is not None]
    elif isinstance(environment, list):
        pairs = [(key, value) for key, _, value in (str(item).partition("=")
                                                    for item in environment) if value]
    else:
        return {}
    return {key: _interpolate(value) for key, value in pairs}


_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def _interpolate(value: str) -> str:
    """Compose's `${DB_HOST:-pgbouncer}`: the default, or a hole when there is none."""
    return _INTERPOLATION.sub(lambda match: match.group(2) if match.group(2) is not None
                              else "\x00", value)


def _env_files(value) -> list[str]:
    """compose's `env_file:`: a path, a list of paths, or entries with `path:`."""
    entries = value if isinstance(value, list) else [value] if value else []
    return [str(entry.get("path") if isinstance(entry, dict) else entry) for entry in entries
            if entry]


def _dockerfile_env(path: Path) -> dict[str, str]:
    """`ENV NAME=value NAME2="value 2"` and the old `ENV NAME value`."""
    values = {}
    for line in _text(path).splitlines():
        match = _DOCKER_ENV.match(line)
        if not match:
            continue
        words = shlex.split(match.group(1), comments=True)
        if words and "=" not in words[0]:
            values[words[0]] = _interpolate(" ".join(words[1:]))
            continue
        for word in words:
            name, _, value = word.partition("=")
            if name:
                values[name] = _interpolate(value)
    return values


def _published_port(port) -> int | None:
    """The host side of "6432:5432", "127.0.0.1:6432:5432" or {published: 6432}."""
    if isinstance(port, dict):
        return _int(port.get("published"), None)
    parts = str(port).split("/")[0].split(":")
    return _int(parts[-2], None) if len(parts) >= 2 else None


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in _text(path).splitlines():
        match = _ENV_LINE.match(line)
        if match and not line.lstrip().startswith("#"):
            values[match.group(1)] = match.group(2).strip("'\"")
    return values


# -- the SQLAlchemy version pinned -----------------------------------------------------------------
# Lock files are exact; pins next; a range gives its lower bound, the oldest version the project
# claims to run on (where close=False or a 2.x default may be missing).

def _pins(path: Path, shown: str) -> list[tuple[str, int, tuple[int, ...], str]]:
    """(package, preference, version, source) for the pinned packages a file names."""
    name = path.name
    found = []
    if name in ("poetry.lock", "uv.lock", "pdm.lock"):
        text = _text(path)
        for package in PINNED_PACKAGES:
            match = re.search(rf'name = "{re.escape(package)}"\s*\nversion = "([^"]+)"', text,
                              re.IGNORECASE)
            found.append((package, _found(0, match.group(1) if match else None, shown)))
    elif name == "Pipfile.lock":
        data = json.loads(_text(path))
        for group in ("default", "develop"):
            entry = {_package(key): value for key, value in data.get(group, {}).items()}
            for package in PINNED_PACKAGES:
                if package in entry:
                    found.append((package, _found(0, str(entry[package].get("version", "")),
                                                  shown)))
    elif re.match(r"requirements.*\.(txt|in)$", name) or name == "constraints.txt":
        found += _requirement_lines(_text(path).splitlines(), shown)
    elif name == "pyproject.toml":
        data = tomllib.loads(_text(path))
        poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
        for key, value in poetry.items():
            if _package(key) in PINNED_PACKAGES:
                version = value.get("version") if isinstance(value, dict) else value
                found.append((_package(key), _found(1, str(version), shown)))
        found += _requirement_lines(map(str, data.get("project", {}).get("dependencies", [])),
                                    shown)
    elif name in ("setup.cfg", "Pipfile"):
        for line in _text(path).splitlines():
            line = line.strip().replace('"', "").replace("'", "")
            match = _SETUP_LINE.match(line)
            if match and _package(match.group(1)) in PINNED_PACKAGES \
                    and re.search(r"\d", match.group(2)):
                found.append((_package(match.group(1)), _found(1, match.group(2), shown)))
    return [(package, *pin[:3]) for package, pin in found
            if pin is not None and (package not in EXACT_PINS or pin[0] == 0 or pin[3])]


def _package(name: str) -> str:
    """A distribution name as pip compares them: Flask_SQLAlchemy is flask-sqlalchemy."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_lines(lines, shown: str) -> list:
    found = []
    for line in lines:
        match = _REQUIREMENT.match(line.split("#")[0])
        if match and _package(match.group(1)) in PINNED_PACKAGES and match.group(2):
            found.append((_package(match.group(1)), _found(1, match.group(2), shown)))
    return found


def _found(preference: int, specifier: str | None, shown: str):
    """The version a specifier pins, or the lower bound of its range (^1.4.20, >=2.0,<2.1)."""
    if not specifier:
        return None
    match = re.search(r"(==|~=|>=|\^|~|===)?\s*v?(\d+\.\d+(?:\.\d+)?)", specifier)
    if match is None or (match.group(1) is None and not re.match(r"^\s*v?\d", specifier)):
        return None
    version = parse_version(match.group(2))
    exact = match.group(1) in ("==", "===")
    return (preference, version, shown, exact) if version else None


def _image_version(image: str) -> tuple[int, ...] | None:
    """The version an image tag names (`edoburu/pgbouncer:v1.23.1-p2` -> 1.23.1); an image
    without a tag, or `latest`, is today's release, returned as LATEST."""
    name, _, tag = image.rpartition(":") if ":" in image.rpartition("/")[2] else (image, "", "")
    if not tag or tag in ("latest", "stable"):
        return LATEST
    match = re.search(r"\d+\.\d+(?:\.\d+)?", tag)  # v1.23.1-p2, ubi8-1.21-0
    return parse_version(match.group(0)) if match else None
