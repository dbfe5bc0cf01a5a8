"""POL203 session-leaks-on-error: a session provider that closes only when nothing failed."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from ...analysis.facts import ModuleFacts, SessionProvider
from ...findings import SAFE, Edit, Fix
from ..base import Example, Rule


class SessionLeaksOnError(Rule):
    """
    ## What it does
    Finds generators that make a session, `yield` it and close it afterwards with nothing
    that runs the close when the code using the session raises: no `try:`/`finally:` around
    the `yield`, no `with`; and those that close it only in an `except:`, which never runs when
    the request succeeds. These are FastAPI dependencies (`Depends(get_db)`),
    `@contextmanager` session scopes and any other yielding provider. The session is
    SQLAlchemy's (`Session(...)`, `AsyncSession(...)`, `sessionmaker(...)()`), or comes from
    a module-level `sessionmaker`/`scoped_session` of this module or of the project.

    ## Why is this bad?
    FastAPI throws the endpoint's exception into the dependency at its `yield`, and
    `@contextmanager` does the same with the exception of the `with` body, so the code after
    the `yield` never runs when the request fails, a `raise HTTPException(404)` included. A
    session that has run a query keeps its connection checked out and its transaction open
    ("idle in transaction", holding its locks) until the garbage collector frees the abandoned
    session, which may be much later. Meanwhile the pool runs dry and other requests fail with
    `QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00`; with
    asyncpg the collector terminates the connection and logs "The garbage collector is trying
    to clean up non-checked-in connection".

    ## Fix safety
    Safe: `with SessionLocal() as db: yield db` (`async with` for an AsyncSession) closes the
    session however the request ends, as the three statements did on success. Offered when the
    make, `yield` and close statements stand in a row; otherwise put the `yield` and what
    follows it in `try:` ... `finally: db.close()`.

    ## References
    - https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/
    - https://docs.sqlalchemy.org/en/20/orm/session_basics.html#opening-and-closing-a-session
    """

    code = "POL203"
    name = "session-leaks-on-error"
    fix_availability = "safe"
    message = ("the session {name} = {call} is closed {when}: its connection stays checked out and its transaction open until "
               "garbage collection, and the pool runs dry ('QueuePool limit ... reached, "
               "connection timed out'); use {instead}")
    after_yield = "after the yield, which does not run when the request fails"
    on_error_only = "only in an except, so never when the request succeeds"
    invalid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import sessionmaker

            SessionLocal = sessionmaker(bind=create_engine("postgresql://app@db/app"))

            def get_db():
                db = SessionLocal()
                yield db
                db.close()
        ''', fixed='''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import sessionmaker

            SessionLocal = sessionmaker(bind=create_engine("postgresql://app@db/app"))

            def get_db():
                with SessionLocal() as db:
                    yield db
        '''),
        Example('''
            from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

            SessionLocal = async_sessionmaker(create_async_engine("postgresql+asyncpg://app@db/app"))

            async def get_session():
                session = SessionLocal()
                yield session
                await session.close()
        ''', fixed='''
            from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

            SessionLocal = async_sessionmaker(create_async_engine("postgresql+asyncpg://app@db/app"))

            async def get_session():
                async with SessionLocal() as session:
                    yield session
        '''),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import sessionmaker

            SessionLocal = sessionmaker(bind=create_engine("postgresql://app@db/app"))

            def get_db():
                db = SessionLocal()
                try:
                    yield db
                finally:
                    db.close()
        '''),
        Example('''
            import requests

            def get_http():
                http = requests.Session()
                yield http
                http.close()  # no database connection to strand
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        factories = None
        for provider in facts.session_providers:
            if provider.made_by is not None:
                factories = self._project_factories() if factories is None else factories
                if not self._is_factory(provider.made_by, factories):
                    continue
            keyword = "async with" if provider.is_async else "with"
            call = cst.Module([]).code_for_node(provider.call)
            instead = f"{keyword} {call} as {provider.name}: yield {provider.name}"
            when = self.on_error_only if provider.closed_on_error_only else self.after_yield
            yield self.finding(provider.assignment, self.message.format(
                name=provider.name, call=call, when=when, instead=instead), _fix(provider))

    def _project_factories(self) -> set[str]:
        if not self.context.path:
            return set()
        return {f"{obj.module}.{obj.name}"
                for obj in self.context.project.of_kind("session_factory")}

    def _is_factory(self, qualified: str, factories: set[str]) -> bool:
        """A session factory of the project: found by its scan, or a name that says session
        imported from one of the project's own modules."""
        if qualified in factories:
            return True
        module, _, name = qualified.rpartition(".")
        if not self.context.path or "session" not in name.lower():
            return False
        project = self.context.project
        return module.partition(".")[0] in project.top_level \
            or project.module_facts(module, self.context.path) is not None


def _fix(provider: SessionProvider) -> Fix | None:
    at = provider.position
    if at is None:
        return None

    def change(function: cst.FunctionDef) -> cst.FunctionDef:
        body = list(function.body.body)
        make, yields = body[at], body[at + 1]
        scoped = cst.With(
            items=[cst.WithItem(provider.call, asname=cst.AsName(cst.Name(provider.name)))],
            # `db = SessionLocal()  # why`: the comment stays with the call, on the `with` line
            body=cst.IndentedBlock([yields.with_changes(leading_lines=[])],
                                   header=make.trailing_whitespace),
            asynchronous=cst.Asynchronous() if provider.is_async else None,
            leading_lines=make.leading_lines)
        body[at:at + 3] = [scoped]
        return function.with_changes(body=function.body.with_changes(body=body))

    return Fix(SAFE, (Edit(provider.function, change),))
