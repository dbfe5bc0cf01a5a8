"""Where code runs after a fork, and what it does to engines there.

Facts cited as (domain N) are in the project's fact sheet. Child-side code runs in the forked
process, which shares the parent's sockets: plain `dispose()` there closes connections the parent
still uses (domain 6). Parent-side code runs before the fork, where plain `dispose()` is one of the
documented approaches (domain 2).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import libcst as cst

# gunicorn's server hooks: name -> (arity gunicorn validates, where it runs); domain 56-58.
# "child": in the worker just after the fork, still holding what it inherited; "worker": later in
# the worker, when (with a post_fork disposal) its connections are its own; "parent": the master.
# post_request accepts 2 to 4 arguments (validate_callable(-1)): its arity is not checked.
GUNICORN_HOOKS: dict[str, tuple[int | None, str]] = {
    "on_starting": (1, "parent"), "on_reload": (1, "parent"), "when_ready": (1, "parent"),
    "pre_fork": (2, "parent"), "post_fork": (2, "child"), "post_worker_init": (1, "child"),
    "worker_int": (1, "worker"), "worker_abort": (1, "worker"), "pre_exec": (1, "parent"),
    "pre_request": (2, "worker"), "post_request": (None, "worker"), "child_exit": (2, "parent"),
    "worker_exit": (2, "worker"), "nworkers_changed": (3, "parent"), "on_exit": (1, "parent"),
    "ssl_context": (2, "parent"),
    # gunicorn 25.0 "dirty arbiter" hooks
    "on_dirty_starting": (1, "parent"), "dirty_post_fork": (2, "child"),
    "dirty_worker_init": (1, "child"), "dirty_worker_exit": (2, "worker"),
}
# Hooks that run in a worker just after it forked: where inherited engines are disposed.
CHILD_INIT_HOOKS = tuple(name for name, (_, side) in GUNICORN_HOOKS.items() if side == "child")
# Settings a gunicorn config file assigns; with a hook, they mark a file as one.
GUNICORN_SETTINGS = frozenset({
    "bind", "workers", "worker_class", "threads", "worker_connections", "preload_app", "timeout",
    "graceful_timeout", "keepalive", "max_requests", "max_requests_jitter", "accesslog",
    "errorlog", "loglevel", "wsgi_app", "reload", "daemon", "raw_env", "pidfile", "proc_name",
    "chdir", "backlog", "limit_request_line", "forwarded_allow_ips", "worker_tmp_dir",
})


def near_hooks(name: str) -> list[str]:
    """The hooks `name` is a near miss of (postfork, post_worker_int): one when the intended
    hook is clear, several when it is not (worker_init: worker_int or post_worker_init?)."""
    squashed = name.replace("_", "").lower()
    exact = [hook for hook in GUNICORN_HOOKS if hook.replace("_", "") == squashed]
    if exact:
        return exact
    scored = sorted(((difflib.SequenceMatcher(None, name, hook).ratio(), hook)
                     for hook in GUNICORN_HOOKS), reverse=True)
    best = scored[0][0]
    if best < 0.8:
        return []
    return [hook for score, hook in scored if score >= 0.8 and score > best - 0.15]


# Process pools whose initializer runs in each child; fork is the default start method on Linux
# before Python 3.14 (domain 67).
PROCESS_POOLS = {
    "multiprocessing.Pool": 1, "multiprocessing.pool.Pool": 1,
    "concurrent.futures.ProcessPoolExecutor": 2,
    "concurrent.futures.process.ProcessPoolExecutor": 2,
}  # -> index of `initializer` when passed by position


@dataclass(eq=False)
class Disposal:
    """`engine.dispose(...)`, or `engine.pool = engine.pool.recreate()`, in a function."""
    node: cst.CSTNode  # the dispose call (or the recreate assignment, or a bound method)
    receiver: cst.BaseExpression  # what is disposed: `engine`, `db.engine`, ...
    close: object  # the close= argument: True when absent, UNKNOWN when not a literal
    statement: cst.Expr | None = None  # the statement, when the call stands alone
    bound_method: bool = False  # `after_in_child=engine.dispose`: called with no arguments


@dataclass(eq=False)
class ChildCode:
    """A function (or lambda, or bound method) that runs in a forked process, or just before."""
    origin: str  # for messages: "gunicorn post_fork hook", "Celery worker_process_init handler"
    side: str  # "child" (just after the fork), "worker" (later in the child) or "parent"
    disposals: list[Disposal] = field(default_factory=list)
    # calls it makes that we cannot see into: it may dispose engines we do not see
    opaque_calls: bool = False


@dataclass(eq=False)
class GunicornConfig:
    """A module gunicorn executes as its config file (in the master, before any fork)."""
    preload: cst.CSTNode | None  # the `True` of `preload_app = True`
    imports: list[tuple[cst.CSTNode, str]]  # module-level imports: (node, module name)
    hooks: dict[str, cst.FunctionDef]  # module-level functions by name
    functions: list[cst.FunctionDef]  # every module-level function, for hook name checks
    settings: dict[str, cst.BaseExpression] = field(default_factory=dict)  # workers = ...
