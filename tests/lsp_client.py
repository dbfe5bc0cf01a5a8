"""A small Language Server Protocol client over a child process's pipes, for the editor tests.

It speaks JSON-RPC with Content-Length framing, keeps every message both ways in `transcript`,
answers the server's own requests with null, and never waits without a timeout: a server that
hangs fails the test in seconds, and `close` always ends the child.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from pathlib import Path

TIMEOUT = 20.0  # seconds for any one answer; the first lint imports libcst and SQLAlchemy


class ServerGone(AssertionError):
    pass


class LspClient:
    def __init__(self, command: list[str], cwd: Path, env: dict | None = None) -> None:
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.transcript: list[dict] = []  # {"from": "client" | "server", "message": {...}}
        self.stderr: list[bytes] = []
        self._incoming: queue.Queue = queue.Queue()
        self._unread: list[dict] = []  # server messages not yet taken by a wait
        self._next_id = 1
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    # -- the wire --------------------------------------------------------------------------

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while True:
                header = stream.readline()
                if not header:
                    self._incoming.put(None)  # the server closed its end
                    return
                header = header.strip()
                if not header:
                    break
                name, _, value = header.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            body = stream.read(length)
            self._incoming.put((time.perf_counter(), json.loads(body)))

    def _drain_stderr(self) -> None:
        for line in self.process.stderr:
            self.stderr.append(line)

    def _send(self, message: dict) -> None:
        message = {"jsonrpc": "2.0", **message}
        self.transcript.append({"from": "client", "message": message})
        body = json.dumps(message).encode("utf-8")
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def _receive(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        try:
            item = self._incoming.get(timeout=max(remaining, 0.01))
        except queue.Empty:
            raise ServerGone(f"no answer within {TIMEOUT} s; server said: "
                             f"{b''.join(self.stderr).decode(errors='replace')[-2000:]}")
        if item is None:
            self._incoming.put(None)  # and for every later wait
            raise ServerGone("the server closed its output; it said: "
                             f"{b''.join(self.stderr).decode(errors='replace')[-2000:]}")
        self.received_at, message = item
        self.transcript.append({"from": "server", "message": message})
        if "method" in message and "id" in message:  # the server asks us: answer plainly
            self._send({"id": message["id"], "result": None})
        return message

    # -- what the tests call ---------------------------------------------------------------

    def request(self, method: str, params) -> dict:
        """The result of a request (notifications meanwhile are kept for `wait_for`)."""
        number = self._next_id
        self._next_id += 1
        self._send({"id": number, "method": method, "params": params})
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._receive(deadline)
            if message.get("id") == number and "method" not in message:
                assert "error" not in message, message["error"]
                return message.get("result")
            self._unread.append(message)

    def notify(self, method: str, params) -> None:
        self._send({"method": method, "params": params})

    def wait_for(self, method: str, accept=lambda params: True) -> dict:
        """The params of the next notification `method` that `accept`s them."""
        for index, message in enumerate(self._unread):
            if message.get("method") == method and accept(message.get("params")):
                del self._unread[index]
                return message["params"]
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._receive(deadline)
            if message.get("method") == method and accept(message.get("params")):
                return message["params"]
            self._unread.append(message)

    def close(self) -> int | None:
        """shutdown and exit when the server still listens; the child ends in any case."""
        try:
            if self.process.poll() is None:
                self.request("shutdown", None)
                self.notify("exit", None)
                return self.process.wait(timeout=TIMEOUT)
        except (ServerGone, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=TIMEOUT)
        return self.process.returncode


def apply_edits(text: str, edits: list[dict]) -> str:
    """The text with the protocol's TextEdits applied (positions in UTF-16 code units), as an
    editor applies them: all ranges refer to the text before any edit."""
    def offset(position: dict) -> int:
        lines = text.splitlines(keepends=True) + [""]
        start = sum(len(line) for line in lines[:position["line"]])
        line = lines[position["line"]]
        units, index = 0, 0
        while units < position["character"] and index < len(line):
            units += 2 if ord(line[index]) > 0xFFFF else 1
            index += 1
        assert units == position["character"], f"{position} splits a character"
        return start + index

    for edit in sorted(edits, key=lambda edit: (edit["range"]["start"]["line"],
                                                edit["range"]["start"]["character"]),
                       reverse=True):
        start, end = offset(edit["range"]["start"]), offset(edit["range"]["end"])
        assert start <= end, edit
        text = text[:start] + edit["newText"] + text[end:]
    return text


def edits_of(action: dict, uri: str, version: int | None = None) -> list[dict]:
    """The TextEdits a code action makes to one document (checking the version it is for)."""
    edit = action["edit"]
    if "documentChanges" in edit:
        change, = edit["documentChanges"]
        assert change["textDocument"]["uri"] == uri
        if version is not None:
            assert change["textDocument"]["version"] == version
        return change["edits"]
    return edit["changes"][uri]
