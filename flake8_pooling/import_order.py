"""Where isort puts an import, so the imports a fix adds leave sorted imports sorted (I001).

A module's first block of imports is laid out the way isort lays it out (`ImportStyle`): if
that gives back exactly its text, the block was sorted, and after the fix it is laid out again
with the new imports in. Anything the model does not cover (a comment inside the block, a `\\`
continuation, isort settings it does not know) makes the block count as unsorted, and the fix
leaves the placement to libcst as before: the model claims only what it can reproduce.

isort's rules followed here (its default profile, or black's): sections future, standard
library, third party, first party, local folder, one blank line apart; in each, `import x`
lines before `from x import y` lines, modules compared case-insensitively; imported names
ordered CONSTANTS, Classes, then functions and variables; `from m import a as b` on a line of
its own where `a` falls in that order; a line over the length wrapped as a grid aligned on the
parenthesis (isort's default) or one name a line with a trailing comma (black).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

import libcst as cst

from .code_style import GRID, ImportStyle

FUTURE, STANDARD, THIRD_PARTY, FIRST_PARTY, LOCAL = range(5)
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class _Import:
    module: str  # "os.path"; "..models" for a relative import
    name: str | None  # None: `import module`
    alias: str | None


@dataclass
class ImportBlock:
    """The module's first run of top-level import statements: body[start:end]."""
    start: int
    end: int
    imports: list[_Import]
    exploded: set[str]  # modules whose `from` import ends in a trailing comma (black keeps them)

    @classmethod
    def find(cls, module: cst.Module) -> ImportBlock | None:
        """The block, or None where there is none or the model cannot read it."""
        body = list(module.body)
        start = next((index for index, statement in enumerate(body) if _is_import(statement)),
                     None)
        if start is None:
            return None
        end = start
        while end < len(body) and _is_import(body[end]):
            end += 1
        imports, exploded = [], set()
        for index in range(start, end):
            line = body[index]
            if len(line.body) != 1 or line.trailing_whitespace.comment is not None or (
                    index > start and any(empty.comment for empty in line.leading_lines)):
                return None
            statement = line.body[0]
            if isinstance(statement, cst.Import):
                imports += [_Import(_dotted(alias.name), None, _alias(alias))
                            for alias in statement.names]
                continue
            if isinstance(statement.names, cst.ImportStar) or _has_comment(statement):
                return None
            module_name = "." * len(statement.relative) + (
                _dotted(statement.module) if statement.module else "")
            imports += [_Import(module_name, _dotted(alias.name), _alias(alias))
                        for alias in statement.names]
            if isinstance(statement.names[-1].comma, cst.Comma):
                exploded.add(module_name)
        return cls(start, end, imports, exploded)

    def code(self, module: cst.Module) -> str:
        """The block's text as written, without what stands above its first line."""
        lines = list(module.body[self.start:self.end])
        lines[0] = lines[0].with_changes(leading_lines=())
        return "".join(module.code_for_node(line) for line in lines)

    def laid_out(self, style: ImportStyle, newline: str = "\n") -> str:
        """The block as isort writes it."""
        sections: dict[int, list[_Import]] = {}
        for entry in dict.fromkeys(self.imports):
            sections.setdefault(_section(entry.module, style), []).append(entry)
        parts = []
        for section in sorted(sections):
            entries = sections[section]
            lines = [_straight(entry) for entry in sorted(
                (entry for entry in entries if entry.name is None),
                key=lambda entry: (_module_key(entry.module), entry.alias is not None,
                                   entry.alias or ""))]
            modules = sorted({entry.module for entry in entries if entry.name is not None},
                             key=_module_key)
            for module in modules:
                names = [entry for entry in entries if entry.module == module and entry.name]
                lines += _from_lines(module, names, style, module in self.exploded)
            parts.append("\n".join(lines) + "\n")
        return "\n".join(parts).replace("\n", newline)

    def sorted_in(self, module: cst.Module, style: ImportStyle) -> bool:
        return style.known and self.laid_out(style, module.default_newline) == self.code(module)

    def replace_in(self, module: cst.Module, style: ImportStyle) -> cst.Module:
        """The module with this block laid out as isort would."""
        body = list(module.body)
        text = self.laid_out(style, module.default_newline)
        new = list(cst.parse_module(text).body)
        new[0] = new[0].with_changes(leading_lines=body[self.start].leading_lines)
        return module.with_changes(body=body[:self.start] + new + body[self.end:])


