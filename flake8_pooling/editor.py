"""Findings as editors see them through the Language Server Protocol: diagnostics with ranges,
quick fixes, `# noqa` actions and the rule's page on hover.

Both editor front ends (the language server in server.py, the pylsp plugin) build their answers
here, so they cannot drift apart. Everything is plain LSP JSON (dicts with the protocol's field
names): pylsp sends it as it is, the server structures it into lsprotocol's types.

The buffer is the truth: the text the editor holds, never the file on disk. Selection and
`# noqa` are decided as `flake8-pooling check` decides them.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from flake8.defaults import NOQA_INLINE_REGEXP

from . import config as config_files
from . import options
from .analysis import project
from .analysis.prefilter import mentions_vocabulary
from .findings import SAFE, Finding
from .fix import apply_fixes
from .lint import INTERNAL_ERROR, UNPARSABLE, Analysis, analyse, is_other_file
from .noqa import NoqaMap
from .rules import rule_by_code
from .selection import Selection
from .settings import Settings

SOURCE = "flake8-pooling"
FIX_ALL_KIND = "source.fixAll.flake8-pooling"
FIX_ALL_TITLE = "Fix all safe flake8-pooling fixes in this file"
WARNING = 2  # DiagnosticSeverity.Warning
# what editors may set in initializationOptions (the server) or pylsp's plugin settings:
# the keys of the config files, `pooling-` prefix optional, `_` or `-`
OVERRIDE_KEYS = (*config_files.SELECTION_KEYS, *options.LIST_KEYS, *options.VALUE_KEYS)
_NOT_REPORTABLE = (INTERNAL_ERROR, UNPARSABLE)  # shown, but no noqa or fix makes sense for them
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # the protocol's line breaks, and no others


# -- settings --------------------------------------------------------------------------------------

@dataclass(eq=False)
class EditorSettings:
    settings: Settings
    selection: Selection
    problems: list[str] = field(default_factory=list)


def settings_for(folder: Path, overrides: dict | None = None) -> EditorSettings:
    """The config files the command line reads, found from `folder` upwards, then the editor's
    overrides on top (as the command line's options go on top)."""
    config = config_files.load(folder)
    problems = list(config.problems)
    chosen = {}
    for key, value in (overrides or {}).items():
        name = str(key).replace("_", "-").lower()
        name = name if name in OVERRIDE_KEYS else f"pooling-{name}"
        if name not in OVERRIDE_KEYS:
            problems.append(f"editor settings: unknown setting {key!r}; ignored")
        elif value is not None:
            chosen[name] = [str(item) for item in value] if isinstance(value, list | tuple) \
                else str(value)
    if chosen:
        config.merge(chosen, "the editor's settings")
    settings = config.settings()
    return EditorSettings(settings, config.selection(),
                          problems + list(settings.problems) + config.unknown_codes())


# -- linting a buffer ------------------------------------------------------------------------------

@dataclass(eq=False)
class Buffer:
    """One version of an editor's document, analysed."""

    uri: str
    text: str
    path: str
    version: int | None
    analysis: Analysis | None  # None: not valid Python, so not analysed (flake8 says E999)
    findings: list[Finding]  # what is reported: selected and not `# noqa`'d
    encoding: str = "utf-16"  # the position encoding agreed with the client

    def __post_init__(self) -> None:
        self.lines = _lines(self.text)
        self.edits: dict[tuple, dict | None] = {}  # what each action changes, made on demand
        self.comment_lines: dict[int, int] | None = None  # for `# noqa` edits, made on demand


def lint_buffer(uri: str, text: str, path: str, version: int | None,
                chosen: EditorSettings, encoding: str = "utf-16") -> Buffer:
    """The buffer's findings, chosen the way `flake8-pooling check` chooses them."""
    # each lint is a run of its own: what was learnt of the project is checked against its
    # files first (a compose file or a pin may have changed since the last keystroke)
    project.new_run()
    other = is_other_file(path)
    tree = None
    if not other and mentions_vocabulary(text, path):
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError):
            # mid-edit code: whatever the editor's Python linter says, we say nothing yet
            return Buffer(uri, text, path, version, None, [], encoding)
    analysis = analyse(text, path, chosen.settings, tree)
    noqa = None if other else NoqaMap(text)
    findings = [finding for finding in analysis.findings
                if finding.code in _NOT_REPORTABLE
                or chosen.selection.reports(finding, path, noqa)]
    return Buffer(uri, text, path, version, analysis, findings, encoding)


