"""The way through the code runs one way: the facts stage reads the code and nothing else."""

from __future__ import annotations

import ast

from .helpers import ROOT

FACTS = ROOT / "flake8_pooling" / "analysis" / "facts"
# judgements and what they read: never imported by a fact family
JUDGEMENT_MODULES = {"settings", "project", "deployment", "pooler", "context", "budget",
                     "process", "options", "config"}


def imported_modules(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
            names.update(alias.name for alias in node.names)  # from .. import settings
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {part for name in names for part in name.split(".")}


def test_fact_families_import_no_settings_project_files_or_judgements():
    families = sorted(FACTS.glob("*.py"))
    assert len(families) >= 5
    for path in families:
        assert not imported_modules(path) & JUDGEMENT_MODULES, path.name


def test_front_ends_name_no_rule():
    """They reach rules only through the registry (`from .rules import all_rules, ...`)."""
    for name in ("plugin.py", "cli.py", "fix.py", "report.py", "lint.py", "codemods.py"):
        tree = ast.parse((ROOT / "flake8_pooling" / name).read_text())
        modules = [node.module or "" for node in ast.walk(tree)
                   if isinstance(node, ast.ImportFrom)]
        assert not [module for module in modules if module.startswith("rules.")], name
