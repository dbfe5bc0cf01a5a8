"""`flake8-pooling server`, the real process, driven by an LSP client over its pipes.

One editing session is the expectation: every request and response, in order, held against
tests/snapshots/lsp_session.json (the project's folder and the version made stable). Regenerate
after an intended change with `POOLING_UPDATE_SNAPSHOT=1 pytest tests/test_server.py` and
review the diff like code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flake8_pooling import __version__
from flake8_pooling.rules import rule_by_code

from .helpers import ROOT
from .lsp_client import LspClient, apply_edits, edits_of
from .test_long_lived import COMPOSE_WITH_PGBOUNCER, COMPOSE_WITHOUT, ENGINE

pytest.importorskip("pygls")

SNAPSHOT = Path(__file__).parent / "snapshots" / "lsp_session.json"
SERVER = [sys.executable, "-m", "flake8_pooling.cli", "server"]
# the emoji before the call: the protocol counts it as two UTF-16 code units, Python as one
BUFFER = textwrap.dedent("""\
    from sqlalchemy import create_engine

    label = "\N{ELEPHANT}"; engine = create_engine("postgresql://app@pgbouncer:6432/app")
""")
CALL_START = len('label = "\N{ELEPHANT}"; engine = ') + 1  # in UTF-16 code units
CALL_END = CALL_START + len('create_engine("postgresql://app@pgbouncer:6432/app")')
CAPABILITIES = {"workspace": {"workspaceEdit": {"documentChanges": True}},
                "general": {"positionEncodings": ["utf-16"]},
                "textDocument": {"codeAction": {"codeActionLiteralSupport": {"codeActionKind": {
                    "valueSet": ["quickfix", "source.fixAll"]}}},
                    "hover": {"contentFormat": ["markdown"]}}}
# what the server declares itself; pygls adds its defaults around it
OWN_CAPABILITIES = ("positionEncoding", "textDocumentSync", "hoverProvider",
                    "codeActionProvider")


def _project(root: Path) -> Path:
    """A project whose db.py on disk says nothing: what the server reports comes from the
    buffer. Its setup.cfg is read as the command line reads it (fixes keep to its line
    length)."""
    (root / "app").mkdir()
    (root / "app" / "db.py").write_text("engine = None\n")
    (root / "setup.cfg").write_text("[flake8]\nmax-line-length = 120\n"
                                    "pooling-sqlalchemy-version = 2.0\n")
    return root


def _start(project: Path) -> LspClient:
    return LspClient(SERVER, project, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _initialize(client: LspClient, project: Path, options: dict | None = None,
                capabilities: dict = CAPABILITIES) -> dict:
    params = {"processId": None, "rootUri": project.as_uri(), "capabilities": capabilities}
    if options is not None:
        params["initializationOptions"] = options
    result = client.request("initialize", params)
    client.notify("initialized", {})
    return result


def _open(client: LspClient, uri: str, text: str) -> dict:
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": uri, "languageId": "python", "version": 1, "text": text}})
    return client.wait_for("textDocument/publishDiagnostics",
                           lambda params: params["uri"] == uri)


def _range(line: int, start: int, end: int) -> dict:
    return {"start": {"line": line, "character": start}, "end": {"line": line, "character": end}}


def _stable(transcript: list[dict], project: Path) -> list[dict]:
    """The session with what differs between runs made fixed: the project's folder, the
    version, pygls's own capabilities, and the rule page (compared with `rules POL101`)."""
    text = json.dumps(transcript, ensure_ascii=False)
    text = text.replace(project.as_uri(), "file:///project")
    session = json.loads(text)
    for entry in session:
        result = entry["message"].get("result")
        if isinstance(result, dict) and "capabilities" in result:
            result["capabilities"] = {key: value for key, value in result["capabilities"].items()
                                      if key in OWN_CAPABILITIES}
            result["serverInfo"]["version"] = "<version>"
        if isinstance(result, dict) and "contents" in result:
            result["contents"]["value"] = "<the page `flake8-pooling rules` prints>"
    return session


