"""Real PostgreSQL and PgBouncer for the evidence suite, on free loopback ports in a temporary
directory, stopped and removed whatever happens.

As root (CI), the servers run as the `postgres` user the Debian packages create: neither
PostgreSQL nor PgBouncer runs as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def available() -> str | None:
    """None when the servers can run here, else why not."""
    if postgres_bin() is None:
        return "PostgreSQL's server binaries are not installed (Debian package postgresql)"
    if shutil.which("pgbouncer") is None:
        return "PgBouncer is not installed (Debian package pgbouncer)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root without a postgres user to run the servers as"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {seconds}s")


def run_as(name: str):
    """A preexec_fn that runs a server as its own user when we are root (CI); None otherwise:
    neither PostgreSQL nor MariaDB runs as root."""
    if os.geteuid() != 0:
        return None
    user = pwd.getpwnam(name)

    def demote() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    return demote


class Running:
    """Started on entry, stopped and removed on exit, also when starting fails half-way."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Servers(Running):
    """PostgreSQL with a database `app` (user `app`, trust auth), and PgBouncer in front."""

    def __init__(self, pool_mode: str = "transaction", default_pool_size: int = 1) -> None:
        self.pool_mode = pool_mode
        self.default_pool_size = default_pool_size
        self.dir: Path | None = None
        self.pgbouncer: subprocess.Popen | None = None
        self.postgres_pid: int | None = None
        self.pg_port = self.bouncer_port = 0

    # -- running things as the server user -------------------------------------------------------
    def _demote(self):
        return run_as("postgres")

    def _run(self, *command: str | Path) -> None:
        subprocess.run([str(part) for part in command], check=True, capture_output=True,
                       preexec_fn=self._demote(), cwd=self.dir, timeout=120)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        binaries = postgres_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="flake8-pooling-evidence-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = self.dir / "data"
        self._run(binaries / "initdb", "-D", data, "-U", "app", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        self.pg_port = free_port()
        self._run(binaries / "pg_ctl", "-D", data, "-l", self.dir / "postgres.log", "-w",
                  "-t", "60", "-o", f"-p {self.pg_port} -k {self.dir} "
                  f"-c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50", "start")
        self.postgres_pid = int((data / "postmaster.pid").read_text().split()[0])
        self._run(binaries / "createdb", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "app",
                  "app")
        self.bouncer_port = free_port()
        (self.dir / "userlist.txt").write_text('"app" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            f"[databases]\napp = host=127.0.0.1 port={self.pg_port} dbname=app user=app\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {self.bouncer_port}\n"
            f"unix_socket_dir =\nauth_type = trust\nauth_file = {self.dir}/userlist.txt\n"
            f"pool_mode = {self.pool_mode}\ndefault_pool_size = {self.default_pool_size}\n"
            f"max_client_conn = 100\nlogfile = {self.dir}/pgbouncer.log\n"
            f"admin_users = app\nserver_check_delay = 0\n")
        if os.geteuid() == 0:
            for name in ("userlist.txt", "pgbouncer.ini"):
                shutil.chown(self.dir / name, "postgres", "postgres")
        self.start_pgbouncer()

    def start_pgbouncer(self) -> None:
        self.pgbouncer = subprocess.Popen(["pgbouncer", str(self.dir / "pgbouncer.ini")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          preexec_fn=self._demote(), cwd=self.dir)
        wait_for_port(self.bouncer_port)

    def stop_pgbouncer(self) -> None:
        if self.pgbouncer is not None and self.pgbouncer.poll() is None:
            self.pgbouncer.send_signal(signal.SIGINT)  # PgBouncer's immediate shutdown
            try:
                self.pgbouncer.wait(10)
            except subprocess.TimeoutExpired:
                self.pgbouncer.kill()
                self.pgbouncer.wait(10)

    def restart_pgbouncer(self) -> None:
        self.stop_pgbouncer()
        self.start_pgbouncer()

    def stop(self) -> None:
        self.stop_pgbouncer()
        if self.postgres_pid is not None:
            try:
                self._run(postgres_bin() / "pg_ctl", "-D", self.dir / "data", "-m", "immediate",
                          "-w", "stop")
            except (subprocess.SubprocessError, OSError):
                try:
                    os.kill(self.postgres_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- what scenarios connect to ---------------------------------------------------------------
    def direct(self, driver: str) -> str:
        return f"postgresql+{driver}://app@127.0.0.1:{self.pg_port}/app"

    def through_pgbouncer(self, driver: str) -> str:
        return f"postgresql+{driver}://app@127.0.0.1:{self.bouncer_port}/app"
