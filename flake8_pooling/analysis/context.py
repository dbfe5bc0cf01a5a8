"""Judgements: what the settings and the project's files make of a module's facts.

Facts say what the code says; the context says what it means where the code runs: which pooler
an engine's connections reach and why, the URL the project's `.env` or compose files supply for
a variable the code reads, the SQLAlchemy version targeted, the process model and its
connection budget. Each judgement is made once per engine (or per module) and rules ask for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePath

import libcst as cst

from ..settings import Settings, installed_version
from ..vocabulary import (CELERY_POOLS_WITHOUT_FORK, DISPOSING_HOOKS, SCRIPT_DIRS, SCRIPT_FILES,
                          TEST_DIRS)
from .budget import Budget, connection_budget
from .commands import ServerCommand
from .facts import EngineCall, ModuleFacts
from .facts.strings import ImportedValue, text_of, variables_in
from .pooler import PoolerEvidence, pooler_for
from .process import command_model, gunicorn_model
from .project import Project, project_for
from .project_name import project_name
from .urls import DatabaseUrl, parse_url
from .values import HOLE, evaluate


@dataclass(frozen=True)
class Route:
    """Where an engine's connections go."""
    url: DatabaseUrl | None  # from the code, else from the project's files
    pooler: PoolerEvidence | None  # None: no evidence of a pooler