# -- diagnostics -----------------------------------------------------------------------------------

def diagnostics(buffer: Buffer) -> list[dict]:
    return [_diagnostic(buffer, finding) for finding in buffer.findings]


def _diagnostic(buffer: Buffer, finding: Finding) -> dict:
    # no codeDescription: the rule pages have no published address yet; hover shows them
    return {"range": finding_range(buffer, finding), "severity": WARNING, "code": finding.code,
            "source": SOURCE, "message": finding.text.removeprefix(f"{finding.code} ")}


def finding_range(buffer: Buffer, finding: Finding) -> dict:
    """Where the finding's node starts and ends; a finding with no node (about the whole file,
    or a line of a file that is not Python) covers its line."""
    start, end = (finding.line, finding.col), (finding.end_line, finding.end_col)
    if finding.node is None or end <= start:
        index = _line_index(buffer, finding.line)
        return {"start": {"line": index, "character": 0},
                "end": {"line": index, "character": _units(_content(buffer.lines[index]),
                                                           buffer.encoding)}}
    return {"start": _position(buffer, *start), "end": _position(buffer, *end)}


def _position(buffer: Buffer, line: int, column: int) -> dict:
    """libcst's 1-based line and column in code points, as the protocol's 0-based line and
    column in the agreed units (UTF-16 code units unless the client chose otherwise)."""
    index = _line_index(buffer, line)
    return {"line": index,
            "character": _units(_content(buffer.lines[index])[:column], buffer.encoding)}


def _line_index(buffer: Buffer, line: int) -> int:
    return min(max(line - 1, 0), len(buffer.lines) - 1)


def _lines(text: str) -> list[str]:
    """The protocol's lines, each with its line break; the last one (empty after a final line
    break) has none."""
    lines, start = [], 0
    for match in _LINE_BREAK.finditer(text):
        lines.append(text[start:match.end()])
        start = match.end()
    lines.append(text[start:])
    return lines


def _content(line: str) -> str:
    return line.rstrip("\r\n")


def _units(text: str, encoding: str) -> int:
    if encoding == "utf-32":
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _key(where: dict | None) -> tuple | None:
    """A range as something to compare and hash."""
    try:
        return (where["start"]["line"], where["start"]["character"],
                where["end"]["line"], where["end"]["character"])
    except (KeyError, TypeError):
        return None


def _overlaps(first: dict, second: dict) -> bool:
    def key(position: dict) -> tuple[int, int]:
        return position["line"], position["character"]
    return key(first["start"]) <= key(second["end"]) and key(second["start"]) <= key(first["end"])


# -- code actions ----------------------------------------------------------------------------------

def code_actions(buffer: Buffer, requested: dict, context: dict | None = None,
                 versioned: bool = True, deferred: bool = False) -> list[dict]:
    """For each finding in the requested range, or among the diagnostics the editor names in
    `context` (Neovim names those of the cursor's line): its fix (labelled safe or unsafe) and
    a `# noqa` for its code; then "fix all safe fixes" when the file has any. `context.only`:
    the kinds the editor asked for (`quickfix`, `source.fixAll`, ...).

    `deferred`: the edits are left out, each action carrying in `data` what `resolve` needs
    to compute its edit when the editor picks it (editors ask for actions at every move of the
    cursor; a fix costs a pass over the tree)."""
    if buffer.analysis is None:
        return []
    context = context or {}
    only = [str(getattr(kind, "value", kind)) for kind in context.get("only") or ()]
    named = {(diagnostic.get("code"), _key(diagnostic.get("range")))
             for diagnostic in context.get("diagnostics") or ()
             if isinstance(diagnostic, dict) and diagnostic.get("source") == SOURCE}
    here = [index for index, finding in enumerate(buffer.findings)
            if finding.code not in _NOT_REPORTABLE
            and (_overlaps(where := finding_range(buffer, finding), requested)
                 or (finding.code, _key(where)) in named)]
    planned = []  # (title, kind, what makes its edit, the diagnostics it is for, preferred)
    for index in here:
        finding = buffer.findings[index]
        diagnostic = [_diagnostic(buffer, finding)]
        if finding.fix is not None:
            planned.append((f"{finding.code}: {fix_title(finding.message)} "
                            f"({finding.fix.safety} fix)", "quickfix", ("fix", index),
                            diagnostic, finding.fix.safety == SAFE))
        if not is_other_file(buffer.path):  # flake8 reads no `# noqa` in other files
            planned.append((f"Add `# noqa: {finding.code}`", "quickfix", ("noqa", index),
                            diagnostic, False))
    safe = [finding for finding in buffer.findings
            if finding.fix is not None and finding.fix.safety == SAFE]
    if safe:
        if here:  # beside the finding's own fixes in the editor's light bulb
            planned.append((FIX_ALL_TITLE, "quickfix", ("fix-all", None),
                            [_diagnostic(buffer, finding) for finding in safe], False))
        planned.append((FIX_ALL_TITLE, FIX_ALL_KIND, ("fix-all", None), [], False))
    actions = []
    for title, kind, how, fixed, preferred in planned:
        if only and not any(kind == wanted or kind.startswith(f"{wanted}.") for wanted in only):
            continue
        action = {"title": title, "kind": kind}
        if deferred:
            action["data"] = {"uri": buffer.uri, "version": buffer.version, "edit": list(how)}
        else:
            edit = _edit(buffer, how)
            if edit is None:
                continue
            action["edit"] = _workspace_edit(buffer, edit, versioned)
        if fixed:
            action["diagnostics"] = fixed
        if preferred:
            action["isPreferred"] = True
        actions.append(action)
    return actions


