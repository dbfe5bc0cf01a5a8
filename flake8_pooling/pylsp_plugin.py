"""The python-lsp-server plugin (entry point `pylsp`, name `flake8_pooling`): diagnostics and code
actions for editors that run pylsp, the same ones the language server gives (editor.py).

Settings: the config files the command line reads, found from the document's folder, then
pylsp's `plugins.flake8_pooling` settings on top, with the config files' keys (`select`,
`ignore`, `extend-select`, `extend-ignore`, `pooler`, ...) besides pylsp's own `enabled`.
"""

from __future__ import annotations

from pathlib import Path

from pylsp import hookimpl, lsp

from . import editor

_PLUGIN = "flake8_pooling"
# uri -> its last linted version, for code actions; pylsp says nothing when a document closes,
# so only the most recent few are kept
_buffers: dict[str, editor.Buffer] = {}
_KEPT = 16
_told: set[str] = set()  # problems with the settings, each said once per process


@hookimpl
def pylsp_settings():
    return {"plugins": {_PLUGIN: {"enabled": True}}}


@hookimpl
def pylsp_lint(config, workspace, document):
    return editor.diagnostics(_lint(config, workspace, document))


@hookimpl
def pylsp_code_actions(config, workspace, document, range, context):
    buffer = _buffers.get(document.uri)
    if buffer is None or buffer.text != document.source or buffer.version != document.version:
        buffer = _lint(config, workspace, document)
    edits = (config.capabilities or {}).get("workspace", {}).get("workspaceEdit", {})
    return editor.code_actions(buffer, range, context,
                               versioned=bool(edits.get("documentChanges")))


def _lint(config, workspace, document) -> editor.Buffer:
    path = document.path or ""
    overrides = {key: value for key, value in
                 config.plugin_settings(_PLUGIN, document_path=path or None).items()
                 if key != "enabled"}
    folder = Path(path).parent if path else Path(workspace.root_path or ".")
    chosen = editor.settings_for(folder, overrides)
    for problem in chosen.problems:
        if problem not in _told:
            _told.add(problem)
            workspace.show_message(f"flake8-pooling: {problem}", lsp.MessageType.Warning)
    buffer = editor.lint_buffer(document.uri, document.source, path, document.version, chosen)
    _buffers.pop(document.uri, None)
    _buffers[document.uri] = buffer
    while len(_buffers) > _KEPT:
        del _buffers[next(iter(_buffers))]
    return buffer
