"""What a project calls itself: the name its packaging metadata gives, else its folder's."""

from __future__ import annotations

import configparser
import tomllib
from functools import cache
from pathlib import Path


@cache
def project_name(root: Path) -> str:
    """`[project] name` in pyproject.toml (or Poetry's `[tool.poetry] name`), else
    `[metadata] name` in setup.cfg, else the root folder's name. A file that cannot be read
    names nothing: the next place is asked."""
    try:
        table = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        name = table.get("project", {}).get("name") \
            or table.get("tool", {}).get("poetry", {}).get("name")
        if isinstance(name, str) and name.strip():
            return name.strip()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        pass
    try:
        parser = configparser.RawConfigParser()
        parser.read(root / "setup.cfg", encoding="utf-8")
        name = parser.get("metadata", "name", fallback="").strip()
        if name and not name.startswith("attr:"):
            return name
    except (configparser.Error, UnicodeDecodeError):
        pass
    return root.name
