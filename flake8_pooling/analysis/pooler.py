"""Evidence that an engine's URL reaches PgBouncer or another transaction pooler.

Each piece of evidence carries the reason a message can quote ("host 'pgbouncer', port 6432").
Evidence from outside the file (compose files, pgbouncer.ini) arrives through the same type, so
rules never need to know where it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..settings import Settings
from .deployment import UNKNOWN_MODE, Deployment, PgBouncer
from .urls import DatabaseUrl, parse_url

PGBOUNCER_PORT = 6432  # PgBouncer's default listen_port (pgbouncer config.md)
SUPABASE_TRANSACTION_PORT = 6543  # Supavisor's transaction-mode port; 5432 there is session mode
DIGITALOCEAN_POOL_PORT = 25061  # DigitalOcean's managed PostgreSQL pools; direct is 25060
# AWS RDS Proxy pins a client to one server connection instead of failing (fact 87)
_RDS_PROXY_HOST = re.compile(r"\.proxy-[a-z0-9]+\.[a-z0-9-]+\.rds\.amazonaws\.com$")
_POOLER_HOST = re.compile(r"pgbouncer|pooler", re.IGNORECASE)
_POOLER_VARIABLE = re.compile(r"PGBOUNCER|POOLER", re.IGNORECASE)


@dataclass(frozen=True)
class PoolerEvidence:
    reason: str  # why we believe it, for messages
    name: str = "PgBouncer"
    # None: the evidence does not say; the configured mode applies (else transaction).
    # UNKNOWN_MODE: a pooler whose mode only its config gives, and the project holds none
    # (Odyssey, fact 119): what needs transaction mode stays quiet, unless configured
    mode: str | None = None
    client_idle_timeout: float | None = None  # PgBouncer client_idle_timeout, seconds (0 = off)
    max_prepared_statements: int | None = None
    max_client_conn: int | None = None
    # does it carry protocol-level prepared statements through transaction pooling? None: the
    # evidence does not say (a PgBouncer of unknown version: 1.24 and later do by default)
    prepared_statements: bool | None = None
    # False for poolers whose handling of prepared statements the facts do not record
    # (PgCat, PgDog, an Odyssey whose config is not in the project): POL103 says nothing about
    # them rather than guess (facts 118, 119)
    prepared_statements_known: bool = True
    # False for a pooler that takes any startup parameter (Odyssey, fact 119): POL108 is quiet
    refuses_startup_parameters: bool = True

    @property
    def pools_transactions(self) -> bool:
        return self.mode in ("transaction", "statement")

    @property
    def supports_prepared_statements(self) -> bool:
        """Protocol-level prepared statements in transaction mode: max_prepared_statements > 0,
        a setting PgBouncer has from 1.21 and sets to 200 by default from 1.24 (facts 43-44, 85).
        psycopg 3 also wants 1.22 and libpq 17 (fact 39), which no project file states."""
        if self.max_prepared_statements is not None:
            return self.max_prepared_statements > 0
        return bool(self.prepared_statements)

    def describe(self) -> str:
        return f"{self.name} ({self.reason})"


def is_rds_proxy(url: DatabaseUrl | None) -> bool:
    return url is not None and bool(url.host) and bool(_RDS_PROXY_HOST.search(url.host.lower()))


_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", None}


def pooler_for(url: DatabaseUrl | None, url_variable: str | None, settings: Settings,
               deployment: Deployment | None = None, through: str = ""
               ) -> tuple[PoolerEvidence | None, DatabaseUrl | None]:
    """The pooler an engine's connections go through (None without evidence), and its URL,
    which the project's .env or compose files may supply for a variable the code reads;
    `through` says which, when the caller has already put their values in."""
    if settings.pooler == "none":
        return None, url
    deployment = deployment or Deployment()
    if url is None and url_variable in deployment.env_urls:
        found = deployment.env_urls[url_variable]
        url = parse_url(found.url)
        through = f"{url_variable} in {found.source}"
    if url is not None and url.backend is not None and not url.is_postgresql:
        return None, url  # PgBouncer and Supavisor speak only PostgreSQL
    if is_rds_proxy(url):
        return None, url  # pins instead of failing: neither double pooling nor lost statements
    bouncer = _pgbouncer_reached(url, deployment)
    if bouncer is not None:
        evidence = _from_config(bouncer, url, through)
    elif url is not None and url.port in deployment.postgres_ports and url.host in _LOCAL_HOSTS:
        return None, url  # counter-evidence: that port is a plain PostgreSQL's
    else:
        evidence = _evidence_in_url(url, url_variable, through)
        if evidence is not None and len(deployment.pgbouncers) == 1:
            evidence = _from_config(deployment.pgbouncers[0], url, evidence.reason)
    if evidence is None and deployment.heroku_pgbouncer and url_variable == "DATABASE_URL" \
            and (url is None or url.host in _LOCAL_HOSTS):
        # the buildpack rewrites DATABASE_URL to its local PgBouncer (fact 89)
        evidence = PoolerEvidence(f"$DATABASE_URL through bin/start-pgbouncer in "
                                  f"{deployment.heroku_pgbouncer}", "Heroku's PgBouncer buildpack",
                                  mode="transaction", max_prepared_statements=0)
    if evidence is None and url_variable and _has_unpooled_sibling(url_variable, deployment):
        evidence = PoolerEvidence(f"${url_variable} beside an unpooled variable", "a pooler")
    if evidence is None and settings.pooler == "pgbouncer":
        evidence = PoolerEvidence("configured: pooling-pooler = pgbouncer")
    if evidence is None:
        return None, url
    if settings.pooler_mode is not None:  # the project's own word wins
        evidence = replace(evidence, mode=settings.pooler_mode)
    elif evidence.mode is None:
        evidence = replace(evidence, mode="transaction")  # what a visible pooler usually is
    return evidence, url


def _pgbouncer_reached(url: DatabaseUrl | None, deployment: Deployment) -> PgBouncer | None:
    if url is None:
        return None
    for bouncer in deployment.pgbouncers:
        if url.host is not None and url.host in bouncer.hosts:
            return bouncer  # a compose service name
    for bouncer in deployment.pgbouncers:
        if not bouncer.hosts and url.port == bouncer.listen_port:
            return bouncer  # an ini file's listen_port
    return None


def _from_config(bouncer: PgBouncer, url: DatabaseUrl | None, reason: str) -> PoolerEvidence:
    evidence = _configured(bouncer, url, reason)
    if bouncer.max_prepared_statements is None and bouncer.version is not None:
        return replace(evidence, prepared_statements=bouncer.version >= (1, 24))  # fact 85
    return evidence


def _configured(bouncer: PgBouncer, url: DatabaseUrl | None, reason: str) -> PoolerEvidence:
    mode, mode_source = bouncer.pool_mode, bouncer.mode_source
    prepared_statements = bouncer.prepared_statements
    if url is not None and url.database in bouncer.database_modes:
        mode = bouncer.database_modes[url.database]
        prepared_statements = bouncer.database_prepared_statements.get(url.database,
                                                                       prepared_statements)
        mode_source = bouncer.database_mode_sources.get(
            url.database, f"[databases] {url.database} in {bouncer.source}")
    if not reason and url is not None and url.host in bouncer.hosts:
        reason = f"host {url.host!r}"
    route = f"{reason} points at {bouncer.source}" if reason else bouncer.source
    setting = f"{bouncer.mode_setting} mode unknown" if mode == UNKNOWN_MODE \
        else f"{bouncer.mode_setting}={mode}"
    return PoolerEvidence(f"{route}, {setting} ({mode_source})", bouncer.kind, mode,
                          bouncer.client_idle_timeout, bouncer.max_prepared_statements,
                          bouncer.max_client_conn, prepared_statements,
                          prepared_statements_known=bouncer.kind == "PgBouncer"
                          or prepared_statements is not None,
                          refuses_startup_parameters=bouncer.kind != "Odyssey")


def _evidence_in_url(url: DatabaseUrl | None, url_variable: str | None,
                     through: str = "") -> PoolerEvidence | None:
    host = (url.host or "").lower() if url is not None else ""
    if host.endswith("pooler.supabase.com"):
        if url.port == SUPABASE_TRANSACTION_PORT:  # Supavisor: no prepared statements (fact 90)
            return PoolerEvidence(f"port {url.port}", "Supabase's transaction pooler",
                                  mode="transaction", prepared_statements=False)
        return PoolerEvidence(f"port {url.port or 5432}", "Supabase's session pooler",
                              mode="session")
    if host.endswith(".neon.tech") and "-pooler." in host:  # PgBouncer 1.22+ (fact 86)
        return PoolerEvidence(f"host {url.host!r}", "Neon's pooler", mode="transaction",
                              prepared_statements=True)
    if host.endswith(".postgres.database.azure.com") and url.port == PGBOUNCER_PORT:
        return PoolerEvidence(f"port {url.port}", "Azure's built-in PgBouncer",  # fact 91
                              mode="transaction", max_client_conn=5000,
                              max_prepared_statements=0)
    if url is not None and url.port == DIGITALOCEAN_POOL_PORT:  # PostgreSQL URLs only (fact 88)
        return PoolerEvidence(f"port {url.port}", "DigitalOcean's connection pool")
    if url is not None and url.query.get("pgbouncer", "").lower() == "true":  # fact 93
        return PoolerEvidence("?pgbouncer=true", "PgBouncer")
    reasons = []
    if url is not None and url.host and _POOLER_HOST.search(url.host):
        reasons.append(f"host {url.host!r}")
    if url is not None and url.port in (PGBOUNCER_PORT, SUPABASE_TRANSACTION_PORT):
        reasons.append(f"port {url.port}")
    if url_variable and _POOLER_VARIABLE.search(url_variable):
        reasons.append(f"URL from ${url_variable}")
    if not reasons:
        return None
    if through:
        reasons.insert(0, through)
    name = "Supabase's transaction pooler" if url and url.port == SUPABASE_TRANSACTION_PORT \
        else "PgBouncer"
    return PoolerEvidence(", ".join(reasons), name)


def _has_unpooled_sibling(variable: str, deployment: Deployment) -> bool:
    """`X` beside `X_UNPOOLED`, `X_NON_POOLING`, `X_DIRECT`, or `DIRECT_URL`: evidence that `X`
    is the pooled URL (fact 92)."""
    names = set(deployment.environment)
    siblings = {f"{variable}_UNPOOLED", f"{variable}_NON_POOLING", f"{variable}_DIRECT"}
    if variable.endswith("_URL"):
        siblings.add(variable.removesuffix("_URL") + "_UNPOOLED_URL")
    return bool(names & siblings) or (variable != "DIRECT_URL" and "DIRECT_URL" in names
                                      and variable in names)
