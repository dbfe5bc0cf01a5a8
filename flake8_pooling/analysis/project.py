"""The project around a file: found once per process, cached, and kept cheap.

The root is the nearest directory holding .git, pyproject.toml, setup.cfg or setup.py. Each part
is computed the first time a rule asks for it:
- `deployment`: PgBouncer configs, compose services, .env URLs and the pinned SQLAlchemy version,
  from small files near the root (see deployment.py);
- `objects`: what Python modules create at module level (engines, Flask-SQLAlchemy objects,
  Flask applications) and the functions that return new engines, with names resolved through
  each module's imports exactly as the fact families resolve them (vocabulary.py). Only files
  whose text mentions an engine creator or Flask-SQLAlchemy are parsed, with `ast` (not
  libcst). Virtual environments, VCS, build and test directories are skipped, and the scan stops
  after MAX_FILES.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from ..vocabulary import (CACHING_DECORATORS, ENGINE_APIS, ENGINE_CREATORS, FLASK_CLASS,
                          FLASK_SQLALCHEMY_CLASS, NOT_APPLICATION_DIRS, UWSGI_POSTFORK, canonical)
from .deployment import Deployment, read_deployment

ROOT_MARKERS = (".git", "pyproject.toml", "setup.cfg", "setup.py")
# a docker build context or an unpacked archive has none of those: these mark its root then
FALLBACK_MARKERS = ("requirements.txt", "Pipfile", "docker-compose.yml", "docker-compose.yaml",
                    "compose.yml", "compose.yaml")
MAX_FILES = 3000
_WORDS = tuple(ENGINE_CREATORS) + ("SQLAlchemy(", "Flask(", "create_app(", "postfork")
_BYTE_WORDS = tuple(word.encode() for word in _WORDS)


@dataclass(frozen=True)
class ProjectObject:
    module: str  # dotted import path: "myapp.db"
    name: str  # the module-level name: "engine"
    # "engine", "async_engine", "flask_sqlalchemy", "flask_app", "engine_factory",
    # "postfork_disposal"
    kind: str
    path: str = ""  # the file, relative to the root
    line: int = 0
    options: tuple[tuple[str, object], ...] = ()  # literal keyword arguments of the engine call
    url: str | None = None  # the engine's URL when it is a literal
    url_variable: str | None = None  # or the environment variable it is read from

    @property
    def import_path(self) -> str:
        return f"{self.module}:{self.name}"

    def option(self, name: str, default=None):
        return dict(self.options).get(name, default)


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root

    @cached_property
    def deployment(self) -> Deployment:
        return read_deployment(self.root)

    @cached_property
    def sources(self) -> Path:
        """Where imports start: src/ in a src layout, unless src is itself a package."""
        src = self.root / "src"
        return src if src.is_dir() and not (src / "__init__.py").exists() else self.root

    @cached_property
    def top_level(self) -> frozenset[str]:
        """Importable top-level packages and modules of the project."""
        names = set()
        for base in {self.root, self.sources}:
            try:
                for entry in base.iterdir():
                    if entry.suffix == ".py":
                        names.add(entry.stem)
                    elif entry.is_dir() and (entry / "__init__.py").exists():
                        names.add(entry.name)
            except OSError:
                continue
        return frozenset(names)

    @cached_property
    def _scan(self) -> tuple[tuple[ProjectObject, ...], bool]:
        objects: list[ProjectObject] = []
        count = 0
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs
                             if d not in NOT_APPLICATION_DIRS and not d.startswith("."))
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                count += 1
                if count > MAX_FILES:
                    return tuple(objects), False
                try:
                    objects.extend(self._module_objects(Path(folder) / name))
                except Exception:  # a project file we cannot make sense of says nothing
                    continue
        return tuple(objects), True

    @property
    def objects(self) -> tuple[ProjectObject, ...]:
        return self._scan[0]

    @property
    def complete(self) -> bool:
        return self._scan[1]

    def of_kind(self, *kinds: str) -> list[ProjectObject]:
        return [obj for obj in self.objects if obj.kind in kinds]

    def module_facts(self, module: str, importer: str = ""):
        """The facts of one of the project's modules (`app.core.config`), for values other
        modules read from it; None when it is not the project's or cannot be read. Imports
        start at the sources, the root, or a folder above the importing file (a monorepo's
        backend/). Kept per file version, so an edited module is read again."""
        relative = Path(*module.split("."))
        above = [folder for folder in Path(importer).absolute().parents
                 if folder == self.root or self.root in folder.parents] if importer else []
        for base in (self.sources, self.root, *above):
            for candidate in (base / relative.with_suffix(".py"), base / relative / "__init__.py"):
                try:
                    stat = candidate.stat()
                except OSError:
                    continue
                key = (str(candidate), stat.st_mtime_ns, stat.st_size)
                if key not in _MODULE_FACTS:
                    _MODULE_FACTS[key] = _read_facts(candidate)
                return _MODULE_FACTS[key]
        return None

    def module_name(self, path: Path) -> str:
        base = self.sources if self.sources in path.parents else self.root
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts and parts[-1] == "__init__":
            parts.pop()
        return ".".join(parts)

    def _module_objects(self, path: Path) -> list[ProjectObject]:
        try:
            data = path.read_bytes()
        except OSError:
            return []
        if not any(word in data for word in _BYTE_WORDS):  # most files: no decoding at all
            return []
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return []
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, RecursionError):
            return []
        module, shown = self.module_name(path), str(path.relative_to(self.root))
        imports = _AstImports(tree)
        found = []
        for statement in tree.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if _returns_new_engine(statement, imports):
                    found.append(ProjectObject(module, statement.name, "engine_factory", shown,
                                               statement.lineno))
                if _postfork_disposal(statement, imports):
                    found.append(ProjectObject(module, statement.name, "postfork_disposal",
                                               shown, statement.lineno))
                continue
            if not isinstance(statement, (ast.Assign, ast.AnnAssign)) \
                    or not isinstance(statement.value, ast.Call):
                continue
            targets = statement.targets if isinstance(statement, ast.Assign) \
                else [statement.target]
            kind = _kind(statement.value, imports)
            if kind is None:
                continue
            options = tuple((keyword.arg, _literal(keyword.value))
                            for keyword in statement.value.keywords if keyword.arg)
            url, variable = _url(statement.value, tree) if kind.endswith("engine") else (None,
                                                                                         None)
            found.extend(ProjectObject(module, target.id, kind, shown, statement.lineno, options,
                                       url, variable)
                         for target in targets if isinstance(target, ast.Name))
        return found


class _AstImports:
    """A module's imports, resolved as the fact families' ImportTable resolves them."""

    def __init__(self, tree: ast.Module) -> None:
        self.bound: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.bound[alias.asname] = alias.name
                    else:  # `import sqlalchemy.pool` binds `sqlalchemy`
                        head = alias.name.split(".")[0]
                        self.bound[head] = head
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name != "*":
                        self.bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for statement in tree.body:  # a module-level definition hides an import of its name
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.bound.pop(statement.name, None)

    def qualify(self, expr: ast.AST) -> str | None:
        parts = []
        while isinstance(expr, ast.Attribute):
            parts.append(expr.attr)
            expr = expr.value
        if not isinstance(expr, ast.Name) or expr.id not in self.bound:
            return None
        return canonical(".".join([self.bound[expr.id], *reversed(parts)]))


def _kind(call: ast.Call, imports: _AstImports) -> str | None:
    qualified = imports.qualify(call.func)
    api = ENGINE_APIS.get(qualified or "")
    if api is not None:
        return "async_engine" if api.is_async else "engine"
    if qualified == FLASK_SQLALCHEMY_CLASS:
        return "flask_sqlalchemy"
    if qualified == FLASK_CLASS or _called_name(call) == "create_app":  # the project's factory
        return "flask_app"
    return None


def _makes_engine(call: ast.AST, imports: _AstImports) -> bool:
    return isinstance(call, ast.Call) and imports.qualify(call.func) in ENGINE_APIS


def _decorator_names(function: ast.FunctionDef, imports: _AstImports) -> tuple[set, set]:
    """The decorators' last names, and their qualified names."""
    targets = [decorator.func if isinstance(decorator, ast.Call) else decorator
               for decorator in function.decorator_list]
    return ({target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
             for target in targets},
            {imports.qualify(target) for target in targets})


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else \
        func.attr if isinstance(func, ast.Attribute) else ""


