"""POL108 startup-options-behind-pooler: startup parameters a pooler refuses at connect."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from ...analysis.facts import EngineCall, ModuleFacts
from ...analysis.pooler import is_rds_proxy
from ...analysis.values import dict_key, resolve
from ..base import Example, Rule
from ..pools import connect_args

# The startup parameters PgBouncer passes on rather than refusing (facts 37, 94)
TRACKED = frozenset({"client_encoding", "datestyle", "timezone", "standard_conforming_strings",
                     "application_name", "intervalstyle"})
_OPTION = re.compile(r"(?:-c\s*|--)([A-Za-z_][\w.]*)\s*=")


class StartupOptionsBehindPooler(Rule):
    """
    ## What it does
    Finds startup parameters sent to a pooler that refuses them: `connect_args={"options":
    "-c statement_timeout=5000"}` (psycopg2, psycopg), `?options=` in the URL, and asyncpg's
    `connect_args={"server_settings": {...}}`, on an engine behind PgBouncer or AWS RDS Proxy.
    Parameters PgBouncer tracks itself (`application_name`, `timezone`, `client_encoding`,
    `datestyle`, `standard_conforming_strings`, `IntervalStyle`) are not reported: they pass
    in `server_settings`, and inside `options` from PgBouncer 1.20. Odyssey, which takes every
    startup parameter, is not reported either.

    ## Why is this bad?
    Every connection fails at connect, so the application never reaches the database.
    PgBouncer accepts only the parameters it tracks in the startup packet: before 1.20 any
    `options` fails with `FATAL:  unsupported startup parameter: options`, from 1.20 a parameter
    inside it that it does not track fails with `unsupported startup parameter in options:
    statement_timeout`, and asyncpg's `server_settings` with `unsupported startup parameter:
    jit` (facts 37, 94, 116). Listing the parameter in PgBouncer's `ignore_startup_parameters` makes
    the connection succeed but drops the setting silently. RDS Proxy refuses `options` with
    `FATAL: Feature not supported: RDS Proxy currently doesn't support command-line options`
    (fact 87).

    ## Fix safety
    No fix: where the setting belongs depends on the application. Set it on the server for the
    role or database (`ALTER ROLE app SET statement_timeout = '5s'`), per transaction with
    `SET LOCAL`, or, for a parameter PgBouncer 1.20 and later should pass on, in its
    `track_extra_parameters`.

    ## References
    - https://www.pgbouncer.org/config.html#ignore_startup_parameters
    - https://www.pgbouncer.org/config.html#track_extra_parameters
    - https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-pinning.html
    """

    code = "POL108"
    name = "startup-options-behind-pooler"
    fix_availability = "none"
    level = "error"
    message = ("{pooler} refuses the startup parameter{s} {names} sent in {where}: every "
               "connection fails at connect ({error}); set {them} on the server (ALTER ROLE "
               "... SET) or with SET LOCAL in each transaction{tracked}")
    tracked = ", or list {them} in PgBouncer's track_extra_parameters (1.20 and later)"
    pgbouncer_error = ("PgBouncer before 1.20: 'FATAL:  unsupported startup parameter: options'; "
                       "from 1.20: 'unsupported startup parameter in options: {name}'")
    rds_error = "'RDS Proxy currently doesn't support command-line options'"
    invalid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine(
                "postgresql://app@pgbouncer:6432/app",
                connect_args={"options": "-c statement_timeout=5000"},
            )
        '''),
        Example('''
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import NullPool

            engine = create_async_engine(
                "postgresql+asyncpg://app@pgbouncer:6432/app", poolclass=NullPool,
                connect_args={"server_settings": {"jit": "off"}},
            )
        '''),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine

            engine = create_engine(
                "postgresql://app@db:5432/app",
                connect_args={"options": "-c statement_timeout=5000"},
            )
        '''),
        Example('''
            from sqlalchemy.ext.asyncio import create_async_engine
            from sqlalchemy.pool import NullPool

            engine = create_async_engine(
                "postgresql+asyncpg://app@pgbouncer:6432/app", poolclass=NullPool,
                connect_args={"server_settings": {"application_name": "web"}},
            )
        '''),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        for engine in facts.engines:
            url = self.context.url(engine)
            pooler = self.context.pooler(engine)
            rds = is_rds_proxy(url)
            if (pooler is None or not pooler.refuses_startup_parameters) and not rds:
                continue  # Odyssey takes every startup parameter (fact 119)
            for node, where, names in _startup_parameters(engine, facts):
                refused = [name for name in names if name.lower() not in TRACKED] \
                    if names else ["options"]
                settings = where == "server_settings"
                if not refused or (rds and settings):
                    continue  # what RDS Proxy does with other parameters was not checked
                if settings:
                    error = f"'unsupported startup parameter: {refused[0]}'"
                else:
                    error = self.rds_error if rds else self.pgbouncer_error.format(
                        name=refused[0])
                them = "them" if len(refused) > 1 else "it"
                yield self.finding(node, self.message.format(
                    pooler="RDS Proxy" if rds else pooler.describe(),
                    s="s" if len(refused) > 1 else "", names=", ".join(map(repr, refused)),
                    where=where, error=error, them=them,
                    tracked="" if rds else self.tracked.format(them=them)))


def _startup_parameters(engine: EngineCall, facts: ModuleFacts
                        ) -> Iterator[tuple[cst.CSTNode, str, list[str]]]:
    """(where to report, how the code sends them, the parameter names; [] when unknown)."""
    url = engine.url
    if url is not None and "options" in url.query:
        yield engine.node, "the URL's ?options=", _OPTION.findall(url.query["options"])
    option = engine.options.get("connect_args")
    arguments = connect_args(engine, facts)
    if option is None or not arguments:
        return
    node = resolve(option.value_node, facts.constants)
    entries = {dict_key(element, facts.constants): element
               for element in getattr(node, "elements", ())}
    options = arguments.get("options")
    if "options" in arguments:
        names = _OPTION.findall(options) if isinstance(options, str) else []
        yield entries.get("options", engine.node), "connect_args options", names
    settings = arguments.get("server_settings")
    if isinstance(settings, dict) and settings:
        yield entries.get("server_settings", engine.node), "server_settings", list(settings)
