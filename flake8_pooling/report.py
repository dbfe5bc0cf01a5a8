"""Findings as text, JSON, SARIF 2.1.0 or GitHub workflow commands, written as they come.

A file's findings arrive as plain records (`FileResult`): the checking keeps no source text or
tree once a file is done, and the JSON and SARIF documents are written finding by finding, so
neither the memory nor the time of a report grows with more than the findings themselves.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from . import __version__

if TYPE_CHECKING:
    from .findings import Finding
    from .lint import Analysis

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
DEFAULT_HELP = "https://docs.sqlalchemy.org/en/20/core/pooling.html"
INTERNAL = {"POL901": ("internal-error", "flake8-pooling failed while analysing a file."),
            "POL902": ("unparsable-file", "A file could not be parsed, so it was not analysed.")}
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass
class Reported:
    """One finding as a report prints it: plain data, nothing of the tree it was found in."""
    code: str
    name: str
    message: str
    text: str  # the message with its code and `[safe fix]`, as flake8 prints it
    line: int
    col: int  # 0-based, as flake8 and libcst count
    level: str  # SARIF's: error, warning or note
    safety: str | None = None  # of its fix: safe, unsafe or None
    edits: list[dict] | None = None  # computed only for the formats that print them
    source_line: str | None = None  # for --show-source


@dataclass
class FileResult:
    path: str
    findings: list[Reported] = field(default_factory=list)  # selected, not noqa'd, in order
    notices: list[str] = field(default_factory=list)  # why (part of) it could not be checked


# -- a finding's edits ----------------------------------------------------------------------------

def fix_edits(source: str, analysis: Analysis, findings: list[Finding],
              path: str = "") -> list[list[dict]]:
    """Each finding's fix as line-based replacements of the original text (1-based lines,
    `end` exclusive), what `fix` would change for that finding alone.

    Applying one finding's fix to the whole file and diffing it costs a pass over the file per
    finding (a file of 500 findings took minutes). Here the nodes a fix rewrites are printed
    alone, in the indentation they sit in, and the imports it adds are worked out once per set
    of imports. A fix whose nodes cannot be printed alone is applied the whole-file way.
    """
    from .findings import Finding as FindingRecord, Fix

    if analysis.module is None:
        return [[] for _ in findings]

    def apply_fixes(analysed, chosen):
        return _fixed(analysed, chosen, path)

    printer = _NodePrinter(analysis.module, source, _line_limit(path), analysis.printed_ranges)
    lines = _lines(source)
    import_hunks: dict[tuple, list[dict]] = {}
    edits = []
    for finding in findings:
        if finding.fix is None:
            edits.append([])
            continue
        hunks = printer.hunks(finding)
        imports = tuple(finding.fix.imports)
        if hunks is not None and imports:
            key = (finding.fix.safety, imports)
            if key not in import_hunks:
                alone = FindingRecord(finding.code, "", None, Fix(finding.fix.safety, (), imports))
                head = _import_head(analysis, source)
                old = lines if head is analysis else _lines(head.module.code)
                import_hunks[key] = _diff(old, _lines(apply_fixes(head, [alone])))
            hunks = _merged(hunks, import_hunks[key])
        if hunks is None:  # the whole-file way
            hunks = _diff(lines, _lines(apply_fixes(analysis, [finding])))
        edits.append(hunks)
    return edits


def _fixed(analysis: Analysis, findings: list, path: str) -> str:
    from .fix import apply_fixes

    return apply_fixes(analysis, findings, path)  # the path: the project's style decides


def _line_limit(path: str) -> int | None:
    """The line length past which `fix` wraps a call it rewrote, where it does."""
    from .code_style import style_for

    return style_for(path).max_line_length


def _import_head(analysis: Analysis, source: str) -> Analysis:
    """The top of the module down to the first statement after its imports, where `fix` puts
    the imports it adds: working them out on it alone spares a pass over the whole file. The
    whole module when an import comes later (`fix` would see it), or the top is not a prefix."""
    from .lint import Analysis as Analysed

    module = analysis.module
    body = list(module.body)
    first_code = next((index for index, statement in enumerate(body)
                       if not _is_import_block(statement, index)), len(body))
    head = module.with_changes(body=body[:first_code + 1], footer=())
    code = head.code
    if not source.startswith(code) or "import" in source[len(code):]:
        return analysis
    return Analysed([], head)


def _is_import_block(statement, index: int) -> bool:
    import libcst as cst

    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    return all(isinstance(small, (cst.Import, cst.ImportFrom)) or (
        index == 0 and isinstance(small, cst.Expr) and isinstance(small.value, cst.SimpleString))
        for small in statement.body)


def _lines(text: str) -> list[str]:
    """The lines as an editor counts them (LF, CRLF or CR), each with its ending."""
    parts, start = [], 0
    for match in _LINE_END.finditer(text):
        parts.append(text[start:match.end()])
        start = match.end()
    if start < len(text):
        parts.append(text[start:])
    return parts


def _edit(first: int, last: int, content: str) -> dict:
    """Replace lines first..last-1 (0-based) by content."""
    return {"start": {"line": first + 1, "column": 1}, "end": {"line": last + 1, "column": 1},
            "content": content}


def _diff(old: list[str], new: list[str]) -> list[dict]:
    import difflib

    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return [_edit(first, last, "".join(new[new_first:new_last]))
            for tag, first, last, new_first, new_last in matcher.get_opcodes() if tag != "equal"]


def _merged(hunks: list[dict], more: list[dict]) -> list[dict] | None:
    """Both lists in line order; None when they touch the same lines."""
    merged = sorted([*hunks, *more], key=lambda edit: (edit["start"]["line"],
                                                       edit["end"]["line"]))
    for before, after in zip(merged, merged[1:]):
        if after["start"]["line"] < before["end"]["line"] or \
                after["start"]["line"] == before["start"]["line"]:
            return None
    return merged


class _NodePrinter:
    """The code of single nodes of one module, printed in the indentation they sit in."""

    def __init__(self, module, source: str, line_limit: int | None = None,
                 printed_ranges: dict | None = None) -> None:
        from .analysis.positions import both_ranges

        self.module, self.source = module, source
        # ((line, column), (end line, end column)) of all a node prints; lint keeps them for
        # `check`'s JSON and SARIF (`keep_printed`), from the pass that placed the findings
        self.positions = printed_ranges if printed_ranges is not None \
            else both_ranges(module)[1]
        starts = [0] + [match.end() for match in _LINE_END.finditer(source)]
        self.line_starts = starts
        self.read_in_module: Counter | None = None  # name -> times read, once it is needed
        self.read_by_target: dict[int, Counter] = {}  # id(target) -> names it reads
        self.line_limit = line_limit
        self.text_lines: list[str] | None = None

    def hunks(self, finding: Finding) -> list[dict] | None:
        import libcst as cst

        changes: dict[int, list] = {}
        spans = []
        for edit in finding.fix.edits:
            target = edit.target
            if isinstance(target, cst.Module) or target not in self.positions:
                return None
            changes.setdefault(id(target), []).append(edit.change)
            start, end = self.positions[target]
            spans.append((self._offset(start), self._offset(end), target))
        # the outermost targets: a target inside another is rewritten with it
        spans.sort(key=lambda span: (span[0], -span[1]))
        outermost = []
        for start, end, target in spans:
            if outermost and start < outermost[-1][1]:
                if end > outermost[-1][1]:
                    return None  # overlapping but not nested: no node holds both
                if (start, end) == outermost[-1][:2] and target is not outermost[-1][2]:
                    return None  # two nodes of one span: which one holds the other is unclear
                continue
            outermost.append((start, end, target))
        nested = len(outermost) < len(spans)
        hunks, new_nodes = [], []
        for start, end, target in outermost:
            if end == start:
                return None
            # the blocks' indentation, which the node's later lines carry: that of its first
            # line when it starts a statement's line, none at module level; what it prints
            # must be what the file holds
            first = self._line_of(start)
            line = self.source[self.line_starts[first]:start]
            if _LINE_END.search(self.source, start, end) is None:
                indent = []  # a node on one line prints no indentation
            else:
                indent = next((indent for indent in ([], [line[:len(line) - len(line.lstrip())]])
                               if self._code(target, indent) == self.source[start:end]), None)
                if indent is None:
                    return None
            if nested:
                changed = self._changed(target, changes, [span[:2] for span in spans])
                if changed is None:
                    return None
            else:  # no edit inside another: the node's own changes are all there is to apply
                changed = target
                for change in changes[id(target)]:
                    changed = change(changed)
            if not isinstance(changed, cst.CSTNode):
                return None  # removed, or made several nodes: the parent's commas change too
            new = self._code(changed, indent)
            new_nodes.append(changed)
            # whole lines, as the whole-file way gives them
            last = self._line_of(end - 1) + 1
            line_end = self.line_starts[last] if last < len(self.line_starts) \
                else len(self.source)
            hunks.append(_edit(first, last, self.source[self.line_starts[first]:start] + new
                               + self.source[end:line_end]))
        if self._leaves_names_unread([target for _, _, target in outermost], new_nodes):
            return None  # `fix` drops the imports only the replaced code read: the whole-file way
        if self.line_limit is not None and any(
                len(line) > self.line_limit for hunk in hunks
                for line in hunk["content"].splitlines()) and not all(
                self._over_limit(target) for _, _, target in spans):
            return None  # `fix` wraps what it made too long: the whole-file way
        return hunks

    def _over_limit(self, node) -> bool:
        """Whether the node's lines were over the limit before the fix (`fix` leaves those)."""
        (first, _), (last, _) = self.positions[node]
        if self.text_lines is None:
            self.text_lines = self.source.splitlines()
        return any(len(line) > self.line_limit for line in self.text_lines[first - 1:last])

    def _leaves_names_unread(self, targets: list, new_nodes: list) -> bool:
        """Whether a name the targets read is read nowhere once they are replaced, as `fix`
        counts reading (`fix.names_read`)."""
        before = Counter()
        for target in targets:  # two findings on one call read the same names
            if id(target) not in self.read_by_target:
                self.read_by_target[id(target)] = _names_read([target])
            before += self.read_by_target[id(target)]
        if self.read_in_module is None:
            self.read_in_module = _names_read([self.module])
        # only a name the targets alone read can be left unread: for most fixes there is
        # none (`create_engine` read by 250 calls), and the new code need not be read
        alone = [name for name, count in before.items() if self.read_in_module[name] == count]
        if not alone:
            return False
        after = _names_read(new_nodes)
        return any(name not in after for name in alone)

    def _changed(self, node, changes: dict[int, list], spans: list[tuple[int, int]]):
        """`node` with the finding's changes applied, the inner ones first, as `fix`'s
        transformer applies them; only the nodes on the way to a target are rebuilt (libcst's
        transformer rebuilds every node it passes). None: a change this cannot place."""
        import libcst as cst
        from .fix import node_fields

        where = self.positions.get(node)
        inside = spans  # a node without a range is looked into
        if where is not None:
            start, end = self._offset(where[0]), self._offset(where[1])
            inside = [span for span in spans if start <= span[0] and span[1] <= end]
            if not inside:
                return node
        updates = {}
        for name in node_fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                new = self._changed(value, changes, inside)
                if not isinstance(new, cst.CSTNode):
                    return None  # a field that holds one node: removed or flattened
                if new is not value:
                    updates[name] = new
            elif isinstance(value, (tuple, list)):
                items, differ = [], False
                for item in value:
                    new = self._changed(item, changes, inside) \
                        if isinstance(item, cst.CSTNode) else item
                    if new is None:
                        return None
                    differ = differ or new is not item
                    if isinstance(new, cst.FlattenSentinel):
                        items.extend(new.nodes)
                    elif not isinstance(new, cst.RemovalSentinel):
                        items.append(new)
                if differ:
                    updates[name] = type(value)(items)
        updated = node.with_changes(**updates) if updates else node
        for change in changes.get(id(node), ()):
            updated = change(updated)
        return updated

    def _offset(self, position: tuple[int, int]) -> int:
        line, column = position
        return self.line_starts[line - 1] + column

    def _line_of(self, offset: int) -> int:
        import bisect

        return bisect.bisect_right(self.line_starts, offset) - 1

    def _code(self, node, indent: list[str]) -> str:
        # Module.code_for_node without the indentation of the blocks around the node; libcst
        # has no public way to print a node where it sits
        from libcst._nodes.internal import CodegenState

        state = CodegenState(default_indent=self.module.default_indent,
                             default_newline=self.module.default_newline,
                             indent_tokens=list(indent))
        node._codegen(state)
        return "".join(state.tokens)


