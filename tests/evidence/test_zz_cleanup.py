"""The servers leave nothing behind: no process, no temporary directory."""

from __future__ import annotations

import pytest

from .servers import Servers, available


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for whoever adopted it to reap it."""
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def test_started_servers_leave_no_process_or_directory():
    reason = available()
    if reason:
        pytest.skip(reason)
    with Servers() as servers:
        pids = [servers.postgres_pid, servers.pgbouncer.pid]
        directory = servers.dir
        assert all(alive(pid) for pid in pids) and directory.is_dir()
    assert not any(alive(pid) for pid in pids)
    assert not directory.exists()


def test_a_failed_start_cleans_up_too(monkeypatch):
    reason = available()
    if reason:
        pytest.skip(reason)
    started = {}

    def fail(self):
        started["dir"] = self.dir
        raise RuntimeError("PgBouncer did not start")

    monkeypatch.setattr(Servers, "start_pgbouncer", fail)
    servers = Servers()
    with pytest.raises(RuntimeError):
        with servers:
            pass
    assert not started["dir"].exists()
    assert servers.postgres_pid is None or not alive(servers.postgres_pid)
