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
