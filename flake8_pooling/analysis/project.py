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
import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from ..vocabulary import (CACHING_DECORATORS, CELERY_CLASS, CELERY_WORKER_PROCESS_INIT,
                          ENGINE_APIS, ENGINE_CREATORS, FLASK_CLASS, FLASK_SQLALCHEMY_CLASS,
                          IMPORT_TIME_QUERIES, NOT_APPLICATION_DIRS, NOT_SOURCE_DIRS,
                          REGISTER_AFTER_FORK, SCOPED_SESSIONS, SCRIPT_DIRS, SCRIPT_FILES,
                          SESSION_MAKERS, TEST_DIRS, UWSGI_POSTFORK, canonical)
from .astwalk import statements, walk
from .deployment import Deployment, read_deployment
from .seen import Seen

ROOT_MARKERS = (".git", "pyproject.toml", "setup.cfg", "setup.py")
# a docker build context or an unpacked archive has none of those: these mark its root then
FALLBACK_MARKERS = ("requirements.txt", "Pipfile", "docker-compose.yml", "docker-compose.yaml",
                    "compose.yml", "compose.yaml")
MAX_FILES = 3000
_WORDS = tuple(ENGINE_CREATORS) + ("SQLAlchemy(", "Flask(", "create_app(", "postfork")
_BYTE_WORDS = tuple(word.encode() for word in _WORDS)
# the import-time scan reads these files too: Celery apps and handlers, parent-side disposal
_IMPORT_BYTE_WORDS = _BYTE_WORDS + tuple(word.encode() for word in (
    "Celery(", "worker_process_init", "worker_pool", "dispose(", "register_after_fork"))
IMPORT_KINDS = frozenset({"celery_app", "worker_process_init", "after_fork", "worker_pool",
                          "import_disposal", "import_query", "querying_function",
                          "import_call"})


@dataclass(frozen=True)
class ProjectObject:
    module: str  # dotted import path: "myapp.db"
    name: str  # the module-level name: "engine"
    # "engine", "async_engine", "lazy_engine" (a module global made on first use),
    # "flask_sqlalchemy", "flask_app", "engine_factory", "session_factory" (a module-level
    # sessionmaker or scoped_session),
    # "postfork_disposal"; and what runs at import or in Celery's children:
    # "celery_app", "worker_process_init" (a handler; option "acts": it calls something),
    # "after_fork" (a register_after_fork callback), "worker_pool" (name: the pool set),
    # "import_disposal" (a module-level dispose()), "import_query" (SQL run at import),
    # "querying_function" (a function that runs SQL), "import_call" (name: the qualified
    # function a module calls at import)
    kind: str
    path: str = ""  # the file, relative to the root
    line: int = 0
    options: tuple[tuple[str, object], ...] = ()  # literal keyword arguments of the engine call
    url: str | None = None  # the engine's URL when it is a literal
    url_variable: str | None = None  # or the environment variable it is read from
    is_async: bool = False  # a session factory's sessions are AsyncSessions

    @property
    def import_path(self) -> str:
        return f"{self.module}:{self.name}"

    def option(self, name: str, default=None):
        return dict(self.options).get(name, default)


def _application_folders(folder: str, dirs: list[str]) -> list[str]:
    return sorted(d for d in dirs if d not in NOT_APPLICATION_DIRS and not d.startswith("."))


