"""What a module's code says, collected in one libcst pass by one visitor per fact family.

Facts are plain data that point at the libcst nodes they came from, so a rule can report at a
node and a fix can edit it. Rules never walk the tree themselves, and nothing here reads
settings or the project's other files: judgements about them are `Context`'s.

A new family is a module here: a `Family` (a libcst batchable visitor) that takes the shared
`Scope`, and a `finish()` that returns its facts; `collect()` runs it and `ModuleFacts` carries
what it found.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ..names import ImportTable
from .boot import BootFacts, BootFamily, BootHazard
from .engines import (EngineCall, EngineFacts, EngineFamily, EngineOption, FactoryCall,
                      RemovedKey)
from .forks import CeleryApp, ChildCode, ChildCodeFamily, Disposal, ForkingPool
from .gunicorn import GunicornConfig, GunicornFamily
from .scope import Lifetime, Scope, ScopeEnter, ScopeLeave
from .sessions import ModuleConnection, ModuleSession, SessionFacts, SessionFamily
from .configuration import SettingsFacts, SettingsFamily
from .loops import LoopFamily, LoopStart
from .providers import ProviderFamily, SessionProvider
from .statements import SessionStatement, StatementFamily
from .strings import Parts, StringReader
from .walk import visit_families


@dataclass(eq=False)
class ModuleFacts:
    module: cst.Module
    imports: ImportTable
    constants: dict[str, cst.BaseExpression]
    is_migration_env: bool  # imports alembic: runs once per command, not per request
    runs_as_script: bool = False  # exits or reads sys.argv at module level: run once
    engines: list[EngineCall] = field(default_factory=list)
    factory_calls: list[FactoryCall] = field(default_factory=list)
    imported_calls: list[FactoryCall] = field(default_factory=list)
    sessions: list[ModuleSession] = field(default_factory=list)
    connections: list[ModuleConnection] = field(default_factory=list)
    child_code: list[ChildCode] = field(default_factory=list)
    gunicorn: GunicornConfig | None = None
    celery_apps: list[CeleryApp] = field(default_factory=list)
    celery_concurrency: cst.BaseExpression | None = None  # worker_concurrency set in code
    boot: BootFacts = field(default_factory=BootFacts)
    forking_pools: list[ForkingPool] = field(default_factory=list)
    # what other modules may read of this one's settings objects: "settings.DATABASE_URL" ->
    # the parts of its value
    settings_values: dict[str, Parts | None] = field(default_factory=dict)
    removed_keys: list[RemovedKey] = field(default_factory=list)  # Flask-SQLAlchemy's (POL110)
    session_statements: list[SessionStatement] = field(default_factory=list)  # POL204
    loop_starts: list[LoopStart] = field(default_factory=list)  # POL111
    session_providers: list[SessionProvider] = field(default_factory=list)  # POL203
    # config classes handed to app.config.from_object() or kept in a dict of configs
    config_loads: frozenset[str] = frozenset()
    local_calls: list[FactoryCall] = field(default_factory=list)  # calls of its own functions


def collect(module: cst.Module, path: str = "") -> ModuleFacts:
    """`path` is where the module lives: a gunicorn config file is known by its name too."""
    scope = Scope()
    engines, sessions = EngineFamily(scope), SessionFamily(scope)
    gunicorn, child_code = GunicornFamily(scope), ChildCodeFamily(scope)
    settings, boot = SettingsFamily(scope), BootFamily(scope)
    statements, loops = StatementFamily(scope), LoopFamily(scope)
    providers = ProviderFamily(scope)
    visit_families(module, [ScopeEnter(scope), engines, sessions, gunicorn, child_code,
                            settings, boot, statements, loops, providers, ScopeLeave(scope)])
    settings_facts: SettingsFacts = settings.finish()
    engine_facts: EngineFacts = engines.finish(settings_facts)
    session_facts: SessionFacts = sessions.finish()
    config = gunicorn.finish(path)
    return ModuleFacts(module, scope.imports, scope.constants, scope.imports_alembic,
                       scope.runs_as_script,
                       engine_facts.engines, engine_facts.factory_calls,
                       engine_facts.imported_calls, session_facts.sessions,
                       session_facts.connections, child_code.finish(config), config,
                       child_code.celery_apps, child_code.celery_concurrency,
                       boot.finish(), child_code.forking_pools(),
                       _settings_values(scope, settings_facts), engine_facts.removed_keys,
                       statements.finish().statements, loops.finish().starts,
                       providers.finish().providers, engine_facts.config_loads,
                       engine_facts.local_calls)


def _settings_values(scope: Scope, settings: SettingsFacts) -> dict[str, Parts | None]:
    reader = StringReader(scope, settings)
    values = {}
    for name in (*settings.classes, *settings.instances):
        owner = settings.class_of(name)
        for attribute in (*owner.attributes, *owner.properties):
            values[f"{name}.{attribute}"] = reader.attribute(owner, attribute, 0)
    return values


__all__ = ["BootHazard", "CeleryApp", "ChildCode", "Disposal", "EngineCall", "EngineOption",
           "FactoryCall", "GunicornConfig", "Lifetime", "LoopStart", "ModuleConnection",
           "ModuleFacts", "ModuleSession", "RemovedKey", "SessionProvider", "SessionStatement",
           "collect"]
