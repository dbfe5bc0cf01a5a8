"""Applying the fixes findings carry: one pass over the tree, then the lines they made too long
wrapped (wrapping.py), then the imports they need added where isort would put them
(import_order.py) and the ones they made unused removed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from .code_style import style_for
from .findings import SAFE, Finding
from .import_order import ImportBlock
from .lint import Analysis, analyse
from .noqa import NoqaMap
from .selection import Selection
from .settings import Settings
from .wrapping import wrap_long_imports, wrap_long_lines


# Fixes of one pass may leave work for another (an edit that two findings both wanted, a finding
# the first fixes uncover); ruff also goes round until nothing changes, within a bound.
MAX_PASSES = 4


@dataclass(eq=False)
class FixResult:
    source: str
    applied: list[Finding] = field(default_factory=list)  # the findings whose fixes were applied
    # what `check` still reports in the fixed source: no fix, an unsafe one, or a fix that did
    # not remove its finding
    remaining: list[Finding] = field(default_factory=list)
    fixed: Counter = field(default_factory=Counter)  # code -> findings the fixes made go away

    @property
    def changed(self) -> bool:
        return bool(self.applied)


def fix_source(source: str, path: str = "", settings: Settings | None = None, *,
               unsafe: bool = False, selection: Selection | None = None,
               select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
               extend_select: Iterable[str] | None = None,
               extend_ignore: Iterable[str] | None = None) -> FixResult:
    """The source with the fixes of its findings applied (safe ones, unless `unsafe`); codes
    are chosen as `check` and flake8 choose them: by `selection`, or by the lists given.

    What is left is what `check` reports in the fixed source, so a finding that another's fix
    removed counts as fixed, not as left."""
    selection = selection or Selection.of(select, ignore, extend_select, extend_ignore)
    analysis = analyse(source, path, settings)
    reported = _reported(analysis, source, path, selection)
    before = Counter(finding.code for finding in reported)
    fixed, applied = source, []
    for _ in range(MAX_PASSES):
        chosen = [finding for finding in reported if finding.fix is not None
                  and (finding.fix.safety == SAFE or unsafe)]
        if not chosen or analysis.module is None:
            break
        candidate = apply_fixes(analysis, chosen, path)
        if candidate == fixed:
            break
        fixed = candidate
        applied += chosen
        analysis = analyse(fixed, path, settings)
        reported = _reported(analysis, fixed, path, selection)
    left = Counter(finding.code for finding in reported)
    return FixResult(fixed, applied, reported, before - left if applied else Counter())


def _reported(analysis: Analysis, source: str, path: str, selection: Selection) -> list:
    noqa = NoqaMap(source)
    return [finding for finding in analysis.findings if selection.reports(finding, path, noqa)]


def apply_fixes(analysis: Analysis, findings: list[Finding], path: str = "") -> str:
    """The analysed source with these findings' fixes applied (the tree itself is unchanged):
    the imports the new code needs added, and the ones only the replaced code used removed."""
    changes: dict[int, list] = {}
    context = CodemodContext()
    replaced: list[cst.CSTNode] = []
    for finding in findings:
        for edit in finding.fix.edits:
            changes.setdefault(id(edit.target), []).append(edit.change)
            if not isinstance(edit.target, cst.Module):  # a module edit only appends
                replaced.append(edit.target)
        for module, name in finding.fix.imports:
            if name is None:
                AddImportsVisitor.add_needed_import(context, module)
            else:
                AddImportsVisitor.add_needed_import(context, module, name)
    edits = _ApplyEdits(changes)
    fixed = analysis.module.visit(edits)
    style = style_for(path)
    fixed = wrap_long_lines(analysis.module, fixed, edits.rewritten, style.max_line_length)
    adds = any(finding.fix.imports for finding in findings)
    removes = _schedule_unused_imports(context, analysis.module, fixed, replaced, path)
    if not adds and not removes:
        return fixed.code
    # isort's order is judged on the imports as written; a module without any is in order
    block = ImportBlock.find(analysis.module)
    was_sorted = block is None or block.sorted_in(analysis.module, style.imports)
    if adds:
        fixed = AddImportsVisitor(context).transform_module(fixed)
    if removes:
        fixed = RemoveImportsVisitor(context).transform_module(fixed)
    block = ImportBlock.find(fixed) if was_sorted else None
    if block is not None:
        fixed = block.replace_in(fixed, style.imports)
    else:
        fixed = wrap_long_imports(analysis.module, fixed, style.max_line_length)
    return fixed.code


def _schedule_unused_imports(context: CodemodContext, module: cst.Module, fixed: cst.Module,
                             replaced: list[cst.CSTNode], path: str) -> bool:
    """Schedule for removal the imports of names the replaced code read: RemoveImportsVisitor
    then drops those nothing reads any more (nor `__all__`), and only those, so an import that
    was unused before the fix stays (pyflakes' business, not ours). A package's `__init__.py`
    and `import x as x` re-export what they import: left alone, as ruff's F401 fix does."""
    if not replaced or PurePath(path).name == "__init__.py":
        return False
    read = _NamesRead()
    for node in replaced:
        node.visit(read)
    still_read = _NamesRead()
    fixed.visit(still_read)
    read.names -= still_read.names  # scope analysis is dear: only for names no code reads now
    if not read.names:
        return False
    imports = _Imports()
    module.visit(imports)
    scheduled = False
    for statement, alias in imports.aliases:
        local = alias.evaluated_alias or alias.evaluated_name.split(".")[0]
        if local not in read.names or alias.evaluated_alias == alias.evaluated_name:
            continue
        if isinstance(statement, cst.Import):
            RemoveImportsVisitor.remove_unused_import(
                context, alias.evaluated_name, asname=alias.evaluated_alias)
        else:
            RemoveImportsVisitor.remove_unused_import(
                context, _from_module(statement), obj=alias.evaluated_name,
                asname=alias.evaluated_alias)
        scheduled = True
    return scheduled


def _from_module(statement: cst.ImportFrom) -> str:
    """The module of `from module import ...` as RemoveImportsVisitor names it (relative
    imports keep their dots: it cannot resolve them, and leaves them be)."""
    dots = "".join(dot.value for dot in statement.relative)
    return dots + (cst.Module([]).code_for_node(statement.module) if statement.module else "")


class _NamesRead(cst.CSTVisitor):
    """The names an expression reads: `engine` in `Session(engine)`, not keywords (`bind=`) or
    attributes (`.Session`)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)
        return False

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False


class _Imports(cst.CSTVisitor):
    """Every imported name of a module, with its statement."""

    def __init__(self) -> None:
        super().__init__()
        self.aliases: list[tuple[cst.Import | cst.ImportFrom, cst.ImportAlias]] = []

    def visit_Import(self, node: cst.Import) -> bool:
        self.aliases += [(node, alias) for alias in node.names]
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        if not isinstance(node.names, cst.ImportStar):
            self.aliases += [(node, alias) for alias in node.names]
        return False


class _ApplyEdits(cst.CSTTransformer):
    """Rewrites the nodes edits point at; edits to one node apply in finding order."""

    def __init__(self, changes: dict[int, list]) -> None:
        super().__init__()
        self.changes = changes
        self.rewritten: list[tuple[cst.CSTNode, cst.CSTNode]] = []  # (original, its result)

    def on_leave(self, original_node, updated_node):
        changes = self.changes.get(id(original_node))
        if not changes:
            return updated_node
        for change in changes:
            updated_node = change(updated_node)
        self.rewritten.append((original_node, updated_node))
        return updated_node
