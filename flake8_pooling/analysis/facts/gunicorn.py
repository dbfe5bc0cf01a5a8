"""A gunicorn config file: its settings, its hooks, and what it imports in the master.

gunicorn executes the config file in the master before any fork (fact 60), assigns the names it
knows as settings and ignores the rest (fact 61). A module is taken for a config file when it is
named like one (`gunicorn.conf.py`, `gunicorn_config.py`, ...) and reads like one, or when it
defines both a hook and a setting.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import libcst as cst

from ...vocabulary import GUNICORN_APPLICATIONS, GUNICORN_HOOKS, GUNICORN_SETTINGS
from ..prefilter import is_gunicorn_config_name
from ..values import evaluate
from .scope import Family, Scope


@dataclass(eq=False)
class GunicornConfig:
    """A module gunicorn executes as its config file (in the master, before any fork)."""
    preload: cst.CSTNode | None  # the `True` of `preload_app = True`
    imports: list[tuple[cst.CSTNode, str]]  # module-level imports: (node, module name)
    hooks: dict[str, cst.FunctionDef]  # module-level functions by name
    functions: list[cst.FunctionDef]  # every module-level function, for hook name checks
    settings: dict[str, cst.BaseExpression] = field(default_factory=dict)  # workers = ...
    # a program that runs gunicorn itself (a BaseApplication subclass): its options dict
    embedded: cst.Dict | None = None


def near_hooks(name: str) -> list[str]:
    """The hooks `name` is a near miss of (postfork, post_worker_int): one when the intended
    hook is clear, several when it is not (worker_init: worker_int or post_worker_init?)."""
    squashed = name.replace("_", "").lower()
    exact = [hook for hook in GUNICORN_HOOKS if hook.replace("_", "") == squashed]
    if exact:
        return exact
    scored = sorted(((difflib.SequenceMatcher(None, name, hook).ratio(), hook)
                     for hook in GUNICORN_HOOKS), reverse=True)
    best = scored[0][0]
    if best < 0.8:
        return []
    return [hook for score, hook in scored if score >= 0.8 and score > best - 0.15]


class GunicornFamily(Family):
    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope
        self._settings: dict[str, cst.BaseExpression] = {}
        self._embedded = False  # the module subclasses gunicorn's BaseApplication
        self._options: cst.Dict | None = None  # {"workers": 4, "pre_fork": pre_fork, ...}

    def visit_Assign(self, node: cst.Assign) -> None:
        if self.scope.at_module_level:
            for target in node.targets:
                if isinstance(target.target, cst.Name) \
                        and target.target.value in GUNICORN_SETTINGS:
                    self._settings[target.target.value] = node.value

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if any(self.scope.imports.qualify(base.value) in GUNICORN_APPLICATIONS
               for base in node.bases):
            self._embedded = True

    def visit_Dict(self, node: cst.Dict) -> None:
        keys = [evaluate(element.key) for element in node.elements
                if isinstance(element, cst.DictElement)]
        known = [key for key in keys if key in GUNICORN_SETTINGS or key in GUNICORN_HOOKS]
        if len(known) >= 2 and self._options is None:
            self._options = node

    def _embedded_config(self) -> GunicornConfig:
        """gunicorn run from the program's own BaseApplication: settings and hooks come from
        its options dict, and the application object it serves was built in the master."""
        functions = self.scope.module_functions
        settings, hooks = {}, {}
        for element in self._options.elements:
            if not isinstance(element, cst.DictElement):
                continue
            key = evaluate(element.key)
            if key in GUNICORN_HOOKS and isinstance(element.value, cst.Name) \
                    and element.value.value in functions:
                hooks[key] = functions[element.value.value].node
            elif key in GUNICORN_SETTINGS:
                settings[key] = element.value
        preload = settings.get("preload_app")
        preload = preload if preload is not None and evaluate(preload) is True else None
        return GunicornConfig(preload, [], hooks, [], settings, self._options)

    def finish(self, path: str) -> GunicornConfig | None:
        if self._embedded and self._options is not None:
            return self._embedded_config()
        functions = self.scope.module_functions
        hooks = {name: function.node for name, function in functions.items()}
        named_hooks = set(hooks) & set(GUNICORN_HOOKS)
        if is_gunicorn_config_name(path):
            # named like one, and reading like one: a test_gunicorn.py is no config
            if not (self._settings or named_hooks or any(
                    near_hooks(name) for name in hooks if name not in GUNICORN_HOOKS)):
                return None
        elif not (named_hooks and self._settings):
            return None
        preload = self._settings.get("preload_app")
        preload = preload if preload is not None and evaluate(preload) is True else None
        return GunicornConfig(preload, self.scope.module_imports, hooks,
                              [function.node for function in functions.values()],
                              dict(self._settings))
