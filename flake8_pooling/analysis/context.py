"""Judgements: what the settings and the project's files make of a module's facts.

Facts say what the code says; the context says what it means where the code runs: which pooler
an engine's connections reach and why, the URL the project's `.env` or compose files supply for
a variable the code reads, the SQLAlchemy version targeted, the process model and its
connection budget. Each judgement is made once per engine (or per module) and rules ask for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePath

import libcst as cst

from ..settings import Settings
from ..vocabulary import SCRIPT_DIRS, SCRIPT_FILES, TEST_DIRS
from .budget import Budget, connection_budget
from .facts import EngineCall, ModuleFacts
from .facts.strings import ImportedValue, text_of, variables_in
from .pooler import PoolerEvidence, pooler_for
from .process import gunicorn_model
from .project import Project, project_for
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

    def gunicorn_inheritance(self, facts: ModuleFacts) -> tuple[cst.CSTNode, str] | None:
        """Why gunicorn's workers inherit the master's objects, and where the config says so:
        `preload_app = True` (fact 59), or a top-level import of the project's own modules, which
        gunicorn executes in the master (fact 60). None: the workers load the app themselves."""
        config = facts.gunicorn
        if config is None:
            return None
        if config.preload is not None:
            return config.preload, "preload_app = True"
        own = self.path.replace("\\", "/").rpartition("/")[2].removesuffix(".py")
        top_level = self.project.top_level - {own, "gunicorn"} if self.path else frozenset()
        for node, module in config.imports:
            if module.partition(".")[0] in top_level:
                return node, f"the config file imports {module} in the master"
        return None

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
    def application_name(self) -> str:
        """A name for the connections this module opens: its package, else the file's stem."""
        path = PurePath(self.path or "app.py")
        parent = path.parent.name
        name = parent if parent and parent not in (".", "src") else path.stem
        return "".join(c if c.isalnum() or c in "-_" else "-" for c in name) or "app"
