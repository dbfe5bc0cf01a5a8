"""POL304 connection-budget: workers x pool capacity over the limit of what they connect to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ...analysis.budget import DEFAULT_MAX_OVERFLOW, DEFAULT_POOL_SIZE, server_limit
from ...analysis.facts import EngineCall, ModuleFacts
from ...findings import Finding
from ...vocabulary import COMMAND_FILES, FLASK_SQLALCHEMY
from ..base import Example, Rule
from ..pools import QUEUE_POOLS, pool_class


def assumed(notes: list[str]) -> str:
    return f" (assuming {'; '.join(notes)})" if notes else ""


class ConnectionBudget(Rule):
    """
    ## What it does
    Adds up the connections a gunicorn deployment can open: workers x the pool capacity
    (`pool_size + max_overflow`) of every engine the project creates at module level, and
    compares it with the limit of what they connect to: PgBouncer's `max_client_conn` when the
    engines go through a PgBouncer the project configures, else `pooling-max-connections`
    (default 100, PostgreSQL's default `max_connections`). `workers` may be an expression such
    as `multiprocessing.cpu_count() * 2 + 1`: it is evaluated for the machine running the
    check, and the message says so. `flake8-pooling budget` prints the whole calculation.

    Command lines count too: `gunicorn -w 8`, `uvicorn --workers 4` (spawned workers, each with
    its own pools) and `celery worker -c 10` in a Procfile, Dockerfile, compose file or script
    are reported by `flake8-pooling check` at the command, and through flake8 at the engines of
    the module the command starts; a Celery app whose code sets `worker_concurrency` is reported
    there. A server's budget counts the engines of the modules its application imports.

    An engine whose pool alone can exceed the limit, in one process, is reported at the engine,
    and so is `max_overflow=-1`, which puts no bound on the pool at all.

    ## Why is this bad?
    Each worker process has its own pools. Under load they grow to their capacity, and the
    connections past the limit are refused: `FATAL: sorry, too many clients already` from
    PostgreSQL, `no more connections allowed (max_client_conn)` from PgBouncer. The numbers
    look harmless per file and only add up in production.

    ## Fix safety
    No fix: fewer workers, smaller pools, a pooler, or a higher limit are all choices.

    ## References
    - https://docs.sqlalchemy.org/en/20/core/pooling.html#sqlalchemy.pool.QueuePool
    - https://docs.gunicorn.org/en/stable/settings.html#workers
    - https://www.pgbouncer.org/config.html#max_client_conn
    """

    code = "POL304"
    name = "connection-budget"
    fix_availability = "none"
    reads = COMMAND_FILES  # gunicorn -w 8, uvicorn --workers 4, celery worker -c 10
    message = ("{workers} workers x {per_process} connections each ({parts}) = {total}, over "
               "the limit of {limit} ({limit_source}): connections past it are refused ('sorry, "
               "too many clients already'); fewer workers, smaller pools or a pooler{assumed}")
    engine_over = ("this engine's pool alone holds up to {capacity} connections per process "
                   "(pool_size {pool_size} + max_overflow {max_overflow}), over the limit of "
                   "{limit} ({limit_source}): connections past it are refused ('sorry, too many "
                   "clients already'); a smaller pool or a pooler")
    unbounded = ("max_overflow=-1 puts no bound on this pool: under load it opens connections "
                 "until the server refuses them ('sorry, too many clients already'); set a "
                 "max_overflow")
    invalid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@db/app", pool_size=50, max_overflow=100)
        '''),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@db/app", max_overflow=-1)
        '''),
        Example('''
            # gunicorn.conf.py, in a project whose myapp/db.py has
            # engine = create_engine(URL, pool_size=20, max_overflow=10)
            workers = 8
        ''', path="gunicorn.conf.py", project={"pyproject.toml": "", "myapp/__init__.py": "", "myapp/db.py": (
            "from sqlalchemy import create_engine\n"
            "engine = create_engine('postgresql://app@db/app', pool_size=20, max_overflow=10)\n")}),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@db/app", pool_size=20, max_overflow=30)
        '''),
        Example('''
            # gunicorn.conf.py: 3 x 30 = 90, within PostgreSQL's default 100
            workers = 3
        ''', path="gunicorn.conf.py", project={"pyproject.toml": "", "myapp/__init__.py": "", "myapp/db.py": (
            "from sqlalchemy import create_engine\n"
            "engine = create_engine('postgresql://app@db/app', pool_size=20, max_overflow=10)\n")}),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        alone = set()
        for engine in facts.engines:
            for finding in self._engine_alone(engine):
                alone.add(engine.node)
                yield finding
        yield from self._started_here(facts, alone)
        budget = self.context.budget(facts)
        if budget is not None and budget.over:
            yield self.finding(budget.model.workers_node, self._message(budget))
        budget = self.context.celery_budget(facts)
        if budget is not None and budget.over:
            yield self.finding(budget.model.workers_node, self._message(budget, "celery"))

    def _started_here(self, facts: ModuleFacts, alone: set) -> Iterator[Finding]:
        """flake8 never reads the Procfile whose command starts this module's application:
        an over-budget command is reported at the engines this module makes."""
        if not self.context.path or not facts.engines:
            return
        module = self.context.project.module_name(Path(self.context.path).absolute())
        engines = [engine for engine in facts.engines if engine.lifetime is None
                   and engine.api is not FLASK_SQLALCHEMY and engine.node not in alone]
        if not engines:
            return

        def starts_this_module(command, options) -> bool:
            app = options.get("app")
            return isinstance(app, str) and app.partition(":")[0] == module

        for command, budget in self.context.command_budgets_for(starts_this_module):
            if budget.over:
                for engine in engines:
                    yield self.finding(engine.node, f"started by {command.where}: "
                                       + self._message(budget, command.program))
                return

    def check_file(self, text: str) -> Iterator[Finding]:
        """A command line that starts more processes than the limit has room for."""
        for command, budget in self.context.budget_here():
            if budget.over:
                yield Finding(self.code, self._message(budget, command.program), None,
                              line=command.line)

    def _message(self, budget, program: str = "gunicorn") -> str:
        parts = " + ".join(f"{engine.per_process} ({engine.name})" for engine in budget.engines
                           if engine.per_process)
        several = budget.model.workers.value != 1
        processes = {"celery": "Celery children" if several else "Celery child",
                     "uvicorn": "uvicorn workers" if several else "uvicorn worker"}.get(
            program, "workers" if several else "worker")
        return self.message.format(
            workers=budget.model.workers.value, per_process=budget.per_process, parts=parts,
            total=budget.total, limit=budget.limit, limit_source=budget.limit_source,
            assumed=assumed(budget.assumptions)).replace(" workers x ", f" {processes} x ", 1)

    def _engine_alone(self, engine: EngineCall) -> Iterator:
        if not engine.options_complete:
            return
        url = self.context.url(engine)
        if url is not None and url.backend is not None and url.is_sqlite:
            return  # no server connections to count
        pool = pool_class(engine, self.context)
        sized = "pool_size" in engine.options or "max_overflow" in engine.options
        # a URL known only at run time, with the pool sized by hand: a server's queue pool
        if pool not in QUEUE_POOLS and not (pool is None and engine.declared_pool is None
                                            and sized):
            return
        size = engine.option_value("pool_size") if "pool_size" in engine.options \
            else DEFAULT_POOL_SIZE
        overflow = engine.option_value("max_overflow") if "max_overflow" in engine.options \
            else DEFAULT_MAX_OVERFLOW
        if not _count(size) or not _count(overflow, unbounded=-1):
            return
        if overflow == -1:
            yield self.finding(engine.options["max_overflow"].holder, self.unbounded)
            return
        pooler = self.context.pooler(engine)
        limit, source = server_limit(self.context.settings, url.backend if url else None)
        if pooler is not None and pooler.max_client_conn:
            limit, source = pooler.max_client_conn, f"PgBouncer max_client_conn, {pooler.describe()}"
        if size + overflow > limit:
            yield self.finding(engine.node, self.engine_over.format(
                capacity=size + overflow, pool_size=size, max_overflow=overflow, limit=limit,
                limit_source=source))


def _count(value: object, unbounded: int | None = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) \
        and (value >= 0 or value == unbounded)
