"""POL301 fork-without-dispose: forked workers inherit the master's engines and nothing
disposes them (gunicorn config files, uWSGI ini files)."""

from __future__ import annotations

import configparser
import textwrap
from collections.abc import Iterator

import libcst as cst

from pathlib import Path

from ...analysis.facts import ModuleFacts
from ...findings import SAFE, Edit, Finding, Fix
from ...vocabulary import (COMMAND_FILES, FLASK_SQLALCHEMY, SCOPED_SESSIONS, SESSION_MAKERS,
                           canonical)
from ..base import Example, Rule
from ..pools import disposal_lines

# The hook's comment, wrapped to fit flake8's default 79 columns once indented in the hook
_HOOK_COMMENT = textwrap.fill(
    "Workers inherit the master's engines: drop their pooled connections without closing "
    "them, which would break the master's (SQLAlchemy docs: \"Using Connection Pools with "
    "Multiprocessing or os.fork()\").",
    width=75, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)
# a project whose myapp/db.py makes an engine at import, for the uWSGI examples
_PROJECT = {"pyproject.toml": "", "myapp/__init__.py": "", "myapp/db.py": (
    "from sqlalchemy import create_engine\n"
    "engine = create_engine('postgresql://app@db/app')\n")}


_CELERY_COMMENT = """\
# Prefork children inherit the engines the worker loaded: drop their pooled connections
# without closing them, which would break the parent's (SQLAlchemy docs: "Using
# Connection Pools with Multiprocessing or os.fork()")."""


