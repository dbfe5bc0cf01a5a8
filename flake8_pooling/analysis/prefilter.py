"""The cheap gates before libcst: most files of a project never reach the parser.

1. The text must mention a word of the vocabulary (microseconds), or the file must be named like
   a gunicorn config (whose misspelt hooks share no vocabulary).
2. flake8's own `ast` tree (free) must use one the way a fact needs it: an engine creator
   called (or a function named like an engine factory), a Flask-SQLAlchemy setting assigned or
   used as a key, `engine_options=` passed, a session made at module level, a fork hook
   named. Imports, comments and docstrings do not count.

This module imports nothing heavy: the plugin loads libcst and SQLAlchemy only for files that
pass both gates.
"""

from __future__ import annotations

import ast
import re

from ..vocabulary import (CHILD_SIDE_WORDS, ENGINE_CREATORS, FLASK_CONFIG_KEYS,
                          FORKING_SERVER_WORDS, GUNICORN_WORDS, REMOVED_FLASK_KEYS,
                          SESSION_MAKER_WORDS, SESSION_WORDS, TASK_DECORATORS)
from .astwalk import walk
from .sql import FUNCTIONS as SESSION_STATE_FUNCTIONS, mentions_session_state, session_state

# Flask-SQLAlchemy settings: those that make engines, and those version 3 ignores (POL110)
SETTING_KEYS = FLASK_CONFIG_KEYS | frozenset(REMOVED_FLASK_KEYS)
KEYWORDS = SETTING_KEYS | {"engine_options"}
FORK_WORDS = GUNICORN_WORDS | CHILD_SIDE_WORDS
# Words that call for the full ast walk; "engine(" catches get_engine() and friends
_WALK_WORDS = tuple(ENGINE_CREATORS | KEYWORDS | GUNICORN_WORDS) + ("engine(",) + tuple(
    f"{word}(" for word in FORKING_SERVER_WORDS)
_GUNICORN_FILE = re.compile(r"gunicorn[^/\\]*\.py$", re.IGNORECASE)
# get_engine, make_db_engine, create_engine_and_session: perhaps a project's engine factory (POL106
# checks the project index; a factory named otherwise is not seen from other modules)
_FACTORY_NAME = re.compile(r"^(get|make|new|build|create|init|setup|open)_\w*engine")


def is_gunicorn_config_name(path: str) -> bool:
    """gunicorn.conf.py, gunicorn_config.py, config/gunicorn.py, deploy_gunicorn.py, ...;
    not test_gunicorn.py or gunicorn_test.py."""
    name = (path or "").replace("\\", "/").rpartition("/")[2]
    return bool(_GUNICORN_FILE.search(name)) and not name.startswith("test_") \
        and not name.endswith("_test.py")


# The words grouped by a stem they share: a text without "engine" is not searched for the six
# words that contain it. Every search is a pass over the text, and most texts have none.
_STEMS = ("engine", "SQLALCHEMY_", "fork", "Application")
_GROUPS = tuple((stem, tuple(word for word in _WALK_WORDS if stem in word)) for stem in _STEMS)
_UNGROUPED = tuple(word for word in _WALK_WORDS if not any(stem in word for stem in _STEMS))


def _walk_needed(text: str) -> bool:
    return any(word in text for word in _UNGROUPED) or any(
        stem in text and any(word in text for word in words) for stem, words in _GROUPS) or (
        "dispose" in text and (any(word in text for word in CHILD_SIDE_WORDS)
                               or "getpid" in text))  # a pid check that disposes (POL302)


# An event loop started in code that may run many times (POL111)
_LOOP_WORDS = ("asyncio.run(", "run_until_complete(", "anyio.run(", "async_to_sync(")
_LOOP_CALLS = ("run", "run_until_complete", "async_to_sync")
_SQL_CALLS = ("execute", "exec_driver_sql", "executemany", "text")


