"""What stands in for libcst's machinery answers as it does: the facts' walk calls the families
as libcst's batched visit does (the same methods, on the same nodes, in the same order), and
node ranges are PositionProvider's."""

from __future__ import annotations

import dataclasses
import inspect
import sysconfig
from pathlib import Path

import libcst as cst
import pytest

from flake8_pooling import lint as lint_module
from flake8_pooling.analysis import facts as facts_module
from flake8_pooling.analysis.facts.walk import visit_families

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


@pytest.mark.parametrize("path", SOURCES[::5], ids=lambda path: path.name)
def test_node_ranges_are_libcsts_positions(path):
    from libcst.metadata import MetadataWrapper, PositionProvider

    from flake8_pooling.analysis.positions import node_ranges

    module = cst.parse_module(path.read_bytes())
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    ranges = node_ranges(module)
    assert len(ranges) == len(expected) > 0
    for node, where in expected.items():
        assert ranges[node] == ((where.start.line, where.start.column),
                                (where.end.line, where.end.column))