def _names_read(nodes: list) -> Counter:
    from .fix import names_read

    return names_read(nodes)


# -- the formats -----------------------------------------------------------------------------------

def rule_name(code: str) -> str:
    from .rules import rule_by_code

    rule = rule_by_code(code)
    return rule.name if rule else INTERNAL.get(code, ("internal", ""))[0]


def _uri(path: str) -> str:
    relative = os.path.relpath(path) if os.path.isabs(path) else path
    return relative.replace(os.sep, "/").removeprefix("./")


class Writer:
    """Writes a report as the files come; `close` ends the document."""

    needs_edits = False

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.files = 0
        self.counts: Counter = Counter()

    def file(self, result: FileResult) -> None:
        self.files += 1
        self.counts.update(finding.code for finding in result.findings)
        for finding in result.findings:
            self.finding(result.path, finding)

    def finding(self, path: str, finding: Reported) -> None:
        raise NotImplementedError

    def close(self, notices: list[str]) -> None:
        pass


_COLOURS = {"bold": "\033[1m", "red": "\033[31m", "cyan": "\033[36m", "reset": "\033[m"}


class TextWriter(Writer):
    """flake8's default format (and its colours: flake8's `default` formatter)."""

    def __init__(self, stream: TextIO, colour: bool = False, show_source: bool = False) -> None:
        super().__init__(stream)
        self.colour = _COLOURS if colour else dict.fromkeys(_COLOURS, "")
        self.show_source = show_source

    def finding(self, path: str, finding: Reported) -> None:
        c = self.colour
        self.stream.write(
            f"{c['bold']}{path}{c['reset']}{c['cyan']}:{c['reset']}{finding.line}"
            f"{c['cyan']}:{c['reset']}{finding.col + 1}{c['cyan']}:{c['reset']} "
            f"{c['bold']}{c['red']}{finding.code}{c['reset']} "
            f"{finding.text[len(finding.code) + 1:]}\n")
        if self.show_source and finding.source_line is not None:
            # flake8's show_source: the line, then a caret under the column
            line = finding.source_line.rstrip("\r\n")
            indent = "".join(char if char.isspace() else " " for char in line[:finding.col])
            self.stream.write(f"{line}\n{indent}^\n")


