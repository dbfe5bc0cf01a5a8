"""POL101 pooled-behind-pooler: a client-side pool in front of a transaction pooler."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis.facts import EngineCall, ModuleFacts
from ...findings import UNSAFE, Edit, Fix, set_option
from ..base import Example, Rule
from ..pools import QUEUE_POOLS, SIZING, class_reference, pool_class, remove


class PooledBehindPooler(Rule):
    """
    ## What it does
    Finds engines whose connections go through a transaction pooler (PgBouncer in transaction
    mode, Supabase's transaction pooler on port 6543) but which still keep a client-side
    `QueuePool`.

    ## Why is this bad?
    Two pools stacked on each other: the application holds up to `pool_size + max_overflow`
    connections to PgBouncer per process, idle most of the time, while PgBouncer already shares
    server connections between transactions. When PgBouncer restarts or drops idle clients, the
    pooled connections are dead and the next checkout fails with `server closed the connection
    unexpectedly`. SQLAlchemy's own PgBouncer guidance is to use `NullPool` (asyncpg dialect docs,
    "Prepared Statement Name with PGBouncer").

    The rule stays quiet when the pooler runs in session mode (`pooling-pooler-mode = session`,
    or Supabase's session port 5432), when `poolclass` is chosen at run time, and when a
    `**kwargs` splat may carry it.

    ## Fix safety
    Unsafe: `poolclass=NullPool` opens a connection per checkout (to PgBouncer, which is cheap)
    and drops the pool sizing arguments NullPool rejects. Behaviour under load changes, so the
    fix runs only with `--unsafe-fixes`.

    ## References
    - https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#prepared-statement-name-with-pgbouncer
    - https://docs.sqlalchemy.org/en/20/core/pooling.html#switching-pool-implementations
    - https://www.pgbouncer.org/features.html
    """

    code = "POL101"
    name = "pooled-behind-pooler"
    fix_availability = "unsafe"
    quiet_in = ("test",)  # a test's engine is not the deployment's
    message = "engine behind {pooler} keeps a client-side {pool}: {problem}; use poolclass=NullPool"
    stale = "connections go stale and double-pool"
    # with pool_pre_ping the stale ones are replaced at checkout; the double pooling stays
    double_pooled = "it double-pools, holding idle connections to the pooler per process"
    invalid = (
        Example('''
            import sqlalchemy as sa

            engine = sa.create_engine(
                "postgresql+psycopg2://app:secret@pgbouncer:6432/app",
                pool_size=20,
            )
        ''', fixed='''
            import sqlalchemy as sa

            engine = sa.create_engine(
                "postgresql+psycopg2://app:secret@pgbouncer:6432/app",
                poolclass=sa.pool.NullPool,
            )
        '''),
        Example('''
            import os
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(os.environ["PGBOUNCER_URL"], pool_pre_ping=True)
        ''', fixed='''
            import os
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import NullPool

            engine = create_async_engine(os.environ["PGBOUNCER_URL"], pool_pre_ping=True, poolclass=NullPool)
        '''),
        Example('''
            class Config:
                SQLALCHEMY_DATABASE_URI = "postgresql://app@db.example.com:6432/app"
                SQLALCHEMY_ENGINE_OPTIONS = {"pool_size": 10, "pool_pre_ping": True}
        ''', fixed='''
            from sqlalchemy.pool import NullPool

            class Config:
                SQLALCHEMY_DATABASE_URI = "postgresql://app@db.example.com:6432/app"
                SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "poolclass": NullPool}
        '''),
    )
    valid = (
        Example('''
            import sqlalchemy as sa
            from sqlalchemy.pool import NullPool

            engine = sa.create_engine(
                "postgresql+psycopg2://app:secret@pgbouncer:6432/app",
                poolclass=NullPool,
            )
        '''),
        Example('''
            import os
            from sqlalchemy import create_engine

            # no evidence of a pooler: a plain server, or a URL only known at run time
            engine = create_engine(os.environ["DATABASE_URL"], pool_size=10)
        '''),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("postgresql://app@pgbouncer:6432/app", pool_pre_ping=True)
        ''', settings={"pooler-mode": "session"}),
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool, QueuePool

            def make(url, pooled):
                return create_engine(url, poolclass=QueuePool if pooled else NullPool)
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        for engine in facts.engines:
            pooler = self.context.pooler(engine)
            pool = pool_class(engine, self.context)
            if pooler is None or not pooler.pools_transactions or pool not in QUEUE_POOLS:
                continue
            pre_ping = engine.option_value("pool_pre_ping")
            problem = self.double_pooled if pre_ping is True else self.stale
            yield self.finding(engine.node, self.message.format(
                pooler=pooler.describe(), pool=pool, problem=problem), self._fix(engine, facts))

    def _fix(self, engine: EngineCall, facts: ModuleFacts) -> Fix | None:
        if engine.options_site is None:
            return None
        null_pool, imports = class_reference(facts, "NullPool")
        edits = [remove(engine.options[name]) for name in SIZING if name in engine.options]
        edits.append(Edit(engine.options_site,
                          lambda node: set_option(node, "poolclass", null_pool)))
        return Fix(UNSAFE, tuple(edits), imports)
