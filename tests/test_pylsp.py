"""The pylsp plugin, inside a real `python -m pylsp` that finds it through its entry point."""

from __future__ import annotations

import os
import sys

import pytest

from .helpers import ROOT
from .lsp_client import LspClient, apply_edits, edits_of
from .test_server import BUFFER, CALL_END, CALL_START, _project, _range

pytest.importorskip("pylsp")

# pylsp's own linters stay out of the way, so what is published is the plugin's alone
QUIET = {"pylsp": {"plugins": {name: {"enabled": False} for name in (
    "pycodestyle", "pyflakes", "mccabe", "pydocstyle", "pylint", "flake8", "autopep8", "yapf",
    "rope_autoimport", "jedi_completion")}}}


def _ours(published: dict) -> list[dict]:
    return [d for d in published["diagnostics"] if d.get("source") == "flake8-pooling"]


def _session(project):
    client = LspClient([sys.executable, "-m", "pylsp"], project,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    client.request("initialize", {
        "processId": None, "rootUri": project.as_uri(), "initializationOptions": QUIET,
        "capabilities": {"workspace": {"workspaceEdit": {"documentChanges": True}}}})
    client.notify("initialized", {})
    return client


def test_diagnostics_and_a_fix_through_pylsp(tmp_path):
    project = _project(tmp_path)
    uri = (project / "app" / "db.py").as_uri()
    client = _session(project)
    try:
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": BUFFER}})
        published = client.wait_for("textDocument/publishDiagnostics",
                                    lambda params: params["uri"] == uri)
        assert [(d["code"], d["range"], d["severity"]) for d in _ours(published)] == [
            ("POL101", _range(2, CALL_START, CALL_END), 2),
            ("POL102", _range(2, CALL_START, CALL_END), 2)]
        assert _ours(published)[1]["message"].endswith("set pool_pre_ping=True [safe fix]")

        actions = client.request("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": _range(2, CALL_START, CALL_START),
            "context": {"diagnostics": _ours(published)}})
        fix, = [action for action in actions
                if action["title"] == "POL102: set pool_pre_ping=True (safe fix)"]
        assert "Fix all safe flake8-pooling fixes in this file" in \
            [action["title"] for action in actions]
        fixed = apply_edits(BUFFER, edits_of(fix, uri, version=1))
        assert fixed == BUFFER.replace('6432/app")', '6432/app", pool_pre_ping=True)')

        client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2},
                                                 "contentChanges": [{"text": fixed}]})
        published = client.wait_for("textDocument/publishDiagnostics",
                                    lambda params: params["uri"] == uri)
        assert [d["code"] for d in _ours(published)] == ["POL101"]

        actions = client.request("textDocument/codeAction", {
            "textDocument": {"uri": uri}, "range": _range(2, CALL_START, CALL_START),
            "context": {"diagnostics": _ours(published), "only": ["quickfix"]}})
        noqa, = [action for action in actions if action["title"] == "Add `# noqa: POL101`"]
        client.notify("textDocument/didChange", {
            "textDocument": {"uri": uri, "version": 3},
            "contentChanges": [{"text": apply_edits(fixed, edits_of(noqa, uri, version=2))}]})
        published = client.wait_for("textDocument/publishDiagnostics",
                                    lambda params: params["uri"] == uri)
        assert _ours(published) == []
    finally:
        client.close()
    assert (project / "app" / "db.py").read_text() == "engine = None\n"


def test_pylsp_settings_reach_the_plugin(tmp_path):
    project = _project(tmp_path)
    uri = (project / "app" / "db.py").as_uri()
    client = _session(project)
    try:
        client.notify("workspace/didChangeConfiguration", {"settings": {"pylsp": {"plugins": {
            "flake8_pooling": {"ignore": ["POL101"], "extend_select": ["POL107"]}}}}})
        client.notify("textDocument/didOpen", {"textDocument": {
            "uri": uri, "languageId": "python", "version": 1, "text": BUFFER}})
        published = client.wait_for("textDocument/publishDiagnostics",
                                    lambda params: params["uri"] == uri)
        assert [d["code"] for d in _ours(published)] == ["POL102", "POL107"]
    finally:
        client.close()
