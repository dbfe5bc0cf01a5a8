"""Code that fails when it runs: the ways a fork hook crashes the worker it means to protect.

What the code writes, wherever it is: Flask-SQLAlchemy's `db.engine`, `db.session` and
`db.engines` read outside `with app.app_context():`; `db.engine = ...`; `engine.options`;
an engine made from `str(engine.url)`; `dispose(close=False)`. Which of them fail depends on
where the code runs, what `db` is and the versions the project targets: the rule judges that.
Names imported inside a function (`from app import db` in a hook) are resolved too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ...vocabulary import ENGINE_APIS
from ..names import dotted
from ..values import evaluate
from .scope import Family, FunctionScope, Scope, keyword

# Flask-SQLAlchemy 3 attributes that need an application context (fact 72)
FLASK_CONTEXT_ATTRIBUTES = ("engine", "session", "engines")
_CONTEXT_METHODS = ("app_context", "test_request_context")


@dataclass(eq=False)
class BootHazard:
    kind: str  # "flask_outside_context", "engine_assigned", "engine_options" (`**x.options`
    # into an engine call), "options_read" (`x.options` elsewhere), "masked_url", "close_false"
    node: cst.CSTNode  # where it is reported
    receiver: str  # `db` of `db.engine`, `engine` of `engine.options`
    qualified: str | None  # the receiver through the module's and the function's imports
    function: FunctionScope | None  # None at module level


@dataclass(eq=False)
class BootFacts:
    hazards: list[BootHazard] = field(default_factory=list)
    # `app.app_context().push()` at import: every later access has a context
    context_pushed_at_import: bool = False


class BootFamily(Family):
    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope
        self.facts = BootFacts()
        self._local_imports: dict[FunctionScope, dict[str, str]] = {}
        self._contexts: list[cst.With] = []  # the app-context blocks around the node
        self._assigned: set[int] = set()  # ids of attribute nodes that are assignment targets
        self._splatted: set[int] = set()  # `x.options` splatted into an engine call

    def _qualify(self, text: str) -> str | None:
        head, _, rest = text.partition(".")
        for function in reversed(self.scope.functions):
            bound = self._local_imports.get(function, {}).get(head)
            if bound is not None:
                return f"{bound}.{rest}" if rest else bound
        bound = self.scope.imports.qualify(cst.Name(head)) if head.isidentifier() else None
        return None if bound is None else f"{bound}.{rest}" if rest else bound

    def _add(self, kind: str, node: cst.CSTNode, receiver: str) -> None:
        self.facts.hazards.append(BootHazard(kind, node, receiver, self._qualify(receiver),
                                             self.scope.function))

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        function = self.scope.function
        if function is None or node.relative or isinstance(node.names, cst.ImportStar):
            return
        module = dotted(node.module) if node.module is not None else None
        if module is None:
            return
        names = self._local_imports.setdefault(function, {})
        for alias in node.names:
            name = dotted(alias.name)
            local = dotted(alias.asname.name) if alias.asname is not None else name
            if name and local:
                names[local] = f"{module}.{name}"

    def visit_Import(self, node: cst.Import) -> None:
        function = self.scope.function
        if function is None:
            return
        names = self._local_imports.setdefault(function, {})
        for alias in node.names:
            full = dotted(alias.name)
            if full and alias.asname is not None:
                names[dotted(alias.asname.name) or full] = full
            elif full:
                names[full.split(".")[0]] = full.split(".")[0]

    def visit_With(self, node: cst.With) -> None:
        if any(_is_context(item.item) for item in node.items):
            self._contexts.append(node)

    def leave_With(self, original_node: cst.With) -> None:
        if self._contexts and self._contexts[-1] is original_node:
            self._contexts.pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            target = target.target
            if isinstance(target, cst.Attribute) and target.attr.value == "engine":
                receiver = dotted(target.value)
                if receiver:
                    self._assigned.add(id(target))
                    self._add("engine_assigned", target, receiver)

    def visit_Attribute(self, node: cst.Attribute) -> None:
        attribute = node.attr.value
        receiver = dotted(node.value)
        if receiver is None:
            return
        if attribute in FLASK_CONTEXT_ATTRIBUTES and self.scope.function is not None \
                and not self._contexts and id(node) not in self._assigned:
            self._add("flask_outside_context", node, receiver)
        elif attribute == "options" and _names_an_engine(receiver) \
                and id(node) not in self._splatted:
            self._add("options_read", node, receiver)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute):
            if func.attr.value == "push" and isinstance(func.value, cst.Call) \
                    and _is_context(func.value) and self.scope.at_module_level:
                self.facts.context_pushed_at_import = True
            if func.attr.value == "dispose":
                close = keyword(node, "close")
                if close is not None and evaluate(close, self.scope.constants) is False:
                    self._add("close_false", node, dotted(func.value) or "")
        if self.scope.qualified_call(node) in ENGINE_APIS and node.args:
            for arg in node.args:
                value = arg.value
                if arg.star == "**" and isinstance(value, cst.Attribute) \
                        and value.attr.value == "options" \
                        and _names_an_engine(dotted(value.value) or ""):
                    self._splatted.add(id(value))
                    self._add("engine_options", value, dotted(value.value) or "")
            url = node.args[0].value
            masked = _masked_url(url)
            if masked is not None:
                self._add("masked_url", url, masked)

    def finish(self) -> BootFacts:
        return self.facts


def _is_context(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) \
        and expr.func.attr.value in _CONTEXT_METHODS


def _names_an_engine(receiver: str) -> bool:
    """`engine`, `db.engine`, `self.read_engine`: named like an engine."""
    last = receiver.rpartition(".")[2].lower()
    return last == "engine" or last.endswith("_engine")


def _masked_url(url: cst.BaseExpression) -> str | None:
    """`str(engine.url)` or f"{engine.url}": since SQLAlchemy 2.0 the text says `***` where
    the password was (fact 108). Returns the engine's text."""
    if isinstance(url, cst.Call) and isinstance(url.func, cst.Name) and url.func.value == "str" \
            and len(url.args) == 1:
        inner = url.args[0].value
        if isinstance(inner, cst.Attribute) and inner.attr.value == "url":
            receiver = dotted(inner.value)
            return receiver if receiver and _names_an_engine(receiver) else None
    if isinstance(url, cst.FormattedString) and len(url.parts) == 1 \
            and isinstance(url.parts[0], cst.FormattedStringExpression):
        inner = url.parts[0].expression
        if isinstance(inner, cst.Attribute) and inner.attr.value == "url" \
                and url.parts[0].conversion is None:
            receiver = dotted(inner.value)
            return receiver if receiver and _names_an_engine(receiver) else None
    return None