class ForkWithoutDispose(Rule):
    """
    ## What it does
    Finds gunicorn config files whose workers inherit the master's engines, because
    `preload_app = True` or because the config file itself imports application modules at top
    level (gunicorn executes it in the master, before any fork), while no hook disposes the
    engines: neither `post_fork`/`post_worker_init` in the worker nor `pre_fork`/`when_ready`
    in the master. Quiet when the project creates no engine, and for one sync worker
    (`workers = 1`, no threads): one process at a time uses what it inherited.

    gunicorn started with `--preload` on a command line (a Procfile, a Dockerfile `CMD`, a
    compose `command:`, a shell script, `GUNICORN_CMD_ARGS`) is reported by
    `flake8-pooling check` at the command, and through flake8 at each module-level engine of
    the application, unless the config file the command uses disposes them or the application
    disposes them at import, after its set-up queries.

    uWSGI forks the other way round: it loads the application in the master unless `lazy-apps`
    is set, so a `[uwsgi]` ini file without `lazy-apps = true` is reported too, unless a
    `@postfork` function of the project disposes the engines.

    A Celery app is reported when its workers fork (the prefork pool, Celery's default, unless
    every worker command or the app's `worker_pool` picks `solo`, `threads`, `gevent` or
    `eventlet`), some application module runs SQL at import (so the parent holds a pooled
    connection when it forks), and no `worker_process_init` handler or `register_after_fork`
    callback disposes the engines. An engine nobody has connected yet is inherited empty, and
    is quiet.

    A `multiprocessing.Pool`, `Process` or `ProcessPoolExecutor` that forks (the default on
    Linux before Python 3.14, or a "fork" context) and has no `initializer` is reported when a
    function it runs uses an engine (or a session factory bound to one) that the parent used
    before forking, in the function that makes the pool or at import.

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
    `pooling-engines = myapp.db:engine`; until then the finding has no fix. For Celery, the fix
    adds a `worker_process_init` handler to the app's module that disposes the engines of the
    modules it imports. Findings on command lines have no fix.

    ## References
    - https://docs.sqlalchemy.org/en/20/core/pooling.html#using-connection-pools-with-multiprocessing-or-os-fork
    - https://docs.gunicorn.org/en/stable/settings.html#preload-app
    - https://docs.gunicorn.org/en/stable/settings.html#post-fork
    - https://docs.celeryq.dev/en/stable/userguide/signals.html#worker-process-init
    """

    code = "POL301"
    name = "fork-without-dispose"
    fix_availability = "safe"
    # uWSGI's config and the files that start gunicorn: flake8 never sees them, `check` does
    reads = ("*.ini", *COMMAND_FILES)
    message = ("gunicorn workers inherit the master's engines ({why}) and no hook disposes "
               "them: workers share its pooled connections ('SSL error: decryption failed or "
               "bad record mac', 'server closed the connection unexpectedly'); add a post_fork "
               "hook that calls engine.dispose(close=False){hint}")
    no_engines_hint = "; set pooling-engines = module:engine so the fix can write it"
    command_message = ("gunicorn workers inherit the master's engines ({why}) and no hook "
                       "disposes them: workers share its pooled connections ('SSL error: "
                       "decryption failed or bad record mac', 'server closed the connection "
                       "unexpectedly'); drop --preload, or add a post_fork hook to {config} "
                       "that calls engine.dispose(close=False)")
    engine_message = ("gunicorn workers inherit this engine ({why}) and no hook disposes it: "
                      "workers share the master's pooled connections ('SSL error: decryption "
                      "failed or bad record mac'); drop --preload, or add a post_fork hook to "
                      "{config} that calls engine.dispose(close=False)")
    pool_message = ("the processes this pool forks inherit {engine}, which {task}() uses, after "
                    "the parent has used it{where}: children share its pooled connections "
                    "('SSL error: decryption failed or bad record mac', 'server closed the "
                    "connection unexpectedly'); pass an initializer that disposes it with "
                    "dispose(close=False), or use a 'spawn' context")
    celery_message = ("Celery's prefork children inherit the engines this worker loads "
                      "({why}) and no worker_process_init handler disposes them: children "
                      "share the parent's pooled connections ('SSL error: decryption failed or "
                      "bad record mac', 'server closed the connection unexpectedly'); add a "
                      "worker_process_init handler that calls engine.dispose(close=False){hint}")
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
                # Workers inherit the master's engines: drop their pooled connections
                # without closing them, which would break the master's (SQLAlchemy docs:
                # "Using Connection Pools with Multiprocessing or os.fork()").
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
        yield from self._celery(facts)
        yield from self._process_pools(facts)
        yield from self._inherited_by_command(facts)
        config = facts.gunicorn
        if config is None:
            return
        inherits = self.context.gunicorn_inheritance(facts)
        if inherits is None or self.context.single_worker(facts):
            return
        node, why = inherits
        if self.context.hooks_dispose(facts):
            return
        engines, flask = self._engines()
        if not engines and flask is None:
            if self.context.settings.engines or not self._project_has_engines():
                return
        # an embedded application's hooks go into its options dict: no fix writes them there
        fix = None if config.embedded is not None else self._fix(facts, engines, flask)
        hint = "" if fix or config.embedded is not None else self.no_engines_hint
        yield self.finding(node, self.message.format(why=why, hint=hint), fix)

    def _process_pools(self, facts: ModuleFacts) -> Iterator[Finding]:
        """multiprocessing pools that fork (Linux before Python 3.14, or a "fork" context;
        fact 67) with no initializer, running a function that uses an engine the parent used
        before forking, in the same function or at import."""
        if not facts.forking_pools:
            return
        engines = self._engine_names(facts)
        here = self.context.shown_path
        at_import = bool(here) and any(obj.path == here
                                       for obj in self.context.project.queries_at_import)
        for pool in facts.forking_pools:
            parent = {engines[name] for name in pool.used_before if name in engines}
            for task, names in sorted(pool.tasks.items()):
                used = sorted({engines[name] for name in names if name in engines})
                before = [engine for engine in used if engine in parent]
                if used and (before or at_import):
                    yield self.finding(pool.node, self.pool_message.format(
                        engine=(before or used)[0], task=task,
                        where="" if before else " at import"))
                    break

    def _engine_names(self, facts: ModuleFacts) -> dict[str, str]:
        """Names this module binds to an engine, or to a session factory bound to one, ->
        the engine's name: made here at module level, or imported from the project."""
        module_engines = {id(engine.node) for engine in facts.engines
                          if engine.lifetime is None and engine.api is not FLASK_SQLALCHEMY}
        names = {name: name for name, value in facts.constants.items()
                 if id(value) in module_engines}
        objects = self.context.project.of_kind("engine", "async_engine", "lazy_engine",
                                               "session_factory") if self.context.path else []
        project = {f"{obj.module}.{obj.name}": obj for obj in objects}
        imported = {facts.imports.qualify(cst.Name(local)) or "": local
                    for local in facts.imports.local_names()}
        for qualified, local in imported.items():
            obj = project.get(qualified)
            if obj is None:
                continue
            if obj.kind != "session_factory":
                names[local] = local
                continue
            # the engine the factory binds, by the name it has here when it is imported too
            bind = obj.option("bind")
            engine = imported.get(f"{obj.module}.{bind}") if isinstance(bind, str) else None
            names[local] = engine or f"the engine of {local}"
        for name, value in facts.constants.items():
            if isinstance(value, cst.Call) and canonical(facts.imports.qualify(value.func) or "") \
                    in {*SESSION_MAKERS, *SCOPED_SESSIONS}:
                bound = [arg.value.value for arg in value.args
                         if isinstance(arg.value, cst.Name) and arg.value.value in names]
                if bound:
                    names[name] = names[bound[0]]
        return names

    def _command_lines(self) -> Iterator[Finding]:
        context = self.context
        if not context.path or not context.command_forks or not self._project_has_engines():
            return  # (in this order: most projects start no gunicorn with --preload)
        for command, why in context.command_forks:
            if context.shown_path and command.path == context.shown_path:
                yield Finding(self.code, self.command_message.format(
                    why=why, config=context.config_of(command)[0]), None, line=command.line)

    def _inherited_by_command(self, facts: ModuleFacts) -> Iterator[Finding]:
        """flake8 never reads the Procfile or Dockerfile that says --preload: the engines the
        master creates at import are reported where they are made."""
        if facts.gunicorn is not None or self.context.role_of(facts) != "application":
            return
        engines = [engine for engine in facts.engines
                   if engine.lifetime is None and engine.api is not FLASK_SQLALCHEMY]
        if not engines or not self.context.command_forks:
            return
        command, why = self.context.command_forks[0]
        config = self.context.config_of(command)[0]
        for engine in engines:
            yield self.finding(engine.node, self.engine_message.format(why=why, config=config))

    def _celery(self, facts: ModuleFacts) -> Iterator[Finding]:
        """A Celery app whose prefork children inherit a connection the worker opened at
        import (facts 7, 66, 101); reported at the app, where the fix adds the handler."""
        if not facts.celery_apps or self.context.role_of(facts) != "application":
            return
        if any(code.origin.startswith("Celery") and (code.disposals or code.opaque_calls)
               for code in facts.child_code):
            return  # this module's own handler (the project scan reads the file on disk)
        why = self.context.celery_forks()
        if why is None or not (self._project_has_engines() or facts.engines):
            return
        engines, flask = self._engines()
        fix = self._celery_fix(facts, engines, flask)
        hint = "" if fix else self.no_engines_hint
        yield self.finding(facts.celery_apps[0].node,
                           self.celery_message.format(why=why, hint=hint), fix)

    def _celery_fix(self, facts: ModuleFacts, engines, flask) -> Fix | None:
        """A worker_process_init handler in the Celery app's module (fact 66): it runs in every
        prefork child, before the first task."""
        own = self.context.project.module_name(Path(self.context.path).absolute()) \
            if self.context.path else ""
        # only engines of modules the app module imports: the handler must not import, in
        # every child, modules the worker never loads (the web application's)
        loaded = {own} | {name for name in facts.imports.bound_modules()}
        engines = [engine for engine in engines
                   if any(engine[0] == module or engine[0].startswith(f"{module}.")
                          or module.startswith(f"{engine[0]}.") for module in loaded)]
        if flask is not None and not all(
                any(obj.module == module or module.startswith(f"{obj.module}.")
                    for module in loaded) for obj in flask):
            flask = None
        lines = disposal_lines(engines, flask, self.context.sqlalchemy_version, own)
        if not lines:
            return None
        body = textwrap.indent("\n".join(lines), "    ").replace("    \n", "\n")
        comment = textwrap.indent(_CELERY_COMMENT, "    ")
        handler = cst.parse_statement(
            f"@worker_process_init.connect\ndef dispose_inherited_engines(**kwargs):\n"
            f"{comment}\n{body}\n")
        handler = handler.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
        imported = facts.imports.qualify(cst.Name("worker_process_init")) \
            == "celery.signals.worker_process_init"
        return Fix(SAFE, (Edit(facts.module, lambda module: module.with_changes(
            body=[*module.body, handler])),),
            () if imported else (("celery.signals", "worker_process_init"),))

    def _project_has_engines(self) -> bool:
        project = self.context.project
        return bool(project.of_kind("engine", "async_engine", "lazy_engine",
                                    "flask_sqlalchemy"))

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
        lines = disposal_lines(engines, flask, self.context.sqlalchemy_version,
                               bound=_imported_at_module_level(facts.module))
        if not lines:
            return None
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
        A file that starts gunicorn with --preload is reported at the command.
        """
        yield from self._command_lines()
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


def _imported_at_module_level(module: cst.Module) -> frozenset[str]:
    """`module.name` for each `from module import name` at the top of the file: a hook uses
    those names as they are (a function's own imports are its own)."""
    bound = set()
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for part in statement.body:
            if isinstance(part, cst.ImportFrom) and part.module is not None \
                    and not part.relative and not isinstance(part.names, cst.ImportStar):
                source = cst.Module([]).code_for_node(part.module)
                bound |= {f"{source}.{alias.evaluated_name}" for alias in part.names
                          if alias.asname is None}
    return frozenset(bound)
