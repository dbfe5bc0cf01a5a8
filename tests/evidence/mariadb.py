"""A real MariaDB server for the evidence suite, on a free loopback port in a temporary
directory, stopped and removed whatever happens.

As root (CI), the server runs as the `mysql` user the Debian package creates. `--no-defaults`
keeps /etc/mysql out of it: nothing but the options below decides how it behaves.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .servers import Running, free_port, run_as, wait_for_port

# Small and unsynced: a throwaway server that starts in about a second instead of five
FAST = ("--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M",
        "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0",
        "--innodb-flush-method=nosync",
        # io_uring/libaio are often refused inside containers; simulated AIO works anywhere
        "--innodb-use-native-aio=0",
        # accounts match 127.0.0.1 as written, without asking DNS
        "--skip-name-resolve")


def available() -> str | None:
    """None when MariaDB can run here, else why not."""
    for name in ("mariadbd", "mariadb-install-db"):
        if shutil.which(name) is None and not Path("/usr/sbin", name).exists():
            return f"MariaDB's {name} is not installed (Debian package mariadb-server)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("mysql")
        except KeyError:
            return "running as root without a mysql user to run MariaDB as"
    return None


def binary(name: str) -> str:
    # mariadbd lives in /usr/sbin, which a non-root PATH may lack
    return shutil.which(name) or str(Path("/usr/sbin", name))


class MariaDB(Running):
    """MariaDB with a database `app` and a user `app` (no password) allowed from 127.0.0.1."""

    def __init__(self, wait_timeout: int = 2) -> None:
        self.wait_timeout = wait_timeout
        self.dir: Path | None = None
        self.server: subprocess.Popen | None = None
        self.ready = False
        self.port = 0

    # -- running things as the server user -------------------------------------------------------
    def _demote(self):
        return run_as("mysql")

    # -- lifecycle -------------------------------------------------------------------------------

    def log(self) -> str:
        try:
            return (self.dir / "error.log").read_text(errors="replace")[-4000:]
        except (OSError, TypeError):
            return ""

    def start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="flake8-pooling-evidence-mariadb-"))
        if os.geteuid() == 0:
            user = pwd.getpwnam("mysql")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        data = self.dir / "data"
        install = subprocess.run(
            [binary("mariadb-install-db"), "--no-defaults", f"--datadir={data}",
             "--auth-root-authentication-method=normal", "--skip-test-db", *FAST],
            capture_output=True, text=True, preexec_fn=self._demote(), cwd=self.dir, timeout=120)
        if install.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{install.stdout[-2000:]}"
                               f"{install.stderr[-2000:]}")
        self.port = free_port()
        self.server = subprocess.Popen(
            [binary("mariadbd"), "--no-defaults", f"--datadir={data}",
             f"--socket={self.dir}/sock", f"--port={self.port}", "--bind-address=127.0.0.1",
             "--skip-networking=0", f"--wait-timeout={self.wait_timeout}",
             f"--pid-file={self.dir}/mariadbd.pid", f"--log-error={self.dir}/error.log",
             f"--tmpdir={self.dir}", *FAST],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=self._demote(),
            cwd=self.dir)
        self._wait_until_ready(60)
        self._create_app()

    def _wait_until_ready(self, seconds: float) -> None:
        """Up and listening, or the reason why not (bounded). The port opens before mariadbd is
        done starting, and a SIGTERM in that window can leave it hanging: wait for its own
        "ready for connections"."""
        deadline = time.monotonic() + seconds
        while "ready for connections" not in self.log():
            if self.server.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {self.server.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"MariaDB not ready after {seconds}s:\n{self.log()}")
            time.sleep(0.05)
        wait_for_port(self.port, max(deadline - time.monotonic(), 1))
        self.ready = True

    def _create_app(self) -> None:
        import pymysql  # a test dependency; imported here so available() needs nothing

        # root@localhost has no password (--auth-root-authentication-method=normal)
        root = pymysql.connect(unix_socket=str(self.dir / "sock"), user="root",
                               connect_timeout=10, read_timeout=30, write_timeout=30)
        try:
            with root.cursor() as cursor:
                for statement in ("CREATE DATABASE app", "CREATE USER 'app'@'127.0.0.1'",
                                  "GRANT ALL ON app.* TO 'app'@'127.0.0.1'"):
                    cursor.execute(statement)
        finally:
            root.close()

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            if self.ready:
                self.server.send_signal(signal.SIGTERM)  # mariadbd's normal shutdown
                try:
                    self.server.wait(15)
                except subprocess.TimeoutExpired:
                    pass
            if self.server.poll() is None:
                # a server still starting may ignore SIGTERM; its data is thrown away anyway
                self.server.kill()
                self.server.wait(10)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- what scenarios connect to ---------------------------------------------------------------
    def url(self, driver: str = "pymysql") -> str:
        return f"mysql+{driver}://app@127.0.0.1:{self.port}/app"
