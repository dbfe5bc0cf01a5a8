"""Resolving names through a module's imports.

`import sqlalchemy as sa` makes `sa.create_engine` mean `sqlalchemy.create_engine`; a module-level
`def create_engine` hides the import. Qualified names are canonicalised, so that the many public
spellings of one object (`sqlalchemy.NullPool`, `sqlalchemy.pool.NullPool`,
`sqlalchemy.pool.impl.NullPool`) compare equal.
"""

from __future__ import annotations

import libcst as cst

from ..vocabulary import STAR_IMPORTED, canonical


def dotted(expr: cst.BaseExpression) -> str | None:
    """`a.b.c` as text, or None for anything that is not a plain name chain."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        base = dotted(expr.value)
        return None if base is None else f"{base}.{expr.attr.value}"
    return None


def _module_name(expr: cst.BaseExpression | None) -> str | None:
    return dotted(expr) if expr is not None else None


class ImportTable:
    """Local name -> qualified name, for the names a module imports."""

    def __init__(self) -> None:
        self._bound: dict[str, str] = {}
        self._star = False  # a `from x import *`: unbound names may come from it

    def add(self, node: cst.Import | cst.ImportFrom) -> None:
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = dotted(alias.name)
                if full is None:
                    continue
                if alias.asname is not None:
                    self._bound[dotted(alias.asname.name) or full] = full
                else:
                    # `import sqlalchemy.pool` binds `sqlalchemy`
                    head = full.split(".")[0]
                    self._bound[head] = head
            return
        if isinstance(node.names, cst.ImportStar):
            self._star = True
            return
        if node.relative:
            return
        module = _module_name(node.module)
        if module is None:
            return
        for alias in node.names:
            name = dotted(alias.name)
            if name is None:
                continue
            local = dotted(alias.asname.name) if alias.asname is not None else name
            if local:
                self._bound[local] = f"{module}.{name}"

    def is_bound(self, local: str) -> bool:
        return local in self._bound

    def local_names(self) -> set[str]:
        return set(self._bound)

    def bound_modules(self) -> set[str]:
        """What the imports name: `myapp.db` for `import myapp.db as db`, `myapp.db.engine`
        for `from myapp.db import engine`."""
        return set(self._bound.values())

    def shadow(self, local: str) -> None:
        """A module-level definition of `local` hides whatever it was imported as."""
        self._bound.pop(local, None)

    def qualify(self, expr: cst.BaseExpression) -> str | None:
        """The canonical qualified name `expr` refers to, if it comes from an import."""
        text = dotted(expr)
        if text is None:
            return None
        head, _, rest = text.partition(".")
        base = self._bound.get(head)
        if base is None:
            return STAR_IMPORTED.get(text) if self._star else None
        return canonical(f"{base}.{rest}" if rest else base)

    def reference(self, qualified: str) -> tuple[str, tuple[str, str | None] | None]:
        """How to spell `qualified` (`module.name`) here, and the import it needs, if any.

        Reuses an existing binding (`NullPool`, `sa.pool.NullPool`) before asking for a new
        `from module import name` (import = (module, name)); when the short name is taken by
        something else, spells it in full and asks for `import module` (import = (module, None)).
        """
        for local, bound in self._bound.items():
            if canonical(bound) == qualified:
                return local, None
        module, _, name = qualified.rpartition(".")
        by_length = sorted(self._bound.items(), key=lambda item: -len(item[1]))
        for local, bound in by_length:
            if module == bound or module.startswith(bound + "."):
                return local + qualified[len(bound):], None
        if name in self._bound:
            return qualified, (module, None)
        return name, (module, name)
