"""Evidence that an engine's URL reaches PgBouncer or another transaction pooler.

Each piece of evidence carries the reason a message can quote ("host 'pgbouncer', port 6432").
Evidence from outside the file (compose files, pgbouncer.ini) arrives through the same type, so
rules never need to know where it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..settings import Settings
from .urls import DatabaseUrl

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
    version: tuple[int, ...] | None = None

    @property
    def pools_transactions(self) -> bool:
        return self.mode in ("transaction", "statement")

    def supports_prepared_statements(self, driver: str | None) -> bool:
        """Protocol-level prepared statements in transaction mode: PgBouncer 1.21+ with
        max_prepared_statements > 0 (pgbouncer NEWS 1.21.0); psycopg 3 needs 1.22+ (psycopg's
        prepare.rst, which also wants libpq 17, not visible from the code)."""
        if not self.max_prepared_statements or self.max_prepared_statements <= 0:
            return False
        needed = (1, 22) if driver in ("psycopg", "psycopg_async") else (1, 21)
        return self.version is None or self.version >= needed

    def describe(self) -> str:
        return f"{self.name} ({self.reason})"


def pooler_for(url: DatabaseUrl | None, url_variable: str | None,
               settings: Settings) -> PoolerEvidence | None:
    """The pooler an engine's connections go through, or None without evidence."""
    if settings.pooler == "none":
        return None
    if url is not None and url.backend is not None and not url.is_postgresql:
        return None  # PgBouncer and Supavisor speak only PostgreSQL
    evidence = _evidence_in_url(url, url_variable)
    if evidence is None and settings.pooler == "pgbouncer":
        evidence = PoolerEvidence("configured: pooling-pooler = pgbouncer")
    if evidence is None:
        return None
    if evidence.mode is None:
        evidence = replace(evidence, mode=settings.pooler_mode)
    return evidence


def _evidence_in_url(url: DatabaseUrl | None, url_variable: str | None) -> PoolerEvidence | None:
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
    name = "Supabase's transaction pooler" if url and url.port == SUPABASE_TRANSACTION_PORT \
        else "PgBouncer"
    return PoolerEvidence(", ".join(reasons), name)
