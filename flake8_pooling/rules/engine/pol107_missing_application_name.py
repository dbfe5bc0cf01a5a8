"""POL107 missing-application-name (opt-in): connections behind a pooler nobody can tell apart."""

from __future__ import annotations

from collections.abc import Iterator

from ...analysis.facts import ModuleFacts
from ..base import Example, Rule
from ..pools import connect_args, connect_args_fix

# the example's project: the name its packaging metadata gives is the one the fix writes
_ORDERS = {"pyproject.toml": '[project]\nname = "orders"\n'}


class MissingApplicationName(Rule):
    """
    ## What it does
    Finds engines behind a pooler whose connections carry no `application_name`. Opt-in: enable
    it with `--extend-select=POL107`.

    ## Why is this bad?
    Behind PgBouncer every client looks alike: `SHOW CLIENTS` and `pg_stat_activity` cannot tell
    which service holds the connections when the pooler runs out of slots. `application_name`
    is a startup parameter PgBouncer forwards in every pooling mode.

    ## Fix safety
    Safe: adds `connect_args={"application_name": ...}` (for asyncpg, inside
    `server_settings`), named after the project (its `pyproject.toml` or `setup.cfg` name, else
    its folder); rename it as you like.

    ## References
    - https://www.pgbouncer.org/features.html
    - https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-APPLICATION-NAME
    """

    code = "POL107"
    name = "missing-application-name"
    fix_availability = "safe"
    quiet_in = ("test",)  # a test's engine is not the deployment's
    opt_in = True
    message = ("engine behind {pooler} sets no application_name: its connections cannot be "
               "told apart in SHOW CLIENTS or pg_stat_activity; add connect_args={spelled}")
    invalid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("postgresql://app@pgbouncer:6432/app", poolclass=NullPool)
        ''', fixed='''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine("postgresql://app@pgbouncer:6432/app", poolclass=NullPool, connect_args={"application_name": "orders"})
        ''', settings={"sqlalchemy-version": "2.0"}, project=_ORDERS),
    )
    valid = (
        Example('''
            from sqlalchemy import create_engine
            from sqlalchemy.pool import NullPool

            engine = create_engine(
                "postgresql://app@pgbouncer:6432/app?application_name=orders",
                poolclass=NullPool,
            )
        ''', settings={"sqlalchemy-version": "2.0"}),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        version = self.context.sqlalchemy_version
        for engine in facts.engines:
            pooler, url = self.context.pooler(engine), self.context.url(engine)
            if pooler is None or (url and "application_name" in url.query):
                continue
            arguments = connect_args(engine, facts)
            if arguments is None or "application_name" in arguments:
                continue
            driver = url.effective_driver(version) if url else None
            name = self.context.application_name
            if driver == "asyncpg":
                settings = arguments.get("server_settings")
                if isinstance(settings, dict) and "application_name" in settings:
                    continue
                fix = None if "server_settings" in arguments else connect_args_fix(
                    engine, "server_settings", f'{{"application_name": "{name}"}}')
                spelled = f'{{"server_settings": {{"application_name": "{name}"}}}}'
            else:
                fix = connect_args_fix(engine, "application_name", f'"{name}"')
                spelled = f'{{"application_name": "{name}"}}'
            yield self.finding(engine.node, self.message.format(pooler=pooler.describe(),
                                                                spelled=spelled), fix)
