"""The rule catalogue: every `Rule` subclass in the modules of this package.

A new rule is a class in one of these modules (or a new module here); nothing else registers it.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from .base import Example, Rule


@cache
def all_rules() -> tuple[type[Rule], ...]:
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):  # __main__ writes the docs; it holds no rules
            importlib.import_module(f"{__name__}.{module.name}")
    found: list[type[Rule]] = []
    pending = list(Rule.__subclasses__())
    while pending:
        rule = pending.pop()
        pending.extend(rule.__subclasses__())
        if "code" in rule.__dict__:
            found.append(rule)
    return tuple(sorted(found, key=lambda rule: rule.code))


def rule_by_code(code: str) -> type[Rule] | None:
    return next((rule for rule in all_rules() if rule.code == code.upper()), None)


__all__ = ["Example", "Rule", "all_rules", "rule_by_code"]
