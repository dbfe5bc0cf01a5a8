"""Findings as text, JSON, SARIF 2.1.0 or GitHub workflow commands."""

from __future__ import annotations

import difflib
import json
import os
from collections import Counter
from dataclasses import dataclass, field

from . import __version__
from .findings import Finding
from .fix import apply_fixes
from .lint import INTERNAL_ERROR, UNPARSABLE, Analysis
from .rules import all_rules, rule_by_code

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
DEFAULT_HELP = "https://docs.sqlalchemy.org/en/20/core/pooling.html"
_INTERNAL = {INTERNAL_ERROR: ("internal-error", "flake8-pooling failed while analysing a file."),
             UNPARSABLE: ("unparsable-file", "A file could not be parsed, so it was not "
                                             "analysed.")}


@dataclass(eq=False)
class FileReport:
    path: str
    source: str
    analysis: Analysis
    findings: list[Finding] = field(default_factory=list)  # selected, not noqa'd


def edits_for(report: FileReport, finding: Finding) -> list[dict]:
    """The finding's fix as line-based replacements of the original text (1-based lines)."""
    if finding.fix is None or report.analysis.module is None:
        return []
    old = report.source.splitlines(keepends=True)
    new = apply_fixes(report.analysis, [finding]).splitlines(keepends=True)
    edits = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, first, last, new_first, new_last in matcher.get_opcodes():
        if tag != "equal":
            edits.append({"start": {"line": first + 1, "column": 1},
                          "end": {"line": last + 1, "column": 1},
                          "content": "".join(new[new_first:new_last])})
    return edits


def _name(code: str) -> str:
    rule = rule_by_code(code)
    return rule.name if rule else _INTERNAL.get(code, ("internal", ""))[0]


def as_text(reports: list[FileReport]) -> str:
    return "".join(f"{report.path}:{finding.line}:{finding.col + 1}: {finding.text}\n"
                   for report in reports for finding in report.findings)


def as_json(reports: list[FileReport], notices: list[str]) -> str:
    findings = []
    for report in reports:
        for finding in report.findings:
            findings.append({
                "path": report.path, "line": finding.line, "column": finding.col + 1,
                "code": finding.code, "name": _name(finding.code), "message": finding.message,
                "fix": None if finding.fix is None else {
                    "safety": finding.fix.safety,
                    "applied_by": "flake8-pooling fix" + (
                        " --unsafe-fixes" if finding.fix.safety == "unsafe" else ""),
                    "edits": edits_for(report, finding)},
            })
    counts = Counter(finding["code"] for finding in findings)
    return json.dumps({"tool": "flake8-pooling", "version": __version__, "findings": findings,
                       "summary": {"files": len(reports), "findings": len(findings),
                                   "by_code": dict(sorted(counts.items()))},
                       "notices": notices}, indent=2) + "\n"


def _uri(path: str) -> str:
    relative = os.path.relpath(path) if os.path.isabs(path) else path
    return relative.replace(os.sep, "/").removeprefix("./")


def as_sarif(reports: list[FileReport], notices: list[str]) -> str:
    rules = [{
        "id": rule.code, "name": rule.name,
        "shortDescription": {"text": rule.summary()},
        "fullDescription": {"text": " ".join(rule.sections().get("Why is this bad?", "").split())},
        "helpUri": (rule.references() or [DEFAULT_HELP])[0],
        "help": {"text": rule.documentation(), "markdown": rule.documentation()},
        "defaultConfiguration": {"level": rule.level, "enabled": not rule.opt_in},
        "properties": {"fix": rule.fix_availability},
    } for rule in all_rules()]
    rules += [{"id": code, "name": name, "shortDescription": {"text": text},
               "fullDescription": {"text": text},
               "defaultConfiguration": {"level": "error"}}
              for code, (name, text) in _INTERNAL.items()]
    index = {rule["id"]: position for position, rule in enumerate(rules)}
    results = []
    for report in reports:
        location = {"uri": _uri(report.path), "uriBaseId": "%SRCROOT%"}
        for finding in report.findings:
            rule = rule_by_code(finding.code)
            result = {
                "ruleId": finding.code, "ruleIndex": index[finding.code],
                "level": rule.level if rule else "error",
                "message": {"text": finding.text},
                "locations": [{"physicalLocation": {
                    "artifactLocation": location,
                    "region": {"startLine": finding.line, "startColumn": finding.col + 1}}}],
            }
            edits = edits_for(report, finding)
            if edits:
                result["fixes"] = [{
                    "description": {"text": f"{finding.fix.safety} fix for {finding.code}"},
                    "artifactChanges": [{"artifactLocation": location, "replacements": [{
                        "deletedRegion": {"startLine": edit["start"]["line"],
                                          "startColumn": edit["start"]["column"],
                                          "endLine": edit["end"]["line"],
                                          "endColumn": edit["end"]["column"]},
                        "insertedContent": {"text": edit["content"]}} for edit in edits]}]}]
            results.append(result)
    run = {"tool": {"driver": {"name": "flake8-pooling", "version": __version__,
                               "informationUri": "https://pypi.org/project/flake8-pooling/",
                               "rules": rules}},
           "results": results, "columnKind": "unicodeCodePoints",
           "invocations": [{"executionSuccessful": not notices,
                            "toolExecutionNotifications": [
                                {"level": "error", "message": {"text": notice}}
                                for notice in notices]}]}
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]},
                      indent=2) + "\n"


def _escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def as_github(reports: list[FileReport]) -> str:
    lines = []
    for report in reports:
        for finding in report.findings:
            rule = rule_by_code(finding.code)
            command = "error" if rule is None or rule.level == "error" else "warning"
            title = f"{finding.code} {_name(finding.code)}"
            lines.append(f"::{command} file={_escape(_uri(report.path), True)},"
                         f"line={finding.line},col={finding.col + 1},"
                         f"title={_escape(title, True)}::{_escape(finding.text)}\n")
    return "".join(lines)