def import_statements(imports, style: ImportStyle = ImportStyle()) -> list[str]:
    """`(module, name, alias)` imports (name None: `import module`) as the lines isort writes
    for them: for the imports a fix writes into code of its own, such as a hook's body."""
    block = ImportBlock(0, 0, [_Import(*entry) for entry in imports], set())
    return block.laid_out(style).splitlines() if block.imports else []


def _is_import(statement: cst.CSTNode) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and bool(statement.body) and all(
        isinstance(part, (cst.Import, cst.ImportFrom)) for part in statement.body)


def _dotted(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node).replace(" ", "")


def _alias(alias: cst.ImportAlias) -> str | None:
    return alias.asname.name.value if alias.asname is not None else None


def _has_comment(statement: cst.ImportFrom) -> bool:
    """A comment inside a parenthesised `from` import: isort moves those, this model does not."""
    text = cst.Module([]).code_for_node(statement)
    return "#" in text or "\\" in text


def _section(module: str, style: ImportStyle) -> int:
    if module.startswith("."):
        return LOCAL
    top = module.split(".")[0]
    if top == "__future__":
        return FUTURE
    if top in style.first_party:
        return FIRST_PARTY
    if top in style.third_party:
        return THIRD_PARTY
    if top in sys.stdlib_module_names:
        return STANDARD
    for folder in style.src_paths:
        if (folder / top).is_dir() or (folder / f"{top}.py").is_file():
            return FIRST_PARTY
    return THIRD_PARTY


def _module_key(module: str) -> list:
    """isort's sorting.module_key for a module: dots of a relative import joined by `_`."""
    stripped = module.lstrip(".")
    if stripped != module:
        module = f"{module[:len(module) - len(stripped)]}_{stripped}"
    return _natural(module.lower())


def _name_key(name: str) -> list:
    """isort's key for an imported name (order_by_type): CONSTANTS, Classes, the rest."""
    kind = "A" if name.isupper() and len(name) > 1 else "B" if name[:1].isupper() else "C"
    return _natural(kind + name.lower())


def _natural(key: str) -> list:
    """isort sorts naturally: `o8` before `o16le`."""
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(key)]


def _straight(entry: _Import) -> str:
    return f"import {entry.module}" + (f" as {entry.alias}" if entry.alias else "")


def _from_lines(module: str, entries: list[_Import], style: ImportStyle,
                exploded: bool) -> list[str]:
    """isort's output.py: names in order; a name imported `as` something gets its own
    lines (plain first, then each alias), the names between them share one statement."""
    start = f"from {module} import "
    plain = {entry.name for entry in entries if entry.alias is None}
    aliases: dict[str, list[str]] = {}
    for entry in entries:
        if entry.alias is not None:
            aliases.setdefault(entry.name, []).append(entry.alias)
    names = sorted(plain | set(aliases), key=_name_key)
    lines = []
    while names:
        while names and names[0] in aliases:
            name = names.pop(0)
            if name in plain:
                lines.append(start + name)
            lines += [_wrapped(start, [f"{name} as {alias}"], style, False)
                      for alias in sorted(aliases[name])]
        shared = []
        while names and names[0] not in aliases:
            shared.append(names.pop(0))
        if shared:
            lines.append(_wrapped(start, shared, style, exploded))
    return lines


def _wrapped(start: str, names: list[str], style: ImportStyle, exploded: bool) -> str:
    line = start + ", ".join(names)
    if exploded and style.split_on_trailing_comma:  # black's magic trailing comma
        return start + "(\n" + "".join(f"    {name},\n" for name in names) + ")"
    if len(line) <= style.line_length or (len(names) < 2 and style.mode == GRID):
        return line
    comma = "," if style.trailing_comma else ""
    if style.mode == GRID:  # isort's wrap_modes.grid
        statement = start + "(" + names[0]
        indent = " " * len(start + "(")
        for name in names[1:]:
            if len(statement.split("\n")[-1] + ", " + name) + 1 > style.line_length:
                statement += ",\n" + indent + name
            else:
                statement += ", " + name
        return statement + comma + ")"
    return start + "(\n" + ",\n".join(f"    {name}" for name in names) + comma + "\n)"