@dataclass(frozen=True)
class Context:
    settings: Settings = field(default_factory=Settings)
    path: str = ""
    _routes: dict = field(default_factory=dict, compare=False, repr=False)

    @cached_property  # a dataclass's frozen __setattr__ does not stand in its way
    def sqlalchemy_version(self) -> tuple[int, ...]:
        """Configured, else pinned by the project (lock files, requirements), else installed."""
        if self.settings.configured_version:
            return self.settings.configured_version
        pin = self.project.deployment.sqlalchemy_pin if self.path else None
        return pin[0] if pin else self.settings.sqlalchemy_version

    @cached_property
    def flask_sqlalchemy_version(self) -> tuple[int, ...]:
        """Pinned by the project, else installed here, else 3 (current since 2022)."""
        pin = self.project.deployment.pins.get("flask-sqlalchemy") if self.path else None
        return pin[0] if pin else installed_version("flask-sqlalchemy", (3,))

    @cached_property
    def project(self) -> Project:
        """The project around this file, scanned once per process (only rules that need it)."""
        return project_for(self.path)

    @cached_property
    def role(self) -> str:
        """What the module is in its project: "test" code, a stand-alone "script" (scripts/,
        tools/, examples/, ...), or "application" code that serves requests."""
        if not self.path:
            return "application"
        path = Path(self.path).absolute()
        try:
            parts = path.relative_to(self.project.root).parts
        except ValueError:
            parts = path.parts[-1:]
        name, folders = parts[-1] if parts else "", set(parts[:-1])
        if folders & TEST_DIRS or name in ("conftest.py", "test.py", "tests.py") \
                or name.startswith("test_") or name.endswith("_test.py"):
            return "test"
        if folders & SCRIPT_DIRS or name in SCRIPT_FILES:
            return "script"
        return "application"

    def engines_in_use(self, facts: ModuleFacts) -> list[EngineCall]:
        """The module's engines, less the config classes that only serve as bases: one that
        other config classes of the module derive from is an engine of its own only where
        something loads it, `from_object(BaseConfig)` or a dict of configs here, or a
        from_object() call elsewhere in the project that names it."""
        return [engine for engine in facts.engines
                if not engine.config_base or engine.config_class in facts.config_loads
                or self._loaded_elsewhere(engine.config_class)]

    def _loaded_elsewhere(self, config_class: str | None) -> bool:
        if not self.path or not config_class:
            return False
        pattern = re.compile(rf"from_object\([^)]*\b{re.escape(config_class)}\b")
        return any(pattern.search(text) for _, text in self.project.texts_mentioning(
            "from_object"))

    def role_of(self, facts: ModuleFacts) -> str:
        """The module's role, counting what its code shows: one that exits or reads sys.argv at
        import is a command-line script wherever it lives."""
        role = self.role
        return "script" if role == "application" and facts.runs_as_script else role

    def route(self, engine: EngineCall) -> Route:
        route = self._routes.get(id(engine))
        if route is None:
            deployment = self.project.deployment if self.path else None
            url, through = engine.url, ""
            parts, imported = self._expand(engine.url_parts)
            if imported:  # the URL comes from another module's settings object
                url = parse_url(text_of(parts) or "")
            environment = deployment.environment if deployment is not None else {}
            supplied = [name for name in dict.fromkeys(variables_in(parts))
                        if name in environment]
            if supplied:  # what the deployment sets wins over the code's defaults
                url = parse_url(text_of(parts, lambda name: environment[name].url
                                        if name in environment else None) or "")
                through = ", ".join(f"{name} in {environment[name].source}" for name in supplied)
            pooler, url = pooler_for(url, engine.url_variable, self.settings, deployment,
                                     through)
            route = self._routes[id(engine)] = Route(url, pooler)
        return route

    def _expand(self, parts, depth: int = 0):
        """The parts with values read from other modules' settings objects put in, and whether
        there were any."""
        if not parts or not self.path or depth > 3 \
                or not any(isinstance(part, ImportedValue) for part in parts):
            return parts, False
        expanded = []
        for part in parts:
            if isinstance(part, ImportedValue):
                facts = self.project.module_facts(part.module, self.path)
                value = facts.settings_values.get(f"{part.name}.{part.attribute}") \
                    if facts is not None else None
                value = self._expand(value, depth + 1)[0] if value else None
                expanded.extend(value if value is not None else (HOLE,))
            else:
                expanded.append(part)
        return tuple(expanded), True

    def pooler(self, engine: EngineCall) -> PoolerEvidence | None:
        return self.route(engine).pooler

    def url(self, engine: EngineCall) -> DatabaseUrl | None:
        return self.route(engine).url

    def is_async(self, engine: EngineCall) -> bool:
        return engine.is_async(self.url(engine))

    def transaction_pooler(self, facts: ModuleFacts) -> PoolerEvidence | None:
        """The transaction pooler the module's SQL goes through: its own engines' when it has
        engines and all of them go through one; else the project's, when every engine the
        project scan finds does (a repository module runs on the application's engine)."""
        if facts.engines:
            poolers = [self.pooler(engine) for engine in facts.engines]
            if all(pooler is not None and pooler.pools_transactions for pooler in poolers):
                return poolers[0]
            return None
        return self._once_per_project("transaction_pooler", self._project_transaction_pooler)

    def green_blocking(self, preload: bool) -> str | None:
        """Why psycopg blocks a whole gevent worker (fact 97), or None: psycopg2 with no
        psycogreen patch anywhere in the project; psycopg 3 imported by a preloading master
        before the worker's gevent patches, so it keeps its blocking wait function."""
        psycopg2, psycopg3, patched = self._once_per_project("psycopg", self._psycopg)
        if psycopg2 and not patched:
            return f"psycopg2 ({psycopg2}) with no psycogreen patch_psycopg() in the project"
        if psycopg3 and not psycopg2 and preload:
            return ("psycopg 3, imported by the preloading master before gevent patches, "
                    "keeps its blocking wait function")
        return None

    def _psycopg(self) -> tuple[str | None, bool, bool]:
        project = self.project
        requirements = project.requirements
        psycopg2 = "its requirements" if "psycopg2" in requirements else \
            "imported" if project.texts_mentioning("psycopg2") else None
        psycopg3 = bool(re.search(r"\bpsycopg(?!2)", requirements))
        patched = bool(project.texts_mentioning("patch_psycopg"))
        return psycopg2, psycopg3, patched

    def _project_transaction_pooler(self) -> PoolerEvidence | None:
        deployment = self.project.deployment if self.path else None
        engines = self.project.of_kind("engine", "async_engine", "lazy_engine") \
            if self.path else []
        routes = [pooler_for(parse_url(engine.url) if engine.url else None,
                             engine.url_variable, self.settings, deployment)[0]
                  for engine in engines] or [pooler_for(None, None, self.settings, deployment)[0]]
        if all(pooler is not None and pooler.pools_transactions for pooler in routes):
            return routes[0]
        return None

    def gunicorn_inheritance(self, facts: ModuleFacts) -> tuple[cst.CSTNode, str] | None:
        """Why gunicorn's workers inherit the master's objects, and where the config says so:
        `preload_app = True` (fact 59), or a top-level import of the project's own modules, which
        gunicorn executes in the master (fact 60). None: the workers load the app themselves."""
        config = facts.gunicorn
        if config is None:
            return None
        if config.embedded is not None:  # the program hands gunicorn an application it built
            return config.embedded, "the embedded gunicorn application is built in the master"
        if config.preload is not None:
            return config.preload, "preload_app = True"
        own = self.path.replace("\\", "/").rpartition("/")[2].removesuffix(".py")
        top_level = self.project.top_level - {own, "gunicorn"} if self.path else frozenset()
        for node, module in config.imports:
            if module.partition(".")[0] in top_level:
                return node, f"the config file imports {module} in the master"
        return None

    @staticmethod
    def hooks_dispose(facts: ModuleFacts | None) -> bool:
        """A hook of the gunicorn config disposes engines where that helps (fact 2). A child
        hook that calls code we cannot see into may; a master's hook counts only with a
        dispose() of its own: one that checks connections out there makes more to inherit."""
        return facts is not None and any(
            code.gunicorn_hook and code.origin.split()[1] in DISPOSING_HOOKS
            and (code.disposals or (code.opaque_calls and code.side == "child"))
            for code in facts.child_code)

    def config_of(self, command: ServerCommand) -> tuple[str, ModuleFacts | None]:
        """The gunicorn config file a command uses: `-c PATH` (or `file:PATH`), else
        ./gunicorn.conf.py (fact 62), looked for beside the command's file and at the root."""
        options = self.project.deployment.commands.options(command)
        named = options.get("config")
        named = str(named).removeprefix("file:") if isinstance(named, str) else None
        if named and named.startswith("python:"):
            module = named.removeprefix("python:")
            return named, self.project.module_facts(module)
        name = named or "gunicorn.conf.py"
        folder = PurePath(command.path).parent
        for candidate in dict.fromkeys((str(folder / name), name,
                                        str(folder / PurePath(name).name),
                                        PurePath(name).name)):
            facts = self.project.file_facts(candidate)
            if facts is not None:
                return candidate, facts
        return name, None

    def _once_per_project(self, name: str, compute):
        """A judgement about the whole project, made once per process (and settings), not
        once per file: the project keeps it."""
        kept = self.project.__dict__.setdefault("_judgements", {})
        key = (name, self.settings)
        if key not in kept:
            kept[key] = compute()
        return kept[key]

    @property
    def command_forks(self) -> list[tuple[ServerCommand, str]]:
        return self._once_per_project("command_forks", self._command_forks) \
            if self.path else []

    def _command_forks(self) -> list[tuple[ServerCommand, str]]:
        """gunicorn command lines whose workers inherit what the master loaded: `--preload`
        on the command line or in GUNICORN_CMD_ARGS (facts 59, 62), more than one worker, and
        no hook of its config file, nor the application at import (fact 2, approach 3),
        disposing the engines. A config file that sets preload_app itself is reported there."""
        project = self.project
        commands = project.deployment.commands
        found = []
        for command in commands.of("gunicorn"):
            options = commands.options(command)
            if options.get("preload_app") is not True:
                continue
            if options.get("workers") == "1" and options.get("threads") in (None, "1"):
                continue  # one sync worker uses what it inherited alone (fact 7)
            _, config = self.config_of(command)
            if self.hooks_dispose(config):
                continue
            found.append((command, f"--preload in {command.where}"))
        if found and project.of_kind("import_disposal"):
            return []  # the application disposes its engines after set-up, before any fork
        return found

    def celery_forks(self) -> str | None:
        return self._once_per_project("celery_forks", self._celery_forks) if self.path else None

    def _celery_forks(self) -> str | None:
        """Why the project's Celery workers fork children that inherit a pooled connection,
        or None: the prefork pool (the default, fact 101) unless every worker command or the
        configuration picks solo, threads, gevent or eventlet; a connection opened at import
        (fact 7); and no worker_process_init handler (fact 66) or register_after_fork
        callback (fact 100) that could dispose it."""
        project = self.project
        commands = project.deployment.commands
        workers = commands.of("celery")
        pools = {str(commands.options(command).get("pool") or "") for command in workers}
        configured = {obj.name for obj in project.of_kind("worker_pool")}
        if not (pools - {""}) and configured:
            pools = configured
        if pools and not (pools - CELERY_POOLS_WITHOUT_FORK):
            return None
        if any(obj.option("acts", True) for obj in project.of_kind("worker_process_init")) \
                or project.of_kind("after_fork"):
            return None
        queries = project.queries_at_import
        if not queries:
            return None
        where = queries[0]
        return f"{where.path}:{where.line} runs SQL at import"

    def single_worker(self, facts: ModuleFacts) -> bool:
        """One sync worker, set in so many words: the master forks one process at a time and
        runs no queries of its own after the fork, so nothing is used by two at once (fact 7)."""
        settings = facts.gunicorn.settings if facts.gunicorn is not None else {}
        return "workers" in settings and evaluate(settings["workers"], facts.constants) == 1 \
            and evaluate(settings.get("threads", cst.Integer("1")), facts.constants) == 1

    def budget(self, facts: ModuleFacts) -> Budget | None:
        """The connection arithmetic of the deployment a gunicorn config file describes."""
        if facts.gunicorn is None or not self.path:
            return None
        model = gunicorn_model(facts.gunicorn.settings, facts.constants, facts.imports)
        return connection_budget(model, self.project, self.settings)

    @property
    def command_budgets(self) -> list[tuple[ServerCommand, Budget]]:
        return self.command_budgets_for(lambda command, options: True)

    def command_budgets_for(self, wanted) -> list[tuple[ServerCommand, Budget]]:
        """The connection arithmetic of each command line that starts gunicorn, uvicorn or a
        Celery worker and that `wanted(command, options)` accepts, each worked out once per
        project: a budget reads which modules the workers load, a scan of the whole project
        that most files never need."""
        if not self.path:
            return []
        commands = self.project.deployment.commands
        kept = self.project.__dict__.setdefault("_command_budgets", {})
        found = []
        for command in (*commands.of("gunicorn"), *commands.of("uvicorn"),
                        *commands.of("celery")):
            options = commands.options(command)
            if not wanted(command, options):
                continue
            key = (id(command), self.settings)
            if key not in kept:
                kept[key] = self._command_budget(command, options)
            if kept[key] is not None:
                found.append((command, kept[key]))
        return found

    def _command_budget(self, command: ServerCommand, options: dict) -> Budget | None:
        """A gunicorn command that leaves the worker count to its config file is counted there
        (`budget()`), not twice."""
        commands = self.project.deployment.commands
        config = None
        if command.program == "gunicorn":
            _, facts = self.config_of(command)
            if facts is not None and facts.gunicorn is not None:
                config = gunicorn_model(facts.gunicorn.settings, facts.constants,
                                        facts.imports)
                if "workers" not in options and "threads" not in options:
                    return None
        if command.program == "celery" and "concurrency" not in options:
            return None  # the CPUs of whatever machine runs it, or the app's setting
        model = command_model(command.program, options, commands.environment, config)
        return connection_budget(model, self.project, self.settings,
                                 self.loaded_by(command, options))

    def loaded_by(self, command: ServerCommand, options: dict) -> frozenset[str] | None:
        """The project modules a web server's workers load, from the application it is given
        (`app.main:app`, `app:create_app()`); None when not known, and for Celery, whose
        workers also load the modules `include=` and autodiscovery name."""
        app = options.get("app")
        if command.program == "celery" or not isinstance(app, str):
            return None
        loaded = self.project.loaded_from(app.partition(":")[0])
        if loaded is None:
            return None
        # a web process imports the Celery app's module to send tasks; the engine made there
        # is the worker's, used by tasks only, and its pool stays empty in the web process
        workers = {obj.module for obj in self.project.of_kind("celery_app")}
        return loaded - workers

    def celery_budget(self, facts: ModuleFacts) -> Budget | None:
        """The arithmetic of a Celery app whose code sets worker_concurrency, unless a worker
        command line sets --concurrency, which wins (fact 101)."""
        if not facts.celery_apps or facts.celery_concurrency is None or not self.path:
            return None
        commands = self.project.deployment.commands
        options = [commands.options(command) for command in commands.of("celery")]
        if any("concurrency" in option for option in options):
            return None
        pools = {str(option.get("pool") or "prefork") for option in options} or {"prefork"}
        concurrency = evaluate(facts.celery_concurrency, facts.constants)
        if len(pools) != 1 or not isinstance(concurrency, int):
            return None
        model = command_model("celery", {"pool": pools.pop(), "concurrency": str(concurrency)},
                              commands.environment)
        model.workers_node = model.threads_node = facts.celery_concurrency
        # the modules the worker imports from the app's module (tasks it autodiscovers aside)
        module = self.project.module_name(Path(self.path).absolute())
        return connection_budget(model, self.project, self.settings,
                                 self.project.loaded_from(module))

    @cached_property
    def shown_path(self) -> str:
        """The file as the project's deployment files name it: relative to the root; "" when
        it is outside the project."""
        if not self.path:
            return ""
        try:
            return str(Path(self.path).absolute().relative_to(self.project.root))
        except ValueError:
            return ""

    def budget_here(self) -> list[tuple[ServerCommand, Budget]]:
        """The command budgets of the commands in this file (a Procfile, a Dockerfile)."""
        shown = self.shown_path
        return self.command_budgets_for(
            lambda command, options: bool(shown) and command.path == shown)

    @property
    def application_name(self) -> str:
        """A name for the connections this module opens: the project's (its packaging
        metadata, else its folder's), not a module's (`config`, `db`) that many projects share;
        "app" for code read without a path."""
        name = project_name(self.project.root) if self.path else "app"
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "app"
