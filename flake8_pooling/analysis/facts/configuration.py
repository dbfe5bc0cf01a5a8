"""Settings objects: the classes real code keeps its configuration in.

`class Settings(BaseSettings)` with fields and defaults, `Field(default=...)`, properties and
`computed_field`s that assemble the URL from other fields, plain config classes
(`SQLALCHEMY_DATABASE_URI = os.getenv(...)`), attributes set after the class
(`Config.SQLALCHEMY_ENGINE_OPTIONS = {...}`), and the instances made of them
(`settings = Settings()`, or an `lru_cache`d `get_settings()` that returns one).

A pydantic settings field is an environment read of its own (fact 105): `POSTGRES_SERVER: str =
"localhost"` reads `$POSTGRES_SERVER` (with the class's `env_prefix`), defaulting to "localhost".
What the values are in the deployment is the context's judgement, as for any environment read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ..values import evaluate
from .scope import Family, Scope, keyword

_SETTINGS_BASES = {"pydantic_settings.BaseSettings", "pydantic.BaseSettings",
                   "pydantic.v1.BaseSettings"}
_PROPERTY_DECORATORS = {"property", "computed_field", "cached_property"}


@dataclass(eq=False)
class SettingsClass:
    name: str
    reads_environment: bool  # a pydantic BaseSettings: each field is an environment variable
    env_prefix: str = ""
    attributes: dict[str, cst.BaseExpression | None] = field(default_factory=dict)
    properties: dict[str, cst.BaseExpression] = field(default_factory=dict)  # returned exprs


@dataclass(eq=False)
class SettingsFacts:
    classes: dict[str, SettingsClass] = field(default_factory=dict)
    instances: dict[str, str] = field(default_factory=dict)  # module name -> class name
    # settings = Settings() of a class imported from another module: name -> its qualified name
    imported_instances: dict[str, str] = field(default_factory=dict)

    def class_of(self, name: str) -> SettingsClass | None:
        """The settings class a module-level name stands for: the class or an instance."""
        return self.classes.get(self.instances.get(name, name))


class SettingsFamily(Family):
    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope
        self.facts = SettingsFacts()
        self._current: list[SettingsClass | None] = []
        self._returns_instance: dict[str, str] = {}  # get_settings -> Settings
        self._method: list[tuple[str, bool]] = []  # (name, is a property)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        # the scope holds this class already: a module-level class is the only one in it
        if len(self.scope.classes) != 1 or self.scope.functions or self._current:
            self._current.append(None)
            return
        bases = {self.scope.imports.qualify(base.value) for base in node.bases}
        settings = SettingsClass(node.name.value, bool(bases & _SETTINGS_BASES))
        self.facts.classes[settings.name] = settings
        self._current.append(settings)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._current.pop()

    @property
    def _class(self) -> SettingsClass | None:
        return self._current[-1] if self._current else None

    def _in_class_body(self) -> bool:
        return self._class is not None and len(self.scope.classes) == 1 and not self._method

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if self._in_class_body() and isinstance(node.target, cst.Name):
            self._class.attributes[node.target.value] = _default(node.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        targets = [target.target for target in node.targets]
        if self._in_class_body():
            for target in targets:
                if isinstance(target, cst.Name):
                    if target.value == "model_config":
                        self._class.env_prefix = _env_prefix(node.value) or ""
                    else:
                        self._class.attributes[target.value] = _default(node.value)
            return
        if not self.scope.at_module_level:
            return
        for target in targets:
            # Config.SQLALCHEMY_ENGINE_OPTIONS = {...} after the class
            if isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) \
                    and target.value.value in self.facts.classes:
                self.facts.classes[target.value.value].attributes[target.attr.value] = node.value
            # settings = Settings() / settings = get_settings()
            elif isinstance(target, cst.Name) and isinstance(node.value, cst.Call) \
                    and isinstance(node.value.func, cst.Name):
                made = node.value.func.value
                made = self._returns_instance.get(made, made)
                qualified = self.scope.imports.qualify(node.value.func)
                if made in self.facts.classes:
                    self.facts.instances[target.value] = made
                elif qualified and "." in qualified:
                    self.facts.imported_instances[target.value] = qualified

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        decorators = {_decorator_name(d) for d in node.decorators}
        self._method.append((node.name.value, bool(decorators & _PROPERTY_DECORATORS)))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._method.pop()

    def visit_Return(self, node: cst.Return) -> None:
        if not self._method or node.value is None:
            return
        name, is_property = self._method[-1]
        if self._class is not None and is_property and len(self._method) == 1:
            self._class.properties[name] = node.value
        elif self._class is None and len(self._method) == 1 and isinstance(node.value, cst.Call) \
                and isinstance(node.value.func, cst.Name):
            self._returns_instance[name] = node.value.func.value  # def get_settings(): ...

    def visit_ClassDef_body(self, node: cst.ClassDef) -> None:
        """pydantic v1's inner `class Config: env_prefix = "APP_"`."""
        for statement in node.body.body:
            if isinstance(statement, cst.ClassDef) and statement.name.value == "Config" \
                    and self._class is not None:
                for line in statement.body.body:
                    if isinstance(line, cst.SimpleStatementLine):
                        for small in line.body:
                            if isinstance(small, cst.Assign) and any(
                                    isinstance(t.target, cst.Name)
                                    and t.target.value == "env_prefix" for t in small.targets):
                                prefix = evaluate(small.value)
                                self._class.env_prefix = prefix if isinstance(prefix, str) \
                                    else ""

    def finish(self) -> SettingsFacts:
        return self.facts


def _default(value: cst.BaseExpression | None) -> cst.BaseExpression | None:
    """A field's default: `= "x"`, `= Field("x")`, `= Field(default="x")`."""
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Name) \
            and value.func.value == "Field":
        given = keyword(value, "default")
        if given is not None:
            return given
        positional = [arg.value for arg in value.args if arg.keyword is None and not arg.star]
        return positional[0] if positional else None
    return value


def _env_prefix(value: cst.BaseExpression) -> str | None:
    """`model_config = SettingsConfigDict(env_prefix="APP_")`."""
    if isinstance(value, cst.Call):
        prefix = keyword(value, "env_prefix")
        if prefix is not None:
            text = evaluate(prefix)
            return text if isinstance(text, str) else None
    return None


def _decorator_name(decorator: cst.Decorator) -> str:
    expr = decorator.decorator.func if isinstance(decorator.decorator, cst.Call) \
        else decorator.decorator
    while isinstance(expr, cst.Attribute):
        return expr.attr.value
    return expr.value if isinstance(expr, cst.Name) else ""
