"""Evidence that an engine's URL reaches PgBouncer or another transaction pooler.

Each piece of evidence carries the reason a message can quote ("host 'pgbouncer', port 6432").
Evidence from outside the file (compose files, pgbouncer.ini) arrives through the same type, so
rules never need to know where it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..settings import Settings
from .deployment import Deployment, PgBouncer
from .urls import DatabaseUrl, parse_url

PGBOUNCER_PORT = 6432  # PgBouncer's default listen_port (pgbouncer config.md)
SUPABASE_TRANSACTION_PORT = 6543  # Supavisor's transaction-mode port; 5432 there is session mode
_POOLER_HOST = re.compile(r"pgbouncer|pooler", re.IGNORECASE)
_POOLER_VARIABLE = re.compile(r"PGBOUNCER|POOLER", re.IGNORECASE)


@dataclass(frozen=True)
class PoolerEvidence:
    reason: str  # why we believe it, for messages
    name: str = "PgBouncer"
    mode: str | None = None  # None: the evidence does not say; the configured mode applies
    client_idle_timeout: float | None = None  # PgBouncer client_idle_timeout, seconds (0 = off)
    max_prepared_statements: int | None = None
    max_client_conn: int | None = None

    @property
    def pools_transactions(self) -> bool:
        return self.mode in ("transaction", "statement")

    @property
    def supports_prepared_statements(self) -> bool:
        """Protocol-level prepared statements in transaction mode: max_prepared_statements > 0,
        a setting PgBouncer has from 1.21 (NEWS 1.21.0). psycopg 3 also wants 1.22 and libpq 17
        (its prepare.rst), which no project file states."""
        return bool(self.max_prepared_statements and self.max_prepared_statements > 0)

    def describe(self) -> str:
        return f"{self.name} ({self.reason})"


_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", None}


def pooler_for(url: DatabaseUrl | None, url_variable: str | None, settings: Settings,
               deployment: Deployment | None = None
               ) -> tuple[PoolerEvidence | None, DatabaseUrl | None]:
    """The pooler an engine's connections go through (None without evidence), and its URL,
    which the project's .env or compose files may supply for a variable the code reads."""
    if settings.pooler == "none":
        return None, url
    deployment = deployment or Deployment()
    through = ""
    if url is None and url_variable in deployment.env_urls:
        found = deployment.env_urls[url_variable]
        url = parse_url(found.url)
        through = f"{url_variable} in {found.source}"
    if url is not None and url.backend is not None and not url.is_postgresql:
        return None, url  # PgBouncer and Supavisor speak only PostgreSQL
    bouncer = _pgbouncer_reached(url, deployment)
    if bouncer is not None:
        evidence = _from_config(bouncer, url, through)
    elif url is not None and url.port in deployment.postgres_ports and url.host in _LOCAL_HOSTS:
        return None, url  # counter-evidence: that port is a plain PostgreSQL's
    else:
        evidence = _evidence_in_url(url, url_variable, through)
        if evidence is not None and len(deployment.pgbouncers) == 1:
            evidence = _from_config(deployment.pgbouncers[0], url, evidence.reason)
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
    mode, mode_source = bouncer.pool_mode, bouncer.mode_source
    if url is not None and url.database in bouncer.database_modes:
        mode = bouncer.database_modes[url.database]
        mode_source = f"[databases] {url.database} in {bouncer.source}"
    if not reason and url is not None and url.host in bouncer.hosts:
        reason = f"host {url.host!r}"
    route = f"{reason} points at {bouncer.source}" if reason else bouncer.source
    return PoolerEvidence(f"{route}, pool_mode={mode} ({mode_source})", "PgBouncer", mode,
                          bouncer.client_idle_timeout, bouncer.max_prepared_statements,
                          bouncer.max_client_conn)


def _evidence_in_url(url: DatabaseUrl | None, url_variable: str | None,
                     through: str = "") -> PoolerEvidence | None:
    if url is not None and url.host and url.host.endswith("pooler.supabase.com"):
        if url.port == SUPABASE_TRANSACTION_PORT:
            return PoolerEvidence(f"port {url.port}", "Supabase's transaction pooler",
                                  mode="transaction")
        return PoolerEvidence(f"port {url.port or 5432}", "Supabase's session pooler",
                              mode="session")
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
