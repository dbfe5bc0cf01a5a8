"""What SQLAlchemy does with an engine's pool, shared by the engine rules: which pool class an
engine gets, which arguments each pool class rejects, and the edits their fixes make.
"""

from __future__ import annotations

import libcst as cst

from ..analysis.context import Context
from ..analysis.facts import EngineCall, EngineOption, ModuleFacts
from ..analysis.values import UNKNOWN, literal_dict
from ..findings import (SAFE, Edit, Fix, parse_expression, remove_option, set_nested_option,
                        set_option)
from ..import_order import import_statements
from ..vocabulary import FLASK_SQLALCHEMY, QUEUE_POOLS

__all__ = ["DISPOSE_CLOSE_VERSION", "QUEUE_POOLS", "REJECTED_BY_POOL", "SIZING",
           "class_reference", "connect_args", "connect_args_fix", "disposal_lines",
           "fresh_pool", "pool_class", "pre_ping_fix", "pre_ping_on", "remove"]

# Arguments create_engine() rejects with TypeError for each pool class (fact 18)
SIZING = ("pool_size", "max_overflow", "pool_timeout", "pool_use_lifo")
REJECTED_BY_POOL = {
    "NullPool": SIZING, "StaticPool": SIZING, "AssertionPool": SIZING,
    "SingletonThreadPool": ("max_overflow", "pool_timeout", "pool_use_lifo"),
}


def pool_class(engine: EngineCall, context: Context) -> str | None:
    """The pool class the engine gets (short name), or None when the code does not tell."""
    if engine.declared_pool is UNKNOWN:
        return None
    if engine.declared_pool is not None:
        return engine.declared_pool
    if not engine.options_complete:
        return None  # a **splat may carry poolclass
    url = context.url(engine)
    if url is None or url.backend is None:
        # a pooler means PostgreSQL, whose default is a queue pool whatever the URL's details
        return None if context.pooler(engine) is None else _queue_pool(engine, context)
    if url.is_sqlite:
        if engine.api is FLASK_SQLALCHEMY or url.is_sqlite_memory is None:
            # Flask-SQLAlchemy picks its own sqlite pools, per version (fact 70); a database
            # only known at run time may be a file or memory
            return None
        version = context.sqlalchemy_version
        if url.driver == "aiosqlite":
            if url.is_sqlite_memory:
                return "StaticPool"
            return "AsyncAdaptedQueuePool" if version >= (2, 0, 38) else "NullPool"
        if url.is_sqlite_memory:
            return "SingletonThreadPool"
        return "QueuePool" if version >= (2, 0) else "NullPool"  # fact 20
    return _queue_pool(engine, context)


def _queue_pool(engine: EngineCall, context: Context) -> str:
    return "AsyncAdaptedQueuePool" if context.is_async(engine) else "QueuePool"


def class_reference(facts: ModuleFacts, name: str) -> tuple[cst.BaseExpression, tuple]:
    """How this module spells the pool class `name`, and the import that needs."""
    spelling, needed = facts.imports.reference(f"sqlalchemy.pool.{name}")
    return parse_expression(spelling), (needed,) if needed else ()


def connect_args(engine: EngineCall, facts: ModuleFacts) -> dict[str, object] | None:
    """The literal connect_args ({} when absent), or None when they cannot be read."""
    option = engine.options.get("connect_args")
    if option is None:
        return {} if engine.options_complete else None
    return literal_dict(option.value_node, facts.constants)


def connect_args_fix(engine: EngineCall, key: str, value: str) -> Fix | None:
    """A safe fix that adds `key: value` to the engine's connect_args."""
    option = engine.options.get("connect_args")
    target = option.container if option is not None else engine.options_site
    if target is None or (option is not None and not isinstance(option.value_node, cst.Dict)):
        return None
    name = option.key if option is not None else "connect_args"
    return Fix(SAFE, (Edit(target, lambda node: set_nested_option(
        node, name, key, parse_expression(value))),))


def pre_ping_on(engine: EngineCall) -> bool:
    """pool_pre_ping is on, or decided at run time ("false" is truthy: POL104's business)."""
    value = engine.option_value("pool_pre_ping")
    return "pool_pre_ping" in engine.options and (value is UNKNOWN or bool(value))


def pre_ping_fix(engine: EngineCall) -> Fix | None:
    """The safe fix that turns pool_pre_ping on, where the engine's options can be written."""
    if engine.options_site is None:
        return None
    return Fix(SAFE, (Edit(engine.options_site, lambda node: set_option(
        node, "pool_pre_ping", cst.Name("True"))),))


def remove(option: EngineOption) -> Edit:
    return Edit(option.container, lambda node: remove_option(node, option.key))


# Engine.dispose(close=...) exists from 1.4.33; before, pool.recreate() does the same (facts 4-5)
DISPOSE_CLOSE_VERSION = (1, 4, 33)


def disposal_lines(engines, flask, version: tuple[int, ...], own: str = "",
                   bound: frozenset[str] = frozenset()) -> list[str] | None:
    """The body of a hook that gives every engine an empty pool in a forked child: imports of
    `engines` ((module, name, is_async) triples) and of Flask-SQLAlchemy's (db, app) objects,
    then a fresh pool for each, every engine of `db.engines` inside an app context (fact 72).
    The objects of module `own`, where the hook is written, need no import, nor those the module
    already imports under their own name (`bound`: "module.name"; importing them again in the
    hook would shadow the module's import, pyflakes' F811)."""
    imported: list[tuple[str, str, str, bool]] = []  # module, name, local name, async
    for module, name, is_async in engines:
        clash = any(local == name for _, _, local, _ in imported)
        imported.append((module, name, f"{module.replace('.', '_')}_{name}" if clash
                         else name, is_async))
    needed = [(module, name, local if local != name else None)
              for module, name, local, _ in imported
              if module != own and not (local == name and f"{module}.{name}" in bound)]
    if flask is not None:
        database, app = flask
        needed += [(obj.module, obj.name, None) for obj in (app, database)
                   if obj.module != own and f"{obj.module}.{obj.name}" not in bound]
    lines = import_statements(needed)  # as isort writes them: `from app import app, db`
    # AsyncEngine.dispose() is a coroutine: its sync_engine is disposed instead
    disposals = [fresh_pool(f"{local}.sync_engine" if is_async else local, version)
                 for _, _, local, is_async in imported]
    if flask is not None:
        disposals += [f"with {app.name}.app_context():",
                      f"    for engine in {database.name}.engines.values():",
                      f"        {fresh_pool('engine', version)}"]
    if not disposals:
        return None
    return [*lines, ""] + disposals if lines else disposals


def fresh_pool(engine: str, version: tuple[int, ...]) -> str:
    """The statement that gives `engine` a new, empty pool and leaves the old connections alone."""
    if version >= DISPOSE_CLOSE_VERSION:
        return f"{engine}.dispose(close=False)"
    return f"{engine}.pool = {engine}.pool.recreate()"
