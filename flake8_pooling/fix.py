"""Applying the fixes findings carry: one pass over the tree, then the lines they made too long
wrapped (wrapping.py), then the imports they need added where isort would put them
(import_order.py) and the ones they made unused removed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import PurePath

import libcst as cst

from .code_style import style_for
from .findings import SAFE, Finding
from .import_order import ImportBlock, add_imports
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
    wanted: list[tuple[str, str | None]] = []
    replaced: list[cst.CSTNode] = []
    for finding in findings:
        for edit in finding.fix.edits:
            changes.setdefault(id(edit.target), []).append(edit.change)
            if not isinstance(edit.target, cst.Module):  # a module edit only appends
                replaced.append(edit.target)
        wanted += finding.fix.imports
    edits = _ApplyEdits(changes)
    fixed = analysis.module.visit(edits)
    style = style_for(path)
    fixed = wrap_long_lines(analysis.module, fixed, edits.rewritten, style.max_line_length)
    adds = bool(wanted)
    removes = _unused_imports(analysis.module, fixed, replaced, path)
    if not adds and not removes:
        return fixed.code
    # isort's order is judged on the imports as written; a module without any is in order
    block = ImportBlock.find(analysis.module)
    was_sorted = block is None or block.sorted_in(analysis.module, style.imports)
    if adds:
        fixed = add_imports(fixed, wanted)
    if removes:
        fixed = _remove_unused(fixed, removes)
    block = ImportBlock.find(fixed) if was_sorted else None
    if block is not None:
        fixed = block.replace_in(fixed, style.imports)
    else:
        fixed = wrap_long_imports(analysis.module, fixed, style.max_line_length)
    return fixed.code


def _unused_imports(module: cst.Module, fixed: cst.Module, replaced: list[cst.CSTNode],
                    path: str) -> list[tuple[str, str | None, str | None]]:
    """The imports of names the replaced code read, as `(module, name, alias)`, for
    RemoveImportsVisitor, which then drops those nothing reads any more (nor `__all__`), and
    only those, so an import that was unused before the fix stays (pyflakes' business, not
    ours). A package's `__init__.py` and `import x as x` re-export what they import: left
    alone, as ruff's F401 fix does."""
    if not replaced or PurePath(path).name == "__init__.py":
        return []
    # scope analysis is dear: only for names no code reads now
    unread = set(names_read(replaced)) - set(names_read([fixed]))
    if not unread:
        return []
    imports = _Imports()
    module.visit(imports)
    unused = []
    for statement, alias in imports.aliases:
        local = alias.evaluated_alias or alias.evaluated_name.split(".")[0]
        if local not in unread or alias.evaluated_alias == alias.evaluated_name:
            continue
        if isinstance(statement, cst.Import):
            unused.append((alias.evaluated_name, None, alias.evaluated_alias))
        else:
            unused.append((_from_module(statement), alias.evaluated_name,
                           alias.evaluated_alias))
    return unused


def _remove_unused(fixed: cst.Module, unused: list[tuple[str, str | None, str | None]]
                   ) -> cst.Module:
    """RemoveImportsVisitor's scope analysis decides what nothing reads; imported here, when a
    fix needs it, as its package costs half a second to import."""
    from libcst.codemod import CodemodContext
    from libcst.codemod.visitors import RemoveImportsVisitor

    context = CodemodContext()
    for module, name, alias in unused:
        if name is None:
            RemoveImportsVisitor.remove_unused_import(context, module, asname=alias)
        else:
            RemoveImportsVisitor.remove_unused_import(context, module, obj=name, asname=alias)
    return RemoveImportsVisitor(context).transform_module(fixed)


def _from_module(statement: cst.ImportFrom) -> str:
    """The module of `from module import ...` as RemoveImportsVisitor names it (relative
    imports keep their dots: it cannot resolve them, and leaves them be)."""
    dots = "".join(dot.value for dot in statement.relative)
    return dots + (cst.Module([]).code_for_node(statement.module) if statement.module else "")


def names_read(nodes: Iterable[cst.CSTNode]) -> Counter:
    """How often the code reads each name: `engine` in `Session(engine)`, not keywords
    (`bind=`), attributes (`.Session`) or imports. Read off the nodes' fields in place: libcst's
    visitors rebuild every node they pass, and this runs on whole modules."""
    counts: Counter = Counter()
    pending = list(nodes)
    while pending:
        node = pending.pop()
        kind = type(node)
        if kind is cst.Name:
            counts[node.value] += 1
        elif kind is cst.Attribute or kind is cst.Arg:
            pending.append(node.value)
        elif kind is not cst.Import and kind is not cst.ImportFrom:
            for name in node_fields(kind):
                value = getattr(node, name)
                if isinstance(value, cst.CSTNode):
                    pending.append(value)
                elif isinstance(value, (tuple, list)):
                    pending.extend(item for item in value if isinstance(item, cst.CSTNode))
    return counts


_FIELDS: dict[type, tuple[str, ...]] = {}


def node_fields(kind: type) -> tuple[str, ...]:
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(entry.name for entry in fields(kind))
    return names


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