class Project:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen = Seen()  # every file and folder read, to tell when this is stale
        self.checked_in = _runs  # the run that last found it fresh

    @cached_property
    def deployment(self) -> Deployment:
        """The project's deployment files; for a package inside a repository (a monorepo's
        backend/packages/api), the repository root's too, which its own files override."""
        own = read_deployment(self.root, self.seen)
        if (self.root / ".git").exists():  # its own repository, whatever holds it
            return own
        repository = next((folder for folder in self.root.parents
                           if (folder / ".git").exists()), None)
        if repository is None:
            return own
        prefix = str(self.root.relative_to(repository).as_posix())
        return own.within(read_deployment(repository, self.seen),
                          "../" * len(prefix.split("/")))

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
            self.seen.folder(base)
            try:
                for entry in base.iterdir():
                    if entry.suffix == ".py":
                        names.add(entry.stem)
                    elif entry.is_dir() and (entry / "__init__.py").exists():
                        names.add(entry.name)
            except OSError:
                continue
        return frozenset(names)

    def _python_files(self):
        """(path, bytes) of the project's Python files, in a stable order; a last None item
        says the scan stopped at MAX_FILES. The path is a string: most files are only searched
        for a word, and a Path costs more than the search."""
        count = 0
        for folder, dirs, files in self.seen.walk(self.root, _application_folders):
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                count += 1
                if count > MAX_FILES:
                    yield None
                    return
                path = os.path.join(folder, name)
                try:
                    data = self.seen.read(path)
                except OSError:
                    continue
                yield path, data

    @cached_property
    def _scan(self) -> tuple[tuple[ProjectObject, ...], bool]:
        objects: list[ProjectObject] = []
        complete = True
        for item in self._python_files():
            if item is None:
                complete = False
                break
            path, data = item
            if not any(word in data for word in _BYTE_WORDS):  # most files: no decoding
                continue
            try:
                objects.extend(self._module_objects(Path(path), data))
            except Exception:  # a project file we cannot make sense of says nothing
                continue
        return tuple(objects), complete

    @cached_property
    def import_objects(self) -> tuple[ProjectObject, ...]:
        """What modules do at import and register for Celery's children, scanned only when a
        rule asks (a Celery app, a --preload command, a process pool): the kinds in
        IMPORT_KINDS. Files with the words are read, then those that call, at import, one of
        the project's functions that run SQL (`engine = connect_db()`)."""
        objects: list[ProjectObject] = []
        unread: list[tuple[Path, bytes]] = []
        for item in self._python_files():
            if item is None:
                break
            path, data = item
            if any(word in data for word in _IMPORT_BYTE_WORDS):
                objects.extend(self._import_objects(Path(path), data))
            else:
                unread.append((path, data))
        querying = {obj.name for obj in objects if obj.kind == "querying_function"}
        if querying:
            words = tuple(f"{name}(".encode() for name in querying)
            objects += [obj for path, data in unread if any(word in data for word in words)
                        for obj in self._import_objects(Path(path), data)]
        return tuple(objects)

    def _import_objects(self, path: Path, data: bytes) -> list[ProjectObject]:
        try:
            tree = ast.parse(data.decode("utf-8"))
        except (SyntaxError, ValueError, RecursionError, UnicodeDecodeError):
            return []
        try:
            imports = _AstImports(tree)
            # alembic's env.py runs once per migration command, not in the processes that serve
            application = _runs_at_import(path, self.root) and not any(
                name.partition(".")[0] == "alembic" for name in imports.bound.values())
            return _import_time(tree, imports, self.module_name(path),
                                str(path.relative_to(self.root)), application)
        except Exception:  # a project file we cannot make sense of says nothing
            return []

    def texts_mentioning(self, word: str) -> tuple[tuple[Path, str], ...]:
        """(path, text) of the project's Python files that contain `word`, read once per word:
        for the few rules that ask whether the project does something anywhere."""
        if word not in self._mentions:
            encoded = word.encode()
            self._mentions[word] = tuple(
                (Path(path), data.decode("utf-8", "replace")) for path, data in
                filter(None, self._python_files()) if encoded in data)
        return self._mentions[word]

    @cached_property
    def _mentions(self) -> dict[str, tuple[tuple[Path, str], ...]]:
        return {}

    @cached_property
    def requirements(self) -> str:
        """The text of the project's dependency files, lower-cased: which packages it installs.
        Read from the root and two folders down (backend/requirements.txt,
        requirements/base.txt), outside virtual environments and build folders."""
        def two_down(folder: str, dirs: list[str]) -> list[str]:
            depth = len(Path(folder).relative_to(self.root).parts)
            return [] if depth >= 2 else sorted(d for d in dirs if d not in NOT_SOURCE_DIRS)

        texts = []
        for folder, dirs, files in self.seen.walk(self.root, two_down):
            for name in sorted(files):
                lower = name.lower()
                if (lower.startswith("requirements") and lower.endswith((".txt", ".in"))) \
                        or lower in ("pyproject.toml", "setup.cfg", "setup.py", "pipfile"):
                    self.seen.file(Path(folder) / name)
                    try:
                        texts.append((Path(folder) / name).read_text("utf-8", "replace").lower())
                    except OSError:
                        continue
        return "\n".join(texts)

    def reads_setting(self, key: str) -> bool:
        """Does the project's own code read the setting `key` (`config["KEY"]`,
        `config.get("KEY")`, `settings.KEY`), not only set it?"""
        pattern = _setting_read(key)
        return any(pattern.search(text) for _, text in self.texts_mentioning(key))

    @property
    def objects(self) -> tuple[ProjectObject, ...]:
        return self._scan[0]

    @property
    def complete(self) -> bool:
        return self._scan[1]

    def of_kind(self, *kinds: str) -> list[ProjectObject]:
        objects = self.objects
        if IMPORT_KINDS.intersection(kinds):
            objects = (*objects, *self.import_objects)
        return [obj for obj in objects if obj.kind in kinds]

    @cached_property
    def queries_at_import(self) -> list[ProjectObject]:
        """Where application modules run SQL at import, themselves or through one of the
        project's functions (`engine = connect_db()`, `app = create_app()`): a process that
        imports them holds a pooled connection before it forks (facts 1, 7)."""
        querying = {f"{obj.module}.{obj.name}" for obj in self.of_kind("querying_function")}
        # a query under `if ENVIRONMENT == "development":` does not run where the deployment
        # files set ENVIRONMENT=production
        environment = {name: value.url for name, value in self.deployment.environment.items()}
        return [obj for obj in self.import_objects
                if (obj.kind == "import_query" and guard_holds(obj.option("guard"), environment))
                or (obj.kind == "import_call" and obj.name in querying)]

    @cached_property
    def import_graph(self) -> dict[str, frozenset[str]]:
        """Each module of the project -> the project modules it imports, read with a regular
        expression (no parsing): for which engines a process that starts at one module loads."""
        graph: dict[str, frozenset[str]] = {}
        for item in self._python_files():
            if item is None:
                break
            path = Path(item[0])
            module = self.module_name(path)
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            graph[module] = frozenset(_imported_modules(item[1].decode("utf-8", "replace"),
                                                        package))
        return graph

    def loaded_from(self, module: str) -> frozenset[str] | None:
        """The project modules a process that imports `module` loads (itself included), or
        None when `module` is not one of the project's."""
        graph = self.import_graph
        if module not in graph:
            return None
        seen, pending = {module}, [module]
        while pending:
            for imported in graph.get(pending.pop(), ()):
                for candidate in (imported, imported.rpartition(".")[0]):
                    if candidate in graph and candidate not in seen:
                        seen.add(candidate)
                        pending.append(candidate)
                parts = imported.split(".")  # importing a.b.c runs a/__init__ and a/b/__init__
                for end in range(1, len(parts)):
                    parent = ".".join(parts[:end])
                    if parent in graph and parent not in seen:
                        seen.add(parent)
                        pending.append(parent)
        return frozenset(seen)

    def file_facts(self, path: str):
        """The facts of one of the project's Python files, by path (a gunicorn config named on
        a command line); None when it is not there or cannot be read."""
        candidate = Path(path) if Path(path).is_absolute() else self.root / path
        try:
            stat = candidate.stat()
        except OSError:
            return None
        key = (str(candidate), stat.st_mtime_ns, stat.st_size)
        if key not in _MODULE_FACTS:
            _MODULE_FACTS[key] = _read_facts(candidate)
        return _MODULE_FACTS[key]

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

    def _module_objects(self, path: Path, data: bytes) -> list[ProjectObject]:
        """What a module creates at module level, and the factories it defines."""
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
        lazy = b"global " in data  # a lazily made module-level engine needs a `global`
        for statement in tree.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if _returns_new_engine(statement, imports):
                    found.append(ProjectObject(module, statement.name, "engine_factory", shown,
                                               statement.lineno))
                if _postfork_disposal(statement, imports):
                    found.append(ProjectObject(module, statement.name, "postfork_disposal",
                                               shown, statement.lineno))
                if lazy:
                    found += self._lazy_engines(statement, imports, module, shown, tree)
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
            maker = imports.qualify(statement.value.func) or ""
            is_async = SESSION_MAKERS.get(maker, SCOPED_SESSIONS.get(maker, False))
            found.extend(ProjectObject(module, target.id, kind, shown, statement.lineno, options,
                                       url, variable, is_async)
                         for target in targets if isinstance(target, ast.Name))
        return found

    @staticmethod
    def _lazy_engines(function: ast.FunctionDef, imports: "_AstImports", module: str,
                      shown: str, tree: ast.Module) -> list[ProjectObject]:
        """`global engine; engine = create_engine(...)`: a module-level engine made on first
        use, one per process like any other (issue: every engine counts)."""
        names = {name for node in walk(function) if isinstance(node, ast.Global)
                 for name in node.names}
        found = []
        for node in walk(function) if names else ():
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                kind = _kind(node.value, imports)
                if kind not in ("engine", "async_engine"):
                    continue
                options = tuple((keyword.arg, _literal(keyword.value))
                                for keyword in node.value.keywords if keyword.arg)
                url, variable = _url(node.value, tree)
                found += [ProjectObject(module, target.id, "lazy_engine", shown, node.lineno,
                                        options, url, variable)
                          for target in node.targets
                          if isinstance(target, ast.Name) and target.id in names]
        return found