def test_an_editing_session(tmp_path):
    project = _project(tmp_path)
    uri = (project / "app" / "db.py").as_uri()
    client = _start(project)
    try:
        started = _initialize(client, project)
        assert started["serverInfo"] == {"name": "flake8-pooling", "version": __version__}
        assert started["capabilities"]["positionEncoding"] == "utf-16"

        published = _open(client, uri, BUFFER)
        assert published["version"] == 1
        assert [(d["code"], d["range"]) for d in published["diagnostics"]] == [
            ("POL101", _range(2, CALL_START, CALL_END)),
            ("POL102", _range(2, CALL_START, CALL_END))]
        first = published["diagnostics"][1]
        assert first["source"] == "flake8-pooling" and first["severity"] == 2
        assert first["message"].endswith("; set pool_pre_ping=True [safe fix]")

        actions = client.request("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": first["range"],
            "context": {"diagnostics": [first]}})
        titles = [action["title"] for action in actions]
        assert titles == ["POL101: use poolclass=NullPool (unsafe fix)", "Add `# noqa: POL101`",
                          "POL102: set pool_pre_ping=True (safe fix)", "Add `# noqa: POL102`",
                          "Fix all safe flake8-pooling fixes in this file",
                          "Fix all safe flake8-pooling fixes in this file"]
        assert actions[-1]["kind"] == "source.fixAll.flake8-pooling"
        fix = actions[2]
        edits = edits_of(fix, uri, version=1)
        fixed = apply_edits(BUFFER, edits)
        assert fixed == BUFFER.replace('6432/app")', '6432/app", pool_pre_ping=True)')

        # the edit as the editor applies it: an incremental change of version 2
        client.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"range": edit["range"], "text": edit["newText"]}
                               for edit in edits]})
        published = client.wait_for("textDocument/publishDiagnostics")
        assert published["version"] == 2
        assert [d["code"] for d in published["diagnostics"]] == ["POL101"]

        hovered = client.request("textDocument/hover", {
            "textDocument": {"uri": uri}, "position": {"line": 2, "character": CALL_START + 3}})
        assert hovered["contents"] == {"kind": "markdown",
                                       "value": rule_by_code("POL101").documentation()}
        assert hovered["contents"]["value"].startswith("# POL101 pooled-behind-pooler\n")
        assert hovered["range"] == published["diagnostics"][0]["range"]
        nothing = client.request("textDocument/hover", {
            "textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})
        assert nothing is None

        client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
        assert client.wait_for("textDocument/publishDiagnostics") == published

        actions = client.request("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": _range(2, CALL_START, CALL_START),
            "context": {"diagnostics": []}})
        noqa, = [action for action in actions if action["title"] == "Add `# noqa: POL101`"]
        silenced = apply_edits(fixed, edits_of(noqa, uri, version=2))
        assert silenced.splitlines()[2].endswith("pool_pre_ping=True)  # noqa: POL101")
        client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3},
                                                 "contentChanges": [{"text": silenced}]})
        assert client.wait_for("textDocument/publishDiagnostics")["diagnostics"] == []

        client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        assert client.wait_for("textDocument/publishDiagnostics")["diagnostics"] == []
        assert client.close() == 0
    finally:
        client.close()
    assert (project / "app" / "db.py").read_text() == "engine = None\n"  # edits are the editor's

    session = _stable(client.transcript, project)
    if os.environ.get("POOLING_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(session, indent=1, ensure_ascii=False) + "\n",
                            encoding="utf-8")
    assert session == json.loads(SNAPSHOT.read_text(encoding="utf-8"))


def test_fix_all_and_ranges_that_span_lines(tmp_path):
    project = _project(tmp_path)
    uri = (project / "app" / "db.py").as_uri()
    text = textwrap.dedent("""\
        import sqlalchemy as sa

        engine = sa.create_engine(
            "postgresql://app@pgbouncer:6432/app",  # the pooler
            pool_size=5,
        )
        other = sa.create_engine("postgresql://app@pgbouncer:6432/other")
    """)
    client = _start(project)
    try:
        _initialize(client, project)
        published = _open(client, uri, text)
        assert [(d["code"], d["range"]) for d in published["diagnostics"]] == [
            ("POL101", {"start": {"line": 2, "character": 9}, "end": {"line": 5, "character": 1}}),
            ("POL102", {"start": {"line": 2, "character": 9}, "end": {"line": 5, "character": 1}}),
            ("POL101", _range(6, 8, len(text.splitlines()[6]))),
            ("POL102", _range(6, 8, len(text.splitlines()[6])))]
        actions = client.request("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": _range(0, 0, 0),
            "context": {"diagnostics": [], "only": ["source.fixAll"]}})
        fix_all, = actions  # nothing is under the cursor: the source action alone
        assert fix_all["kind"] == "source.fixAll.flake8-pooling"
        fixed = apply_edits(text, edits_of(fix_all, uri, version=1))
        assert fixed.count("pool_pre_ping=True") == 2 and "NullPool" not in fixed  # safe only
        assert "# the pooler" in fixed
        client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                                 "contentChanges": [{"text": fixed}]})
        assert [d["code"] for d in client.wait_for("textDocument/publishDiagnostics")[
            "diagnostics"]] == ["POL101", "POL101"]
    finally:
        client.close()


def test_edits_resolved_when_picked(tmp_path):
    """A client that resolves actions gets them without edits, then the picked one's edit;
    an action offered for an older version of the buffer resolves to no edit."""
    project = _project(tmp_path)
    uri = (project / "app" / "db.py").as_uri()
    client = _start(project)
    try:
        client.request("initialize", {"processId": None, "rootUri": project.as_uri(),
                                      "capabilities": {**CAPABILITIES, "textDocument": {
                                          "codeAction": {"resolveSupport": {
                                              "properties": ["edit"]}}}}})
        client.notify("initialized", {})
        _open(client, uri, BUFFER)
        actions = client.request("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": _range(2, CALL_START, CALL_START),
            "context": {"diagnostics": []}})
        assert all("edit" not in action and action["data"]["version"] == 1
                   for action in actions)
        fix, = [action for action in actions
                if action["title"] == "POL102: set pool_pre_ping=True (safe fix)"]
        resolved = client.request("codeAction/resolve", fix)
        fixed = apply_edits(BUFFER, edits_of(resolved, uri, version=1))
        assert fixed == BUFFER.replace('6432/app")', '6432/app", pool_pre_ping=True)')

        client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                                 "contentChanges": [{"text": fixed}]})
        client.wait_for("textDocument/publishDiagnostics")
        assert "edit" not in client.request("codeAction/resolve", fix)  # offered for version 1
    finally:
        client.close()