def resolve(buffer: Buffer, action: dict, versioned: bool = True) -> dict:
    """A deferred action with its edit, when it was offered for this version of the buffer;
    for another version it stays without one (the editor then changes nothing)."""
    data = action.get("data")
    if not isinstance(data, dict) or data.get("uri") != buffer.uri \
            or data.get("version") != buffer.version or not isinstance(data.get("edit"), list):
        return action
    edit = _edit(buffer, tuple(data["edit"]))
    return {**action, "edit": _workspace_edit(buffer, edit, versioned)} if edit else action


def _edit(buffer: Buffer, how: tuple) -> dict | None:
    """The TextEdit of one planned action (made once per buffer version)."""
    if how not in buffer.edits:
        buffer.edits[how] = _make_edit(buffer, how)
    return buffer.edits[how]


def _make_edit(buffer: Buffer, how: tuple) -> dict | None:
    kind, index = how if len(how) == 2 else (None, None)
    if kind == "fix-all":
        fixed = _fixed(buffer, [finding for finding in buffer.findings
                                if finding.fix is not None and finding.fix.safety == SAFE])
        return _replacement(buffer, fixed) if fixed is not None else None
    if not isinstance(index, int) or not 0 <= index < len(buffer.findings):
        return None
    if kind == "fix":
        fixed = _fixed(buffer, [buffer.findings[index]])
        return _replacement(buffer, fixed) if fixed is not None else None
    if kind == "noqa":
        return noqa_edit(buffer, buffer.findings[index])
    return None


def _fixed(buffer: Buffer, findings: list[Finding]) -> str | None:
    """The buffer with these findings' fixes applied; None when there is nothing to change."""
    findings = [finding for finding in findings if finding.fix is not None]
    if not findings or buffer.analysis is None or buffer.analysis.module is None:
        return None
    fixed = apply_fixes(buffer.analysis, findings, buffer.path)
    return fixed if fixed != buffer.text else None


def _workspace_edit(buffer: Buffer, edit: dict, versioned: bool) -> dict:
    """With the document's version when the client takes one: an editor that has moved on
    refuses the edit instead of applying it to text it was not computed for."""
    if versioned and buffer.version is not None:
        return {"documentChanges": [{"textDocument": {"uri": buffer.uri,
                                                      "version": buffer.version},
                                     "edits": [edit]}]}
    return {"changes": {buffer.uri: [edit]}}


def _replacement(buffer: Buffer, new_text: str) -> dict:
    """One TextEdit that replaces the lines the fix changed (the common first and last lines
    stay), so the editor keeps its cursor and folds elsewhere."""
    old, new = buffer.lines, _lines(new_text)
    same_start = 0
    while same_start < min(len(old), len(new)) and old[same_start] == new[same_start]:
        same_start += 1
    same_end = 0
    while same_end < min(len(old), len(new)) - same_start \
            and old[-1 - same_end] == new[-1 - same_end]:
        same_end += 1
    if same_end:
        end = {"line": len(old) - same_end, "character": 0}
    else:  # the change reaches the end of a buffer without a final line break
        end = {"line": len(old) - 1, "character": _units(old[-1], buffer.encoding)}
    return {"range": {"start": {"line": same_start, "character": 0}, "end": end},
            "newText": "".join(new[same_start:len(new) - same_end])}