class _AstImports:
    """A module's imports, resolved as the fact families' ImportTable resolves them."""

    def __init__(self, tree: ast.Module) -> None:
        self.bound: dict[str, str] = {}
        for node in statements(tree):
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
    if qualified in SESSION_MAKERS or qualified in SCOPED_SESSIONS:
        return "session_factory"
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


@cache
def _setting_read(key: str) -> re.Pattern:
    """A read of a setting: a subscript or attribute that is not assigned to, or a `.get` that
    is not an environment read."""
    not_assigned = r"(?!\s*(?:=[^=]|:[^=\]]*=[^=]))"
    return re.compile(rf"""\[\s*['"]{key}['"]\s*\]{not_assigned}|\.{key}\b{not_assigned}|"""
                      rf"""(?<!environ)\.get\(\s*['"]{key}['"]|getattr\([^)]*['"]{key}['"]""")


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


_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+\(?([\w., \t]+)|"
                     r"import[ \t]+([\w., \t]+))", re.MULTILINE)


def _imported_modules(text: str, package: str):
    """The modules `from x import y` and `import x` statements name, relative ones resolved
    against `package`; `from x import y` may import module x.y too."""
    for match in _IMPORT.finditer(text):
        source, names, plain = match.groups()
        if plain is not None:
            for name in plain.split(","):
                name = name.strip().split(" ")[0]
                if name:
                    yield name
            continue
        dots = len(source) - len(source.lstrip("."))
        base = source.lstrip(".")
        if dots:
            parent = package.split(".") if package else []
            parent = parent[:len(parent) - (dots - 1)] if dots > 1 else parent
            base = ".".join([*parent, base] if base else parent)
        if base:
            yield base
        for name in names.split(","):
            name = name.strip().split(" ")[0]
            if name and base:
                yield f"{base}.{name}"


