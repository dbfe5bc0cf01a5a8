"""Deployment rules (POL304, POL305): pools sized against the process model.

Facts cited as (domain N) are in the project's fact sheet.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..analysis.budget import QUEUE_POOLS, Budget, connection_budget
from ..analysis.facts import ModuleFacts
from ..analysis.process import gunicorn_model
from .base import Example, Rule


def _budget(rule: Rule, facts: ModuleFacts) -> Budget | None:
    if facts.gunicorn is None or not rule.context.path:
        return None
    model = gunicorn_model(facts.gunicorn.settings, facts.constants, facts.imports)
    return connection_budget(model, rule.context.project, rule.context.settings)


def _assumed(notes: list[str]) -> str:
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
    invalid = (
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
            # gunicorn.conf.py: 3 x 30 = 90, within PostgreSQL's default 100
            workers = 3
        ''', path="gunicorn.conf.py", project={"pyproject.toml": "", "myapp/__init__.py": "", "myapp/db.py": (
            "from sqlalchemy import create_engine\n"
            "engine = create_engine('postgresql://app@db/app', pool_size=20, max_overflow=10)\n")}),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        budget = _budget(self, facts)
        if budget is None or not budget.over:
            return
        parts = " + ".join(f"{engine.per_process} ({engine.name})" for engine in budget.engines
                           if engine.per_process)
        yield self.finding(
            budget.model.workers_node,
            f"{budget.model.workers.value} workers x {budget.per_process} connections each "
            f"({parts}) = {budget.total}, over the limit of {budget.limit} "
            f"({budget.limit_source}): connections past it are refused ('sorry, too many "
            f"clients already'); fewer workers, smaller pools or a pooler"
            f"{_assumed(budget.assumptions)}")


class PoolSmallerThanThreads(Rule):
    """
    ## What it does
    Compares the threads of each gunicorn worker (`threads`, which makes the worker `gthread`)
    with the capacity (`pool_size + max_overflow`) of every `QueuePool` engine the project
    creates at module level.

    ## Why is this bad?
    The threads of a worker share its pools. When more threads need a connection than the pool
    can hand out, the rest wait `pool_timeout` (30 s by default) and then fail with
    `QueuePool limit of size 5 overflow 0 reached, connection timed out, timeout 30`: requests
    fail under load while the database is idle.

    ## Fix safety
    No fix: raise `pool_size`/`max_overflow` to at least the threads, or lower `threads`.

    ## References
    - https://docs.sqlalchemy.org/en/20/errors.html#error-3o7r
    - https://docs.gunicorn.org/en/stable/settings.html#threads
    """

    code = "POL305"
    name = "pool-smaller-than-threads"
    fix_availability = "none"
    invalid = (
        Example('''
            # gunicorn.conf.py, in a project whose myapp/db.py has
            # engine = create_engine(URL, pool_size=5, max_overflow=0)
            workers = 2
            threads = 16
        ''', path="gunicorn.conf.py", project={"pyproject.toml": "", "myapp/__init__.py": "", "myapp/db.py": (
            "from sqlalchemy import create_engine\n"
            "engine = create_engine('postgresql://app@db/app', pool_size=5, max_overflow=0)\n")}),
    )
    valid = (
        Example('''
            # gunicorn.conf.py: 4 threads share a pool of 5 + 0
            workers = 2
            threads = 4
        ''', path="gunicorn.conf.py", project={"pyproject.toml": "", "myapp/__init__.py": "", "myapp/db.py": (
            "from sqlalchemy import create_engine\n"
            "engine = create_engine('postgresql://app@db/app', pool_size=5, max_overflow=0)\n")}),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        budget = _budget(self, facts)
        if budget is None or budget.threads <= 1 or budget.model.threads_node is None:
            return
        for engine in budget.engines:
            if engine.pool in QUEUE_POOLS and engine.per_process is not None \
                    and engine.per_process < budget.threads:
                yield self.finding(
                    budget.model.threads_node,
                    f"{budget.threads} threads per worker share {engine.name}, whose pool "
                    f"holds {engine.per_process} (pool_size {engine.pool_size} + max_overflow "
                    f"{engine.max_overflow}): under load the rest wait pool_timeout and fail "
                    f"with 'QueuePool limit of size {engine.pool_size} overflow "
                    f"{engine.max_overflow} reached'; raise the pool to {budget.threads} or "
                    f"lower threads{_assumed(budget.model.threads.assumptions)}")