def fix_title(message: str) -> str:
    """What the fix does, from the message's last clause ("...; set pool_pre_ping=True"):
    messages say what goes wrong, then what to write instead."""
    clauses, depth, start = [], 0, 0
    for index, character in enumerate(message):
        depth += (character in "([{") - (character in ")]}")
        if depth == 0 and message.startswith("; ", index):
            clauses.append(message[start:index])
            start = index + 2
    last = message[start:] if clauses else ""
    # a trailing remark in parentheses ("(asyncpg >= 0.31; ...)") is not what the fix does
    while last.endswith(")") and " (" in last:
        opening = _matching_open(last)
        if opening <= 0:
            break
        last = last[:opening].rstrip()
    last = last.strip()
    if last.startswith("did you mean ") and last.endswith("?"):
        last = f"use {last.removeprefix('did you mean ').removesuffix('?')}"
    return last or "apply the fix"


def _matching_open(text: str) -> int:
    depth = 0
    for index in range(len(text) - 1, -1, -1):
        depth += (text[index] in ")]}") - (text[index] in "([{")
        if depth == 0:
            return index
    return -1


def noqa_edit(buffer: Buffer, finding: Finding) -> dict | None:
    """A TextEdit that adds the finding's code to the `# noqa` of its line, or a new
    `# noqa: CODE` comment at the end of the line where a comment can go (the last line of a
    statement split by a string or a backslash, as flake8 reads noqa for the whole of it)."""
    if is_other_file(buffer.path):
        return None  # flake8 reads no `# noqa` in files that are not Python
    first = _line_index(buffer, finding.line)
    if buffer.comment_lines is None:
        buffer.comment_lines = _comment_lines(buffer.text)
    last = _line_index(buffer, buffer.comment_lines.get(finding.line, finding.line))
    for index in range(first, last + 1):
        content = _content(buffer.lines[index])
        match = NOQA_INLINE_REGEXP.search(content)
        if match is not None and match.group("codes"):
            codes = match.group("codes")
            after = match.start("codes") + len(codes.rstrip(", \t"))
            return _insertion(buffer, index, content[:after], f", {finding.code}")
    content = _content(buffer.lines[last])
    stripped = content.rstrip()  # the comment replaces trailing whitespace
    return {"range": {"start": {"line": last, "character": _units(stripped, buffer.encoding)},
                      "end": {"line": last, "character": _units(content, buffer.encoding)}},
            "newText": f"  # noqa: {finding.code}"}


def _insertion(buffer: Buffer, index: int, before: str, text: str) -> dict:
    where = {"line": index, "character": _units(before, buffer.encoding)}
    return {"range": {"start": where, "end": where}, "newText": text}


def _comment_lines(text: str) -> dict[int, int]:
    """Each line (1-based) of a tokenizer's line that spans several, and the line that ends it:
    where its NL or NEWLINE token is, after a string or a backslash continuation."""
    ends: dict[int, int] = {}
    if re.search(r"\r(?!\n)", text):
        return ends  # the tokenizer would not see these line breaks
    first = None
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT):
                continue
            first = token.start[0] if first is None else first
            if token.type in (tokenize.NL, tokenize.NEWLINE):
                ends.update(dict.fromkeys(range(first, token.start[0] + 1), token.start[0]))
                first = None
    except (tokenize.TokenError, SyntaxError):
        pass
    return ends


# -- hover -----------------------------------------------------------------------------------------

def hover(buffer: Buffer, position: dict) -> dict | None:
    """The page of each rule reported where the cursor is, as `flake8-pooling rules CODE`
    prints it."""
    point = {"start": position, "end": position}
    pages, covered = [], None
    for finding in buffer.findings:
        where = finding_range(buffer, finding)
        rule = rule_by_code(finding.code)
        if rule is None or not _overlaps(where, point):
            continue
        page = rule.documentation()
        if page not in pages:
            pages.append(page)
        covered = covered or where
    if not pages:
        return None
    return {"contents": {"kind": "markdown", "value": "\n---\n\n".join(pages)}, "range": covered}
