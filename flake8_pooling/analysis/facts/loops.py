"""Event loops started per call (POL111): `asyncio.run(...)` and `run_until_complete(...)` in code
that runs many times in one process: a Celery task, or the body of a `for`/`while` loop.

A pooled AsyncEngine keeps connections bound to the loop that opened them (fact 102); which
engine the loop's code reaches is the context's judgement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ...vocabulary import TASK_DECORATORS
from ..names import dotted
from .scope import Family, Scope

LOOP_STARTS = frozenset({"asyncio.run", "anyio.run", "asgiref.sync.async_to_sync"})
RUN_UNTIL_COMPLETE = "run_until_complete"


@dataclass(eq=False)
class LoopStart:
    node: cst.Call
    why: str  # "in the Celery task send_report", "in a loop"


@dataclass(eq=False)
class LoopFacts:
    starts: list[LoopStart] = field(default_factory=list)


class LoopFamily(Family):
    def __init__(self, scope: Scope) -> None:
        super().__init__()
        self.scope = scope
        self.facts = LoopFacts()
        self._loops = 0  # for/while bodies we are in, inside a function

    def visit_For(self, node: cst.For) -> None:
        self._loops += 1

    def leave_For(self, original_node: cst.For) -> None:
        self._loops -= 1

    def visit_While(self, node: cst.While) -> None:
        self._loops += 1

    def leave_While(self, original_node: cst.While) -> None:
        self._loops -= 1

    def visit_Call(self, node: cst.Call) -> None:
        function = self.scope.function
        if function is None:
            return
        qualified = self.scope.qualified_call(node) or ""
        starts = qualified in LOOP_STARTS or (isinstance(node.func, cst.Attribute)
                                              and node.func.attr.value == RUN_UNTIL_COMPLETE)
        if not starts:
            return
        task = next((outer.name for outer in reversed(self.scope.functions)
                     if _is_task(outer.node)), None)
        if task is not None:
            self.facts.starts.append(LoopStart(node, f"in the Celery task {task}()"))
        elif self._loops:
            self.facts.starts.append(LoopStart(node, "inside a loop"))

    def finish(self) -> LoopFacts:
        return self.facts


def _is_task(function: cst.FunctionDef) -> bool:
    for decorator in function.decorators:
        target = decorator.decorator
        target = target.func if isinstance(target, cst.Call) else target
        if (dotted(target) or "").rpartition(".")[2] in TASK_DECORATORS:
            return True
    return False
