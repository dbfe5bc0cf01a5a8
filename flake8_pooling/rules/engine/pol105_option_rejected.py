"""POL105 option-rejected: engine arguments SQLAlchemy rejects when the engine is created."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from ...analysis.facts import EngineCall, EngineOption, ModuleFacts
from ...findings import SAFE, UNSAFE, Edit, Fix, parse_expression, rename_option, replace_with
from ...settings import version_text
from ...vocabulary import FLASK_SQLALCHEMY
from ..base import Example, Rule
from ..pools import REJECTED_BY_POOL, class_reference, pool_class, remove

# Every keyword create_engine() accepts on SQLAlchemy 1.3-2.1, dialect ones included; a name
# outside this set that is close to a pool option is a misspelling (TypeError at start).
KNOWN_OPTIONS = frozenset("""
    connect_args convert_unicode creator echo echo_pool empty_in_strategy enable_from_linting
    encoding execution_options future hide_parameters implicit_returning
    insertmanyvalues_page_size isolation_level json_deserializer json_serializer label_length
    listeners logging_name max_identifier_length max_overflow module paramstyle plugins pool
    pool_events pool_logging_name pool_pre_ping pool_recycle pool_reset_on_return pool_size
    pool_threadlocal pool_timeout pool_use_lifo poolclass query_cache_size
    skip_autocommit_rollback strategy tag use_insertmanyvalues case_sensitive
    arraysize auto_convert_lobs client_encoding coerce_to_decimal compiler_linting dbapi
    deprecate_large_types enable_offset_fetch encoding_errors exclude_tablespaces
    executemany_batch_page_size executemany_mode executemany_values_page_size fast_executemany
    ignore_no_transaction_on_rollback is_mariadb legacy_schema_aliasing native_datetime
    native_inet_types optimize_limits query_timeout schema_name server_side_cursors
    supports_comments supports_native_boolean thick_mode use_ansi use_batch_mode
    use_binds_for_limits use_native_hstore use_native_unicode use_nchar_for_unicode
    use_scope_identity use_setinputsizes async_creator _coerce_config
