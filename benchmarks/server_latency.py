"""How long an editor waits for diagnostics from `flake8-pooling server` after each keystroke:
didChange -> publishDiagnostics, in one long-lived server, on a candidate file (one that
reaches libcst and has findings).

    python benchmarks/server_latency.py [--changes 20] [FILE]

The server is the real process, started as editors start it; the client is the tests' LSP
client. The first lint (imports, the project's scan) is reported apart from the warm ones.
Default FILE: the example service's db.py, with its project around it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.lsp_client import LspClient  # noqa: E402  (the repository's root, set just above)

DEFAULT = ROOT / "examples" / "orders_service" / "broken" / "db.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--changes", type=int, default=20)
    arguments = parser.parse_args()
    path = arguments.file.resolve()
    text, uri = path.read_text(), path.as_uri()

    started = time.perf_counter()
    client = LspClient([sys.executable, "-m", "flake8_pooling.cli", "server"], path.parent)
    try:
        client.request("initialize", {"processId": None, "rootUri": path.parent.as_uri(),
                                      "capabilities": {}})
        print(f"start (process, imports, initialize): "
              f"{(client.received_at - started) * 1000:.0f} ms")
        client.notify("initialized", {})
        started = time.perf_counter()
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": text}})
        first = client.wait_for("textDocument/publishDiagnostics")
        print(f"first lint (didOpen): {(client.received_at - started) * 1000:.0f} ms, "
              f"{len(first['diagnostics'])} diagnostics")
        waits = []
        for version in range(2, arguments.changes + 2):
            # a keystroke's worth of change: a comment that grows, so the text always differs
            changed = text + "#" + "x" * version + "\n"
            started = time.perf_counter()
            client.notify("textDocument/didChange", {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": changed}]})
            published = client.wait_for("textDocument/publishDiagnostics",
                                        lambda params, version=version:
                                        params.get("version") == version)
            waits.append(client.received_at - started)
            assert len(published["diagnostics"]) == len(first["diagnostics"])
        print(f"warm, didChange -> publishDiagnostics over {len(waits)} changes: median "
              f"{statistics.median(waits) * 1000:.1f} ms, min {min(waits) * 1000:.1f} ms, "
              f"max {max(waits) * 1000:.1f} ms")
    finally:
        client.close()


if __name__ == "__main__":
    main()