def _runs_at_import(path: Path, root: Path) -> bool:
    """Application code, imported by the processes that serve: not tests, not scripts."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return True
    folders = set(parts[:-1])
    name = parts[-1] if parts else ""
    return not (folders & (TEST_DIRS | SCRIPT_DIRS) or name in SCRIPT_FILES
                or name == "conftest.py" or name.startswith("test_"))


def _queries(node: ast.AST) -> bool:
    """The code runs SQL: a checkout or a statement through an engine, session or `db`."""
    for inner in walk(node):
        if isinstance(inner, ast.Call):
            func = inner.func
            if isinstance(func, ast.Attribute) and func.attr in IMPORT_TIME_QUERIES:
                return True
    return False


def _module_level(tree: ast.Module):
    """(statement, guard) for the statements that run at import: the module's body, into
    `if`/`try`/`with` blocks, but not under `if __name__ == "__main__":`. `guard` is the
    environment condition an `if` puts them under (`if ENVIRONMENT == "development":`), as
    (variable, the values that run them, the value when unset, whether the values are those
    that do not run them), or None."""
    settings = _environment_settings(tree)
    pending = [(statement, None) for statement in tree.body]
    while pending:
        statement, guard = pending.pop(0)
        if isinstance(statement, ast.If):
            test = ast.unparse(statement.test)
            if "__name__" in test and "__main__" in test:
                continue
            inner = _environment_guard(statement.test, settings) or guard
            otherwise = inner[:3] + (not inner[3],) if inner and inner is not guard else guard
            pending[:0] = [*((line, inner) for line in statement.body),
                           *((line, otherwise) for line in statement.orelse)]
        elif isinstance(statement, ast.Try):
            pending[:0] = [(line, guard) for line in
                           (*statement.body, *statement.orelse, *statement.finalbody)]
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            yield statement, guard
            pending[:0] = [(line, guard) for line in statement.body]
        else:
            yield statement, guard


_ENVIRONMENT_READS = ("os.getenv", "os.environ.get", "environ.get", "getenv")


def _environment_read(node: ast.AST) -> tuple[str, str | None] | None:
    """`os.getenv("ENVIRONMENT", "development")` -> ("ENVIRONMENT", "development")."""
    if not isinstance(node, ast.Call) or not node.args \
            or ast.unparse(node.func) not in _ENVIRONMENT_READS:
        return None
    name = node.args[0]
    default = node.args[1] if len(node.args) > 1 else None
    if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
        return None
    if default is not None and not (isinstance(default, ast.Constant)
                                    and isinstance(default.value, str)):
        return None
    return name.value, default.value if default is not None else None


def _environment_settings(tree: ast.Module) -> dict[str, tuple[str, str | None]]:
    """Module-level names bound to an environment read: ENVIRONMENT = os.getenv(...)."""
    found = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                and isinstance(statement.targets[0], ast.Name):
            read = _environment_read(statement.value)
            if read is not None:
                found[statement.targets[0].id] = read
    return found


def _environment_guard(test: ast.AST, settings: dict) -> tuple | None:
    """`ENVIRONMENT == "development"`, `os.getenv("ENV") in ("dev", "local")`, `!=`, `not in`."""
    if not isinstance(test, ast.Compare) or len(test.ops) != 1:
        return None
    left, right, op = test.left, test.comparators[0], test.ops[0]
    read = settings.get(left.id) if isinstance(left, ast.Name) else _environment_read(left)
    if read is None:
        return None
    values = right.elts if isinstance(right, (ast.Tuple, ast.List, ast.Set)) else [right]
    if not all(isinstance(value, ast.Constant) and isinstance(value.value, str)
               for value in values):
        return None
    if isinstance(op, (ast.Eq, ast.In)):
        negated = False
    elif isinstance(op, (ast.NotEq, ast.NotIn)):
        negated = True
    else:
        return None
    return read[0], frozenset(value.value for value in values), read[1], negated


def guard_holds(guard: tuple | None, environment: dict[str, str]) -> bool:
    """Whether guarded code runs where the deployment sets `environment`; unknown: it runs."""
    if guard is None:
        return True
    variable, values, default, negated = guard
    value = environment.get(variable, default)
    if value is None:
        return True
    return (value in values) != negated


def _import_time(tree: ast.Module, imports: _AstImports, module: str, shown: str,
                 application: bool) -> list[ProjectObject]:
    """What a module does at import and registers for Celery's children (facts 66, 100, 101)."""
    found = []

    def add(name: str, kind: str, node: ast.AST, options=()) -> None:
        found.append(ProjectObject(module, name, kind, shown, getattr(node, "lineno", 0),
                                   tuple(options)))

    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if _queries(statement):
                add(statement.name, "querying_function", statement)
            qualified = _decorator_names(statement, imports)[1]
            if CELERY_WORKER_PROCESS_INIT in qualified or any(
                    isinstance(d, ast.Attribute) and d.attr == "connect"
                    and ast.unparse(d.value).endswith("worker_process_init")
                    for d in (d.func if isinstance(d, ast.Call) else d
                              for d in statement.decorator_list)):
                add(statement.name, "worker_process_init", statement,
                    [("acts", _acts(statement))])
    for node in walk(tree):
        if isinstance(node, ast.Call):
            qualified = imports.qualify(node.func) or ""
            if qualified == CELERY_WORKER_PROCESS_INIT and node.args:
                add(ast.unparse(node.args[0]), "worker_process_init", node, [("acts", True)])
            elif qualified == REGISTER_AFTER_FORK and len(node.args) >= 2:
                add(ast.unparse(node.args[1]), "after_fork", node)
            for keyword in node.keywords:
                if keyword.arg == "worker_pool" and isinstance(keyword.value, ast.Constant):
                    add(str(keyword.value.value), "worker_pool", node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            for target in targets:
                name = target.attr if isinstance(target, ast.Attribute) else \
                    getattr(target, "id", None) if not isinstance(target, ast.Subscript) else \
                    getattr(target.slice, "value", None)
                if name in ("worker_pool", "CELERY_WORKER_POOL", "CELERYD_POOL") \
                        and isinstance(value, ast.Constant):
                    add(str(value.value), "worker_pool", node)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value in ("worker_pool",
                                                                   "CELERY_WORKER_POOL") \
                        and isinstance(value, ast.Constant):
                    add(str(value.value), "worker_pool", node)
    if not application:
        return found
    for statement, guard in _module_level(tree):
        if isinstance(statement, (ast.Assign, ast.AnnAssign)) \
                and isinstance(statement.value, ast.Call) \
                and imports.qualify(statement.value.func) == CELERY_CLASS:
            add(getattr((statement.targets if isinstance(statement, ast.Assign)
                         else [statement.target])[0], "id", "app"), "celery_app", statement)
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        if isinstance(statement, (ast.With, ast.AsyncWith)):
            continue  # its body is visited on its own
        call = getattr(statement, "value", None)
        if isinstance(statement, ast.Expr) and isinstance(call, ast.Call) \
                and isinstance(call.func, ast.Attribute) and call.func.attr == "dispose":
            add(ast.unparse(call.func.value), "import_disposal", statement)
        elif _queries(statement):
            add("", "import_query", statement, [("guard", guard)] if guard else [])
        for inner in walk(statement):
            if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name):
                qualified = imports.bound.get(inner.func.id, f"{module}.{inner.func.id}")
                add(qualified, "import_call", inner)
    return found


