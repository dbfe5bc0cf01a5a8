"""POL201 module-level-session: a Session made at import, shared by everything after."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from ...analysis.facts import ModuleFacts, ModuleSession
from ...findings import UNSAFE, Edit, Fix, parse_expression, replace_with
from ..base import Example, Rule


class ModuleLevelSession(Rule):
    """
    ## What it does
    Finds Session and AsyncSession instances made when a module is imported: `Session(engine)`,
    `AsyncSession(engine)`, `sessionmaker(...)()`, or `SessionLocal()` for a module-level
    `SessionLocal = sessionmaker(...)`, at module level or in a class body, and a `scoped_session`
    registry called at import (`db_session = Session()`), which hands back the importing
    thread's session instead of each thread's own. Names are resolved
    through imports: `requests.Session`, `flask.session` or a model class called `Session` are
    not sessions. Factories (`sessionmaker`), `scoped_session`, `async_scoped_session`,
    Flask-SQLAlchemy's `db.session`, and sessions made in functions or `with` blocks are fine.

    ## Why is this bad?
    One Session object then serves every thread, request and asyncio task of the process, and is
    inherited by every forked worker. SQLAlchemy's rule is "Session per thread, AsyncSession per
    task": a Session "cannot be shared among concurrent threads or asyncio tasks without careful
    synchronization". Concurrent use interleaves transactions, and its connection is one socket
    that forked workers then share ("SSL error: decryption failed or bad record mac").

    ## Fix safety
    Unsafe: the fix wraps the session in `scoped_session(sessionmaker(...))` (for AsyncSession,
    `async_scoped_session(async_sessionmaker(...), scopefunc=current_task)`), which hands each
    thread or task its own session behind the same name. Calls like `session.add(...)` keep
    working; each thread now has its own transaction, which is the point, but a change of
    behaviour. Web applications should also call `session.remove()` at the end of each request.
    A registry called at import is replaced by the registry itself, which finds each thread's
    session when used: unsafe for the same reason.

    ## References
    - https://docs.sqlalchemy.org/en/20/orm/session_basics.html#is-the-session-thread-safe-is-asyncsession-safe-to-share-in-concurrent-tasks
    - https://docs.sqlalchemy.org/en/20/orm/contextual.html
    """

    code = "POL201"
    name = "module-level-session"
    fix_availability = "unsafe"
    quiet_in = ("test", "script")  # run once, shared with nothing
    message = ("{kind} made at import is shared by every {scope} and inherited by forked "
               "workers: concurrent use interleaves its transactions and shares one socket "
               "(SQLAlchemy: Session per thread, AsyncSession per task); use {scoped} or a "
               "session per request")
    registry_called = ("calling the {kind} registry {factory}() at import hands back the "
                       "importing {scope}'s session: every {scope} that uses this name shares it "
                       "(SQLAlchemy: Session per thread, AsyncSession per task); use the "
                       "registry itself, {factory}, which finds each {scope}'s session")
    invalid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import Session

            engine = create_engine("postgresql://app@db/app")
            session = Session(engine)
        ''', fixed='''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import scoped_session, sessionmaker

            engine = create_engine("postgresql://app@db/app")
            session = scoped_session(sessionmaker(engine))
        '''),
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import sessionmaker

            engine = create_engine("postgresql://app@db/app")
            SessionLocal = sessionmaker(bind=engine)
            db = SessionLocal()
        ''', fixed='''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import scoped_session, sessionmaker

            engine = create_engine("postgresql://app@db/app")
            SessionLocal = sessionmaker(bind=engine)
            db = scoped_session(SessionLocal)
        '''),
        Example('''
            from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            session = AsyncSession(engine, expire_on_commit=False)
        ''', fixed='''
            from asyncio import current_task

            from sqlalchemy.ext.asyncio import (async_scoped_session, async_sessionmaker,
                                                create_async_engine)

            engine = create_async_engine("postgresql+asyncpg://app@db/app")
            session = async_scoped_session(
                async_sessionmaker(engine, expire_on_commit=False),
                scopefunc=current_task,
            )
        '''),
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import scoped_session, sessionmaker

            Session = scoped_session(sessionmaker(create_engine("postgresql://app@db/app")))
            db_session = Session()
        ''', fixed='''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import scoped_session, sessionmaker

            Session = scoped_session(sessionmaker(create_engine("postgresql://app@db/app")))
            db_session = Session
        '''),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.orm import scoped_session, sessionmaker

            engine = create_engine("postgresql://app@db/app")
            SessionLocal = sessionmaker(bind=engine)
            session = scoped_session(SessionLocal)

            def handler():
                with SessionLocal() as request_session:
                    ...
        '''),
        Example('''
            import requests
            from flask import session

            http = requests.Session()

            def current_user():
                return session.get("user")
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        for made in facts.sessions:
            kind = "AsyncSession" if made.is_async else "Session"
            scope = "task" if made.is_async else "thread"
            scoped = "async_scoped_session(..., scopefunc=current_task)" if made.is_async \
                else "scoped_session(sessionmaker(...))"
            if made.registry:
                registry = "async_scoped_session" if made.is_async else "scoped_session"
                yield self.finding(made.node, self.registry_called.format(
                    kind=registry, factory=made.factory, scope=scope), Fix(UNSAFE, (
                        Edit(made.node, replace_with(cst.Name(made.factory))),)))
                continue
            yield self.finding(made.node,
                               self.message.format(kind=kind, scope=scope, scoped=scoped),
                               self._fix(made, facts))

    def _fix(self, made: ModuleSession, facts: ModuleFacts) -> Fix | None:
        imports = []

        def ref(qualified: str) -> str:
            spelling, needed = facts.imports.reference(qualified)
            if needed:
                imports.append(needed)
            return spelling

        module = "sqlalchemy.ext.asyncio" if made.is_async else "sqlalchemy.orm"
        prefix = "async_" if made.is_async else ""
        code = cst.Module([])
        if made.factory is not None:
            if made.node.args:
                return None  # SessionLocal(bind=...): the arguments have no scoped form
            factory = made.factory
        elif made.maker is not None:
            if made.node.args:
                return None
            factory = code.code_for_node(made.maker)
        else:
            arguments = list(made.node.args)
            if made.session_class and made.session_class.startswith("sqlmodel"):
                # keep sqlmodel's Session subclass: sessionmaker(..., class_=Session)
                arguments.append(cst.Arg(made.node.func, keyword=cst.Name("class_")))
            maker = cst.Call(parse_expression(ref(f"{module}.{prefix}sessionmaker")),
                             args=_comma_separated(arguments))
            factory = code.code_for_node(maker)
        scoped = ref(f"{module}.{prefix}scoped_session")
        if made.is_async:
            replacement = f"{scoped}({factory}, scopefunc={ref('asyncio.current_task')})"
        else:
            replacement = f"{scoped}({factory})"
        return Fix(UNSAFE, (Edit(made.node, replace_with(parse_expression(replacement))),),
                   tuple(imports))


def _comma_separated(arguments: list[cst.Arg]) -> list[cst.Arg]:
    """Arguments with `, ` between them and nothing after the last."""
    spaced = [arg.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
              for arg in arguments[:-1]]
    return spaced + [arguments[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)] \
        if arguments else []
