"""Which codes are reported: flake8's select/ignore rule, and opt-in rules."""

from __future__ import annotations

from collections.abc import Iterable


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