def _acts(function: ast.AST) -> bool:
    """A handler that calls anything but logging: it may dispose what we cannot see."""
    for node in walk(function):
        if isinstance(node, ast.Call):
            root = node.func
            while isinstance(root, ast.Attribute):
                root = root.value
            if not (isinstance(root, ast.Name) and root.id in ("print", "logging", "logger",
                                                               "log", "LOGGER", "_logger")):
                return True
    return False


def _postfork_disposal(function: ast.FunctionDef, imports: _AstImports) -> bool:
    """A uWSGI @postfork function that disposes engines (or recreates their pools)."""
    return UWSGI_POSTFORK in _decorator_names(function, imports)[1] and any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("dispose", "recreate") for node in walk(function))


def _returns_new_engine(function: ast.FunctionDef, imports: _AstImports) -> bool:
    """A factory: returns an engine it creates, and is not cached."""
    if _decorator_names(function, imports)[0] & CACHING_DECORATORS:
        return False
    made = set()
    for node in walk(function):
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


_projects: dict[Path, Project] = {}
_runs = 0


def project_for(path: str) -> Project:
    """The project around `path`, as learnt earlier in this process unless a file it was read
    from changed since: checked once per run (see new_run), so a run that lints many files
    pays for the check once."""
    root = project_root(path)
    project = _projects.get(root)
    if project is not None and project.checked_in != _runs:
        project.checked_in = _runs
        if not project.seen.unchanged():
            project = None
    if project is None:
        project = _projects[root] = Project(root)
    return project


def new_run() -> None:
    """A new lint run starts in this process (flake8 parsed its options again, an editor asks
    for a buffer's diagnostics): what was learnt about projects is checked against their files
    before it is used again, and roots are looked for again."""
    global _runs
    _runs += 1
    _root_of.cache_clear()


def forget_projects() -> None:
    """Drop what was learnt about projects (for tests that change a project's files)."""
    _root_of.cache_clear()
    _projects.clear()