def _literal(node: ast.AST) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, RecursionError):
        return ast.unparse(node)  # a class or an expression: its text (poolclass=NullPool)


def _url(call: ast.Call, tree: ast.Module) -> tuple[str | None, str | None]:
    """The literal URL of an engine call, or the environment variable it reads."""
    if not call.args:
        return None, None
    value = call.args[0]
    if isinstance(value, ast.Name):  # a module constant
        name = value.id
        for statement in tree.body:
            if isinstance(statement, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == name for t in statement.targets):
                value = statement.value
                break
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value, None
    if isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant):
        return None, str(value.slice.value)  # os.environ["DATABASE_URL"]
    if isinstance(value, ast.Call) and value.args and isinstance(value.args[0], ast.Constant):
        default = value.args[1] if len(value.args) > 1 else None
        literal = default.value if isinstance(default, ast.Constant) else None
        return (literal if isinstance(literal, str) else None), str(value.args[0].value)
    return None, None


def _postfork_disposal(function: ast.FunctionDef, imports: _AstImports) -> bool:
    """A uWSGI @postfork function that disposes engines (or recreates their pools)."""
    return UWSGI_POSTFORK in _decorator_names(function, imports)[1] and any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("dispose", "recreate") for node in ast.walk(function))


def _returns_new_engine(function: ast.FunctionDef, imports: _AstImports) -> bool:
    """A factory: returns an engine it creates, and is not cached."""
    if _decorator_names(function, imports)[0] & CACHING_DECORATORS:
        return False
    made = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Global):
            return False  # a lazily created module global: one engine, not one per call
        if isinstance(node, ast.Assign) and _makes_engine(node.value, imports):
            made.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) \
                and node.value.id in made \
                and any(isinstance(t, (ast.Subscript, ast.Attribute)) for t in node.targets):
            return False  # ENGINES[url] = engine: kept and handed out again, a cache
        if isinstance(node, ast.Return) and node.value is not None:
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            for value in values:  # return engine, sessionmaker(bind=engine)
                if _makes_engine(value, imports):
                    return True
                if isinstance(value, ast.Name) and value.id in made:
                    return True
    return False


_MODULE_FACTS: dict[tuple[str, int, int], object] = {}


def _read_facts(path: Path):
    import libcst as cst

    from .facts import collect

    try:
        return collect(cst.parse_module(path.read_bytes()), str(path))
    except Exception:  # a module we cannot read says nothing
        return None


@cache
def _root_of(folder: str) -> Path:
    start = Path(folder)
    for markers in (ROOT_MARKERS, FALLBACK_MARKERS):
        for candidate in (start, *start.parents):
            if any((candidate / marker).exists() for marker in markers):
                return candidate
    here = Path.cwd()  # where flake8 was started, when the file is below it
    return here if here == start or here in start.parents else start


def project_root(path: str) -> Path:
    start = Path(path or ".").absolute()
    return _root_of(str(start if start.is_dir() else start.parent))


@cache
def _project(root: Path) -> Project:
    return Project(root)


def project_for(path: str) -> Project:
    return _project(project_root(path))


def forget_projects() -> None:
    """Drop what was learnt about projects (for tests that change a project's files)."""
    _root_of.cache_clear()
    _project.cache_clear()
