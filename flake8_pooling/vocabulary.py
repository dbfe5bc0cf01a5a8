"""The names the analysis looks for, defined once: plain data that imports nothing heavy.

The text prefilter, the `ast` gate, every fact family and the project scan read these tables, so
"an engine" or "a session class" means the same thing at every stage. Qualified names are the
canonical spelling (`canonical()` folds the public re-exports onto it); the short names the
cheap gates look for are derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- engines ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineApi:
    label: str  # how messages name it
    is_async: bool
    from_config: bool  # engine_from_config: options arrive as a prefixed dict
    # option strings arrive at create_engine() unconverted; engine_from_config converts numeric
    # ones, Flask-SQLAlchemy 3 does too (2.x does not: unknown, so treated as converted)
    strings_unconverted: bool


ENGINE_APIS = {
    "sqlalchemy.create_engine": EngineApi("create_engine()", False, False, True),
    "sqlalchemy.ext.asyncio.create_async_engine":
        EngineApi("create_async_engine()", True, False, True),
    "sqlalchemy.engine_from_config": EngineApi("engine_from_config()", False, True, False),
    "sqlalchemy.ext.asyncio.async_engine_from_config":
        EngineApi("async_engine_from_config()", True, True, False),
}
FLASK_SQLALCHEMY = EngineApi("Flask-SQLAlchemy", False, False, False)
FLASK_SQLALCHEMY_CLASS = "flask_sqlalchemy.SQLAlchemy"
FLASK_CLASS = "flask.Flask"
# Flask-SQLAlchemy settings that make engines (fact 70)
FLASK_CONFIG_KEYS = frozenset({"SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_ENGINE_OPTIONS",
                               "SQLALCHEMY_BINDS"})
# Keys Flask-SQLAlchemy no longer reads (fact 96) -> (the version that stopped reading them, the
# engine option that replaces them, or None)
REMOVED_FLASK_KEYS = {"SQLALCHEMY_POOL_SIZE": ((3, 0), "pool_size"),
                      "SQLALCHEMY_MAX_OVERFLOW": ((3, 0), "max_overflow"),
                      "SQLALCHEMY_POOL_TIMEOUT": ((3, 0), "pool_timeout"),
                      "SQLALCHEMY_POOL_RECYCLE": ((3, 0), "pool_recycle"),
                      "SQLALCHEMY_NATIVE_UNICODE": ((3, 0), None),
                      "SQLALCHEMY_COMMIT_ON_TEARDOWN": ((3, 1), None)}
URL_CREATE = frozenset({"sqlalchemy.engine.URL.create", "sqlalchemy.URL.create",
                        "sqlalchemy.engine.url.URL.create"})

# -- pools -----------------------------------------------------------------------------------------

POOL_CLASSES = ("QueuePool", "AsyncAdaptedQueuePool", "NullPool", "StaticPool",
                "SingletonThreadPool", "AssertionPool", "FallbackAsyncAdaptedQueuePool")
# Pools that keep connections open between checkouts, sized by pool_size + max_overflow (fact 12)
QUEUE_POOLS = frozenset({"QueuePool", "AsyncAdaptedQueuePool", "FallbackAsyncAdaptedQueuePool"})

# -- sessions --------------------------------------------------------------------------------------

# Session classes whose instances must not be shared (fact 28) -> makes AsyncSessions
SESSION_CLASSES = {"sqlalchemy.orm.Session": False, "sqlalchemy.orm.session.Session": False,
                   "sqlmodel.Session": False, "sqlmodel.orm.session.Session": False,
                   "sqlalchemy.ext.asyncio.AsyncSession": True,
                   "sqlalchemy.ext.asyncio.session.AsyncSession": True,
                   "sqlmodel.ext.asyncio.session.AsyncSession": True}
# and the factories that make them
SESSION_MAKERS = {"sqlalchemy.orm.sessionmaker": False,
                  "sqlalchemy.orm.session.sessionmaker": False,
                  "sqlalchemy.ext.asyncio.async_sessionmaker": True,
                  "sqlalchemy.ext.asyncio.session.async_sessionmaker": True}
# Registries that hand each thread (or task) its own session when called (fact 28)
SCOPED_SESSIONS = {"sqlalchemy.orm.scoped_session": False,
                   "sqlalchemy.orm.scoping.scoped_session": False,
                   "sqlalchemy.ext.asyncio.async_scoped_session": True,
                   "sqlalchemy.ext.asyncio.scoping.async_scoped_session": True}
# Engine methods that check a connection out
CHECKOUT_METHODS = ("connect", "begin", "raw_connection")

# -- functions that return the same object on every call -------------------------------------------

CACHING_DECORATORS = frozenset({"cache", "lru_cache", "cached_property", "cached", "alru_cache",
                                "memoize", "memoized", "once"})

# -- code that runs after a fork (facts 56-67) -----------------------------------------------------

# gunicorn's server hooks: name -> (arity gunicorn validates, where it runs); facts 56-58.
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
# Hooks where disposing engines keeps workers from sharing the master's connections: before the
# fork in the master (fact 2, approach 3) or first thing in the worker (approach 2)
DISPOSING_HOOKS = frozenset(CHILD_INIT_HOOKS) | {"pre_fork", "when_ready", "on_starting"}
# Files that start servers (analysis/commands.py): rules on command lines read them in `check`
COMMAND_FILES = ("Procfile", "Dockerfile*", "*.dockerfile", "*compose*.yml", "*compose*.yaml",
                 "*.sh", "Makefile", "*.conf", "manifest*.yml", "manifest*.yaml")
# Settings a gunicorn config file assigns; with a hook, they mark a file as one.
GUNICORN_SETTINGS = frozenset({
    "bind", "workers", "worker_class", "threads", "worker_connections", "preload_app", "timeout",
    "graceful_timeout", "keepalive", "max_requests", "max_requests_jitter", "accesslog",
    "errorlog", "loglevel", "wsgi_app", "reload", "daemon", "raw_env", "pidfile", "proc_name",
    "chdir", "backlog", "limit_request_line", "forwarded_allow_ips", "worker_tmp_dir",
})
# Classes a program subclasses to run gunicorn inside itself, fed an options dict
GUNICORN_APPLICATIONS = frozenset({"gunicorn.app.base.BaseApplication",
                                   "gunicorn.app.base.Application",
                                   "gunicorn.app.wsgiapp.WSGIApplication"})
# Process pools whose initializer runs in each child; fork is the default start method on Linux
# before Python 3.14 (fact 67). -> index of `initializer` when passed by position
PROCESS_POOLS = {
    "multiprocessing.Pool": 1, "multiprocessing.pool.Pool": 1,
    "concurrent.futures.ProcessPoolExecutor": 2,
    "concurrent.futures.process.ProcessPoolExecutor": 2,
}
GET_CONTEXT = "multiprocessing.get_context"
PROCESS_CLASS = "multiprocessing.Process"
# Pool methods that run a function in the children
POOL_TASK_METHODS = frozenset({"map", "imap", "imap_unordered", "starmap", "apply",
                               "apply_async", "map_async", "starmap_async", "submit"})
REGISTER_AT_FORK = "os.register_at_fork"
CELERY_WORKER_PROCESS_INIT = "celery.signals.worker_process_init.connect"
UWSGI_POSTFORK = "uwsgidecorators.postfork"
UWSGI_POST_FORK_HOOK = "uwsgi.post_fork_hook"
# billiard runs these in Celery's prefork children too (fact 100)
REGISTER_AFTER_FORK = "multiprocessing.util.register_after_fork"
CELERY_CLASS = "celery.Celery"
# Celery pools that start no child processes (fact 101): nothing is inherited
CELERY_POOLS_WITHOUT_FORK = frozenset({"solo", "threads", "gevent", "eventlet"})
# Decorators that make a function a Celery task (app.task, shared_task, celery.task(...)): it runs
# many times per worker process (POL111)
TASK_DECORATORS = frozenset({"task", "shared_task", "periodic_task"})
# gunicorn worker classes and Celery pools that run requests as gevent greenlets (fact 97)
GEVENT_WORKERS = frozenset({"gevent", "gevent_wsgi", "gevent_pywsgi",
                            "gunicorn.workers.ggevent.GeventWorker",
                            "gunicorn.workers.ggevent.GeventPyWSGIWorker",
                            "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"})
# Methods that check a connection out (or run SQL) when a module calls them at import: the
# parent then holds a pooled connection its forked children inherit (facts 1, 7)
IMPORT_TIME_QUERIES = frozenset({"connect", "begin", "execute", "create_all", "drop_all",
                                 "reflect", "raw_connection", "scalar", "scalars", "query",
                                 "has_table", "get_table_names"})
# Calls in a hook that cannot hide an engine disposal: logging and the hook's own arguments.
TRANSPARENT_CALL_ROOTS = frozenset({"server", "worker", "arbiter", "print", "logging", "logger",
                                    "log", "os", "sys", "time", "signal", "str", "int", "len",
                                    "range", "isinstance"})

# What an unbound name means in a module with a star import (`from myapp.db import *` re-exports
# SQLAlchemy's names more often than anything else's): the engine creators and session factories
STAR_IMPORTED = {"create_engine": "sqlalchemy.create_engine",
                 "create_async_engine": "sqlalchemy.ext.asyncio.create_async_engine",
                 "engine_from_config": "sqlalchemy.engine_from_config",
                 "sessionmaker": "sqlalchemy.orm.sessionmaker",
                 "async_sessionmaker": "sqlalchemy.ext.asyncio.async_sessionmaker"}
# Calls that take an engine to keep it: registries, initialisers, setters
KEEPING_PREFIXES = ("init", "register", "set", "bind", "configure", "attach", "install")

# -- the cheap gates' words, derived from the tables above ----------------------------------------


def short_name(qualified: str) -> str:
    return qualified.rpartition(".")[2]


ENGINE_CREATORS = frozenset(short_name(name) for name in ENGINE_APIS)
SESSION_WORDS = frozenset(short_name(name) for name in (*SESSION_CLASSES, *SESSION_MAKERS))
SESSION_MAKER_WORDS = frozenset(short_name(name) for name in SESSION_MAKERS)
# Names that make a file worth a look for fork facts: gunicorn settings and hooks that matter
GUNICORN_WORDS = frozenset({"post_fork", "post_worker_init", "pre_fork", "preload_app",
                            "BaseApplication", "WSGIApplication"})
CHILD_SIDE_WORDS = frozenset({"worker_process_init", short_name(UWSGI_POSTFORK),
                              short_name(REGISTER_AT_FORK), "initializer"})
# Calls that start a process model that forks: the module a Celery worker is started with
FORKING_SERVER_WORDS = frozenset({short_name(CELERY_CLASS)})

# -- canonical spellings ---------------------------------------------------------------------------

# Public re-exports of one object, folded onto the name the tables above use.
ALIASES = {
    "sqlalchemy.engine.create_engine": "sqlalchemy.create_engine",
    "sqlalchemy.engine.create.create_engine": "sqlalchemy.create_engine",
    "sqlmodel.create_engine": "sqlalchemy.create_engine",
    "sqlalchemy.engine.engine_from_config": "sqlalchemy.engine_from_config",
    "sqlalchemy.engine.create.engine_from_config": "sqlalchemy.engine_from_config",
    "sqlalchemy.ext.asyncio.engine.create_async_engine":
        "sqlalchemy.ext.asyncio.create_async_engine",
    "sqlalchemy.ext.asyncio.engine.async_engine_from_config":
        "sqlalchemy.ext.asyncio.async_engine_from_config",
    "flask_sqlalchemy.extension.SQLAlchemy": FLASK_SQLALCHEMY_CLASS,
}
for _cls in POOL_CLASSES:
    ALIASES[f"sqlalchemy.{_cls}"] = f"sqlalchemy.pool.{_cls}"
    ALIASES[f"sqlalchemy.pool.impl.{_cls}"] = f"sqlalchemy.pool.{_cls}"


def canonical(qualified: str) -> str:
    return ALIASES.get(qualified, qualified)


# -- directories that hold no code of the project's own -------------------------------------------

VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "CVS"})
ENVIRONMENT_DIRS = frozenset({".venv", "venv", "env", ".env", "node_modules", "site-packages"})
BUILD_DIRS = frozenset({"build", "dist", "__pycache__", ".tox", ".nox", ".eggs", ".mypy_cache",
                        ".pytest_cache", ".ruff_cache"})
NOT_SOURCE_DIRS = VCS_DIRS | ENVIRONMENT_DIRS | BUILD_DIRS
# Code that is not the application's: its engines are not the ones a deployment runs
NOT_APPLICATION_DIRS = NOT_SOURCE_DIRS | {"tests", "test", "migrations", "alembic", "docs"}

# -- code that runs once, not per request (POL106) or shares nothing (POL201, POL202) -----------

# Functions run once per command or per process by convention: entry points, app factories,
# bootstraps, migrations, tests.
RUN_ONCE_NAMES = frozenset({"main", "cli", "create_app", "make_app", "lifespan", "startup",
                            "on_startup", "shutdown", "on_shutdown", "upgrade", "downgrade"})
RUN_ONCE_PREFIXES = ("run_migrations", "migrate", "test_", "init_db", "initdb", "init_database",
                     "create_db", "create_database", "drop_db", "drop_database", "create_all",
                     "drop_all", "create_tables", "drop_tables", "setup_db", "setup_database",
                     "reset_db", "reset_database", "seed", "bootstrap", "populate")
# Decorators that make a function a command (click, typer, Flask's cli, Flask-Script), a fixture,
# a startup hook, or a handler of a worker's start (Celery signals): each runs once per process
RUN_ONCE_DECORATORS = frozenset({"command", "group", "callback", "fixture", "on_event"})
RUN_ONCE_SIGNALS = frozenset({"celery.signals.worker_process_init.connect",
                              "celery.signals.worker_init.connect",
                              "celery.signals.celeryd_init.connect",
                              "celery.signals.beat_init.connect"})
# Where a module is test code or a stand-alone script, relative to the project's root
TEST_DIRS = frozenset({"tests", "test", "testing", "unittests", "integration_tests"})
SCRIPT_FILES = frozenset({"manage.py", "setup.py", "noxfile.py", "fabfile.py", "cli.py",
                          "__main__.py"})
# Module-level calls that make a module a command-line script: it exits, or reads its arguments
SCRIPT_CALLS = frozenset({"exit", "quit", "sys.exit", "os._exit"})
SCRIPT_DIRS = frozenset({"scripts", "script", "tools", "bin", "examples", "example", "demo",
                         "demos", "benchmarks", "benchmark", "docs", "doc", "migrations",
                         "alembic"})
