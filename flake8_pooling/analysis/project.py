"""The project around a file: found once per process, cached, and kept cheap.

The root is the nearest directory holding .git, pyproject.toml, setup.cfg or setup.py. The scan
reads only files whose text mentions an engine creator or Flask-SQLAlchemy, parses those with
`ast` (not libcst), and records what they create at module level: engines, Flask-SQLAlchemy
objects and Flask applications. It skips virtual environments, VCS and build directories and
tests, and stops after MAX_FILES files.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .prefilter import ENGINE_CREATORS

ROOT_MARKERS = (".git", "pyproject.toml", "setup.cfg", "setup.py")
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "env", ".env", "node_modules",
                          "site-packages", "build", "dist", "__pycache__", ".tox", ".nox",
                          ".mypy_cache", ".pytest_cache", ".ruff_cache", "tests", "test",
                          "migrations", "alembic", "docs"})
MAX_FILES = 3000
_WORDS = tuple(ENGINE_CREATORS) + ("SQLAlchemy(", "Flask(", "create_app(")


@dataclass(frozen=True)
class ProjectObject:
    module: str  # dotted import path: "myapp.db"
    name: str  # the module-level name: "engine"
    kind: str  # "engine", "async_engine", "flask_sqlalchemy" or "flask_app"

    @property
    def import_path(self) -> str:
        return f"{self.module}:{self.name}"


@dataclass(frozen=True)
class Project:
    root: Path
    top_level: frozenset[str]  # importable top-level packages and modules of the project
    objects: tuple[ProjectObject, ...]
    complete: bool  # False when the scan stopped at MAX_FILES

    def of_kind(self, *kinds: str) -> list[ProjectObject]:
        return [obj for obj in self.objects if obj.kind in kinds]


def project_root(path: str) -> Path:
    start = Path(path or ".").resolve()
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    return folder


def project_for(path: str) -> Project:
    return scan(project_root(path))


@cache
def scan(root: Path) -> Project:
    sources = root / "src" if (root / "src").is_dir() else root
    top_level = set()
    for base in {root, sources}:
        try:
            for entry in base.iterdir():
                if entry.suffix == ".py":
                    top_level.add(entry.stem)
                elif entry.is_dir() and (entry / "__init__.py").exists():
                    top_level.add(entry.name)
        except OSError:
            continue
    objects: list[ProjectObject] = []
    count = 0
    complete = True
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            count += 1
            if count > MAX_FILES:
                complete = False
                break
            objects.extend(_module_objects(Path(folder) / name, root, sources))
        if not complete:
            break
    return Project(root, frozenset(top_level), tuple(objects), complete)


def _module_name(path: Path, root: Path, sources: Path) -> str:
    base = sources if sources in path.parents else root
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _module_objects(path: Path, root: Path, sources: Path) -> list[ProjectObject]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    if not any(word in text for word in _WORDS):
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return []
    module = _module_name(path, root, sources)
    found = []
    for statement in tree.body:
        if not isinstance(statement, (ast.Assign, ast.AnnAssign)) \
                or not isinstance(statement.value, ast.Call):
            continue
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        func = statement.value.func
        called = func.id if isinstance(func, ast.Name) else \
            func.attr if isinstance(func, ast.Attribute) else ""
        # AsyncEngine.dispose() is a coroutine: a hook disposes its sync_engine (domain 11)
        kind = "async_engine" if called in ("create_async_engine", "async_engine_from_config") \
            else "engine" if called in ENGINE_CREATORS else \
            "flask_sqlalchemy" if called == "SQLAlchemy" else \
            "flask_app" if called in ("Flask", "create_app") else None
        if kind is None:
            continue
        found.extend(ProjectObject(module, target.id, kind) for target in targets
                     if isinstance(target, ast.Name))
    return found
