"""POL112 memory-sqlite-across-threads: a `:memory:` database that each thread sees empty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath

import libcst as cst

from ...analysis.facts import ModuleFacts
from ...findings import SAFE, Edit, Fix, set_nested_option, set_option
from ..base import Example, Rule
from ..pools import class_reference, pool_class

# What puts the engine's work on other threads: threads, thread pools, and the FastAPI and
# Starlette test clients, which run the application (and sync endpoints) on worker threads
THREAD_MODULES = ("threading", "threading.Thread", "concurrent.futures",
                  "concurrent.futures.ThreadPoolExecutor", "multiprocessing.pool.ThreadPool",
                  "multiprocessing.dummy", "fastapi.testclient.TestClient",
                  "starlette.testclient.TestClient")
TEST_CLIENT = "TestClient"
# what a function calls to put its work on other threads
THREAD_STARTERS = ("TestClient", "Thread", "ThreadPoolExecutor", "ThreadPool", "run_in_executor",
                   "to_thread")


class MemorySqliteAcrossThreads(Rule):
    """
    ## What it does
    Finds SQLite memory engines (`sqlite://`, `sqlite:///:memory:`) left on their default
    SingletonThreadPool, or given a queue pool, in code that uses other threads: a module that
    imports `threading`, `concurrent.futures` or a thread pool, or FastAPI's or Starlette's
    `TestClient`, and a `conftest.py` of a project whose tests use that test client. An
    engine made inside a test or fixture counts only when that function starts the threads
    (`TestClient(app)`, `Thread(...)`, an executor) or lives in a `conftest.py`.

    ## Why is this bad?
    A memory database exists only inside the one DBAPI connection that made it. The default
    SingletonThreadPool gives each thread its own connection, so a thread other than the one
    that created the tables sees a new, empty database and fails with
    `sqlite3.OperationalError: no such table: users` (fact 103). FastAPI's `TestClient` runs
    the application on another thread, and sync endpoints on a thread pool, which is why tests
    that pass with a file database fail with `sqlite://`.

    ## Fix safety
    Safe: `poolclass=StaticPool` with `connect_args={"check_same_thread": False}` (the recipe
    of SQLAlchemy's and FastAPI's docs) makes every thread use the one connection, and so the
    one database. That connection serves one thread at a time, which fits tests; code that
    really runs queries concurrently wants a file or a shared-cache database
    (`sqlite:///file::memory:?cache=shared&uri=true`) instead.

    ## References
    - https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#using-a-memory-database-in-multiple-threads
    - https://fastapi.tiangolo.com/how-to/testing-database/
    """

    code = "POL112"
    name = "memory-sqlite-across-threads"
    fix_availability = "safe"
    message = ("SQLite memory database on {pool} used from other threads ({evidence}): each "
               "connection has its own empty database, so other threads fail with "
               "'sqlite3.OperationalError: no such table'; use poolclass=StaticPool with "
               "connect_args={{'check_same_thread': False}}")
    invalid = (
        Example('''
            from fastapi.testclient import TestClient
            from sqlalchemy import create_engine

            engine = create_engine("sqlite://")
        ''', fixed='''
            from fastapi.testclient import TestClient
            from sqlalchemy import create_engine
            from sqlalchemy.pool import StaticPool

            engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
        ''', path="tests/conftest.py"),
    )
    valid = (
        Example('''
            from fastapi.testclient import TestClient
            from sqlalchemy import create_engine
            from sqlalchemy.pool import StaticPool

            engine = create_engine(
                "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
            )
        ''', path="tests/conftest.py"),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite://")  # one thread: the default pool is right
        ''', path="tests/conftest.py", project={"requirements.txt": "sqlalchemy\n"}),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        evidence = None
        for engine in facts.engines:
            url = self.context.url(engine)
            if url is None or not url.is_sqlite_memory or url.driver == "aiosqlite":
                continue  # aiosqlite memory engines get StaticPool (fact 103)
            pool = pool_class(engine, self.context)
            if pool not in ("SingletonThreadPool", "QueuePool"):
                continue
            evidence = evidence if evidence is not None else self._threads(facts)
            if engine.lifetime is not None and not self._conftest:
                # made in a test or fixture: the threads must be started there too
                code = cst.Module([]).code_for_node(engine.lifetime.function.node)
                if not any(f"{name}(" in code for name in THREAD_STARTERS):
                    continue
            if not evidence:
                continue
            yield self.finding(engine.node, self.message.format(pool=pool, evidence=evidence),
                               self._fix(engine, facts))

    @property
    def _conftest(self) -> bool:
        return bool(self.context.path) and PurePath(self.context.path).name == "conftest.py"

    def _threads(self, facts: ModuleFacts) -> str:
        for qualified in sorted(facts.imports.bound_modules()):
            if qualified in THREAD_MODULES:
                return f"it imports {qualified}"
        # a conftest's engine serves the test modules beside it
        if self._conftest and self.context.project.texts_mentioning(f"import {TEST_CLIENT}"):
            return f"the project's tests use {TEST_CLIENT}"
        return ""

    @staticmethod
    def _fix(engine, facts: ModuleFacts) -> Fix | None:
        site = engine.options_site
        if site is None or "poolclass" in engine.options:
            return None
        option = engine.options.get("connect_args")
        if option is not None and not isinstance(option.value_node, cst.Dict):
            return None
        reference, imports = class_reference(facts, "StaticPool")
        name = option.key if option is not None else "connect_args"
        target = option.container if option is not None else site
        edits = [Edit(site, lambda node: set_option(node, "poolclass", reference))]
        edits.append(Edit(target, lambda node: set_nested_option(
            node, name, "check_same_thread", cst.Name("False"))))
        return Fix(SAFE, tuple(edits), imports)
