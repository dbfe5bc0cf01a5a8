"""`flake8-pooling server`: a language server over stdio (pygls).

Diagnostics on open, change and save, from the editor's buffer; a quick fix per fixable finding,
"fix all safe fixes", `# noqa` actions; the rule's page on hover. What it shows is built in
editor.py, which the pylsp plugin shares.

Settings come from the config files the command line reads, found from each document's folder
(or the workspace root for documents that are not files), and from `initializationOptions`:
the config files' keys (`select`, `ignore`, `extend-select`, `extend-ignore`, `pooler`,
`pooler-mode`, `sqlalchemy-version`, `max-connections`, `engines`), on top of the files.
"""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import default_converter
from pygls.uris import to_fs_path

from . import __version__, editor


class PoolingServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("flake8-pooling", __version__,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.overrides: dict = {}
        self.buffers: dict[str, editor.Buffer] = {}  # uri -> its last linted version
        self.told: set[str] = set()  # problems with the settings, each said once

    # -- settings and linting --------------------------------------------------------------

    def path_of(self, uri: str) -> str:
        path = to_fs_path(uri) if uri.startswith("file:") else None
        return path or ""

    def folder_of(self, path: str) -> Path:
        if path:
            return Path(path).parent
        root = self.workspace.root_path
        return Path(root) if root else Path.cwd()

    def lint(self, uri: str) -> editor.Buffer:
        document = self.workspace.get_text_document(uri)
        path = self.path_of(uri)
        chosen = editor.settings_for(self.folder_of(path), self.overrides)
        for problem in chosen.problems:
            self.tell(problem)
        encoding = self.workspace.position_encoding or "utf-16"  # as agreed at initialize
        buffer = editor.lint_buffer(uri, document.source, path, document.version, chosen,
                                    str(getattr(encoding, "value", encoding)))
        self.buffers[uri] = buffer
        return buffer

    def current(self, uri: str) -> editor.Buffer:
        """The analysis of the buffer as it is now: the last one, unless the text moved on."""
        buffer = self.buffers.get(uri)
        document = self.workspace.get_text_document(uri)
        if buffer is None or buffer.text != document.source \
                or buffer.version != document.version:
            buffer = self.lint(uri)
        return buffer

    def publish(self, uri: str) -> None:
        buffer = self.lint(uri)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, version=buffer.version,
            diagnostics=_structure(editor.diagnostics(buffer), list[types.Diagnostic])))

    def tell(self, problem: str) -> None:
        if problem not in self.told:
            self.told.add(problem)
            self.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Warning, message=f"flake8-pooling: {problem}"))

    @property
    def takes_versioned_edits(self) -> bool:
        workspace = self.client_capabilities.workspace
        edits = workspace.workspace_edit if workspace else None
        return bool(edits and edits.document_changes)

    @property
    def resolves_edits(self) -> bool:
        """The client asks for an action's edit when the user picks it (codeAction/resolve)."""
        document = self.client_capabilities.text_document
        actions = document.code_action if document else None
        support = actions.resolve_support if actions else None
        return bool(support and "edit" in support.properties)


# what the project context and the settings are read from: the other modules (engines,
# factories), config files, pins, deployment files (compose, Kubernetes, Procfile, .env)
PROJECT_FILES = ("**/*.{py,pyi,ini,cfg,toml,txt,yml,yaml,json,conf,lock}", "**/.env*",
                 "**/.flake8", "**/{Procfile,Dockerfile,Containerfile}*")

server = PoolingServer()
# editor.py speaks the protocol's JSON; lsprotocol's converter turns it into its types and back
_CONVERTER = default_converter()


def _structure(value, kind):
    return _CONVERTER.structure(value, kind)


@server.feature(types.INITIALIZE)
def initialize(ls: PoolingServer, params: types.InitializeParams) -> None:
    options = params.initialization_options
    if isinstance(options, dict):
        ls.overrides = options
    elif options is not None:
        ls.tell("initializationOptions: expected an object of settings; ignored")


@server.feature(types.INITIALIZED)
def initialized(ls: PoolingServer, params: types.InitializedParams) -> None:
    workspace = ls.client_capabilities.workspace
    watching = workspace.did_change_watched_files if workspace else None
    if watching and watching.dynamic_registration:
        ls.client_register_capability(types.RegistrationParams(registrations=[
            types.Registration(
                id="flake8-pooling-project-files",
                method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=[
                    types.FileSystemWatcher(glob_pattern=pattern)
                    for pattern in PROJECT_FILES]))]))


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
def watched_files_changed(ls: PoolingServer, params: types.DidChangeWatchedFilesParams) -> None:
    # a compose file, a pin, a config or another module decides what the open buffers report
    for uri in list(ls.buffers):
        ls.publish(uri)


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: PoolingServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: PoolingServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: PoolingServer, params: types.DidSaveTextDocumentParams) -> None:
    # the buffer, not the saved file: they are the same text now, and the project's files
    # (compose, pins) may have changed with the save
    ls.publish(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: PoolingServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.buffers.pop(params.text_document.uri, None)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
        uri=params.text_document.uri, diagnostics=[]))


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
    code_action_kinds=[types.CodeActionKind.QuickFix, editor.FIX_ALL_KIND],
    resolve_provider=True))
def code_action(ls: PoolingServer, params: types.CodeActionParams):
    buffer = ls.current(params.text_document.uri)
    actions = editor.code_actions(buffer, _CONVERTER.unstructure(params.range),
                                  _CONVERTER.unstructure(params.context),
                                  ls.takes_versioned_edits, deferred=ls.resolves_edits)
    return _structure(actions, list[types.CodeAction])


@server.feature(types.CODE_ACTION_RESOLVE)
def resolve_code_action(ls: PoolingServer, action: types.CodeAction):
    offered = _CONVERTER.unstructure(action)
    data = offered.get("data")
    uri = data.get("uri") if isinstance(data, dict) else None
    if not isinstance(uri, str) or uri not in ls.buffers:
        return action  # not one of ours, or its document is closed: nothing to change
    resolved = editor.resolve(ls.current(uri), offered, ls.takes_versioned_edits)
    return _structure(resolved, types.CodeAction)


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls: PoolingServer, params: types.HoverParams):
    buffer = ls.current(params.text_document.uri)
    found = editor.hover(buffer, _CONVERTER.unstructure(params.position))
    return _structure(found, types.Hover) if found is not None else None


def main() -> int:
    server.start_io()  # until the client says exit (pygls ends the process then)
    return 0