_ITEMS = "@@items@@"  # where the streamed list goes in a document


class _DocumentWriter(Writer):
    """A JSON document whose one long list is written item by item."""

    needs_edits = True

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        head, _ = self._split([])
        self.stream.write(head + "[")
        key_line = head.rpartition("\n")[2]  # `  "findings": `: items go one level deeper
        self.indent = " " * (len(key_line) - len(key_line.lstrip(" ")))
        self.written = 0

    def document(self, notices: list[str]) -> dict:
        raise NotImplementedError

    def _split(self, notices: list[str]) -> tuple[str, str]:
        text = json.dumps(self.document(notices), indent=2)
        head, _, tail = text.partition(json.dumps(_ITEMS))
        return head, tail

    def item(self, record: dict) -> None:
        # one finding a line: greppable, and written by json's C encoder (with `indent` it
        # falls back to the pure-Python one, which cost more than the edits of 500 findings)
        self.stream.write(("," if self.written else "") + "\n" + self.indent + "  "
                          + json.dumps(record))
        self.written += 1

    def close(self, notices: list[str]) -> None:
        _, tail = self._split(notices)
        self.stream.write(("\n" + self.indent if self.written else "") + "]" + tail + "\n")


class JsonWriter(_DocumentWriter):
    def document(self, notices: list[str]) -> dict:
        return {"tool": "flake8-pooling", "version": __version__, "findings": _ITEMS,
                "summary": {"files": self.files, "findings": sum(self.counts.values()),
                            "by_code": dict(sorted(self.counts.items()))},
                "notices": notices}

    def finding(self, path: str, finding: Reported) -> None:
        self.item({
            "path": path, "line": finding.line, "column": finding.col + 1,
            "code": finding.code, "name": finding.name, "message": finding.message,
            "fix": None if finding.safety is None else {
                "safety": finding.safety,
                "applied_by": "flake8-pooling fix" + (
                    " --unsafe-fixes" if finding.safety == "unsafe" else ""),
                "edits": finding.edits or []},
        })


