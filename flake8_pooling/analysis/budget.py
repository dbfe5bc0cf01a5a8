"""The connection arithmetic of a deployment: processes x connections per process, summed over
the project's engines, against the limit of what they connect to. Every step that is not read
straight from the code is listed as an assumption.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..settings import Settings
from ..vocabulary import QUEUE_POOLS
from .pooler import pooler_for
from .process import ProcessModel
from .project import Project, ProjectObject
from .urls import parse_url

# QueuePool's defaults, the same in SQLAlchemy 1.3 to 2.1 (fact 12)
DEFAULT_POOL_SIZE, DEFAULT_MAX_OVERFLOW = 5, 10


@dataclass
class EngineBudget:
    name: str  # myapp.db:engine
    where: str  # myapp/db.py:12
    pool: str
    pool_size: int | None
    max_overflow: int | None
    per_process: int | None  # None: unbounded or not known
    note: str = ""


@dataclass
class Budget:
    model: ProcessModel
    engines: list[EngineBudget]
    limit: int
    limit_source: str
    assumptions: list[str] = field(default_factory=list)

    @property
    def per_process(self) -> int:
        return sum(engine.per_process or 0 for engine in self.engines)

    @property
    def total(self) -> int | None:
        workers = self.model.workers.value
        return None if workers is None else workers * self.per_process

    @property
    def over(self) -> bool:
        return self.total is not None and self.total > self.limit

    @property
    def threads(self) -> int:
        return max(self.model.threads.value or 1, 1)


def connection_budget(model: ProcessModel, project: Project, settings: Settings,
                      loaded: frozenset[str] | None = None) -> Budget | None:
    """`loaded`: the modules the processes import, when known; else every module counts."""
    engines = [engine for engine in project.of_kind("engine", "async_engine", "lazy_engine")
               if not _in_process(engine) and (loaded is None or engine.module in loaded)]
    if not engines:
        return None
    assumptions = list(model.workers.assumptions) + list(model.threads.assumptions)
    threads = max(model.threads.value or 1, 1)
    budgets = [_engine_budget(engine, threads) for engine in engines]
    for budget in budgets:
        if budget.note:
            assumptions.append(f"{budget.name}: {budget.note}")
    limit, source = server_limit(settings)
    limits = set()
    for engine in engines:
        url = parse_url(engine.url) if engine.url else None
        evidence, _ = pooler_for(url, engine.url_variable, settings, project.deployment)
        limits.add((evidence.max_client_conn, evidence.describe()) if evidence is not None
                   and evidence.max_client_conn else None)
    if len(limits) == 1 and None not in limits:
        max_client_conn, behind = limits.pop()
        limit, source = max_client_conn, f"PgBouncer max_client_conn, {behind}"
    # workers and threads both read cpu_count(): say so once
    return Budget(model, budgets, limit, source, list(dict.fromkeys(assumptions)))


def server_limit(settings: Settings, backend: str | None = None) -> tuple[int, str]:
    """The connection limit when no pooler's applies, and where it comes from: the configured
    one, else the server's default (PostgreSQL 100, fact 63; MySQL and MariaDB 151, fact 106)."""
    if settings.max_connections != 100:
        return settings.max_connections, "pooling-max-connections"
    if backend in ("mysql", "mariadb"):
        return 151, "MySQL's default max_connections; set pooling-max-connections"
    return 100, "PostgreSQL's default max_connections; set pooling-max-connections"


def _in_process(engine: ProjectObject) -> bool:
    url = parse_url(engine.url) if engine.url else None
    return url is not None and url.is_sqlite  # no server connections to count


def _engine_budget(engine: ProjectObject, threads: int) -> EngineBudget:
    name, where = engine.import_path, f"{engine.path}:{engine.line}"
    poolclass = engine.option("poolclass")
    pool = str(poolclass).rpartition(".")[2] if poolclass else \
        ("AsyncAdaptedQueuePool" if engine.kind == "async_engine" else "QueuePool")
    if pool in QUEUE_POOLS:
        size = engine.option("pool_size", DEFAULT_POOL_SIZE)
        overflow = engine.option("max_overflow", DEFAULT_MAX_OVERFLOW)
        if not isinstance(size, int) or not isinstance(overflow, int):
            return EngineBudget(name, where, pool, None, None, None,
                                "pool_size/max_overflow set at run time: not counted")
        if overflow < 0:
            return EngineBudget(name, where, pool, size, overflow, None,
                                "max_overflow=-1: no upper bound, not counted")
        return EngineBudget(name, where, pool, size, overflow, size + overflow)
    if pool == "NullPool":
        return EngineBudget(name, where, pool, None, None, threads,
                            f"NullPool: one connection per concurrent checkout ({threads} "
                            f"thread{'s' * (threads != 1)})")
    if pool in ("StaticPool", "AssertionPool"):
        return EngineBudget(name, where, pool, None, None, 1)
    if pool == "SingletonThreadPool":
        return EngineBudget(name, where, pool, None, None, threads)
    return EngineBudget(name, where, pool, None, None, None, f"{pool}: capacity not known")
