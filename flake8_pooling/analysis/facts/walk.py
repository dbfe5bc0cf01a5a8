"""One pass over a libcst tree that calls the fact families' visit_/leave_ methods, as
`libcst.visit_batched` does, in the same order, for a fraction of its cost.

libcst's own traversal rebuilds every node it passes (`_visit_and_replace_children` makes a new
node from the visited children), whitespace and commas included: on a candidate file that was
most of what collecting facts cost. Families only read the tree, so this walk reads the
children in place and never enters whitespace, comments or operator tokens no family visits.

The order is libcst's: each node class visits its fields in the order its
`_visit_and_replace_children` names them, which is the order of the field names among that
method's constants. Attribute visitors (`visit_Try_finalbody`) run around their field, as in
libcst, also when the field is empty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

import libcst as cst

# these hold nothing but whitespace, comments and tokens
_TOKEN_MODULES = frozenset({"libcst._nodes.whitespace", "libcst._nodes.op"})

_FIELD_ORDER: dict[type, tuple[str, ...]] = {}


def _visited_fields(kind: type) -> tuple[str, ...]:
    order = _FIELD_ORDER.get(kind)
    if order is None:
        names = {field.name for field in dataclasses.fields(kind)}
        constants = kind._visit_and_replace_children.__code__.co_consts
        order = _FIELD_ORDER[kind] = tuple(dict.fromkeys(
            constant for constant in constants if isinstance(constant, str) and constant in names))
    return order


@dataclasses.dataclass(frozen=True)
class _Plan:
    visits: tuple[Callable, ...]
    leaves: tuple[Callable, ...]
    # (field, its attribute visitors, its attribute leavers)
    fields: tuple[tuple[str, tuple[Callable, ...], tuple[Callable, ...]], ...]


class Walk:
    def __init__(self, families: Sequence[cst.BatchableCSTVisitor]) -> None:
        self.methods: dict[str, list[Callable]] = {}
        for family in families:
            for name, method in family.get_visitors().items():
                self.methods.setdefault(name, []).append(method)
        self.plans: dict[type, _Plan | None] = {}

    def _plan(self, kind: type) -> _Plan | None:
        """What to do at a node of this class; None: nothing, here or below (and for what is
        not a node: a string, None, MaybeSentinel)."""
        if not issubclass(kind, cst.CSTNode):
            return None
        name = kind.__name__
        methods = self.methods
        visits = tuple(methods.get(f"visit_{name}", ()))
        leaves = tuple(methods.get(f"leave_{name}", ()))
        attributes = tuple((field, tuple(methods.get(f"visit_{name}_{field}", ())),
                            tuple(methods.get(f"leave_{name}_{field}", ())))
                           for field in _visited_fields(kind))
        if kind.__module__ in _TOKEN_MODULES and not visits and not leaves \
                and not any(before or after for _, before, after in attributes):
            return None
        return _Plan(visits, leaves, attributes)

    def __call__(self, node: cst.CSTNode) -> None:
        kind = type(node)
        try:
            plan = self.plans[kind]
        except KeyError:
            plan = self.plans[kind] = self._plan(kind)
        if plan is None:
            return
        for visit in plan.visits:
            visit(node)
        for field, before, after in plan.fields:
            for visit in before:
                visit(node)
            value = getattr(node, field)
            # no isinstance(value, CSTNode): an ABC check on every field was a fifth of the walk
            if value.__class__ is tuple or value.__class__ is list:
                for item in value:
                    self(item)
            else:
                self(value)
            for leave in after:
                leave(node)
        for leave in plan.leaves:
            leave(node)


def nodes(root: cst.CSTNode, prune: tuple[type, ...] = ()) -> Iterator[cst.CSTNode]:
    """`root` and every node under it, in the order a `CSTVisitor` meets them, read in place
    (`node.visit` rebuilds each node it passes); below a node of a `prune` class nothing is
    visited, as a visitor returning False there. Whitespace, comments and tokens are left out."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, prune):
            continue
        below = []
        for field in _visited_fields(type(node)):
            value = getattr(node, field)
            if value.__class__ is tuple or value.__class__ is list:
                below.extend(value)
            else:
                below.append(value)
        stack.extend(item for item in reversed(below) if isinstance(item, cst.CSTNode)
                     and type(item).__module__ not in _TOKEN_MODULES)


def visit_families(module: cst.Module, families: Sequence[cst.BatchableCSTVisitor]) -> None:
    Walk(families)(module)
