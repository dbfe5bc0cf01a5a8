"""Applying the fixes findings carry: one pass over the tree, then the imports they need."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import libcst as cst
from flake8.defaults import NOQA_INLINE_REGEXP
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from .findings import SAFE, Finding
from .lint import analyse
from .rules import rule_by_code
from .settings import Settings


@dataclass(eq=False)
class FixResult:
    source: str
    applied: list[Finding] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)  # no fix, unsafe, or noqa

    @property
    def changed(self) -> bool:
        return bool(self.applied)


def is_selected(code: str, select: Iterable[str] | None, ignore: Iterable[str] | None) -> bool:
    """flake8's rule: the longest matching prefix of select and ignore wins."""
    rule = rule_by_code(code)
    chosen = [prefix for prefix in (select or ()) if code.startswith(prefix)]
    if rule is not None and rule.opt_in and code not in (select or ()):
        return False
    if select and not chosen:
        return False
    dropped = [prefix for prefix in (ignore or ()) if code.startswith(prefix)]
    return not dropped or max(map(len, chosen), default=0) > max(map(len, dropped))


def is_suppressed(finding: Finding, lines: list[str]) -> bool:
    """`# noqa` or `# noqa: POL101` on the finding's line, read the way flake8 reads it."""
    if not 1 <= finding.line <= len(lines):
        return False
    match = NOQA_INLINE_REGEXP.search(lines[finding.line - 1])
    if match is None:
        return False
    codes = match.group("codes")
    if not codes:
        return True
    return any(finding.code.startswith(code.strip()) for code in
               codes.replace(",", " ").split() if code.strip())


def fix_source(source: str, path: str = "", settings: Settings | None = None, *,
               unsafe: bool = False, select: Iterable[str] | None = None,
               ignore: Iterable[str] | None = None) -> FixResult:
    """The source with the fixes of its findings applied (safe ones, unless `unsafe`)."""
    analysis = analyse(source, path, settings)
    lines = source.splitlines()
    chosen, remaining = [], []
    for finding in analysis.findings:
        if not is_selected(finding.code, select or ("POL",), ignore):
            continue
        usable = finding.fix is not None and (finding.fix.safety == SAFE or unsafe)
        (chosen if usable and not is_suppressed(finding, lines) else remaining).append(finding)
    if not chosen or analysis.module is None:
        return FixResult(source, [], remaining)

    changes: dict[int, list] = {}
    context = CodemodContext()
    for finding in chosen:
        for edit in finding.fix.edits:
            changes.setdefault(id(edit.target), []).append(edit.change)
        for module, name in finding.fix.imports:
            if name is None:
                AddImportsVisitor.add_needed_import(context, module)
            else:
                AddImportsVisitor.add_needed_import(context, module, name)
    fixed = analysis.module.visit(_ApplyEdits(changes))
    fixed = AddImportsVisitor(context).transform_module(fixed)
    return FixResult(fixed.code, chosen, remaining)


class _ApplyEdits(cst.CSTTransformer):
    """Rewrites the nodes edits point at; edits to one node apply in finding order."""

    def __init__(self, changes: dict[int, list]) -> None:
        super().__init__()
        self.changes = changes

    def on_leave(self, original_node, updated_node):
        for change in self.changes.get(id(original_node), ()):
            updated_node = change(updated_node)
        return updated_node
