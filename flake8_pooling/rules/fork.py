"""Fork rules (POL3xx): engines inherited by forked workers, and the hooks that dispose them.

Facts cited as (domain N) are in the project's fact sheet.
"""

from __future__ import annotations

import configparser
import textwrap
from collections.abc import Iterator

import libcst as cst

from ..analysis.facts import ModuleFacts
from ..analysis.forks import (CHILD_INIT_HOOKS, GUNICORN_HOOKS, GUNICORN_SETTINGS, Disposal,
                              near_hooks)
from ..analysis.values import UNKNOWN
from ..findings import SAFE, Edit, Finding, Fix, set_option
from ..settings import version_text
from .base import Example, Rule

# Engine.dispose(close=...) exists from 1.4.33; before, pool.recreate() does the same (domain 4-5)
DISPOSE_CLOSE_VERSION = (1, 4, 33)
# Hooks where disposing engines keeps workers from sharing the master's connections: before the
# fork in the master (domain 2, approach 3) or first thing in the worker (approach 2)
_DISPOSING_HOOKS = set(CHILD_INIT_HOOKS) | {"pre_fork", "when_ready", "on_starting"}
_HOOK_COMMENT = """\
# Workers inherit the master's engines: drop their pooled connections without closing
# them, which would break the master's (SQLAlchemy docs: "Using Connection Pools with
# Multiprocessing or os.fork()")."""


def _fresh_pool(engine: str, version: tuple[int, ...]) -> str:
    if version >= DISPOSE_CLOSE_VERSION:
        return f"{engine}.dispose(close=False)"
    return f"{engine}.pool = {engine}.pool.recreate()"


