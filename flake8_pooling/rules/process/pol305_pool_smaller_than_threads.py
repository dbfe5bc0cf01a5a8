"""POL305 pool-smaller-than-threads: a worker's threads outnumber its pool."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis.facts import ModuleFacts
from ...findings import Finding
from ...vocabulary import COMMAND_FILES, QUEUE_POOLS
from ..base import Example, Rule
from .pol304_connection_budget import assumed


class PoolSmallerThanThreads(Rule):
    """
    ## What it does
    Compares the threads of each gunicorn worker (`threads`, which makes the worker `gthread`)
    with the capacity (`pool_size + max_overflow`) of every `QueuePool` engine the project
    creates at module level; also for `--threads` on a gunicorn command line and for a Celery
    worker run with `-P threads -c N`, whose N threads share one process's pools.

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
    reads = COMMAND_FILES  # gunicorn --threads 8, celery worker -P threads -c 20
    message = ("{threads} threads per worker share {engine}, whose pool holds {capacity} "
               "(pool_size {pool_size} + max_overflow {max_overflow}): under load the rest wait "
               "pool_timeout and fail with 'QueuePool limit of size {pool_size} overflow "
               "{max_overflow} reached'; raise the pool to {threads} or lower threads{assumed}")
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
        budget = self.context.budget(facts)
        if budget is None or budget.model.threads_node is None:
            return
        for message in self._messages(budget):
            yield self.finding(budget.model.threads_node, message)

    def check_file(self, text: str) -> Iterator[Finding]:
        for command, budget in self.context.budget_here():
            for message in self._messages(budget):
                yield Finding(self.code, message, None, line=command.line)

    def _messages(self, budget) -> Iterator[str]:
        if budget.threads <= 1:
            return
        for engine in budget.engines:
            if engine.pool in QUEUE_POOLS and engine.per_process is not None \
                    and engine.per_process < budget.threads:
                yield self.message.format(
                    threads=budget.threads, engine=engine.name, capacity=engine.per_process,
                    pool_size=engine.pool_size, max_overflow=engine.max_overflow,
                    assumed=assumed(budget.model.threads.assumptions))
