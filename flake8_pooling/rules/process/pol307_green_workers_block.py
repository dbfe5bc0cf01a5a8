"""POL307 green-workers-block: gevent workers whose database driver blocks every greenlet."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from ...analysis.facts import ModuleFacts
from ...analysis.values import evaluate, resolve
from ...findings import Finding
from ...vocabulary import COMMAND_FILES, GEVENT_WORKERS
from ..base import Example, Rule

# the first argument of a settings getter: os.getenv("GUNICORN_WORKER_CLASS", "gevent"),
# env.str("WORKER_CLASS", default="gevent")
_VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]*$")

_PROJECT = {"pyproject.toml": "", "requirements.txt": "gunicorn\ngevent\npsycopg2-binary\n"}


class GreenWorkersBlock(Rule):
    """
    ## What it does
    Finds gevent workers (gunicorn `worker_class = "gevent"` in a config file, also as the
    default of an environment read the deployment does not set, `-k gevent` on a command line,
    a Celery worker run with `-P gevent`, in Procfiles, Dockerfiles, compose files, scripts and
    Cloud Foundry manifests) in a project that uses psycopg2 (its
    requirements or its code say so) and calls psycogreen's `patch_psycopg()` nowhere; and
    psycopg 3 under gevent workers when gunicorn preloads the application.

    ## Why is this bad?
    Nothing fails: every query simply blocks the whole worker. psycopg2 is a C extension that
    waits for the server inside libpq unless a wait callback is installed, so a gevent worker
    serving 1000 connections runs one query at a time (fact 97); six requests of a 0.5 s query
    take 3 s instead of 0.5 s. psycogreen's `patch_psycopg()` installs the callback. psycopg 3
    cooperates with gevent by itself, but chooses how to wait when it is imported: a master that
    preloads the application imports it before the worker's gevent patches, and it then blocks
    like psycopg2. eventlet needs nothing: `eventlet.monkey_patch()` patches psycopg2 itself.

    ## Fix safety
    No fix: the patch goes where the worker starts, before the first query. In gunicorn's
    config file: `def post_fork(server, worker): from psycogreen.gevent import patch_psycopg;
    patch_psycopg()` (or at the top of the application module); for Celery, in a
    `worker_process_init` handler or the app module. With psycopg 3 and `preload_app`, stop
    preloading, or call `gevent.monkey.patch_all()` at the top of the config file.

    ## References
    - https://docs.gunicorn.org/en/stable/design.html#async-workers
    - https://github.com/psycopg/psycogreen
    - https://www.psycopg.org/psycopg3/docs/advanced/async.html#gevent
    """

    code = "POL307"
    name = "green-workers-block"
    fix_availability = "none"
    reads = COMMAND_FILES  # gunicorn -k gevent, celery worker -P gevent
    message = ("{workers} as a greenlet, but {why}: each query blocks the whole worker, so "
               "they run one at a time; call psycogreen's patch_psycopg() in post_fork or "
               "before the first query")
    invalid = (
        Example('''
            workers = 4
            worker_class = "gevent"
        ''', path="gunicorn.conf.py", project=_PROJECT),
    )
    valid = (
        Example('''
            workers = 4
            worker_class = "gevent"

            def post_fork(server, worker):
                from psycogreen.gevent import patch_psycopg
                patch_psycopg()
        ''', path="gunicorn.conf.py", project=_PROJECT),
        Example('''
            workers = 4
            worker_class = "gevent"  # psycopg 3 cooperates with gevent by itself
        ''', path="gunicorn.conf.py", project={"pyproject.toml": "",
                                               "requirements.txt": "gevent\npsycopg[binary]\n"}),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        config = facts.gunicorn
        if config is None or "worker_class" not in config.settings:
            return
        node = config.settings["worker_class"]
        if not self.context.path or "patch_psycopg" in facts.module.code:  # as edited
            return
        environment = self.context.project.deployment.environment
        worker = next((name for name in sorted(_worker_classes(node, facts, environment))
                       if name in GEVENT_WORKERS), None)
        if worker is None:
            return
        preload = config.preload is not None and evaluate(config.preload) is True
        why = self.context.green_blocking(preload)
        if why:
            yield self.finding(node, self.message.format(
                workers=f"gunicorn's {worker} workers run every request", why=why))

    def check_file(self, text: str) -> Iterator[Finding]:
        if not self.context.shown_path:
            return
        commands = self.context.project.deployment.commands
        for command in (*commands.of("gunicorn"), *commands.of("celery")):
            if command.path != self.context.shown_path:
                continue
            options = commands.options(command)
            worker = options.get("worker_class" if command.program == "gunicorn" else "pool")
            if worker not in GEVENT_WORKERS:
                continue
            why = self.context.green_blocking(options.get("preload_app") is True)
            if why:
                workers = f"gunicorn's {worker} workers run every request" \
                    if command.program == "gunicorn" else "Celery's gevent pool runs every task"
                yield Finding(self.code, self.message.format(workers=workers, why=why), None,
                              line=command.line)


def _worker_classes(node: cst.BaseExpression, facts: ModuleFacts, environment,
                    depth: int = 0) -> set[str]:
    """The worker classes a setting can take: a literal; a variable's value in the deployment,
    else the default a getter gives it; both sides of a conditional."""
    node = resolve(node, facts.constants)
    if depth > 5:
        return set()
    if isinstance(node, cst.IfExp):
        return _worker_classes(node.body, facts, environment, depth + 1) \
            | _worker_classes(node.orelse, facts, environment, depth + 1)
    value = evaluate(node, facts.constants)
    if isinstance(value, str):
        return {value}
    if not isinstance(node, cst.Call) or not node.args:
        return set()
    variable = evaluate(node.args[0].value, facts.constants)
    if not isinstance(variable, str) or not _VARIABLE.match(variable):
        return set()
    if variable in environment:
        return {environment[variable].url}
    defaults = [arg.value for arg in node.args[1:2] if arg.keyword is None] + [
        arg.value for arg in node.args if arg.keyword and arg.keyword.value == "default"]
    return _worker_classes(defaults[0], facts, environment, depth + 1) if defaults else set()
