"""Server command lines in a project's deployment files: `gunicorn`, `uvicorn` and `celery`
as a Procfile, a Dockerfile `CMD`/`ENTRYPOINT`, a compose `command:`, a shell entrypoint, a
Makefile recipe or a supervisord `command=` starts them.

Each command is read the way its program reads its arguments (gunicorn's flags, fact 62;
uvicorn's, fact 99; Celery's worker, fact 101), with shell variables taken from the
deployment's environment or their `${NAME:-default}`. Facts cited as (fact N) are in
docs/facts.md.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

PROGRAMS = ("gunicorn", "uvicorn", "celery")
# a line that may start a server: the program's name as a word
_MENTION = re.compile(r"(?<![\w./-])(?:[\w./-]*/)?(gunicorn|uvicorn|celery)(?![\w-])")
# Words that may come before the program in a command that starts it: `exec gunicorn`,
# `poetry run gunicorn`, `python -m celery`, `ddtrace-run gunicorn`, `env A=1 gunicorn`. Any
# other word first (`pip install gunicorn`, `check_command uvicorn`) starts something else.
_LAUNCHERS = {"exec", "nohup", "sudo", "time", "env", "run", "poetry", "pipenv", "uv", "pdm",
              "hatch", "rye", "-m", "-u", "-O", "-B", "--", "newrelic-admin", "run-program",
              "ddtrace-run", "opentelemetry-instrument", "dumb-init", "tini", "gosu",
              "su-exec", "chpst"}
_SHELL_VARIABLE = re.compile(r"\$\{(\w+)(?::?[-=]([^}]*))?\}|\$(\w+)")

# gunicorn's flags that take a value (fact 62); anything else starting with - is a switch
_GUNICORN_VALUES = {"-w": "workers", "--workers": "workers", "--threads": "threads",
                    "-k": "worker_class", "--worker-class": "worker_class",
                    "-c": "config", "--config": "config", "-b": "bind", "--bind": "bind",
                    "--worker-connections": "worker_connections", "-t": "timeout",
                    "--timeout": "timeout", "--chdir": "chdir", "-e": "env", "--env": "env",
                    "-n": "name", "--name": "name", "--log-level": "loglevel",
                    "--access-logfile": "accesslog", "--error-logfile": "errorlog",
                    "--log-file": "errorlog", "-p": "pidfile", "--pid": "pidfile",
                    "--max-requests": "max_requests", "--max-requests-jitter": "jitter",
                    "--graceful-timeout": "graceful_timeout", "--keep-alive": "keepalive",
                    "-u": "user", "-g": "group", "--user": "user", "--group": "group",
                    "--forwarded-allow-ips": "forwarded", "--log-config": "logconfig",
                    "--paste": "paste", "--certfile": "certfile", "--keyfile": "keyfile",
                    "--backlog": "backlog", "--worker-tmp-dir": "worker_tmp_dir",
                    "--access-logformat": "access_log_format", "--statsd-host": "statsd"}
_UVICORN_VALUES = {"--workers": "workers", "--host": "host", "--port": "port",
                   "--log-level": "log_level", "--root-path": "root_path", "--env-file":
                   "env_file", "--app-dir": "app_dir", "--loop": "loop", "--http": "http",
                   "--proxy-headers": None, "--forwarded-allow-ips": "forwarded",
                   "--limit-concurrency": "limit_concurrency", "--timeout-keep-alive":
                   "keepalive", "--uds": "uds", "--fd": "fd", "--ws": "ws", "--lifespan":
                   "lifespan", "--interface": "interface", "--log-config": "log_config",
                   "--reload-dir": "reload_dir", "--ssl-keyfile": "ssl_keyfile",
                   "--ssl-certfile": "ssl_certfile", "--factory": None}
_CELERY_VALUES = {"-A": "app", "--app": "app", "-P": "pool", "--pool": "pool",
                  "-c": "concurrency", "--concurrency": "concurrency", "-l": "loglevel",
                  "--loglevel": "loglevel", "-Q": "queues", "--queues": "queues",
                  "-n": "hostname", "--hostname": "hostname", "-b": "broker", "--broker":
                  "broker", "--workdir": "workdir", "-E": None, "-B": None, "--beat": None,
                  "-O": "optimization", "--prefetch-multiplier": "prefetch",
                  "--max-tasks-per-child": "max_tasks", "--autoscale": "autoscale",
                  "--pidfile": "pidfile", "--logfile": "logfile", "-f": "logfile",
                  "--time-limit": "time_limit", "--soft-time-limit": "soft_time_limit",
                  "-s": "schedule", "--schedule": "schedule", "--uid": "uid", "--gid": "gid",
                  "--config": "config", "--result-backend": "result_backend", "-X":
                  "exclude_queues", "--exclude-queues": "exclude_queues"}


@dataclass(frozen=True)
class ServerCommand:
    """One command line that starts gunicorn, uvicorn or a Celery worker."""
    program: str  # "gunicorn", "uvicorn" or "celery"
    arguments: tuple[str, ...]  # the words after the program, variables not yet substituted
    path: str  # the file, relative to the project root
    line: int  # 1-based, where the command starts
    # the service's own environment (compose `environment:`), before the project's
    environment: tuple[tuple[str, str], ...] = ()

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def options(self, environment: dict[str, str]) -> dict[str, object]:
        """The command's settings by name: values are strings, switches True, the application
        (`app:app`) under "app". Variables are substituted from the service's environment,
        then the project's, then their defaults; one nobody sets stays None."""
        own = dict(environment)
        own.update(self.environment)
        words = [substitute(word, own) for word in self.arguments]
        if self.program == "gunicorn":
            # GUNICORN_CMD_ARGS is read before the command line, which wins over it (fact 62)
            extra = own.get("GUNICORN_CMD_ARGS")
            if extra:
                try:
                    words = shlex.split(extra) + words
                except ValueError:
                    pass
            return _parse(words, _GUNICORN_VALUES, {"--preload": "preload_app",
                                                    "--reload": "reload"})
        if self.program == "uvicorn":
            return _parse(words, _UVICORN_VALUES, {"--reload": "reload"})
        return _parse(words, _CELERY_VALUES, {})

    @property
    def subcommand(self) -> str | None:
        """Celery's subcommand: "worker", "beat", "flower", ..."""
        if self.program != "celery":
            return None
        skip = False
        for word in self.arguments:
            if skip:
                skip = False
                continue
            if word in _CELERY_VALUES and _CELERY_VALUES[word] is not None:
                skip = True
                continue
            if not word.startswith("-"):
                return word
        return None


