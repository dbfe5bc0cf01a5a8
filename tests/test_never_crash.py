"""Whatever the input, findings or nothing: never an exception (it would abort flake8's run)."""

from __future__ import annotations

import ast
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesmith import from_grammar

from flake8_pooling.fix import fix_source
from flake8_pooling.lint import lint
from flake8_pooling.plugin import PoolingPlugin
from flake8_pooling.rules.engine import pol101_pooled_behind_pooler as engine_rules

from .helpers import run_flake8

ENGINE_LINE = ("from sqlalchemy import create_engine\n"
               "engine = create_engine('postgresql://a@pgbouncer:6432/d', pool_size='5')\n")

# flake8's own ast.parse (processor.build_ast) raises RecursionError on these before any plugin
# runs; the library-level test above still covers them.
FLAKE8_ITSELF_FAILS = {"deep_nesting", "long_line"}

ODD_INPUTS = {
    "empty": "",
    "only_vocabulary_in_comment": "# create_engine\n",
    "vocabulary_in_docstring": '"""create_engine("postgresql://x@pgbouncer:6432/d")"""\n',
    "form_feed_and_tabs":
        "\f\nfrom sqlalchemy import create_engine\nif True:\n\tcreate_engine('sqlite://')\n",
    "lone_cr": "from sqlalchemy import create_engine\rcreate_engine('sqlite://')\r",
    "bom": "\ufefffrom sqlalchemy import create_engine\ncreate_engine('sqlite://')\n",
    "long_line":
        "from sqlalchemy import create_engine\nx = create_engine('sqlite://', echo="
        + "1+" * 5000 + "1)\n",
    "deep_nesting": "from sqlalchemy import create_engine\nx = create_engine("
                    + "(" * 1000 + "1" + ")" * 1000 + ")\n",
    "broken_syntax": "from sqlalchemy import create_engine\nengine = create_engine(\n",
    "null_byte": "create_engine\x00(",
    "bytes_url":
        "from sqlalchemy import create_engine\nx = create_engine(b'\\xff', **{b'k': 1})\n",
    "odd_arguments":
        "from sqlalchemy import create_engine\nx = create_engine(*a, **b)\ny = create_engine()\n",
    "odd_config": "class C:\n    SQLALCHEMY_ENGINE_OPTIONS = 5\n"
                  "    SQLALCHEMY_BINDS = {1: 2, **x}\napp.config[0] = 1\n",
}


@pytest.mark.parametrize("name", sorted(ODD_INPUTS))
def test_odd_input_gives_findings_or_nothing(name):
    source = ODD_INPUTS[name]
    findings = lint(source, "odd.py")
    assert all(finding.code != "POL901" for finding in findings), findings
    fix_source(source, "odd.py")


def test_unparsable_file_gets_one_line():
    findings = lint("from sqlalchemy import create_engine\nengine = create_engine(\n", "bad.py")
    assert [finding.code for finding in findings] == ["POL902"]
    assert "\n" not in findings[0].text and "line" in findings[0].text


def test_an_internal_error_becomes_a_finding(monkeypatch):
    def explode(self, facts):
        raise ValueError("boom")
        yield

    monkeypatch.setattr(engine_rules.PooledBehindPooler, "check", explode)
    tree = ast.parse(ENGINE_LINE)
    plugin = PoolingPlugin(tree, ENGINE_LINE.splitlines(True), "x.py")
    results = list(plugin.run())
    assert [(line, text.split()[0]) for line, _, text, _ in results] == [(1, "POL901")]
    assert "ValueError: boom" in results[0][2]


def test_flake8_survives_odd_files(tmp_path):
    for name, source in ODD_INPUTS.items():
        if name in FLAKE8_ITSELF_FAILS:
            continue
        (tmp_path / f"{name}.py").write_text(source, encoding="utf-8", newline="")
    (tmp_path / "latin1.py").write_bytes(b"# -*- coding: latin-1 -*-\n" + ENGINE_LINE.encode()
                                         + b"name = '\xe9'\n")
    (tmp_path / "junk.py").write_bytes(bytes(range(256)) * 4)
    run = run_flake8([tmp_path], cwd=tmp_path)
    assert "Traceback" not in run.stderr, run.stderr
    assert "POL901" not in run.stdout
    assert "latin1.py:3:" in run.stdout  # the latin-1 file is read and analysed


@pytest.mark.filterwarnings("ignore::SyntaxWarning")  # generated code is odd on purpose
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(from_grammar())
def test_generated_programs_do_not_crash(program):
    source = program + "\n" + ENGINE_LINE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)  # generated code is odd on purpose
            compile(source, "<generated>", "exec")
    except (SyntaxError, ValueError):
        return
    findings = lint(source, "generated.py")
    assert not [finding for finding in findings if finding.code == "POL901"], findings
    # through the plugin, as flake8 calls it, and through fix
    plugin = PoolingPlugin(ast.parse(source), source.splitlines(True), "generated.py")
    assert not [text for _, _, text, _ in plugin.run() if text.startswith("POL901")]
    fixed = fix_source(source, "generated.py", unsafe=True).source
    compile(fixed, "<fixed>", "exec")


def test_a_broken_install_does_not_abort_flake8(monkeypatch):
    """If the plugin's dependencies cannot be imported, one POL901 line, not an exception."""
    import builtins

    real_import = builtins.__import__

    def no_libcst(name, *args, **kwargs):
        if name == "lint" or name.endswith(".lint") or name == "libcst":
            raise ModuleNotFoundError("No module named 'libcst'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_libcst)
    plugin = PoolingPlugin(ast.parse(ENGINE_LINE), ENGINE_LINE.splitlines(True), "x.py")
    results = list(plugin.run())
    assert len(results) == 1 and results[0][2].startswith("POL901 flake8-pooling cannot load")


def test_syntax_libcst_rejects_but_ast_accepts_gets_one_line(monkeypatch):
    """flake8 parsed it (it hands the plugin its tree); libcst cannot: one POL902 line."""
    import libcst

    def reject(source, *args, **kwargs):
        raise libcst.ParserSyntaxError("unsupported syntax", lines=source.splitlines(True),
                                       raw_line=2, raw_column=0)

    monkeypatch.setattr(libcst, "parse_module", reject)
    plugin = PoolingPlugin(ast.parse(ENGINE_LINE), ENGINE_LINE.splitlines(True), "x.py")
    [(line, _, text, _)] = plugin.run()
    assert line == 1 and text.startswith("POL902 libcst cannot parse this file")
    assert "\n" not in text
