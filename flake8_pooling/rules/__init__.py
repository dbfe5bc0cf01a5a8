"""The rule catalogue: every `Rule` subclass in the modules of this package's families.

One rule per file, `rules/<family>/<code>_<name>.py`; nothing else registers it. Rules on files
other than Python (uWSGI ini files today) are found the same way and say which files they read.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from functools import cache
from pathlib import PurePath

from .base import Example, Rule


@cache
def all_rules() -> tuple[type[Rule], ...]:
    for module in pkgutil.walk_packages(__path__, f"{__name__}."):
        if not module.name.rpartition(".")[2].startswith("_"):  # __main__ writes the docs
            importlib.import_module(module.name)
    found: list[type[Rule]] = []
    pending = list(Rule.__subclasses__())
    while pending:
        rule = pending.pop()
        pending.extend(rule.__subclasses__())
        if "code" in rule.__dict__:
            found.append(rule)
    return tuple(sorted(found, key=lambda rule: rule.code))


def rule_by_code(code: str) -> type[Rule] | None:
    return _by_code().get(code.upper())


@cache
def _by_code() -> dict[str, type[Rule]]:
    return {rule.code: rule for rule in all_rules()}


def rules_reading(path: str) -> tuple[type[Rule], ...]:
    """The rules that read this file when it is not Python: `uwsgi.ini` -> POL301."""
    name = PurePath(path).name
    return tuple(rule for rule in all_rules()
                 if any(fnmatch.fnmatch(name, pattern) for pattern in rule.reads))


def other_file_patterns() -> tuple[str, ...]:
    """The names of the non-Python files some rule reads, for the command line's file walk."""
    return tuple(sorted({pattern for rule in all_rules() for pattern in rule.reads}))


__all__ = ["Example", "Rule", "all_rules", "other_file_patterns", "rule_by_code",
           "rules_reading"]
