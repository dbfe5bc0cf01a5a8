"""The evidence suite runs where PostgreSQL and PgBouncer can (.ci/run installs them)."""

from __future__ import annotations

import pytest

from .servers import Servers, available


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/evidence/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.evidence)


@pytest.fixture(scope="session")
def servers():
    reason = available()
    if reason:
        pytest.skip(reason)
    with Servers(pool_mode="transaction", default_pool_size=1) as running:
        yield running
