"""Judgements: what the settings and the project's files make of a module's facts.

Facts say what the code says; the context says what it means where the code runs: which pooler
an engine's connections reach and why, the URL the project's `.env` or compose files supply for
a variable the code reads, the SQLAlchemy version targeted, the process model and its
connection budget. Each judgement is made once per engine (or per module) and rules ask for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePath

from ..settings import Settings
from .budget import Budget, connection_budget
from .facts import EngineCall, ModuleFacts
from .pooler import PoolerEvidence, pooler_for
from .process import gunicorn_model
from .project import Project, project_for
from .urls import DatabaseUrl


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

    def route(self, engine: EngineCall) -> Route:
        route = self._routes.get(id(engine))
        if route is None:
            deployment = self.project.deployment if self.path else None
            pooler, url = pooler_for(engine.url, engine.url_variable, self.settings, deployment)
            route = self._routes[id(engine)] = Route(url, pooler)
        return route

    def pooler(self, engine: EngineCall) -> PoolerEvidence | None:
        return self.route(engine).pooler

    def url(self, engine: EngineCall) -> DatabaseUrl | None:
        return self.route(engine).url

    def is_async(self, engine: EngineCall) -> bool:
        return engine.is_async(self.url(engine))

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
