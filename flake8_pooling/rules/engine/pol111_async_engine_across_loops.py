"""POL111 async-engine-across-loops: a pooled AsyncEngine shared by event loops started per call."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis.facts import EngineCall, ModuleFacts
from ...analysis.names import dotted
from ...analysis.urls import parse_url
from ...findings import UNSAFE, Edit, Fix, set_option
from ..base import Example, Rule
from ..pools import QUEUE_POOLS, SIZING, class_reference, pool_class, remove

# pool classes that keep no connection between checkouts, or one per engine: safe across loops
_LOOP_SAFE = ("NullPool", "StaticPool")


class AsyncEngineAcrossLoops(Rule):
    """
    ## What it does
    Finds event loops started again and again in one process, `asyncio.run(...)` (also
    `loop.run_until_complete(...)`, `anyio.run`, `async_to_sync`) in a Celery task or inside a
    `for`/`while` loop, whose code can reach a module-level AsyncEngine on a queue pool: one
    made in the same module, or imported from the project's modules (the engine itself, or an
    async session factory of the module that makes it), that connects with asyncpg (its URL says so,
    or, when the URL comes from the environment, the project requires asyncpg).

    ## Why is this bad?
    A pooled connection belongs to the event loop that opened it. The first call works and
    returns its connections to the pool; the next call runs a new loop, checks one of them
    out, and fails with `RuntimeError: Task ... got Future attached to a different loop`; the
    call after that with asyncpg's `cannot perform operation: another operation is in
    progress` (fact 102). SQLAlchemy: an application "should not share the same AsyncEngine
    with different event loops when using the default pool implementation". psycopg 3's async
    connections tolerate loops run one after another (observed with psycopg 3.3.9), so the
    rule keeps to asyncpg.

    ## Fix safety
    Unsafe: `poolclass=NullPool` (for an engine in the same module) opens a new connection for
    each checkout, which works from any loop but costs a connection set-up per use. The other
    remedy is `await engine.dispose()` at the end of each `asyncio.run(...)`.

    ## References
    - https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#using-multiple-asyncio-event-loops
    """

    code = "POL111"
    name = "async-engine-across-loops"
    fix_availability = "unsafe"
    message = ("{start} {why} starts a new event loop each time, but {engine} keeps pooled "
               "asyncpg connections bound to the loop that opened them: the next run fails "
               "with 'got Future attached to a different loop', then 'another operation is in "
               "progress'; use poolclass=NullPool for that engine, or await "
               "engine.dispose(close=False) before each loop ends")
    invalid = (
        Example('''
            import asyncio

            from celery import shared_task
            from sqlalchemy import text
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine("postgresql+asyncpg://app@db/app")

            async def count():
                async with engine.connect() as connection:
                    return (await connection.execute(text("select count(*) from jobs"))).scalar()

            @shared_task
            def report():
                return asyncio.run(count())
        ''', fixed='''
            import asyncio

            from celery import shared_task
            from sqlalchemy import text
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import NullPool

            engine = create_async_engine("postgresql+asyncpg://app@db/app", poolclass=NullPool)

            async def count():
                async with engine.connect() as connection:
                    return (await connection.execute(text("select count(*) from jobs"))).scalar()

            @shared_task
            def report():
                return asyncio.run(count())
        '''),
    )
    valid = (
        Example('''
            import asyncio

            from celery import shared_task
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import NullPool

            engine = create_async_engine("postgresql+asyncpg://app@db/app", poolclass=NullPool)

            async def count():
                async with engine.connect() as connection:
                    return await connection.scalar("select 1")

            @shared_task
            def report():
                return asyncio.run(count())
        '''),
        Example('''
            import asyncio

            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine("postgresql+asyncpg://app@db/app")

            async def main():
                async with engine.connect() as connection:
                    await connection.scalar("select 1")

            if __name__ == "__main__":
                asyncio.run(main())  # one loop for the whole process
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        if not facts.loop_starts:
            return
        own = [engine for engine in facts.engines if self._pooled_async(engine)]
        if own:
            engine = own[0]
            fix = self._fix(engine, facts)
            label = "the module-level AsyncEngine made here"
        else:
            label, fix = self._imported_engine(facts), None
            if label is None:
                return
        for start in facts.loop_starts:
            yield self.finding(start.node, self.message.format(
                start=f"{dotted(start.node.func) or 'run_until_complete'}()", why=start.why,
                engine=label), fix)

    def _pooled_async(self, engine: EngineCall) -> bool:
        url = self.context.url(engine)
        return engine.lifetime is None and self.context.is_async(engine) \
            and pool_class(engine, self.context) in QUEUE_POOLS and self._asyncpg(
                url.driver if url is not None else None)

    def _asyncpg(self, driver: str | None) -> bool:
        """asyncpg by the URL; a URL only known at run time, by the project's requirements."""
        if driver is not None:
            return driver == "asyncpg"
        return bool(self.context.path) and "asyncpg" in self.context.project.requirements

    def _imported_engine(self, facts: ModuleFacts) -> str | None:
        """A pooled module-level AsyncEngine of the project this module imports, directly or
        through a session factory of its module."""
        if not self.context.path:
            return None
        project = self.context.project
        engines = {f"{obj.module}.{obj.name}": obj for obj in project.of_kind("async_engine")
                   if not str(obj.option("poolclass", "")).endswith(_LOOP_SAFE)
                   and self._asyncpg(_driver(obj.url))}
        if not engines:
            return None
        engine_modules = {obj.module: obj for obj in engines.values()}
        factories = {f"{obj.module}.{obj.name}": engine_modules[obj.module]
                     for obj in project.of_kind("session_factory")
                     if obj.is_async and obj.module in engine_modules}
        for imported in sorted(facts.imports.bound_modules()):
            found = engines.get(imported) or factories.get(imported)
            if found is not None:
                return f"the AsyncEngine {found.name} ({found.path}:{found.line})"
        return None

    @staticmethod
    def _fix(engine: EngineCall, facts: ModuleFacts) -> Fix | None:
        """poolclass=NullPool, without the sizing arguments NullPool rejects (fact 18)."""
        if engine.options_site is None or "poolclass" in engine.options:
            return None
        reference, imports = class_reference(facts, "NullPool")
        edits = [Edit(engine.options_site,
                      lambda node: set_option(node, "poolclass", reference))]
        edits += [remove(engine.options[name]) for name in SIZING if name in engine.options]
        return Fix(UNSAFE, tuple(edits), imports)


def _driver(url: str | None) -> str | None:
    parsed = parse_url(url) if url else None
    return parsed.driver if parsed is not None else None
