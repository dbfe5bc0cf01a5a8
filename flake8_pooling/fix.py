"""Applying the fixes findings carry: one pass over the tree, then the imports they need."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from .findings import SAFE, Finding
from .lint import Analysis, analyse
from .noqa import NoqaMap
from .selection import Selection
from .settings import Settings


@dataclass(eq=False)
class FixResult:
    source: str
    applied: list[Finding] = field(default_factory=list)
    remaining: list[Finding] = field(default_factory=list)  # reported, but no fix or unsafe

    @property
    def changed(self) -> bool:
        return bool(self.applied)


def fix_source(source: str, path: str = "", settings: Settings | None = None, *,
               unsafe: bool = False, selection: Selection | None = None,
               select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
               extend_select: Iterable[str] | None = None,
               extend_ignore: Iterable[str] | None = None) -> FixResult:
    """The source with the fixes of its findings applied (safe ones, unless `unsafe`); codes
    are chosen as `check` and flake8 choose them: by `selection`, or by the lists given."""
    analysis = analyse(source, path, settings)
    noqa = NoqaMap(source)
    selection = selection or Selection.of(select, ignore, extend_select, extend_ignore)
    chosen, remaining = [], []
    for finding in analysis.findings:
        if not selection.reports(finding, path, noqa):
            continue
        usable = finding.fix is not None and (finding.fix.safety == SAFE or unsafe)
        (chosen if usable else remaining).append(finding)
    if not chosen or analysis.module is None:
        return FixResult(source, [], remaining)
    return FixResult(apply_fixes(analysis, chosen), chosen, remaining)


def apply_fixes(analysis: Analysis, findings: list[Finding]) -> str:
    """The analysed source with these findings' fixes applied (the tree itself is unchanged)."""
    changes: dict[int, list] = {}
    context = CodemodContext()
    for finding in findings:
        for edit in finding.fix.edits:
            changes.setdefault(id(edit.target), []).append(edit.change)
        for module, name in finding.fix.imports:
            if name is None:
                AddImportsVisitor.add_needed_import(context, module)
            else:
                AddImportsVisitor.add_needed_import(context, module, name)
    fixed = analysis.module.visit(_ApplyEdits(changes))
    return AddImportsVisitor(context).transform_module(fixed).code


class _ApplyEdits(cst.CSTTransformer):
    """Rewrites the nodes edits point at; edits to one node apply in finding order."""

    def __init__(self, changes: dict[int, list]) -> None:
        super().__init__()
        self.changes = changes

    def on_leave(self, original_node, updated_node):
        for change in self.changes.get(id(original_node), ()):
            updated_node = change(updated_node)
        return updated_node
