"""The one engine behind every front end: source text in, findings out.

text -> prefilter -> libcst module -> facts -> context (judgements) -> rules -> findings (with
positions). A file that is not Python goes to the rules that read its kind instead.
It never raises: a failure becomes a POL9xx finding on line 1.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import libcst as cst

from .analysis.context import Context
from .analysis.facts import ModuleFacts, collect
from .analysis.positions import both_ranges, node_ranges
from .analysis.prefilter import mentions_vocabulary, uses_vocabulary
from .findings import Finding
from .rules import all_rules, rules_reading
from .settings import Settings

INTERNAL_ERROR = "POL901"
UNPARSABLE = "POL902"


@dataclass(eq=False)
class Analysis:
    findings: list[Finding]
    module: cst.Module | None  # the tree the findings' nodes belong to; None when not parsed
    facts: ModuleFacts | None = None
    # node -> the range of all it prints (whitespace included), found with the findings'
    # positions: what the edits of JSON, SARIF and the editor replace
    printed_ranges: dict | None = None


def analyse(source: str, path: str = "", settings: Settings | None = None,
            tree: ast.AST | None = None, gates_passed: bool = False,
            keep_printed: bool = False) -> Analysis:
    """`gates_passed`: the caller (the flake8 plugin) already ran the prefilter and the gate.
    `keep_printed`: keep `printed_ranges` for the edits a report prints (JSON, SARIF)."""
    try:
        if is_other_file(path):
            return _analyse_other(source, path, settings or Settings())
        return _analyse(source, path, settings or Settings(), tree, gates_passed, keep_printed)
    except RecursionError:  # libcst recurses per nesting level: 1+1+...+1 five thousand times
        return Analysis([Finding(UNPARSABLE, "code nested too deeply for libcst, so this file "
                                 "was not analysed", None)], None)
    except Exception as error:  # a plugin that raises aborts the user's whole flake8 run
        message = (f"internal error while analysing this file ({type(error).__name__}: "
                   f"{error}); please report it with the file")
        return Analysis([Finding(INTERNAL_ERROR, " ".join(message.split()), None)], None)


def lint(source: str, path: str = "", settings: Settings | None = None,
         tree: ast.AST | None = None) -> list[Finding]:
    return analyse(source, path, settings, tree).findings


def is_other_file(path: str) -> bool:
    """A file some rule reads that is not Python: `uwsgi.ini`, not `app.py` or a script."""
    return bool(path) and not path.endswith((".py", ".pyi")) and bool(rules_reading(path))


def _analyse_other(text: str, path: str, settings: Settings) -> Analysis:
    context = Context(settings, path)
    findings = [finding for rule in rules_reading(path)
                for finding in rule(context).check_file(text)]
    findings.sort(key=lambda finding: (finding.line, finding.col, finding.code))
    return Analysis(findings, None)


def _analyse(source: str, path: str, settings: Settings, tree: ast.AST | None,
             gates_passed: bool, keep_printed: bool) -> Analysis:
    if not gates_passed:
        if not mentions_vocabulary(source, path):
            return Analysis([], None)
        if tree is None:
            try:
                tree = ast.parse(source)
            except (SyntaxError, ValueError):
                tree = None  # libcst gets its chance, and says why if it fails too
        if tree is not None and not uses_vocabulary(tree, path, source):
            return Analysis([], None)
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        # the error's own message: formatting it whole re-reads the source and can fail too
        reason = " ".join(str(getattr(error, "message", "") or "syntax error").split())
        return Analysis([Finding(UNPARSABLE, f"libcst cannot parse this file, so it was not "
                                 f"analysed: {reason} (line {error.raw_line})", None)],
                        None)
    context = Context(settings, path)
    facts = collect(module, path)
    facts.engines = context.engines_in_use(facts)
    role = context.role_of(facts)
    findings = [finding for rule in all_rules() if role not in rule.quiet_in
                for finding in rule(context).check(facts)]
    printed = _locate(findings, module, keep_printed) if findings else None
    findings.sort(key=lambda finding: (finding.line, finding.col, finding.code))
    return Analysis(findings, module, facts, printed)


def _locate(findings: list[Finding], module: cst.Module, keep_printed: bool) -> dict | None:
    # Positions cost a whole extra pass over the tree: computed only for files with findings.
    ranges, printed = both_ranges(module) if keep_printed else (node_ranges(module), None)
    for finding in findings:
        where = ranges.get(finding.node) if finding.node is not None else None
        if where is not None:
            (finding.line, finding.col), (finding.end_line, finding.end_col) = where
    return printed