def substitute(word: str, environment: dict[str, str]) -> str | None:
    """`${WORKERS:-4}` -> the deployment's WORKERS, else 4; a variable nobody sets -> None."""
    missing = False

    def value(match: re.Match) -> str:
        nonlocal missing
        name = match.group(1) or match.group(3)
        if name in environment:
            return environment[name]
        if match.group(2) is not None:
            return match.group(2)
        missing = True
        return ""

    result = _SHELL_VARIABLE.sub(value, word)
    return None if missing else result


def _parse(words: list[str | None], values: dict[str, str | None],
           switches: dict[str, str]) -> dict[str, object]:
    options: dict[str, object] = {}
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word is None:
            continue
        name, equals, inline = word.partition("=")
        if name in switches:
            options[switches[name]] = True
        elif name in values and values[name] is not None:
            if equals:
                options[values[name]] = inline
            elif index < len(words):
                options[values[name]] = words[index]
                index += 1
        elif len(name) > 2 and name[:2] in values and name[1] != "-" \
                and values[name[:2]] is not None:
            options[values[name[:2]]] = name[2:]  # -w4, -kgthread
        elif not word.startswith("-") and "app" not in options and ":" in word:
            options["app"] = word
    return options


def commands_in(text: str, path: str, kind: str) -> list[ServerCommand]:
    """The server commands in one file. `kind`: "procfile", "dockerfile", "shell" (also
    Makefiles and supervisord configs, read line by line)."""
    found = []
    for line, logical in _logical_lines(text, kind):
        words = _words(logical, kind)
        if words is not None:
            found.extend(_launches(words, path, line))
    return found


def commands_in_compose(services: dict, text: str, path: str) -> list[ServerCommand]:
    """Compose `command:` and `entrypoint:` entries, each with its service's environment."""
    from .deployment import _compose_environment  # one reading of compose's environment

    found = []
    lines = text.splitlines()
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        environment = tuple(_compose_environment(service.get("environment")).items())
        words: list[str] = []
        for key in ("entrypoint", "command"):
            value = service.get(key)
            if isinstance(value, list):
                words += [str(word) for word in value]
            elif isinstance(value, str):
                words += _words(value, "shell") or []
        for command in _launches(words, path, 1):
            found.append(ServerCommand(command.program, command.arguments, path,
                                       _line_of(lines, command.program, str(name)),
                                       environment))
    return found