""".split())
_SUGGESTIONS = ("poolclass", "pool_size", "max_overflow", "pool_timeout", "pool_recycle",
                "pool_pre_ping", "pool_use_lifo", "pool_reset_on_return", "pool_logging_name",
                "pool_events", "echo_pool", "isolation_level", "connect_args",
                "execution_options")
# The pool's own argument names, which create_engine() only takes with its pool_ prefix (fact 17)
POOL_NATIVE = {"recycle": "pool_recycle", "pre_ping": "pool_pre_ping",
               "use_lifo": "pool_use_lifo", "reset_on_return": "pool_reset_on_return",
               "pool_class": "poolclass", "max_size": "pool_size"}


class OptionRejected(Rule):
    """
    ## What it does
    Finds engine arguments SQLAlchemy rejects when the engine is created:

    - pool sizing (`pool_size`, `max_overflow`, `pool_timeout`, `pool_use_lifo`) with `NullPool`,
      `StaticPool` or `AssertionPool`, and all but `pool_size` with `SingletonThreadPool`,
      including the default pool of a sqlite file on SQLAlchemy before 2.0 (`NullPool`);
    - `poolclass=QueuePool` on an async engine (SQLAlchemy 2.0.28 and later);
    - `autocommit=...`, which `create_engine()` has never accepted;
    - misspelled options (`pool_pre_pign`, `pool_class`, `recycle`), with the nearest option.

    ## Why is this bad?
    Each fails at start: `TypeError: Invalid argument(s) 'pool_size' sent to create_engine(),
    using configuration PGDialect_psycopg2/NullPool/Engine`, or `ArgumentError: Pool class
    QueuePool cannot be used with asyncio engine`. The common advice "set autocommit=True on the
    engine" is wrong on every version; real autocommit is `isolation_level="AUTOCOMMIT"`.

    ## Fix safety
    Safe: dropping arguments the pool rejects, and `QueuePool` -> `AsyncAdaptedQueuePool` (the
    same pool, made for asyncio). Unsafe: `autocommit=True` -> `isolation_level="AUTOCOMMIT"`
    (every statement then commits on its own) and renaming a misspelled option (it then takes
    effect).

    ## References
    - https://docs.sqlalchemy.org/en/20/core/pooling.html#switching-pool-implementations
    - https://docs.sqlalchemy.org/en/20/errors.html#pool-class-cannot-be-used-with-asyncio-engine-or-vice-versa
    - https://docs.sqlalchemy.org/en/20/core/connections.html#setting-transaction-isolation-levels-including-dbapi-autocommit
    """

    code = "POL105"
    level = "error"
    name = "option-rejected"
    fix_availability = "safe or unsafe"
    rejected_by_pool = ("{option} is rejected with {pool}{default}: {label} fails at start with "
                        "TypeError: Invalid argument(s) '{option}'; drop it")
    pool_default = " (the default for this URL on SQLAlchemy {version})"
    queue_pool_on_async = ("QueuePool on an async engine: SQLAlchemy {failure}; use "
                           "AsyncAdaptedQueuePool")
    async_rejects = ("fails at start with ArgumentError: Pool class QueuePool cannot be used "
                     "with asyncio engine")
    async_accepts = "accepts it before SQLAlchemy 2.0.28, but QueuePool is not safe with asyncio"
    misspelt = ("{option} is not an engine option: {label} fails at start with TypeError: "
                "Invalid argument(s) '{option}'; did you mean {nearest}?")
    autocommit = ("{label} has no autocommit option on any SQLAlchemy version: it fails at "
                  "start with TypeError: Invalid argument(s) 'autocommit'; {advice}")
    invalid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("sqlite:///app.db", poolclass=NullPool, pool_size=10)
        ''', fixed='''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("sqlite:///app.db", poolclass=NullPool)
        ''', raises="TypeError"),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", autocommit=True)
        ''', fixed='''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", isolation_level="AUTOCOMMIT")
        ''', raises="TypeError"),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", pool_pre_pign=True)
        ''', fixed='''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", pool_pre_ping=True)
        ''', raises="TypeError"),
        Example('''
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import QueuePool

            engine = create_async_engine("sqlite+aiosqlite:///app.db", poolclass=QueuePool)
        ''', fixed='''
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import AsyncAdaptedQueuePool

            engine = create_async_engine("sqlite+aiosqlite:///app.db", poolclass=AsyncAdaptedQueuePool)
        ''', raises="ArgumentError"),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("sqlite:///app.db", poolclass=NullPool, pool_recycle=300)
        '''),
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine("sqlite:///app.db", isolation_level="AUTOCOMMIT",
                                   pool_size=10)
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        version = self.context.sqlalchemy_version
        for engine in facts.engines:
            pool = pool_class(engine, self.context)
            label = "create_engine()" if engine.api is FLASK_SQLALCHEMY else engine.api.label
            default = "" if engine.declared_pool else \
                self.pool_default.format(version=version_text(version))
            for name in REJECTED_BY_POOL.get(pool, ()):
                option = engine.options.get(name)
                if option is not None:
                    yield self.finding(option.holder, self.rejected_by_pool.format(
                        option=name, pool=pool, default=default, label=label),
                        Fix(SAFE, (remove(option),)))
            if self.context.is_async(engine) and engine.declared_pool == "QueuePool":
                yield self._queue_pool_on_async(engine, facts, version)
            yield from self._invalid_arguments(engine, label)

    def _queue_pool_on_async(self, engine: EngineCall, facts: ModuleFacts, version):
        option = engine.options["poolclass"]
        reference, imports = class_reference(facts, "AsyncAdaptedQueuePool")
        failure = self.async_rejects if version >= (2, 0, 28) else self.async_accepts
        return self.finding(
            option.holder, self.queue_pool_on_async.format(failure=failure),
            Fix(SAFE, (Edit(option.value_node, replace_with(reference)),), imports))

    def _invalid_arguments(self, engine: EngineCall, label: str) -> Iterator:
        for option in engine.options.values():
            if option.name == "autocommit":
                yield self._autocommit(engine, option, label)
                continue
            if option.name in KNOWN_OPTIONS or option.name.startswith("_"):
                continue
            nearest = POOL_NATIVE.get(option.name) or next(iter(difflib.get_close_matches(
                option.name, _SUGGESTIONS, n=1, cutoff=0.8)), None)
            if nearest is None or nearest in engine.options:
                continue  # not close to an option: perhaps a dialect argument we do not know
            key = option.key[:len(option.key) - len(option.name)] + nearest
            yield self.finding(
                option.holder,
                self.misspelt.format(option=option.name, label=label, nearest=nearest),
                Fix(UNSAFE, (Edit(option.container, lambda node, old=option.key, new=key:
                                  rename_option(node, old, new)),)))

    def _autocommit(self, engine: EngineCall, option: EngineOption, label: str):
        if option.value is True and "isolation_level" not in engine.options:
            prefix = option.key[:len(option.key) - len("autocommit")]
            autocommit = parse_expression('"AUTOCOMMIT"')
            return self.finding(
                option.holder,
                self.autocommit.format(label=label, advice='use isolation_level="AUTOCOMMIT"'),
                Fix(UNSAFE, (Edit(option.container, lambda node: rename_option(
                    node, option.key, prefix + "isolation_level", autocommit)),)))
        return self.finding(option.holder, self.autocommit.format(label=label, advice="drop it"),
                            Fix(SAFE, (remove(option),)))
