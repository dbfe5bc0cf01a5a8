"""POL306 fork-hook-fails: code meant to protect forked workers that raises when it runs."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import libcst as cst

from ...analysis.facts import BootHazard, ModuleFacts
from ...findings import SAFE, UNSAFE, Edit, Fix, parse_expression
from ..base import Example, Rule
from ..pools import DISPOSE_CLOSE_VERSION, disposal_lines

_PROJECT = {"pyproject.toml": "", "app.py": (
    "from flask import Flask\n"
    "from flask_sqlalchemy import SQLAlchemy\n"
    "app = Flask(__name__)\n"
    "app.config['SQLALCHEMY_DATABASE_URI'] = 'postgresql://app@db/app'\n"
    "db = SQLAlchemy(app)\n")}
# The hook's comment, wrapped to fit flake8's default 79 columns once indented in the hook
_HOOK_COMMENT = textwrap.fill(
    "Workers inherit the master's engines: drop their pooled connections without closing "
    "them, which would break the master's (SQLAlchemy docs: \"Using Connection Pools with "
    "Multiprocessing or os.fork()\")."
    " Flask-SQLAlchemy 3 hands its engines out only inside an application context.",
    width=75, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)


class ForkHookFails(Rule):
    """
    ## What it does
    Finds code that raises when it runs, written to keep forked workers from sharing the
    master's connections:
    - in code that runs at worker boot (gunicorn's `post_fork` and `post_worker_init`, Celery
      `worker_process_init` handlers, uWSGI `@postfork` functions, process-pool initializers):
      Flask-SQLAlchemy 3's `db.engine`, `db.engines` or `db.session` outside
      `with app.app_context():`;
    - anywhere: `db.engine = ...` on a Flask-SQLAlchemy object, `engine.options` (an `Engine`
      has no such attribute), `create_engine(str(engine.url))` on SQLAlchemy 2.0 and later, and
      `dispose(close=False)` when the project targets SQLAlchemy before 1.4.33.

    ## Why is this bad?
    The hook raises in every worker, and gunicorn stops: `Worker failed to boot.` (exit status
    3). Flask-SQLAlchemy 3 raises `RuntimeError: Working outside of application context.`;
    `db.engine` is a read-only property (`AttributeError: property 'engine' of 'SQLAlchemy'
    object has no setter`); `AttributeError: 'Engine' object has no attribute 'options'`; from
    SQLAlchemy 2.0 `str(url)` writes the password as `***`, so the new engine cannot log in;
    before 1.4.33 `dispose()` takes no `close` (`TypeError`). These hooks are what a widely
    shared answer recommends.

    ## Fix safety
    Unsafe for a hook that uses Flask-SQLAlchemy outside an app context or assigns `db.engine`:
    the hook's body is replaced by the form POL301's fix writes (every engine of `db.engines`
    given an empty pool inside an app context, with `dispose(close=False)` or, before 1.4.33,
    `engine.pool = engine.pool.recreate()`); whatever else the body did is dropped, so read
    the diff. Safe for `str(engine.url)`, which becomes
    `engine.url.render_as_string(hide_password=False)`, and for `dispose(close=False)` on old
    SQLAlchemy, which becomes `engine.pool = engine.pool.recreate()`. No fix for
    `engine.options`.

    ## References
    - https://flask-sqlalchemy.readthedocs.io/en/stable/contexts/
    - https://docs.sqlalchemy.org/en/20/core/pooling.html#using-connection-pools-with-multiprocessing-or-os-fork
    - https://docs.sqlalchemy.org/en/20/core/engines.html#sqlalchemy.engine.URL.render_as_string
    - https://docs.gunicorn.org/en/stable/settings.html#post-fork
    """

    code = "POL306"
    name = "fork-hook-fails"
    level = "error"
    quiet_in = ("test",)  # tests run against the versions installed with them
    fix_availability = "safe or unsafe"
    outside_context = ("Flask-SQLAlchemy 3 raises 'RuntimeError: Working outside of application "
                       "context' at {receiver}.{attribute} in this {origin}: every worker fails "
                       "to boot; dispose the engines of {receiver}.engines inside "
                       "app.app_context()")
    assigned = ("{receiver}.engine is a read-only property of Flask-SQLAlchemy ('AttributeError: "
                "property 'engine' of 'SQLAlchemy' object has no setter'); dispose the engines "
                "of {receiver}.engines with dispose(close=False) instead")
    options = ("an Engine has no attribute 'options' (AttributeError): the options it was made "
               "with are not kept; dispose the engine instead of rebuilding it")
    masked = ("since SQLAlchemy 2.0 str({receiver}.url) writes the password as '***', so this "
              "engine cannot log in; pass {receiver}.url itself, or "
              "{receiver}.url.render_as_string(hide_password=False)")
    close_false = ("dispose() takes no close= before SQLAlchemy 1.4.33 (TypeError; this project "
                   "targets {version}); use {receiver}.pool = {receiver}.pool.recreate()")
    invalid = (
        Example('''
            # gunicorn.conf.py
            workers = 4
            preload_app = True


            def post_fork(server, worker):
                from app import db

                db.engine.dispose(close=False)
        ''', fixed='''
            # gunicorn.conf.py
            workers = 4
            preload_app = True


            def post_fork(server, worker):
                # Workers inherit the master's engines: drop their pooled connections
                # without closing them, which would break the master's (SQLAlchemy docs:
                # "Using Connection Pools with Multiprocessing or os.fork()").
                # Flask-SQLAlchemy 3 hands its engines out only inside an application
                # context.
                from app import app, db

                with app.app_context():
                    for engine in db.engines.values():
                        engine.dispose(close=False)
        ''', path="gunicorn.conf.py", project=_PROJECT),
        Example('''
            from sqlalchemy import create_engine

            from myapp.db import engine

            replica = create_engine(str(engine.url), pool_size=2)
        ''', fixed='''
            from sqlalchemy import create_engine

            from myapp.db import engine

            replica = create_engine(engine.url.render_as_string(hide_password=False), pool_size=2)
        '''),
    )
    valid = (
        Example('''
            # gunicorn.conf.py
            workers = 4
            preload_app = True


            def post_fork(server, worker):
                from app import app, db

                with app.app_context():
                    for engine in db.engines.values():
                        engine.dispose(close=False)
        ''', path="gunicorn.conf.py", project=_PROJECT),
        Example('''
            from sqlalchemy import create_engine

            from myapp.db import engine

            replica = create_engine(engine.url, pool_size=2)
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        if not facts.boot.hazards:
            return  # the project's Flask-SQLAlchemy objects need not be looked for
        boot = {code.function: code.origin for code in facts.child_code
                if code.side == "child" and code.function is not None}
        flask = self._flask_objects()
        fixed: set = set()  # functions whose body a fix already rewrites
        reported: set = set()  # functions already reported outside a context: once each
        for hazard in facts.boot.hazards:
            if hazard.kind == "flask_outside_context":
                origin = boot.get(hazard.function)
                if origin is None or facts.boot.context_pushed_at_import \
                        or hazard.function in reported \
                        or self._qualified(hazard) not in flask \
                        or self.context.flask_sqlalchemy_version < (3,):
                    continue
                reported.add(hazard.function)
                attribute = cst.Module([]).code_for_node(hazard.node).rpartition(".")[2]
                yield self.finding(hazard.node, self.outside_context.format(
                    receiver=hazard.receiver, attribute=attribute,
                    origin=origin.removeprefix("gunicorn ")),
                    self._rewrite(facts, hazard, fixed))
            elif hazard.kind == "engine_assigned":
                if self._qualified(hazard) in flask:
                    yield self.finding(hazard.node, self.assigned.format(
                        receiver=hazard.receiver), self._rewrite(facts, hazard, fixed)
                        if hazard.function in boot else None)
            elif hazard.kind == "engine_options" or (
                    hazard.kind == "options_read" and self._is_engine(hazard, flask)):
                yield self.finding(hazard.node, self.options)
            elif hazard.kind == "masked_url":
                if self.context.sqlalchemy_version >= (2,):
                    yield self.finding(hazard.node, self.masked.format(receiver=hazard.receiver),
                                       self._unmask(hazard))
            elif hazard.kind == "close_false":
                version = self.context.sqlalchemy_version
                if version < DISPOSE_CLOSE_VERSION and hazard.receiver:
                    yield self.finding(hazard.node, self.close_false.format(
                        receiver=hazard.receiver, version=".".join(map(str, version))),
                        self._recreate(facts, hazard))

    def _flask_objects(self) -> set[str]:
        """Qualified names of the project's Flask-SQLAlchemy objects (`app.extensions.db`)."""
        if not self.context.path:
            return set()
        return {f"{obj.module}.{obj.name}"
                for obj in self.context.project.of_kind("flask_sqlalchemy")}

    def _is_engine(self, hazard: BootHazard, flask: set[str]) -> bool:
        """`db.engine` of a Flask-SQLAlchemy object, or an engine the project creates."""
        qualified = self._qualified(hazard)
        owner, _, attribute = qualified.rpartition(".")
        engines = {f"{obj.module}.{obj.name}" for obj in self.context.project.of_kind(
            "engine", "async_engine", "lazy_engine")} if self.context.path else set()
        return qualified in engines or (attribute == "engine" and owner in flask)

    def _qualified(self, hazard: BootHazard) -> str:
        if hazard.qualified:
            return hazard.qualified
        module = self.context.project.module_name(Path(self.context.path).absolute()) \
            if self.context.path else ""
        return f"{module}.{hazard.receiver}"

    def _rewrite(self, facts: ModuleFacts, hazard: BootHazard, fixed: set) -> Fix | None:
        """The hook's body, replaced by POL301's form for Flask-SQLAlchemy (fact 72)."""
        function = hazard.function
        if function is None or function in fixed:
            return None
        project = self.context.project
        qualified = self._qualified(hazard)
        database = next((obj for obj in project.of_kind("flask_sqlalchemy")
                         if f"{obj.module}.{obj.name}" == qualified), None)
        app = next((obj for obj in project.of_kind("flask_app")
                    if database is not None and obj.module == database.module), None) \
            or next(iter(project.of_kind("flask_app")), None)
        if database is None or app is None:
            return None
        lines = disposal_lines([], (database, app), self.context.sqlalchemy_version)
        fixed.add(function)
        text = textwrap.indent(_HOOK_COMMENT + "\n" + "\n".join(lines), "    ")
        text = text.replace("    \n", "\n")
        body = cst.parse_statement(f"def _():\n{text}\n").body

        def edit(node: cst.FunctionDef) -> cst.FunctionDef:
            return node.with_changes(body=body)

        return Fix(UNSAFE, (Edit(function.node, edit),))

    @staticmethod
    def _unmask(hazard: BootHazard) -> Fix:
        replacement = parse_expression(
            f"{hazard.receiver}.url.render_as_string(hide_password=False)")
        return Fix(SAFE, (Edit(hazard.node, lambda node: replacement),))

    @staticmethod
    def _recreate(facts: ModuleFacts, hazard: BootHazard) -> Fix | None:
        """`engine.dispose(close=False)` standing alone becomes the pre-1.4.33 equivalent."""
        statement = next((disposal.statement for code in facts.child_code
                          for disposal in code.disposals if disposal.node is hazard.node), None)
        if statement is None:
            return None
        receiver = hazard.receiver
        replacement = cst.parse_statement(f"{receiver}.pool = {receiver}.pool.recreate()")
        return Fix(SAFE, (Edit(statement, lambda node: replacement.body[0]),))