def _called(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else \
        func.id if isinstance(func, ast.Name) else None


# What a file that only says Session must hold for `_session_at_import` to find a session made
# at import: a session class called, or a call's result called (`sessionmaker(...)()`). Most
# such files only annotate (`db: Session = Depends(get_db)`), and `check` would parse them.
_SESSION_CALL = re.compile(r"Session[\s\\]*\(|\)[\s\\]*\(")


def mentions_vocabulary(text: str, path: str = "") -> bool:
    return is_gunicorn_config_name(path) or _walk_needed(text) or "sessionmaker" in text \
        or ("Session" in text and _SESSION_CALL.search(text) is not None) \
        or mentions_session_state(text) or _may_start_loops(text) or _may_provide_sessions(text)


def uses_vocabulary(tree: ast.AST, path: str = "", text: str | None = None) -> bool:
    """With the file's text, only the checks its words call for run: a file that only says
    Session gets the top-level look for a session made at import, not a walk of the tree."""
    if is_gunicorn_config_name(path) or _session_at_import(tree):
        return True
    if text is None or mentions_session_state(text):
        if _sends_session_state(tree):
            return True
    if (text is None or _may_start_loops(text)) and _starts_loops(tree):
        return True
    if (text is None or _may_provide_sessions(text)) and _closes_after_yield(tree):
        return True
    if text is not None and not _walk_needed(text):
        return False
    for node in walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else None
            if name in ENGINE_CREATORS or name in ("register_at_fork", "getpid") \
                    or name in FORKING_SERVER_WORDS:
                return True
            if name and _FACTORY_NAME.match(name):
                return True
            if name in ("setdefault", "__setitem__") and node.args \
                    and _is_setting_key(node.args[0]):
                return True
        elif isinstance(node, ast.keyword):
            if node.arg in KEYWORDS or node.arg in ("initializer", "after_in_child"):
                return True
        elif isinstance(node, ast.Name):
            if node.id in SETTING_KEYS and isinstance(node.ctx, ast.Store):
                return True
            if node.id in FORK_WORDS:
                return True  # @postfork, worker_process_init.connect, preload_app = True
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name in FORK_WORDS:
                return True  # a gunicorn hook in a config file not named like one
        elif isinstance(node, ast.Attribute):
            if node.attr in FORK_WORDS or (node.attr in SETTING_KEYS
                                           and isinstance(node.ctx, ast.Store)):
                return True
        # a setting key as a string counts where it is set: app.config["KEY"] = ..., a dict
        # of settings, config.setdefault("KEY", ...); reading it back sets nothing
        elif isinstance(node, ast.Subscript):
            if isinstance(node.ctx, ast.Store) and _is_setting_key(node.slice):
                return True
        elif isinstance(node, ast.Dict):
            if any(_is_setting_key(key) for key in node.keys):
                return True
    return False


def _is_setting_key(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value in SETTING_KEYS


def _may_start_loops(text: str) -> bool:
    # ".run" stands for three of the four words: one search for most texts
    return (".run" in text or "_to_sync(" in text) and any(word in text for word in _LOOP_WORDS)


def _may_provide_sessions(text: str) -> bool:
    return "yield" in text and (".close()" in text or ".remove()" in text)


def _closes_after_yield(tree: ast.AST) -> bool:
    """A generator that yields a name and later closes it (POL203's shape, any object)."""
    # module-level functions and methods: where providers live; no walk of the whole tree
    body = getattr(tree, "body", [])
    functions = [*body, *(inner for node in body if isinstance(node, ast.ClassDef)
                          for inner in node.body)]
    for node in functions:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        yielded: set[str] = set()
        sessions: set[str] = set()  # names bound to what looks like a session
        for statement in node.body:
            value = getattr(statement, "value", None)
            if isinstance(statement, (ast.Assign, ast.AnnAssign)) \
                    and isinstance(value, ast.Call) and (isinstance(value.func, ast.Call)
                                                         or "ession" in (_called(value) or "")):
                targets = getattr(statement, "targets", [getattr(statement, "target", None)])
                sessions.update(t.id for t in targets if isinstance(t, ast.Name))
            inner = statement.body if isinstance(statement, ast.Try) else [statement]
            for candidate in inner:
                value = getattr(candidate, "value", None)
                if isinstance(candidate, ast.Expr) and isinstance(value, ast.Yield) \
                        and isinstance(value.value, ast.Name) and value.value.id in sessions:
                    yielded.add(value.value.id)
            handlers = [line for handler in getattr(statement, "handlers", ())
                        for line in handler.body]
            if any(_closes_name(line, yielded) for line in [statement, *handlers]):
                return True
    return False


def _closes_name(statement: ast.stmt, names: set[str]) -> bool:
    value = getattr(statement, "value", None)
    value = value.value if isinstance(value, ast.Await) else value
    return isinstance(statement, ast.Expr) and isinstance(value, ast.Call) \
        and isinstance(value.func, ast.Attribute) and isinstance(value.func.value, ast.Name) \
        and value.func.value.id in names


def _starts_loops(tree: ast.AST) -> bool:
    """An event loop started where it runs many times (POL111): in a function decorated as a
    task, or in a `for`/`while` inside a function."""
    def starts(node: ast.AST) -> bool:
        return any(isinstance(inner, ast.Call) and _called(inner) in _LOOP_CALLS
                   for inner in walk(node))

    for node in walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            decorators = [d.func if isinstance(d, ast.Call) else d for d in node.decorator_list]
            if any(getattr(d, "attr", getattr(d, "id", "")) in TASK_DECORATORS
                   for d in decorators) and starts(node):
                return True
            if any(isinstance(inner, (ast.For, ast.While, ast.AsyncFor)) and starts(inner)
                   for inner in walk(node)):
                return True
    return False


def _sends_session_state(tree: ast.AST) -> bool:
    """SQL that keeps session state (POL204): a string given to execute(), exec_driver_sql()
    or text() (or a module constant, which may be), or func.pg_advisory_lock. Docstrings and
    other strings are not read: the regular expressions cost more than the walk. Alembic
    migrations are not read: POL204 says nothing there."""
    body = getattr(tree, "body", [])
    if any(isinstance(statement, (ast.Import, ast.ImportFrom))
           and "alembic" in ast.unparse(statement) for statement in body):
        return False
    for statement in body:
        value = getattr(statement, "value", None)
        if isinstance(statement, ast.Assign) and isinstance(value, ast.Constant) \
                and isinstance(value.value, str) and session_state(value.value):
            return True
    for node in walk(tree):
        if isinstance(node, ast.Call) and node.args and _called(node) in _SQL_CALLS:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str) \
                    and session_state(first.value):
                return True
        elif isinstance(node, ast.Attribute) and node.attr in SESSION_STATE_FUNCTIONS:
            return True
    return False


def _session_at_import(tree: ast.AST) -> bool:
    """A session made by a module-level statement (or a class body at module level)."""
    factories = set(SESSION_WORDS)
    statements = list(getattr(tree, "body", []))
    for statement in statements:
        if isinstance(statement, ast.ClassDef):
            statements.extend(statement.body)
        value = getattr(statement, "value", None)
        if not isinstance(value, ast.Call):
            continue
        func = value.func
        if isinstance(func, ast.Call):  # sessionmaker(...)()
            return True
        name = func.id if isinstance(func, ast.Name) else \
            func.attr if isinstance(func, ast.Attribute) else None
        if name in SESSION_MAKER_WORDS:
            for target in getattr(statement, "targets", [getattr(statement, "target", None)]):
                if isinstance(target, ast.Name):
                    factories.add(target.id)  # SessionLocal = sessionmaker(...)
        elif name in factories:
            return True
    return False
