"""The one decision "is this finding reported?", made the same way by the flake8 plugin,
`check` and `fix`: the rule exists, an opt-in rule is selected in full, flake8's select/ignore
rule, per-file-ignores, and `# noqa`.

Under flake8, flake8 itself applies select/ignore, per-file-ignores and noqa after the plugin;
the plugin's selection carries what flake8 was given, so only the opt-in part can differ.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line reads its config before it knows libcst is needed
    from .findings import Finding
    from .noqa import NoqaMap


@dataclass(frozen=True)
class Selection:
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    extend_ignore: tuple[str, ...] = ()
    # flake8's per-file-ignores: (pattern, codes); relative patterns already made absolute
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def of(cls, select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
           extend_select: Iterable[str] | None = None,
           extend_ignore: Iterable[str] | None = None,
           per_file_ignores: Iterable[tuple[str, Iterable[str]]] = ()) -> Selection:
        return cls(tuple(select or ()), tuple(ignore or ()), tuple(extend_select or ()),
                   tuple(extend_ignore or ()),
                   tuple((pattern, tuple(codes)) for pattern, codes in per_file_ignores))

    def reports(self, finding: Finding, path: str = "", noqa: NoqaMap | None = None) -> bool:
        if not self.selects(finding.code, path):
            return False
        return noqa is None or not noqa.suppresses(finding)

    def selects(self, code: str, path: str = "") -> bool:
        from .rules import rule_by_code  # loaded with the first finding, never before

        rule = rule_by_code(code)
        opt_in = rule is not None and rule.opt_in
        ignored = self.ignore + self.ignored_for(path) if path else self.ignore
        return is_selected(code, self.select, ignored, self.extend_select, self.extend_ignore,
                           opt_in=opt_in)

    def ignored_for(self, path: str) -> tuple[str, ...]:
        """Codes flake8's per-file-ignores drop for this path."""
        if not self.per_file_ignores:
            return ()
        absolute = str(Path(path).absolute())
        name = Path(path).name
        return tuple(code for pattern, codes in self.per_file_ignores
                     if fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(absolute, pattern)
                     for code in codes)


@cache
def known_codes() -> frozenset[str]:
    """Every code, from the names of the rules' files (`rules/<family>/pol101_<name>.py`), so
    the command line can check a selection without loading the rules; and the internal ones."""
    rules = Path(__file__).parent / "rules"
    return frozenset({path.name[:6].upper() for path in rules.glob("*/pol[0-9][0-9][0-9]_*.py")}
                     | {"POL901", "POL902"})


def names_a_rule(prefix: str) -> bool:
    """flake8 compares codes by prefix: `POL1` names POL101 to POL112; `pol101` names none."""
    return any(code.startswith(prefix) for code in known_codes())


def opt_in_enabled(code: str, *selections: Iterable[str] | None) -> bool:
    """Opt-in rules report only when their full code is selected (like bugbear's B9xx)."""
    return any(code in (selection or ()) for selection in selections)


def is_selected(code: str, select: Iterable[str] | None = None,
                ignore: Iterable[str] | None = None, extend_select: Iterable[str] | None = None,
                extend_ignore: Iterable[str] | None = None, opt_in: bool = False) -> bool:
    """flake8's rule: the longest matching prefix of the selected and ignored codes wins (a tie
    is ignored); with no `select`, every code is selected."""
    select, extend_select = list(select or ()), list(extend_select or ())
    if opt_in and not opt_in_enabled(code, select, extend_select):
        return False
    chosen = [prefix for prefix in [*select, *extend_select] if code.startswith(prefix)]
    if select and not chosen:
        return False
    dropped = [prefix for prefix in [*(ignore or ()), *(extend_ignore or ())]
               if code.startswith(prefix)]
    return not dropped or max(map(len, chosen), default=0) > max(map(len, dropped))