def commands_in_cloud_foundry(document: dict, text: str, path: str) -> list[ServerCommand]:
    """A Cloud Foundry (cloud.gov) manifest: each application's `command:` and the `command:`
    of each of its `processes:`, with the application's `env:`."""
    found = []
    lines = text.splitlines()
    for application in document.get("applications") or []:
        if not isinstance(application, dict):
            continue
        environment = application.get("env")
        environment = tuple((str(key), str(value)) for key, value in environment.items()) \
            if isinstance(environment, dict) else ()
        processes = [process for process in application.get("processes") or []
                     if isinstance(process, dict)]
        for command in [application.get("command")] + [p.get("command") for p in processes]:
            if not isinstance(command, str):
                continue
            line = next((number for number, text_line in enumerate(lines, start=1)
                         if command.strip()[:60] in text_line), 1)
            for launched in _launches(_words(command, "shell") or [], path, line):
                found.append(ServerCommand(launched.program, launched.arguments, path, line,
                                           environment))
    return found


def _line_of(lines: list[str], program: str, service: str) -> int:
    """The line of a service's command in its compose file (the first mention after the
    service's key)."""
    start = next((number for number, line in enumerate(lines)
                  if re.match(rf"^\s+['\"]?{re.escape(service)}['\"]?\s*:", line)), 0)
    for number in range(start, len(lines)):
        if _MENTION.search(lines[number]) and program in lines[number]:
            return number + 1
    return start + 1


def _logical_lines(text: str, kind: str):
    """(first line number, text) with backslash continuations joined."""
    pending, start = [], 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        yield start, " ".join(part.strip() for part in pending)
        pending = []
    if pending:
        yield start, " ".join(part.strip() for part in pending)


def _words(line: str, kind: str) -> list[str] | None:
    """The words of a command line, or None when it starts none of our programs."""
    if not _MENTION.search(line) or line.lstrip().startswith("#"):
        return None
    text = line.strip()
    if kind == "procfile":
        text = text.partition(":")[2] if re.match(r"^[\w-]+\s*:", text) else text
    elif kind == "dockerfile":
        match = re.match(r"^(CMD|ENTRYPOINT|RUN)\s+(.*)$", text, re.IGNORECASE)
        if match is None:
            return None
        text = match.group(2)
        if text.startswith("["):  # the exec form: a JSON array
            try:
                array = json.loads(text)
            except ValueError:
                return None
            if isinstance(array, list):
                shells = (["sh", "-c"], ["/bin/sh", "-c"], ["bash", "-c"], ["/bin/bash", "-c"])
                if len(array) >= 3 and array[:2] in shells:
                    return _words(str(array[2]), "shell")
                return [str(word) for word in array]
            return None
    else:
        text = re.sub(r"^\s*command\s*=\s*", "", text)  # supervisord
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        return list(lexer)
    except ValueError:  # an unclosed quote
        return text.split()


def _launches(words: list[str], path: str, line: int) -> list[ServerCommand]:
    """The programs a list of words starts, each with its arguments up to the next `&&`, `;`,
    `|` or `&`."""
    found = []
    segment: list[str] = []
    for word in [*words, ";"]:
        if word and set(word) <= set(";&|"):
            command = _launch(segment, path, line)
            if command is not None:
                found.append(command)
            segment = []
        else:
            segment.append(word)
    return found


def _launch(words: list[str], path: str, line: int) -> ServerCommand | None:
    for index, word in enumerate(words):
        program = word.rpartition("/")[2]
        if program == "-m" and index + 1 < len(words):
            program, index = words[index + 1], index + 1
        elif index and words[index - 1] == "-m":
            continue
        if program in PROGRAMS:
            if not all(_launcher(word) for word in words[:index]):
                return None
            return ServerCommand(program, tuple(words[index + 1:]), path, line)
    return None


def _launcher(word: str) -> bool:
    name = word.rpartition("/")[2]
    return name in _LAUNCHERS or name.startswith("python") or "=" in word \
        or word.startswith("-")


@dataclass(frozen=True)
class Commands:
    """Every server command of a project, and the environment their variables come from."""
    commands: tuple[ServerCommand, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)

    def of(self, program: str) -> list[ServerCommand]:
        return [command for command in self.commands if command.program == program
                and (program != "celery" or command.subcommand == "worker")]

    def options(self, command: ServerCommand) -> dict[str, object]:
        return command.options(self.environment)
