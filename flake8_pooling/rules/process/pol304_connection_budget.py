"""POL304 connection-budget: workers x pool capacity over the limit of what they connect to."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis.facts import ModuleFacts
from ..base import Example, Rule


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
    message = ("{workers} workers x {per_process} connections each ({parts}) = {total}, over "
               "the limit of {limit} ({limit_source}): connections past it are refused ('sorry, "
               "too many clients already'); fewer workers, smaller pools or a pooler{assumed}")
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
        budget = self.context.budget(facts)
        if budget is None or not budget.over:
            return
        parts = " + ".join(f"{engine.per_process} ({engine.name})" for engine in budget.engines
                           if engine.per_process)
        yield self.finding(budget.model.workers_node, self.message.format(
            workers=budget.model.workers.value, per_process=budget.per_process, parts=parts,
            total=budget.total, limit=budget.limit, limit_source=budget.limit_source,
            assumed=assumed(budget.assumptions)))
