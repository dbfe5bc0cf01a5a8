"""POL102 pooled-without-liveness: a pool behind a pooler that never tests its connections."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis.facts import ModuleFacts
from ...settings import version_text
from ..base import Example, Rule
from ..pools import QUEUE_POOLS, pool_class, pre_ping_fix, pre_ping_on


class PooledWithoutLiveness(Rule):
    """
    ## What it does
    Finds client-side pools in front of a pooler without `pool_pre_ping=True`. A `pool_recycle`
    does not stand in for it: it is reported too, and says so when it is not even below
    PgBouncer's `client_idle_timeout`.

    ## Why is this bad?
    A restart, failover or idle timeout of PgBouncer closes every client connection the pool
    holds. The pool does not notice: the next checkout hands out a dead connection and the
    request fails with `(psycopg2.OperationalError) server closed the connection unexpectedly`.
    `pool_pre_ping=True` tests each connection at checkout and replaces dead ones; it works
    through PgBouncer in transaction mode (checked with SQLAlchemy 2.0.58, psycopg2 and asyncpg).
    The one exception is asyncpg on SQLAlchemy 2.0.0 to 2.0.20, whose ping broke transaction
    mode (fixed in 2.0.21): there the rule says to upgrade instead of offering the fix.

    `pool_recycle` is no liveness check: after a PgBouncer restart every pooled connection is
    dead whatever its age, and only a ping at checkout finds out (fact 55). A recycle matters
    only against a configured `client_idle_timeout`, which it must stay below (fact 52);
    PgBouncer's `server_lifetime` and `server_idle_timeout` act on its server connections, never
    on the application's, so they are not a reason to set it (fact 50).

    ## Fix safety
    Safe: `pool_pre_ping=True` adds a ping per checkout and changes no results.

    ## References
    - https://docs.sqlalchemy.org/en/20/core/pooling.html#disconnect-handling-pessimistic
    - https://www.pgbouncer.org/config.html#client_idle_timeout
    """

    code = "POL102"
    name = "pooled-without-liveness"
    fix_availability = "safe"
    quiet_in = ("test",)  # a test's engine is not the deployment's
    message = ("client-side {pool} behind {pooler} {problem}: after a pooler restart or idle "
               "timeout the next checkout fails with 'server closed the connection "
               "unexpectedly'; {advice}")
    no_liveness = "has no liveness check"
    recycle_only = "has only pool_recycle, which does not notice a restart"
    recycles_late = "recycles after {recycle}s, not before client_idle_timeout ({timeout:g}s)"
    set_pre_ping = "set pool_pre_ping=True"
    upgrade_first = ("pool_pre_ping breaks asyncpg in transaction mode before SQLAlchemy 2.0.21 "
                     "(targeting {version}): upgrade, then set pool_pre_ping=True")
    invalid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@pgbouncer:6432/app", pool_recycle=300)
        ''', fixed='''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@pgbouncer:6432/app", pool_recycle=300, pool_pre_ping=True)
        ''', settings={"pooler-mode": "session"}),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@pgbouncer:6432/app", pool_size=10)
        ''', fixed='''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@pgbouncer:6432/app", pool_size=10, pool_pre_ping=True)
        ''', settings={"pooler-mode": "session"}),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine(
                "postgresql://app@pgbouncer:6432/app", pool_size=10, pool_pre_ping=True
            )
        ''', settings={"pooler-mode": "session"}),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@db.internal:5432/app", pool_size=10)
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        version = self.context.sqlalchemy_version
        for engine in facts.engines:
            pooler = self.context.pooler(engine)
            pool = pool_class(engine, self.context)
            if pooler is None or pool not in QUEUE_POOLS or not engine.options_complete:
                continue
            if pre_ping_on(engine):
                continue
            recycle = engine.option_value("pool_recycle")
            recycles = isinstance(recycle, (int, float)) and not isinstance(recycle, bool) \
                and recycle > 0
            timeout = pooler.client_idle_timeout
            if recycles and timeout and recycle >= timeout:
                problem = self.recycles_late.format(recycle=recycle, timeout=timeout)
            elif recycles or ("pool_recycle" in engine.options
                              and not isinstance(recycle, (int, float))):
                problem = self.recycle_only  # fact 55: only pre-ping recovers after a restart
            else:
                problem = self.no_liveness
            url = self.context.url(engine)
            driver = url.effective_driver(version) if url else None
            if driver == "asyncpg" and (2, 0) <= version < (2, 0, 21) \
                    and pooler.pools_transactions:
                advice = self.upgrade_first.format(version=version_text(version))
                yield self.finding(engine.node, self.message.format(
                    pool=pool, pooler=pooler.describe(), problem=problem, advice=advice))
                continue
            yield self.finding(engine.node, self.message.format(
                pool=pool, pooler=pooler.describe(), problem=problem,
                advice=self.set_pre_ping), pre_ping_fix(engine))
