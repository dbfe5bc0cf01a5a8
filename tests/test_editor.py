"""What editors are shown, built from real analyses: ranges in the units the client agreed on,
edits that apply to the buffer they were computed for, `# noqa` where flake8 reads it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flake8_pooling import editor
from flake8_pooling.fix import fix_source
from flake8_pooling.noqa import NoqaMap

from .helpers import FIXTURES, fixture_options
from .lsp_client import apply_edits, edits_of

URL = "postgresql://app@pgbouncer:6432/app"


def _buffer(text: str, path: Path, encoding: str = "utf-16") -> editor.Buffer:
    # fixes keep to the project's line length: these buffers' fixed lines fit in 100
    (path.parent / "setup.cfg").write_text("[flake8]\nmax-line-length = 100\n")
    chosen = editor.settings_for(path.parent, {"sqlalchemy-version": "2.0"})
    return editor.lint_buffer(path.as_uri(), text, str(path), 7, chosen, encoding)


def _everything(buffer: editor.Buffer) -> dict:
    return {"start": {"line": 0, "character": 0},
            "end": {"line": len(buffer.lines), "character": 0}}


@pytest.mark.parametrize("encoding, start", [("utf-16", 15), ("utf-8", 18), ("utf-32", 14)])
def test_columns_in_the_agreed_units(tmp_path, encoding, start):
    text = f'x = "\N{ELEPHANT}é"; e = create_engine("{URL}")\n'
    buffer = _buffer("from sqlalchemy import create_engine\n" + text, tmp_path / "db.py",
                     encoding)
    length = len(f'create_engine("{URL}")')
    assert {editor.finding_range(buffer, finding)["start"]["character"]
            for finding in buffer.findings} == {start}
    assert {editor.finding_range(buffer, finding)["end"]["character"]
            for finding in buffer.findings} == {start + length}


def test_a_finding_without_a_node_covers_its_line():
    ini = FIXTURES / "project" / "pol301_uwsgi_ini" / "uwsgi.ini"
    text = ini.read_text()
    buffer = editor.lint_buffer(ini.as_uri(), text, str(ini), 1, editor.settings_for(ini.parent))
    finding, = buffer.findings
    assert finding.code == "POL301" and finding.node is None
    index = finding.line - 1
    assert editor.finding_range(buffer, finding) == {
        "start": {"line": index, "character": 0},
        "end": {"line": index, "character": len(text.splitlines()[index])}}
    actions = editor.code_actions(buffer, editor.finding_range(buffer, finding))
    assert "Add `# noqa: POL301`" not in [action["title"] for action in actions]  # not Python


def test_crlf_buffers_keep_their_line_breaks_and_a_last_line_without_one(tmp_path):
    text = f'from sqlalchemy import create_engine\r\n\r\nengine = create_engine("{URL}")'
    buffer = _buffer(text, tmp_path / "db.py")
    fix_all = editor.code_actions(buffer, _everything(buffer),
                                  {"only": ["source.fixAll"]})[0]
    edit, = edits_of(fix_all, buffer.uri, version=7)
    assert edit["range"]["end"] == {"line": 2, "character": len(text.splitlines()[2])}
    fixed = apply_edits(text, [edit])
    assert fixed == text.replace('app")', 'app", pool_pre_ping=True)')
    assert "\n" not in fixed.replace("\r\n", "")


def test_noqa_goes_where_a_comment_can_go_and_flake8_reads_it(tmp_path):
    text = textwrap.dedent(f'''\
        from sqlalchemy import create_engine

        engines = [create_engine("{URL}"), """a note
        over two lines"""]
        other = create_engine("{URL}") if True else \\
            None
    ''')
    buffer = _buffer(text, tmp_path / "db.py")
    assert [(finding.code, finding.line) for finding in buffer.findings] == [
        ("POL101", 3), ("POL102", 3), ("POL101", 5), ("POL102", 5)]
    for finding, line in zip(buffer.findings, (4, 4, 6, 6)):
        silenced = apply_edits(text, [editor.noqa_edit(buffer, finding)])
        assert silenced.splitlines()[line - 1].endswith(f"  # noqa: {finding.code}")
        assert NoqaMap(silenced).suppresses(finding)
        assert [(later.code, later.line) for later in _buffer(silenced, tmp_path / "db.py")
                .findings].count((finding.code, finding.line)) == 0


def test_fix_titles_say_what_the_fix_writes():
    assert editor.fix_title("... already exists'; set connect_args={\"statement_cache_size\": 0}"
                            " (asyncpg >= 0.31; older asyncpg also needs it)") == \
        'set connect_args={"statement_cache_size": 0}'
    assert editor.fix_title("unknown option pool_pre_pign; did you mean pool_pre_ping?") == \
        "use pool_pre_ping"
    assert editor.fix_title("no clause to take") == "apply the fix"


def test_diagnostics_the_editor_names_get_their_actions_away_from_the_cursor(tmp_path):
    text = f'from sqlalchemy import create_engine\nengine = create_engine("{URL}")\n'
    buffer = _buffer(text, tmp_path / "db.py")
    cursor = {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}}
    assert [action["kind"] for action in editor.code_actions(buffer, cursor)] == \
        ["source.fixAll.flake8-pooling"]
    named = editor.diagnostics(buffer)[1:]  # Neovim sends those of the cursor's line
    titles = [action["title"] for action in
              editor.code_actions(buffer, cursor, {"diagnostics": named})]
    assert titles[:2] == ["POL102: set pool_pre_ping=True (safe fix)", "Add `# noqa: POL102`"]


def test_settings_problems_are_one_line_each(tmp_path):
    (tmp_path / "setup.cfg").write_text("[flake8]\npooling-pooler = sometimes\n")
    chosen = editor.settings_for(tmp_path, {"select": ["POL1"], "ignore": ["POL1O1"],
                                            "shape": "round"})
    assert chosen.selection.select == ("POL1",)
    assert len(chosen.problems) == 3 and all("\n" not in problem for problem in chosen.problems)
    assert "editor settings: unknown setting 'shape'; ignored" in chosen.problems
    assert any("'POL1O1' matches no rule" in problem for problem in chosen.problems)


def _overrides(options: tuple[str, ...]) -> dict:
    """A fixture's flake8 options (`--pooling-pooler=none`) as editor settings."""
    return {name.removeprefix("--"): value for name, _, value in
            (option.partition("=") for option in options)}


def test_fix_all_in_the_editor_is_what_flake8_pooling_fix_writes():
    """The two ways to apply the safe fixes agree on every fixture that has any."""
    compared = 0
    for path in sorted(FIXTURES.glob("**/*.py")):
        text = path.read_text()
        chosen = editor.settings_for(path.parent, _overrides(fixture_options(path)))
        buffer = editor.lint_buffer(path.as_uri(), text, str(path), 1, chosen)
        actions = editor.code_actions(buffer, _everything(buffer), {"only": ["source.fixAll"]})
        if not any(finding.fix and finding.fix.safety == "safe" for finding in buffer.findings):
            assert actions == [], path
            continue
        expected = fix_source(text, str(path), chosen.settings, selection=chosen.selection)
        fix_all, = actions
        assert apply_edits(text, edits_of(fix_all, buffer.uri, version=1)) == expected.source, \
            path
        compared += 1
    assert compared >= 20