class ForkWithoutDispose(Rule):
    """
    ## What it does
    Finds gunicorn config files whose workers inherit the master's engines, because
    `preload_app = True` or because the config file itself imports application modules at top
    level (gunicorn executes it in the master, before any fork), while no hook disposes the
    engines: neither `post_fork`/`post_worker_init` in the worker nor `pre_fork`/`when_ready`
    in the master. Quiet when the project creates no engine.

    ## Why is this bad?
    A pooled connection opened in the master before the fork is a socket every worker then
    shares. SQLAlchemy's docs: "It's critical that when using a connection pool ... the pooled
    connections are not shared to a forked process". The symptoms arrive under concurrent load:
    "SSL error: decryption failed or bad record mac", "error with status PGRES_TUPLES_OK and
    no message from the libpq", or one worker's queries answering another's.

    ## Fix safety
    Safe: adds a `post_fork(server, worker)` hook (or extends the one there) that disposes the
    project's engines with `close=False`, so each worker starts with an empty pool and leaves
    the master's connections alone; on SQLAlchemy before 1.4.33 it writes
    `engine.pool = engine.pool.recreate()`. With Flask-SQLAlchemy 3 it disposes every engine of
    `db.engines` inside an app context. The engines are imported inside the hook, so the config
    file does not import the application in the master. Where the engines cannot be found, set
    `pooling-engines = myapp.db:engine`; until then the finding has no fix.

    ## References
    - https://docs.sqlalchemy.org/en/20/core/pooling.html#using-connection-pools-with-multiprocessing-or-os-fork
    - https://docs.gunicorn.org/en/stable/settings.html#preload-app
    - https://docs.gunicorn.org/en/stable/settings.html#post-fork
    """

    code = "POL301"
    name = "fork-without-dispose"
    fix_availability = "safe"
    invalid = (
        Example('''
            # gunicorn.conf.py, in a project whose myapp/db.py creates `engine` at import
            bind = "0.0.0.0:8000"
            workers = 4
            preload_app = True
        ''', fixed='''
            # gunicorn.conf.py, in a project whose myapp/db.py creates `engine` at import
            bind = "0.0.0.0:8000"
            workers = 4
            preload_app = True


            def post_fork(server, worker):
                # Workers inherit the master's engines: drop their pooled connections without closing
                # them, which would break the master's (SQLAlchemy docs: "Using Connection Pools with
                # Multiprocessing or os.fork()").
                from myapp.db import engine

                engine.dispose(close=False)
        ''', settings={"engines": "myapp.db:engine"}, path="gunicorn.conf.py"),
    )
    valid = (
        Example('''
            # gunicorn.conf.py
            workers = 4
            preload_app = True


            def post_fork(server, worker):
                from myapp.db import engine

                engine.dispose(close=False)
        ''', settings={"engines": "myapp.db:engine"}, path="gunicorn.conf.py"),
        Example('''
            # gunicorn.conf.py: the application is loaded in each worker, after the fork
            workers = 4
            preload_app = False
        ''', settings={"engines": "myapp.db:engine"}, path="gunicorn.conf.py"),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        config = facts.gunicorn
        if config is None:
            return
        inherits = self._inheritance(facts)
        if inherits is None:
            return
        node, why = inherits
        disposing = {code.origin for code in facts.child_code
                     if code.disposals or code.opaque_calls}
        if any(f"gunicorn {hook} hook" in disposing for hook in _DISPOSING_HOOKS):
            return
        engines, flask = self._engines()
        if not engines and flask is None:
            if self.context.settings.engines or not self._project_has_engines():
                return
        fix = self._fix(facts, engines, flask)
        hint = "" if fix else "; set pooling-engines = module:engine so the fix can write it"
        yield self.finding(
            node,
            f"gunicorn workers inherit the master's engines ({why}) and no hook disposes them: "
            f"workers share its pooled connections ('SSL error: decryption failed or bad record "
            f"mac', 'server closed the connection unexpectedly'); add a post_fork hook that "
            f"calls engine.dispose(close=False){hint}", fix)

    def _inheritance(self, facts: ModuleFacts) -> tuple[cst.CSTNode, str] | None:
        config = facts.gunicorn
        if config.preload is not None:
            return config.preload, "preload_app = True"
        own = self.context.path.replace("\\", "/").rpartition("/")[2].removesuffix(".py")
        top_level = self.context.project.top_level - {own, "gunicorn"}
        for node, module in config.imports:
            if module.partition(".")[0] in top_level:
                return node, f"the config file imports {module} in the master"
        return None

    def _project_has_engines(self) -> bool:
        project = self.context.project
        return bool(project.of_kind("engine", "async_engine", "flask_sqlalchemy"))

    def _engines(self) -> tuple[list[tuple[str, str, bool]], tuple | None]:
        """Engines to dispose as (module, name, is_async), or Flask-SQLAlchemy's (db, app)."""
        configured = [(module, name, False) for module, name in self.context.settings.engines]
        if configured:
            return configured, None
        project = self.context.project
        engines = [(obj.module, obj.name, obj.kind == "async_engine")
                   for obj in project.of_kind("engine", "async_engine")]
        databases, apps = project.of_kind("flask_sqlalchemy"), project.of_kind("flask_app")
        flask = (databases[0], apps[0]) if databases and apps else None
        return engines, flask

    def _fix(self, facts: ModuleFacts, engines: list[tuple[str, str, bool]],
             flask) -> Fix | None:
        version = self.context.sqlalchemy_version
        imported: list[tuple[str, str, str, bool]] = []  # module, name, local name, async
        for module, name, is_async in engines:
            clash = any(local == name for _, _, local, _ in imported)
            imported.append((module, name, f"{module.replace('.', '_')}_{name}" if clash
                             else name, is_async))
        lines = [f"from {module} import {name}" + (f" as {local}" if local != name else "")
                 for module, name, local, _ in imported]
        if flask is not None:
            database, app = flask
            lines += [f"from {app.module} import {app.name}",
                      f"from {database.module} import {database.name}"]
        if not lines:
            return None
        lines.append("")
        # AsyncEngine.dispose() is a coroutine: its sync_engine is disposed instead
        lines += [_fresh_pool(f"{local}.sync_engine" if is_async else local, version)
                  for _, _, local, is_async in imported]
        if flask is not None:
            lines += [f"with {app.name}.app_context():",
                      f"    for engine in {database.name}.engines.values():",
                      f"        {_fresh_pool('engine', version)}"]
        body = textwrap.indent("\n".join(lines), "    ").replace("    \n", "\n")
        existing = facts.gunicorn.hooks.get("post_fork")
        if existing is not None:
            # blank lines inside the hook stay empty, not indented
            statements = [statement.with_changes(leading_lines=[
                line.with_changes(indent=False) if line.comment is None else line
                for line in statement.leading_lines])
                for statement in cst.parse_module(textwrap.dedent(body)).body]
            return Fix(SAFE, (Edit(existing, lambda node: node.with_changes(
                body=node.body.with_changes(body=[*node.body.body, *statements]))),))
        comment = textwrap.indent(_HOOK_COMMENT, "    ")
        hook = cst.parse_statement(f"def post_fork(server, worker):\n{comment}\n{body}\n")
        hook = hook.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
        return Fix(SAFE, (Edit(facts.module, lambda module: module.with_changes(
            body=[*module.body, hook])),))


class DisposeClosesParent(Rule):
    """
    ## What it does
    Finds `engine.dispose()` without `close=False` in code that runs in a forked child just after
    the fork: gunicorn `post_fork` and `post_worker_init`, Celery `worker_process_init`
    handlers, uWSGI `@postfork` functions, `os.register_at_fork(after_in_child=...)` (including
    `after_in_child=engine.dispose`), and process-pool initializers when the pool forks (the
    default on Linux before Python 3.14; `spawn` and `forkserver` contexts do not fork).
    Parent-side hooks (`pre_fork`, `when_ready`, `on_starting`) are the documented place for a
    plain `dispose()` and are not reported; neither are later worker hooks such as `worker_exit`,
    by which time the worker's connections are its own.

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
        for code in facts.child_code:
            if code.side != "child":
                continue
            for disposal in code.disposals:
                if disposal.close is False or disposal.close is UNKNOWN:
                    continue
                yield self.finding(
                    disposal.node,
                    f"dispose() in a {code.origin} closes connections the parent process still "
                    f"uses: its next query fails with 'server closed the connection "
                    f"unexpectedly'; use {self._advice(version)}", self._fix(disposal, version))

    @staticmethod
    def _advice(version: tuple[int, ...]) -> str:
        if version >= DISPOSE_CLOSE_VERSION:
            return "dispose(close=False)"
        return f"engine.pool = engine.pool.recreate() (dispose() takes no close= before " \
               f"SQLAlchemy 1.4.33; targeting {version_text(version)})"

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
        recreate = cst.parse_statement(_fresh_pool(receiver, version)).body[0]
        return Fix(SAFE, (Edit(disposal.statement, lambda node: recreate),))


class GunicornHookSignature(Rule):
    """
    ## What it does
    Checks the module-level functions of gunicorn config files against gunicorn's server hooks:
    a name that is a near miss of a hook (`postfork`, `post_worker_int`, `prefork`), and a hook
    whose positional parameters do not match what gunicorn passes.

    ## Why is this bad?
    gunicorn skips names it does not know without a word ("Ignore unknown names"), so a
    misspelled `post_fork` never runs and the engines it was meant to dispose stay shared. A hook
    with the wrong number of positional parameters (defaults count, `*args` does not) stops
    gunicorn at start with `TypeError: Value must have an arity of: 2`.

    ## Fix safety
    Safe for a near miss: the function is renamed to the hook it was meant to be. No fix for a
    wrong arity: what the extra parameters were for is not in the code.

    ## References
    - https://docs.gunicorn.org/en/stable/settings.html#server-hooks
    """

    code = "POL303"
    level = "error"
    name = "gunicorn-hook-signature"
    fix_availability = "safe"
    invalid = (
        Example('''
            # gunicorn.conf.py
            workers = 4


            def postfork(server, worker):
                server.log.info("worker %s forked", worker.pid)
        ''', fixed='''
            # gunicorn.conf.py
            workers = 4


            def post_fork(server, worker):
                server.log.info("worker %s forked", worker.pid)
        ''', path="gunicorn.conf.py"),
        Example('''
            # gunicorn.conf.py
            workers = 4


            def post_fork(server, worker, engine=None):
                ...
        ''', path="gunicorn.conf.py"),
    )
    valid = (
        Example('''
            # gunicorn.conf.py
            workers = 4


            def post_fork(server, worker, *args):
                server.log.info("worker %s forked", worker.pid)


            def _log_config(server):
                ...
        ''', path="gunicorn.conf.py"),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        config = facts.gunicorn
        if config is None:
            return
        for function in config.functions:
            name = function.name.value
            positional = len(function.params.posonly_params) + len(function.params.params)
            if name in GUNICORN_HOOKS:
                arity = GUNICORN_HOOKS[name][0]
                if arity is not None and positional != arity:
                    yield self.finding(
                        function,
                        f"gunicorn rejects {name}() at start: it has {positional} positional "
                        f"parameters and gunicorn calls it with {arity} (TypeError: Value must "
                        f"have an arity of: {arity})")
                continue
            if name.startswith("_") or name in GUNICORN_SETTINGS:
                continue
            near = [hook for hook in near_hooks(name) if hook not in config.hooks]
            if not near:
                continue
            # renamed only when the intended hook is clear: worker_init could be either
            fix = Fix(SAFE, (Edit(function, lambda node, new=near[0]: node.with_changes(
                name=cst.Name(new))),)) if len(near) == 1 else None
            yield self.finding(
                function,
                f"gunicorn ignores unknown names: {name}() never runs; did you mean "
                f"{' or '.join(near)}?", fix)


def uwsgi_ini_findings(path: str, text: str, project) -> list:
    """POL301 for a uWSGI ini file (flake8 reads only Python; `flake8-pooling check` calls this).

    uWSGI loads the application in the master and forks the workers from it unless `lazy-apps`
    is set (domain 64: the opposite of gunicorn's default), so module-level engines are
    inherited unless a @postfork function (domain 65) disposes them.
    """
    parser = configparser.RawConfigParser(strict=False, inline_comment_prefixes=(";", "#"))
    try:
        parser.read_string(text)
    except configparser.Error:
        return []
    section = next((name for name in parser.sections() if name.lower() == "uwsgi"), None)
    if section is None:
        return []
    values = {key.replace("_", "-").lower(): value.strip().lower()
              for key, value in parser.items(section)}
    if values.get("lazy-apps") in ("true", "1", "yes", "on"):
        return []  # each worker loads the application itself, after its fork
    if not project.of_kind("engine", "async_engine", "flask_sqlalchemy") \
            or project.of_kind("postfork_disposal"):
        return []
    line = next((number for number, content in enumerate(text.splitlines(), start=1)
                 if content.strip().lower() == f"[{section.lower()}]"), 1)
    return [Finding(
        ForkWithoutDispose.code,
        "uWSGI loads the application in the master and forks workers that inherit its engines "
        "(no lazy-apps), and no @postfork function disposes them: workers share its pooled "
        "connections ('SSL error: decryption failed or bad record mac'); set lazy-apps = true, "
        "or add a @postfork function that calls engine.dispose(close=False)", None, line=line)]