class SarifWriter(_DocumentWriter):
    def __init__(self, stream: TextIO) -> None:
        from .rules import all_rules

        rules = [{
            "id": rule.code, "name": rule.name,
            "shortDescription": {"text": rule.summary()},
            "fullDescription": {"text": " ".join(rule.sections().get("Why is this bad?",
                                                                     "").split())},
            "helpUri": (rule.references() or [DEFAULT_HELP])[0],
            "help": {"text": rule.documentation(), "markdown": rule.documentation()},
            "defaultConfiguration": {"level": rule.level, "enabled": not rule.opt_in},
            "properties": {"fix": rule.fix_availability},
        } for rule in all_rules()]
        rules += [{"id": code, "name": name, "shortDescription": {"text": text},
                   "fullDescription": {"text": text},
                   "defaultConfiguration": {"level": "error"}}
                  for code, (name, text) in INTERNAL.items()]
        self.rules = rules
        self.index = {rule["id"]: position for position, rule in enumerate(rules)}
        super().__init__(stream)

    def document(self, notices: list[str]) -> dict:
        driver = {"name": "flake8-pooling", "version": __version__,
                  "informationUri": "https://pypi.org/project/flake8-pooling/",
                  "rules": self.rules}
        run = {"tool": {"driver": driver}, "results": _ITEMS, "columnKind": "unicodeCodePoints",
               "invocations": [{"executionSuccessful": not notices,
                                "toolExecutionNotifications": [
                                    {"level": "error", "message": {"text": notice}}
                                    for notice in notices]}]}
        return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}

    def finding(self, path: str, finding: Reported) -> None:
        location = {"uri": _uri(path), "uriBaseId": "%SRCROOT%"}
        result = {
            "ruleId": finding.code, "ruleIndex": self.index[finding.code],
            "level": finding.level, "message": {"text": finding.text},
            "locations": [{"physicalLocation": {
                "artifactLocation": location,
                "region": {"startLine": finding.line, "startColumn": finding.col + 1}}}],
        }
        if finding.edits:
            result["fixes"] = [{
                "description": {"text": f"{finding.safety} fix for {finding.code}"},
                "artifactChanges": [{"artifactLocation": location, "replacements": [{
                    "deletedRegion": {"startLine": edit["start"]["line"],
                                      "startColumn": edit["start"]["column"],
                                      "endLine": edit["end"]["line"],
                                      "endColumn": edit["end"]["column"]},
                    "insertedContent": {"text": edit["content"]}} for edit in finding.edits]}]}]
        self.item(result)


def _escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


class GithubWriter(Writer):
    def finding(self, path: str, finding: Reported) -> None:
        command = "error" if finding.level == "error" else "warning"
        title = f"{finding.code} {finding.name}"
        self.stream.write(f"::{command} file={_escape(_uri(path), True)},"
                          f"line={finding.line},col={finding.col + 1},"
                          f"title={_escape(title, True)}::{_escape(finding.text)}\n")


WRITERS = {"text": TextWriter, "json": JsonWriter, "sarif": SarifWriter, "github": GithubWriter}