def add_imports(module: cst.Module, wanted) -> cst.Module:
    """`module` with the `(module, name)` imports (name None: `import module`) it lacks, placed
    where libcst's AddImportsVisitor places them: a name joins the first `from` import of its
    module in the top block of imports, the rest go after that block (`__future__` before it).
    `replace_in` then lays a block that was sorted out again; this placement is what a block
    that was not keeps. Written here because importing `libcst.codemod` costs more than a
    whole `check --format json` of a large file spends on its edits."""
    body = list(module.body)
    skip = 1 if body and _is_docstring_or_strict(body[0]) else 0
    end = skip
    while end < len(body) and _is_single_import(body[end]):
        end += 1
    have_modules, have_names = set(), {}
    for line in body[skip:end]:
        statement = line.body[0]
        if isinstance(statement, cst.Import):
            have_modules |= {_dotted(alias.name) for alias in statement.names
                             if alias.asname is None}
        elif not statement.relative and statement.module is not None:
            names = have_names.setdefault(_dotted(statement.module), set())
            names |= {"*"} if isinstance(statement.names, cst.ImportStar) else {
                _dotted(alias.name) for alias in statement.names if alias.asname is None}
    modules = sorted({name for name, obj in wanted if obj is None} - have_modules)
    objects: dict[str, set[str]] = {}
    for name, obj in wanted:
        present = have_names.get(name, set())
        if obj is not None and "*" not in present and obj not in present:
            objects.setdefault(name, set()).add(obj)
    if not modules and not objects:
        return module
    for index in range(skip, end):  # join an existing `from` import of the module
        statement = body[index].body[0]
        if isinstance(statement, cst.ImportFrom) and not statement.relative \
                and statement.module is not None \
                and not isinstance(statement.names, cst.ImportStar) \
                and _dotted(statement.module) in objects:
            added = objects.pop(_dotted(statement.module))
            names = [cst.ImportAlias(cst.Name(name)) for name in sorted(added)]
            body[index] = body[index].with_changes(
                body=[statement.with_changes(names=[*names, *statement.names])])
    if not modules and not objects:  # all joined existing imports
        return module.with_changes(body=body)
    config = module.config_for_parsing

    def parsed(lines: list[str]) -> list[cst.BaseStatement]:
        return [cst.parse_statement(line, config=config) for line in lines]

    future = parsed([f"from __future__ import {', '.join(sorted(objects.pop('__future__')))}"]
                    ) if "__future__" in objects else []
    after = body[end:]
    if after:  # AddImportsVisitor's _insert_empty_line
        first = after[0]
        if not first.leading_lines:
            after[0] = first.with_changes(leading_lines=(cst.EmptyLine(),))
        elif first.leading_lines[0].comment is not None:
            after[0] = first.with_changes(leading_lines=(cst.EmptyLine(), *first.leading_lines))
    added = parsed([f"import {name}" for name in modules]
                   + [f"from {name} import {', '.join(sorted(objects[name]))}"
                      for name in sorted(objects)])
    return module.with_changes(body=[*body[:skip], *future, *body[skip:end], *added, *after])


def _is_single_import(statement: cst.CSTNode) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1 \
        and isinstance(statement.body[0], (cst.Import, cst.ImportFrom))


def _is_docstring_or_strict(statement: cst.CSTNode) -> bool:
    """A first statement AddImportsVisitor keeps above the imports: a docstring, `__strict__`."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    first = statement.body[0]
    if isinstance(first, cst.Expr):
        return isinstance(first.value, cst.SimpleString)
    return isinstance(first, cst.Assign) and len(first.targets) == 1 \
        and isinstance(first.targets[0].target, cst.Name) \
        and first.targets[0].target.value == "__strict__"
