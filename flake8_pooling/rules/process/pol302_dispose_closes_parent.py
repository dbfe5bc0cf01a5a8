"""POL302 dispose-closes-parent: plain dispose() in a forked child closes the parent's
connections."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import libcst as cst

from ...analysis.facts import ChildCode, Disposal, ModuleFacts
from ...analysis.values import UNKNOWN
from ...findings import SAFE, Edit, Fix, set_option
from ...settings import version_text
from ..base import Example, Rule
from ..pools import DISPOSE_CLOSE_VERSION, fresh_pool


class DisposeClosesParent(Rule):
    """
    ## What it does
    Finds `engine.dispose()` without `close=False` in code that runs in a forked child just after
    the fork: gunicorn `post_fork` and `post_worker_init`, Celery `worker_process_init`
    handlers, uWSGI `@postfork` functions, `os.register_at_fork(after_in_child=...)` (including
    `after_in_child=engine.dispose`), process-pool initializers when the pool forks (the
    default on Linux before Python 3.14; `spawn` and `forkserver` contexts do not fork), and
    the branch of a pid check that finds the process is a fork (`if self._pid !=
    os.getpid():`, the recipe of fact 3). A call there of a method of the same class, or a
    function of the module, whose body disposes plainly is reported at the call, without a
    fix (the helper is where `close=False` goes).
    Parent-side hooks (`pre_fork`, `when_ready`, `on_starting`) are the documented place for a
    plain `dispose()` and are not reported; neither are later worker hooks such as `worker_exit`,
    by which time the worker's connections are its own, nor gunicorn's hooks when the workers
    inherit nothing (no `preload_app`, and the config imports only the standard library).

    ## Why is this bad?
    The child inherited the parent's sockets. Plain `dispose()` closes them, which ends the
    server sessions the parent is still using: the parent's next query fails with
    `server closed the connection unexpectedly`. The advice to call `dispose()` in the child
    comes from SQLAlchemy 1.3's docs; since 1.4.33 the docs recommend `dispose(close=False)`,
    which drops the pool without touching its connections (sqlalchemy#7815).

    ## Fix safety
    Safe: adds `close=False`. When the project targets SQLAlchemy before 1.4.33, where
    `dispose()` takes no `close` (TypeError), the statement becomes
    `engine.pool = engine.pool.recreate()`, the documented equivalent.

    ## References
    - https://docs.sqlalchemy.org/en/20/core/pooling.html#using-connection-pools-with-multiprocessing-or-os-fork
    - https://docs.sqlalchemy.org/en/20/core/connections.html#engine-disposal
    - https://github.com/sqlalchemy/sqlalchemy/issues/7815
    """

    code = "POL302"
    name = "dispose-closes-parent"
    fix_availability = "safe"
    message = ("dispose() in a {origin} closes connections the parent process still uses: its "
               "next query fails with 'server closed the connection unexpectedly'; use {advice}")
    recreate_advice = ("engine.pool = engine.pool.recreate() (dispose() takes no close= before "
                       "SQLAlchemy 1.4.33; targeting {version})")
    invalid = (
        Example('''
            # gunicorn.conf.py
            from myapp.db import engine

            workers = 4


            def post_fork(server, worker):
                engine.dispose()
        ''', fixed='''
            # gunicorn.conf.py
            from myapp.db import engine

            workers = 4


            def post_fork(server, worker):
                engine.dispose(close=False)
        ''', path="gunicorn.conf.py"),
        Example('''
            from celery.signals import worker_process_init

            from myapp.db import engine


            @worker_process_init.connect
            def reset_pool(**kwargs):
                engine.dispose()
        ''', fixed='''
            from celery.signals import worker_process_init

            from myapp.db import engine


            @worker_process_init.connect
            def reset_pool(**kwargs):
                engine.pool = engine.pool.recreate()
        ''', settings={"sqlalchemy-version": "1.4.20"}),
    )
    valid = (
        Example('''
            # gunicorn.conf.py
            from myapp.db import engine

            workers = 4


            def pre_fork(server, worker):
                engine.dispose()
        ''', path="gunicorn.conf.py"),
        Example('''
            import os

            from myapp.db import engine

            os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        version = self.context.sqlalchemy_version
        # gunicorn without preload_app whose config imports nothing but the standard library:
        # the workers load the app after the fork, so there are no parent's connections to close
        config = facts.gunicorn
        nothing_inherited = config is not None and config.preload is None and all(
            module.partition(".")[0] in sys.stdlib_module_names | {"gunicorn"}
            for _, module in config.imports)
        # post_fork already gave the worker an empty pool: by post_worker_init its connections
        # are its own, and a plain dispose() there closes nothing the master uses
        fresh = {cst.Module([]).code_for_node(disposal.receiver)
                 for code in facts.child_code if code.origin == "gunicorn post_fork hook"
                 for disposal in code.disposals if disposal.close is False}
        for code in facts.child_code:
            if code.side != "child" or (code.gunicorn_hook and nothing_inherited):
                continue
            if code.origin == "gunicorn post_worker_init hook":
                code = ChildCode(code.origin, code.side, [
                    disposal for disposal in code.disposals
                    if cst.Module([]).code_for_node(disposal.receiver) not in fresh])
            for disposal in code.disposals:
                if disposal.close is False or disposal.close is UNKNOWN:
                    continue
                origin = code.origin if disposal.helper is None else \
                    f"{code.origin}, through {disposal.helper},"
                yield self.finding(disposal.node, self.message.format(
                    origin=origin, advice=self._advice(version)),
                    None if disposal.helper else self._fix(disposal, version))

    def _advice(self, version: tuple[int, ...]) -> str:
        if version >= DISPOSE_CLOSE_VERSION:
            return "dispose(close=False)"
        return self.recreate_advice.format(version=version_text(version))

    @staticmethod
    def _fix(disposal: Disposal, version: tuple[int, ...]) -> Fix | None:
        receiver = cst.Module([]).code_for_node(disposal.receiver)
        if disposal.bound_method:  # after_in_child=engine.dispose
            if version < DISPOSE_CLOSE_VERSION:
                return None
            return Fix(SAFE, (Edit(disposal.node, lambda node: cst.parse_expression(
                f"lambda: {receiver}.dispose(close=False)")),))
        if version >= DISPOSE_CLOSE_VERSION:
            return Fix(SAFE, (Edit(disposal.node, lambda node: set_option(
                node, "close", cst.Name("False"))),))
        if disposal.statement is None:
            return None
        recreate = cst.parse_statement(fresh_pool(receiver, version)).body[0]
        return Fix(SAFE, (Edit(disposal.statement, lambda node: recreate),))
