"""Strings the code builds from parts, with the environment reads among them kept by name.

Real code assembles URLs: `f"postgresql://{USER}@{os.getenv('DB_HOST', 'pgbouncer')}:6432/app"`,
`"postgresql://%s@%s/%s" % (...)`, `"...{host}...".format(host=HOST)`, `BASE + "/app"`,
`os.environ.get("DATABASE_URL") or "postgresql://..."`. A string is read as a tuple of parts:
text, `EnvironmentRead(name, default)` for a variable the deployment may set, and HOLE for what
is only known at run time. Which value a variable has is a judgement (the project's `.env` and
compose files): `Context` makes it; here the code's own defaults stand in.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import libcst as cst

from ..names import dotted
from ..values import HOLE, UNKNOWN, evaluate, resolve
from .scope import Scope, keyword

# Calls that read a value from the environment or a settings store: getenv("DATABASE_URL"), ...
ENVIRONMENT_READERS = {"getenv", "get", "config", "env", "str", "url", "db_url", "environ"}
_RAW_READERS = {"os.getenv", "os.environ.get"}
# str methods that adjust a URL's text without changing where it points
_TWEAKS = {"replace", "strip", "rstrip", "lstrip"}
_MAX_DEPTH = 20


@dataclass(frozen=True)
class EnvironmentRead:
    name: str  # the variable: DB_HOST
    default: tuple | None  # the parts of its default, None when it has none
    # read from os.environ itself, so always a string once set; settings stores and config
    # readers (app.config.get, decouple's config) may convert it
    raw: bool = False


@dataclass(frozen=True)
class ImportedValue:
    """`settings.DATABASE_URL` where `settings` comes from another module of the project: what
    it is, the context reads from that module (`module.name`, then the attribute)."""
    module: str
    name: str
    attribute: str


Parts = tuple  # of str | EnvironmentRead | ImportedValue


def text_of(parts: Parts | None, value_of=None) -> str | None:
    """The string the parts make: variables take `value_of(name)` when it knows one, else their
    default; a variable with neither, and a value of another module, is a HOLE."""
    if parts is None:
        return None
    pieces = []
    for part in parts:
        if isinstance(part, ImportedValue):
            pieces.append(HOLE)
        elif isinstance(part, EnvironmentRead):
            known = value_of(part.name) if value_of is not None else None
            if known is not None:
                pieces.append(known)
            elif part.default is not None:
                pieces.append(text_of(part.default, value_of) or "")
            else:
                pieces.append(HOLE)
        else:
            pieces.append(part)
    return "".join(pieces)


def variables_in(parts: Parts | None) -> tuple[str, ...]:
    if not parts:
        return ()
    found = []
    for part in parts:
        if isinstance(part, EnvironmentRead):
            found.append(part.name)
            found.extend(variables_in(part.default))
    return tuple(found)


class StringReader:
    """Reads the parts of string expressions in the module the scope describes; `settings`,
    once the pass is over, lets it read the module's settings objects too."""

    def __init__(self, scope: Scope, settings=None, self_class=None) -> None:
        self.scope = scope
        self.settings = settings  # SettingsFacts
        self.self_class = self_class  # SettingsClass whose property is being read

    def attribute(self, owner, name: str, depth: int) -> Parts | None:
        """The parts of a settings object's attribute or property."""
        if name in owner.attributes:
            default = owner.attributes[name]
            inner = self.parts(default, depth + 1) if default is not None else None
            if owner.reads_environment:  # a pydantic settings field reads its variable
                if inner is not None and len(inner) == 1 \
                        and isinstance(inner[0], EnvironmentRead):
                    return inner
                return (EnvironmentRead(f"{owner.env_prefix}{name}".upper(), inner),)
            return inner
        if name in owner.properties:
            reader = StringReader(self.scope, self.settings, owner)
            return reader.parts(owner.properties[name], depth + 1)
        return None

    def parts(self, expr: cst.BaseExpression | None, depth: int = 0) -> Parts | None:
        """The parts `expr` builds, or None when it is not a string the code assembles."""
        if expr is None or depth > _MAX_DEPTH:
            return None
        constants = self.scope.constants
        expr = resolve(expr, constants)
        read = self.environment_read(expr, depth)
        if read is not None:
            return (read,)
        if isinstance(expr, cst.FormattedString):
            found: list = []
            for part in expr.parts:
                if isinstance(part, cst.FormattedStringText):
                    found.append(part.value)
                    continue
                plain = part.conversion is None and part.format_spec is None
                inner = self.parts(part.expression, depth + 1) if plain else None
                found.extend(inner if inner is not None else (HOLE,))
            return tuple(found)
        if isinstance(expr, cst.BinaryOperation):
            if isinstance(expr.operator, cst.Add):
                # "mysql://root:" + password() + "@db/app": what is not read is a hole
                left, right = self.parts(expr.left, depth + 1), self.parts(expr.right, depth + 1)
                if left is None and right is None:
                    return None
                return (left if left is not None else (HOLE,)) \
                    + (right if right is not None else (HOLE,))
            if isinstance(expr.operator, cst.Modulo):
                return self._percent(expr, depth)
        if isinstance(expr, cst.BooleanOperation) and isinstance(expr.operator, cst.Or):
            # environ.get("DATABASE_URL") or "postgresql://...": the right side is the default
            left = self.parts(expr.left, depth + 1)
            right = self.parts(expr.right, depth + 1)
            if left is not None and len(left) == 1 and isinstance(left[0], EnvironmentRead) \
                    and left[0].default is None:
                return (EnvironmentRead(left[0].name, right),)
            return None
        if isinstance(expr, cst.Call):
            return self._call(expr, depth)
        if isinstance(expr, cst.Attribute):
            found = self._settings_attribute(expr, depth)
            if found is not None:
                return found
        value = evaluate(expr, constants)
        if isinstance(value, bool) or value is None or value is UNKNOWN:
            return None
        if isinstance(value, (str, int, float)):
            return (str(value),)
        return None

    def environment_read(self, expr: cst.BaseExpression, depth: int = 0
                         ) -> EnvironmentRead | None:
        """`os.environ["X"]`, `os.getenv("X", default)`, `settings("X")`, `environ.get("X")`."""
        constants = self.scope.constants
        expr = resolve(expr, constants)
        if isinstance(expr, cst.Subscript) and len(expr.slice) == 1 \
                and self.scope.imports.qualify(expr.value) == "os.environ":
            index = expr.slice[0].slice
            name = evaluate(index.value, constants) if isinstance(index, cst.Index) else None
            return EnvironmentRead(name, None, raw=True) if _variable(name) else None
        if isinstance(expr, cst.Call) and expr.args:
            func = dotted(expr.func) or ""
            if func.rpartition(".")[2] in ENVIRONMENT_READERS:
                name = evaluate(expr.args[0].value, constants)
                if _variable(name):
                    default = expr.args[1].value if len(expr.args) > 1 else \
                        keyword(expr, "default")
                    raw = self.scope.imports.qualify(expr.func) in _RAW_READERS
                    return EnvironmentRead(name, self.parts(default, depth + 1)
                                           if default is not None else None, raw)
        return None

    def _settings_attribute(self, expr: cst.Attribute, depth: int) -> Parts | None:
        owner, name = expr.value, expr.attr.value
        if isinstance(owner, cst.Call) and not owner.args:  # get_settings().DATABASE_URL
            owner = owner.func
        if isinstance(owner, cst.Name):
            if owner.value == "self" and self.self_class is not None:
                return self.attribute(self.self_class, name, depth)
            settings = self.settings.class_of(owner.value) if self.settings is not None else None
            if settings is not None:
                return self.attribute(settings, name, depth)
            qualified = self.scope.imports.qualify(owner)
            if self.settings is not None and owner.value in self.settings.imported_instances:
                qualified = self.settings.imported_instances[owner.value]  # Settings() of theirs
            if qualified and "." in qualified:  # from app.config import settings
                module, _, imported = qualified.rpartition(".")
                return (ImportedValue(module, imported, name),)
        return None

    def _build(self, call: cst.Call, depth: int) -> Parts | None:
        """pydantic's `PostgresDsn.build(scheme=..., username=..., host=..., path=...)`."""
        def part(name: str) -> Parts:
            value = keyword(call, name)
            found = self.parts(value, depth + 1) if value is not None else None
            return found if found is not None else ((HOLE,) if value is not None else ())

        scheme, host = part("scheme"), part("host")
        if not scheme or not host:
            return None
        user, password, port, path = (part("username") or part("user"), part("password"),
                                      part("port"), part("path"))
        found = [*scheme, "://"]
        if user:
            found += [*user, *((":", *password) if password else ()), "@"]
        found += [*host, *((":", *port) if port else ())]
        if path:
            found += ["/", *path] if not (isinstance(path[0], str)
                                          and path[0].startswith("/")) else list(path)
        return tuple(found)

    def _call(self, call: cst.Call, depth: int) -> Parts | None:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value == "build" \
                and keyword(call, "scheme") is not None:
            return self._build(call, depth)
        if isinstance(func, cst.Name) and func.value == "str" and len(call.args) == 1:
            return self.parts(call.args[0].value, depth + 1)
        if isinstance(func, cst.Attribute) and func.attr.value in _TWEAKS:
            # DATABASE_URL.replace("postgres://", "postgresql://"): still that variable's URL
            inner = self.parts(func.value, depth + 1)
            if inner is not None and len(inner) == 1 and isinstance(inner[0], EnvironmentRead):
                return inner
            text = text_of(inner)
            arguments = [evaluate(arg.value, self.scope.constants) for arg in call.args]
            if text is not None and HOLE not in text \
                    and all(isinstance(argument, str) for argument in arguments):
                try:
                    return (getattr(text, func.attr.value)(*arguments),)
                except (TypeError, ValueError):
                    return None
            return None
        if isinstance(func, cst.Attribute) and func.attr.value == "format":
            template = evaluate(resolve(func.value, self.scope.constants), self.scope.constants)
            if isinstance(template, str):
                return self._format(template, call, depth)
        return None

    def _format(self, template: str, call: cst.Call, depth: int) -> Parts | None:
        positional = [arg.value for arg in call.args if arg.keyword is None and not arg.star]
        named = {arg.keyword.value: arg.value for arg in call.args if arg.keyword is not None}
        if any(arg.star for arg in call.args):
            return None
        found: list = []
        automatic = 0
        try:
            fields = list(string.Formatter().parse(template))
        except ValueError:
            return None
        for text, field, spec, conversion in fields:
            found.append(text)
            if field is None:
                continue
            if field == "":
                value = positional[automatic] if automatic < len(positional) else None
                automatic += 1
            elif field.isdigit():
                index = int(field)
                value = positional[index] if index < len(positional) else None
            else:
                value = named.get(field)
            inner = self.parts(value, depth + 1) if value is not None and not spec \
                and not conversion else None
            found.extend(inner if inner is not None else (HOLE,))
        return tuple(found)

    def _percent(self, expr: cst.BinaryOperation, depth: int) -> Parts | None:
        template = evaluate(resolve(expr.left, self.scope.constants), self.scope.constants)
        if not isinstance(template, str):
            return None
        right = resolve(expr.right, self.scope.constants)
        values = [element.value for element in right.elements] \
            if isinstance(right, cst.Tuple) else [right]
        found: list = []
        pieces = template.split("%")
        found.append(pieces[0])
        index = 0
        for piece in pieces[1:]:
            if piece.startswith("s") or piece.startswith("d"):
                value = values[index] if index < len(values) else None
                index += 1
                inner = self.parts(value, depth + 1) if value is not None else None
                found.extend(inner if inner is not None else (HOLE,))
                found.append(piece[1:])
            else:  # %(name)s, %%, widths: not read
                found.extend((HOLE, piece))
        return tuple(found)


def _variable(name: object) -> bool:
    return isinstance(name, str) and name.isupper() and HOLE not in name