def test_a_changed_compose_file_reaches_the_open_buffers(tmp_path):
    """The server asks to hear of project files that change, and lints its open buffers
    again when one does: PgBouncer removed from compose, the findings go."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE_WITH_PGBOUNCER)
    uri = (tmp_path / "db.py").as_uri()
    client = _start(tmp_path)
    try:
        client.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(),
                                      "capabilities": {"workspace": {"didChangeWatchedFiles": {
                                          "dynamicRegistration": True}}}})
        client.notify("initialized", {})
        published = _open(client, uri, ENGINE)
        assert {"POL101", "POL102"} <= {d["code"] for d in published["diagnostics"]}
        asked, = [entry["message"] for entry in client.transcript
                  if entry["message"].get("method") == "client/registerCapability"]
        registration, = asked["params"]["registrations"]
        assert registration["method"] == "workspace/didChangeWatchedFiles"

        compose.write_text(COMPOSE_WITHOUT)
        client.notify("workspace/didChangeWatchedFiles", {"changes": [
            {"uri": compose.as_uri(), "type": 2}]})
        assert client.wait_for("textDocument/publishDiagnostics")["diagnostics"] == []
    finally:
        client.close()


def test_settings_from_initialization_options(tmp_path):
    project = _project(tmp_path)
    uri = (project / "app" / "db.py").as_uri()
    client = _start(project)
    try:
        started = _initialize(client, project, {"extend-select": ["POL107"],
                                                "ignore": ["POL101"], "colour": "blue"},
                              {**CAPABILITIES, "general": {"positionEncodings": ["utf-8"]}})
        assert started["capabilities"]["positionEncoding"] == "utf-8"
        published = _open(client, uri, BUFFER)
        assert [d["code"] for d in published["diagnostics"]] == ["POL102", "POL107"]
        # the columns the client asked for: the elephant is four bytes in UTF-8
        assert published["diagnostics"][0]["range"]["start"]["character"] == \
            len('label = "\N{ELEPHANT}"; engine = '.encode())
        told = client.wait_for("window/showMessage")
        assert told == {"type": 2, "message": "flake8-pooling: editor settings: unknown "
                                              "setting 'colour'; ignored"}
    finally:
        client.close()


def test_noqa_and_unparsable_buffers(tmp_path):
    project = _project(tmp_path)
    uri = (project / "app" / "db.py").as_uri()
    text = BUFFER.replace('6432/app")', '6432/app")  # noqa: E501')
    client = _start(project)
    try:
        _initialize(client, project)
        _open(client, uri, text)
        actions = client.request("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": _range(2, CALL_START, CALL_START),
            "context": {"diagnostics": []}})
        noqa, = [action for action in actions if action["title"] == "Add `# noqa: POL102`"]
        silenced = apply_edits(text, edits_of(noqa, uri))
        assert silenced.splitlines()[2].endswith("6432/app\")  # noqa: E501, POL102")
        # mid-edit code that is not Python: no diagnostics (flake8 would say E999), no crash
        client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                                 "contentChanges": [{"text": text + "def ("}]})
        assert client.wait_for("textDocument/publishDiagnostics")["diagnostics"] == []
        assert client.request("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": _range(2, 0, 0),
            "context": {"diagnostics": []}}) == []
    finally:
        client.close()


def test_without_pygls_the_server_says_how_to_install_it(tmp_path):
    # None in sys.modules is Python's own way to make an import fail as if it were missing
    program = ("import sys; sys.modules['pygls'] = None; from flake8_pooling.cli import main; "
               "sys.exit(main(['server']))")
    run = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 2
    assert run.stderr == ("flake8-pooling server: pygls is not installed; pip install "
                          "'flake8-pooling[server]'\n")


def test_check_and_the_flake8_plugin_never_import_pygls(tmp_path):
    (tmp_path / "db.py").write_text(BUFFER)
    program = ("import sys; from flake8.main.cli import main as flake8; "
               "from flake8_pooling.cli import main; "
               "main(['check', '--isolated', 'db.py']); "
               "code = flake8(['--isolated', '--select=POL', 'db.py']); "
               "print(sorted(name for name in sys.modules if name.startswith(('pygls', "
               "'lsprotocol', 'pylsp'))))")
    run = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert "db.py:3:23: POL101" in run.stdout  # both ran, and found what the server finds
    assert run.stdout.splitlines()[-1] == "[]", run.stderr
