"""What stands in for libcst's machinery answers as it does: the facts' walk calls the families
as libcst's batched visit does (the same methods, on the same nodes, in the same order), and
node ranges are PositionProvider's."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import sysconfig
from collections import Counter
from pathlib import Path

import libcst as cst
import pytest

from flake8_pooling import lint as lint_module
from flake8_pooling.analysis import astwalk, facts as facts_module
from flake8_pooling.analysis.facts.walk import nodes, visit_families

from .helpers import FIXTURES, ROOT

NODE_CLASSES = [kind for kind in vars(cst).values()
                if isinstance(kind, type) and issubclass(kind, cst.CSTNode)
                and dataclasses.is_dataclass(kind) and not inspect.isabstract(kind)]


def _recorder_class() -> type:
    """A family with a visit_, leave_ and attribute method for every node class and field."""
    def recording(name):
        def method(self, node):
            self.calls.append((name, id(node)))
        return method

    methods = {}
    for kind in NODE_CLASSES:
        for prefix in ("visit", "leave"):
            methods[f"{prefix}_{kind.__name__}"] = recording(f"{prefix}_{kind.__name__}")
            for field in dataclasses.fields(kind):
                name = f"{prefix}_{kind.__name__}_{field.name}"
                methods[name] = recording(name)
    return type("Recorder", (cst.BatchableCSTVisitor,), methods)


Recorder = _recorder_class()

SOURCES = sorted(FIXTURES.rglob("*.py")) + sorted((ROOT / "flake8_pooling").rglob("*.py")) + [
    Path(sysconfig.get_paths()["stdlib"]) / name
    for name in ("dataclasses.py", "argparse.py", "asyncio/base_events.py", "typing.py")]


def _calls(module: cst.Module, visit) -> list:
    recorder = Recorder()
    recorder.calls = []
    visit(module, [recorder])
    return recorder.calls


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_every_method_is_called_on_the_same_nodes_in_the_same_order(path):
    module = cst.parse_module(path.read_bytes())
    assert _calls(module, visit_families) == _calls(module, cst.visit_batched)


def test_the_rules_find_the_same_with_libcsts_traversal(monkeypatch):
    """The walk leaves out whitespace and tokens no family visits: the findings stay the same."""
    paths = sorted(FIXTURES.rglob("*.py"))

    def findings():
        return [(str(path), finding.code, finding.line, finding.col, finding.message)
                for path in paths
                for finding in lint_module.lint(path.read_text(), str(path))]

    walked = findings()
    monkeypatch.setattr(facts_module, "visit_families", cst.visit_batched)
    assert walked == findings()
    assert len(walked) > 300  # the fixtures flag: the comparison is of something


class _Met(cst.CSTVisitor):
    """Every node libcst's own visitor meets, not entering lambdas."""

    def __init__(self) -> None:
        super().__init__()
        self.met: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.met.append(node)
        return not isinstance(node, cst.Lambda)


@pytest.mark.parametrize("path", SOURCES[::2], ids=lambda path: path.name)
def test_nodes_read_in_place_are_those_a_visitor_meets(path):
    module = cst.parse_module(path.read_bytes())
    visitor = _Met()
    module.visit(visitor)
    # the walk leaves out whitespace, comments and tokens: nothing the facts look for
    expected = [node for node in visitor.met
                if not type(node).__module__.startswith(("libcst._nodes.whitespace",
                                                         "libcst._nodes.op"))]
    walked = list(nodes(module, prune=(cst.Lambda,)))
    assert len(walked) == len(expected) > 0
    assert all(a is b for a, b in zip(walked, expected))


@pytest.mark.parametrize("inclusive", [False, True], ids=["syntactic", "whitespace-inclusive"])
@pytest.mark.parametrize("path", SOURCES[::5], ids=lambda path: path.name)
def test_node_ranges_are_libcsts_positions(path, inclusive):
    from libcst.metadata import (MetadataWrapper, PositionProvider,
                                 WhitespaceInclusivePositionProvider)

    from flake8_pooling.analysis.positions import both_ranges, node_ranges

    module = cst.parse_module(path.read_bytes())
    provider = WhitespaceInclusivePositionProvider if inclusive else PositionProvider
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(provider)
    ranges = both_ranges(module)[1] if inclusive else node_ranges(module)
    assert len(ranges) == len(expected) > 0
    for node, where in expected.items():
        assert ranges[node] == ((where.start.line, where.start.column),
                                (where.end.line, where.end.column))


class _ReadByVisitor(cst.CSTVisitor):
    """The names code reads, by libcst's own visitor: the reading `fix.names_read` does."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter = Counter()

    def visit_Name(self, node: cst.Name) -> None:
        self.counts[node.value] += 1

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)
        return False

    def visit_Import(self, node: cst.Import) -> bool:
        return False

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        return False


@pytest.mark.parametrize("path", [path for path in SOURCES[::3] if path.stat().st_size > 0],
                         ids=lambda path: path.name)
def test_names_read_in_place_are_the_visitors(path):
    from flake8_pooling.fix import names_read

    module = cst.parse_module(path.read_bytes())
    visitor = _ReadByVisitor()
    module.visit(visitor)
    assert names_read([module]) == visitor.counts


def _python_trees():
    """The package's own modules, the fixtures and the standard library's: every kind of node."""
    paths = [*(ROOT / "flake8_pooling").rglob("*.py"), *FIXTURES.rglob("*.py"),
             *sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:80]]
    for path in paths:
        try:
            yield path, ast.parse(path.read_bytes())
        except (SyntaxError, ValueError):
            continue
    yield "inline", ast.parse(
        "match command:\n    case [x, *_] if x:\n        import a\n    case _:\n        pass\n"
        "try:\n    pass\nexcept* OSError:\n    import b\nelse:\n    import c\n"
        "finally:\n    f = lambda: (yield)\n"
        "async def g():\n    async with x as y:\n        async for z in y:\n"
        "            import d\n")


def test_the_ast_walks_answer_as_ast_walk_does():
    holders = (ast.stmt, ast.excepthandler, ast.match_case, ast.Module)
    for path, tree in _python_trees():
        every = list(ast.walk(tree))
        assert list(astwalk.walk(tree)) == every, path
        assert astwalk.statements(tree) == [node for node in every
                                            if isinstance(node, holders)], path
