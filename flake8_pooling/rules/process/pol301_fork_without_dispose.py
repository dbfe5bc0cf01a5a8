"""POL301 fork-without-dispose: forked workers inherit the master's engines and nothing
disposes them (gunicorn config files, uWSGI ini files)."""

from __future__ import annotations

import configparser
import textwrap
from collections.abc import Iterator

import libcst as cst

from ...analysis.facts import ModuleFacts
from ...findings import SAFE, Edit, Finding, Fix
from ...vocabulary import CHILD_INIT_HOOKS
from ..base import Example, Rule
from ..pools import fresh_pool

# Hooks where disposing engines keeps workers from sharing the master's connections: before the
# fork in the master (fact 2, approach 3) or first thing in the worker (approach 2)
_DISPOSING_HOOKS = set(CHILD_INIT_HOOKS) | {"pre_fork", "when_ready", "on_starting"}
_HOOK_COMMENT = """\
# Workers inherit the master's engines: drop their pooled connections without closing
# them, which would break the master's (SQLAlchemy docs: "Using Connection Pools with
# Multiprocessing or os.fork()")."""
# a project whose myapp/db.py makes an engine at import, for the uWSGI examples
_PROJECT = {"pyproject.toml": "", "myapp/__init__.py": "", "myapp/db.py": (
    "from sqlalchemy import create_engine\n"
    "engine = create_engine('postgresql://app@db/app')\n")}


class ForkWithoutDispose(Rule):
    """
    ## What it does
    Finds gunicorn config files whose workers inherit the master's engines, because
    `preload_app = True` or because the config file itself imports application modules at top
    level (gunicorn executes it in the master, before any fork), while no hook disposes the
    engines: neither `post_fork`/`post_worker_init` in the worker nor `pre_fork`/`when_ready`
    in the master. Quiet when the project creates no engine, and for one sync worker
    (`workers = 1`, no threads): one process at a time uses what it inherited.

    uWSGI forks the other way round: it loads the application in the master unless `lazy-apps`
    is set, so a `[uwsgi]` ini file without `lazy-apps = true` is reported too, unless a
    `@postfork` function of the project disposes the engines.

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
    reads = ("*.ini",)  # uWSGI's config: flake8 never sees it, `flake8-pooling check` does
    message = ("gunicorn workers inherit the master's engines ({why}) and no hook disposes "
               "them: workers share its pooled connections ('SSL error: decryption failed or "
               "bad record mac', 'server closed the connection unexpectedly'); add a post_fork "
               "hook that calls engine.dispose(close=False){hint}")
    no_engines_hint = "; set pooling-engines = module:engine so the fix can write it"
    uwsgi_message = (
        "uWSGI loads the application in the master and forks workers that inherit its engines "
        "(no lazy-apps), and no @postfork function disposes them: workers share its pooled "
        "connections ('SSL error: decryption failed or bad record mac'); set lazy-apps = true, "
        "or add a @postfork function that calls engine.dispose(close=False)")
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
        Example('''
            [uwsgi]
            module = myapp.wsgi:application
            master = true
            processes = 4
        ''', path="uwsgi.ini", project=_PROJECT),
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
        Example('''
            [uwsgi]
            module = myapp.wsgi:application
            processes = 4
            lazy-apps = true
        ''', path="uwsgi.ini", project=_PROJECT),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        config = facts.gunicorn
        if config is None:
            return
        inherits = self.context.gunicorn_inheritance(facts)
        if inherits is None or self.context.single_worker(facts):
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
        hint = "" if fix else self.no_engines_hint
        yield self.finding(node, self.message.format(why=why, hint=hint), fix)

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
        lines += [fresh_pool(f"{local}.sync_engine" if is_async else local, version)
                  for _, _, local, is_async in imported]
        if flask is not None:
            lines += [f"with {app.name}.app_context():",
                      f"    for engine in {database.name}.engines.values():",
                      f"        {fresh_pool('engine', version)}"]
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

    def check_file(self, text: str) -> Iterator[Finding]:
        """A uWSGI ini file. uWSGI loads the application in the master and forks the workers
        from it unless `lazy-apps` is set (fact 64: the opposite of gunicorn's default), so
        module-level engines are inherited unless a @postfork function (fact 65) disposes them.
        """
        if "[uwsgi]" not in text.lower():
            return
        parser = configparser.RawConfigParser(strict=False, inline_comment_prefixes=(";", "#"))
        try:
            parser.read_string(text)
        except configparser.Error:
            return
        section = next((name for name in parser.sections() if name.lower() == "uwsgi"), None)
        if section is None:
            return
        values = {key.replace("_", "-").lower(): value.strip().lower()
                  for key, value in parser.items(section)}
        if values.get("lazy-apps") in ("true", "1", "yes", "on"):
            return  # each worker loads the application itself, after its fork
        project = self.context.project
        if not project.of_kind("engine", "async_engine", "flask_sqlalchemy") \
                or project.of_kind("postfork_disposal"):
            return
        line = next((number for number, content in enumerate(text.splitlines(), start=1)
                     if content.strip().lower() == f"[{section.lower()}]"), 1)
        yield Finding(self.code, self.uwsgi_message, None, line=line)
