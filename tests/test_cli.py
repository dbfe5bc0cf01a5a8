"""The console script, driven in a subprocess the way users and CI run it."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

from .helpers import FIXTURES, ROOT, fixture_options, run_flake8

BROKEN = ROOT / "examples" / "orders_service" / "broken"
FIXED = ROOT / "examples" / "orders_service" / "fixed"
PGBOUNCER_ENGINE = textwrap.dedent("""\
    from sqlalchemy import create_engine

    engine = create_engine("postgresql+psycopg2://app@pgbouncer:6432/app")
""")


def cli(*arguments, cwd: Path = ROOT, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flake8_pooling.cli", *map(str, arguments)],
                          capture_output=True, text=True, cwd=cwd, input=stdin, timeout=300)


def findings_of(output: str) -> set[tuple[str, int, int, str]]:
    found = set()
    for line in output.splitlines():
        match = re.match(r"^(.+?):(\d+):(\d+): (POL\d{3}) ", line)
        if match:
            found.add((str(Path(match[1]).resolve()), int(match[2]), int(match[3]), match[4]))
    return found


def test_the_console_script_is_installed_with_help_and_version():
    script = shutil.which("flake8-pooling", path=os.path.dirname(sys.executable))
    assert script, "the flake8-pooling console script is not installed"
    version = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("flake8-pooling ")
    for command in ("check", "fix", "rules"):
        shown = subprocess.run([script, command, "--help"], capture_output=True, text=True)
        assert shown.returncode == 0 and "usage: flake8-pooling " + command in shown.stdout


def test_exit_codes_clean_findings_and_usage(tmp_path):
    assert cli("check", FIXED).returncode == 0
    found = cli("check", BROKEN)
    assert found.returncode == 1 and "POL101" in found.stdout
    assert cli("check", "--no-such-option").returncode == 2
    assert cli("check", "--format", "xml", BROKEN).returncode == 2


def test_flake8_and_check_list_the_same_findings():
    """One engine, two front ends: for every fixture, with its options, the same findings."""
    groups = defaultdict(list)
    for path in sorted(FIXTURES.glob("**/*.py")):
        groups[fixture_options(path)].append(path)
    compared = 0
    for options, paths in groups.items():
        flake8 = run_flake8(paths, *options)
        ours = cli("check", "--isolated", "--select=POL", *options, *paths)
        assert ours.returncode in (0, 1), ours.stderr
        assert findings_of(ours.stdout) == findings_of(flake8.stdout), options
        compared += len(findings_of(ours.stdout))
    assert compared > 80


def test_json_has_every_field_with_the_fix_and_its_safety():
    run = cli("check", "--format", "json", BROKEN)
    report = json.loads(run.stdout)
    assert report["summary"]["findings"] == len(report["findings"]) > 10
    first = report["findings"][0]
    assert set(first) == {"path", "line", "column", "code", "name", "message", "fix"}
    fixes = [finding["fix"] for finding in report["findings"] if finding["fix"]]
    assert {fix["safety"] for fix in fixes} == {"safe", "unsafe"}
    assert all(fix["edits"] and fix["edits"][0]["start"]["line"] >= 1 for fix in fixes)
    unfixable = [finding for finding in report["findings"] if finding["code"] == "POL106"]
    assert unfixable and unfixable[0]["fix"] is None


def test_sarif_has_what_github_code_scanning_requires():
    # No package on PyPI ships the SARIF 2.1.0 schema (checked: sarif-om, sarif-tools,
    # pydantic-sarif, pysarif), so the structure code scanning reads is checked here.
    sarif = json.loads(cli("check", "--format", "sarif", BROKEN).stdout)
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    run = sarif["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "flake8-pooling" and driver["version"]
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        if rule["id"] < "POL9":
            assert rule["helpUri"].startswith("https://") and rule["help"]["markdown"]
    assert run["results"]
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["message"]["text"]
        location = result["locations"][0]["physicalLocation"]
        assert not location["artifactLocation"]["uri"].startswith("/")
        assert location["region"]["startLine"] >= 1 and location["region"]["startColumn"] >= 1
        for fix in result.get("fixes", []):
            for change in fix["artifactChanges"]:
                for replacement in change["replacements"]:
                    region = replacement["deletedRegion"]
                    assert region["startLine"] <= region["endLine"]
                    assert "text" in replacement["insertedContent"]
    assert any("fixes" in result for result in run["results"])


def test_sarif_fix_replacements_reproduce_the_fixed_file(tmp_path):
    target = tmp_path / "db.py"
    target.write_text(PGBOUNCER_ENGINE)
    sarif = json.loads(cli("check", "--isolated", "--format", "sarif", target,
                           cwd=tmp_path).stdout)
    result = next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "POL102")
    lines = PGBOUNCER_ENGINE.splitlines(keepends=True)
    for replacement in reversed(result["fixes"][0]["artifactChanges"][0]["replacements"]):
        region = replacement["deletedRegion"]
        lines[region["startLine"] - 1:region["endLine"] - 1] = \
            replacement["insertedContent"]["text"].splitlines(keepends=True)
    assert "pool_pre_ping=True" in "".join(lines)
    ast.parse("".join(lines))


def test_github_annotations():
    run = cli("check", "--format", "github", BROKEN)
    lines = run.stdout.splitlines()
    assert lines and all(re.match(r"^::(warning|error) file=[^,]+,line=\d+,col=\d+,title=POL\d{3} "
                                  r"[a-z-]+::POL\d{3} ", line) for line in lines)
    assert any(line.startswith("::error ") for line in lines)  # POL104 fails at start


def test_noqa_select_and_ignore(tmp_path):
    (tmp_path / "db.py").write_text(textwrap.dedent('''\
        from sqlalchemy import create_engine

        a = create_engine("postgresql+psycopg2://app@pgbouncer:6432/a")  # noqa: POL101
        b = create_engine(
            "postgresql+psycopg2://app@pgbouncer:6432/b",
        )  # noqa: POL1
        c = create_engine("""postgresql+psycopg2://app@pgbouncer:6432/c
        """)  # noqa
        d = create_engine("postgresql+psycopg2://app@pgbouncer:6432/d")
    '''))
    everything = cli("check", "--isolated", ".", cwd=tmp_path).stdout
    # as flake8 reads noqa: per line, and across the lines of one token (the string of c), but
    # not across the bracketed lines of b, where the tokenizer starts a new line each time
    assert sorted(findings_of(everything)) == sorted(findings_of(
        run_flake8(["."], cwd=tmp_path).stdout))
    assert [line.split(": ")[1].split()[0] for line in everything.splitlines()] == \
        ["POL102", "POL101", "POL102", "POL101", "POL102"]
    assert "db.py:7:" not in everything
    only = cli("check", "--isolated", "--select", "POL102", ".", cwd=tmp_path).stdout
    assert {line.split()[1] for line in only.splitlines()} == {"POL102"}
    ignored = cli("check", "--isolated", "--ignore", "POL102", ".", cwd=tmp_path).stdout
    assert {line.split()[1] for line in ignored.splitlines()} == {"POL101"}


@pytest.mark.parametrize("config_file, text", [
    ("setup.cfg", "[flake8]\npooling-pooler-mode = session\nextend-ignore = POL102\n"),
    ("pyproject.toml", '[tool.flake8-pooling]\npooler-mode = "session"\n'
                       'extend-ignore = ["POL102"]\n'),
])
def test_settings_from_setup_cfg_and_pyproject(tmp_path, config_file, text):
    (tmp_path / "db.py").write_text(PGBOUNCER_ENGINE)
    assert "POL101" in cli("check", ".", cwd=tmp_path).stdout
    (tmp_path / config_file).write_text(text)
    run = cli("check", ".", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr  # session mode: no POL101; no POL102


def test_a_broken_config_value_gets_one_line_and_the_run_goes_on(tmp_path):
    (tmp_path / "db.py").write_text(PGBOUNCER_ENGINE)
    (tmp_path / "setup.cfg").write_text("[flake8]\npooling-pooler = pgbouncr\n")
    run = cli("check", "-q", ".", cwd=tmp_path)
    assert "pooling-pooler = 'pgbouncr' is not one of" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "POL101" in run.stdout


def test_unreadable_and_undecodable_files_get_one_line_each(tmp_path):
    (tmp_path / "db.py").write_text(PGBOUNCER_ENGINE)
    (tmp_path / "gone.py").symlink_to(tmp_path / "missing.py")
    (tmp_path / "bad.py").write_bytes(b"# -*- coding: utf-8 -*-\nx = '\xff'\n")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    run = cli("check", ".", cwd=tmp_path)
    assert run.returncode == 2 and "POL101" in run.stdout
    assert "gone.py: not checked: cannot read it" in run.stderr
    assert "bad.py: not checked: cannot decode it" in run.stderr
    assert "Traceback" not in run.stderr


def test_check_reads_standard_input():
    run = cli("check", "--isolated", "--stdin-display-name", "app/db.py", "-",
              stdin=PGBOUNCER_ENGINE)
    assert run.stdout.startswith("app/db.py:3:10: POL101")


def test_rules_lists_and_documents():
    table = cli("rules")
    assert table.returncode == 0 and all(f"POL{code}" in table.stdout
                                         for code in (101, 107, 201, 303))
    page = cli("rules", "pol302")
    assert page.stdout.startswith("# POL302 dispose-closes-parent")
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead",
                    "## Fix safety", "## References"):
        assert section in page.stdout
    assert cli("rules", "POL999").returncode == 2


# -- fix -----------------------------------------------------------------------------------------

FIXABLE_FIXTURES = [path for path in sorted(FIXTURES.glob("**/*.py"))
                    if re.search(r"# (POL\d{3} ?)+$", path.read_text(), re.MULTILINE)]


def test_fix_over_every_fixable_fixture(tmp_path):
    tree = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, tree)
    groups = defaultdict(list)
    for path in FIXABLE_FIXTURES:
        groups[fixture_options(path)].append(tree / path.relative_to(FIXTURES))
    for options, paths in groups.items():
        before = {path: path.read_text() for path in paths}
        checked = findings_of(cli("check", "--isolated", *options, *paths).stdout)
        first = cli("fix", "--isolated", "--unsafe-fixes", *options, *paths)
        assert first.returncode in (0, 1), first.stderr
        after = {path: path.read_text() for path in paths}
        for path in paths:
            ast.parse(after[path])  # every fixed file parses
        rechecked = findings_of(cli("check", "--isolated", *options, *paths).stdout)
        fixed_codes = re.findall(r"(POL\d{3}) x(\d+)", first.stderr.split(";")[0])
        # the fixed findings are gone (a fix may settle others too: NullPool ends POL102), and
        # no new kind of finding appears
        assert len(rechecked) <= len(checked) - sum(int(count) for _, count in fixed_codes)
        assert {(path, code) for path, _, _, code in rechecked} <= \
            {(path, code) for path, _, _, code in checked}
        second = cli("fix", "--isolated", "--unsafe-fixes", *options, *paths)
        assert {path: path.read_text() for path in paths} == after, "a second fix changed files"
        assert "fixed 0 findings in 0 files" in second.stderr
        assert any(before[path] != after[path] for path in paths) or not fixed_codes


def test_fix_keeps_crlf_bom_encoding_and_mode(tmp_path):
    (tmp_path / "setup.cfg").write_text("[flake8]\nmax-line-length = 100\n")  # nothing to wrap
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(PGBOUNCER_ENGINE.replace("\n", "\r\n").encode())
    bom = tmp_path / "bom.py"
    bom.write_bytes(b"\xef\xbb\xbf" + PGBOUNCER_ENGINE.encode())
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + PGBOUNCER_ENGINE.encode())
    os.chmod(latin, 0o640)
    run = cli("fix", "--isolated", ".", cwd=tmp_path)
    assert "fixed 3 findings in 3 files" in run.stderr, run.stderr
    assert crlf.read_bytes().count(b"\r\n") == crlf.read_bytes().count(b"\n") == 3
    assert bom.read_bytes().startswith(b"\xef\xbb\xbf") and b"pool_pre_ping=True" in \
        bom.read_bytes()
    assert b"# caf\xe9\n" in latin.read_bytes() and b"pool_pre_ping=True" in latin.read_bytes()
    assert stat.S_IMODE(latin.stat().st_mode) == 0o640
    assert not list(tmp_path.glob(".*.tmp"))


def test_diff_writes_nothing(tmp_path):
    (tmp_path / "setup.cfg").write_text("[flake8]\nmax-line-length = 100\n")  # nothing to wrap
    target = tmp_path / "db.py"
    target.write_text(PGBOUNCER_ENGINE)
    run = cli("fix", "--isolated", "--diff", ".", cwd=tmp_path)
    assert run.returncode == 1
    assert "+engine = create_engine(\"postgresql+psycopg2://app@pgbouncer:6432/app\", " \
           "pool_pre_ping=True)" in run.stdout and run.stdout.startswith("--- a/db.py")
    assert target.read_text() == PGBOUNCER_ENGINE


def test_a_read_only_file_is_reported_and_the_run_goes_on(tmp_path):
    locked, free = tmp_path / "locked.py", tmp_path / "free.py"
    for path in (locked, free):
        path.write_text(PGBOUNCER_ENGINE)
    os.chmod(locked, 0o444)
    run = cli("fix", "--isolated", ".", cwd=tmp_path)
    assert run.returncode == 2
    assert "locked.py: read-only; left unchanged" in run.stderr
    assert locked.read_text() == PGBOUNCER_ENGINE and "pool_pre_ping" in free.read_text()


def test_an_interrupted_write_leaves_the_original(tmp_path, monkeypatch, capsys):
    from flake8_pooling import cli as command, files

    target = tmp_path / "db.py"
    target.write_text(PGBOUNCER_ENGINE)
    monkeypatch.chdir(tmp_path)

    def crash(source, destination):
        raise KeyboardInterrupt  # Ctrl-C between writing the new text and the rename

    monkeypatch.setattr(files.os, "replace", crash)
    assert command.main(["fix", "--isolated", "."]) == 130
    assert target.read_text() == PGBOUNCER_ENGINE
    assert [path.name for path in tmp_path.iterdir()] == ["db.py"]  # no temporary file left


def test_fix_refuses_what_it_cannot_parse(tmp_path):
    (tmp_path / "broken.py").write_text("from sqlalchemy import create_engine\nx = (\n")
    run = cli("fix", "--isolated", ".", cwd=tmp_path)
    assert run.returncode == 2 and "broken.py: not fixed: it is not valid Python" in run.stderr


def test_fix_reads_standard_input_and_writes_standard_output():
    run = cli("fix", "--isolated", "-", stdin=PGBOUNCER_ENGINE)
    assert "pool_pre_ping=True" in run.stdout and "fixed 1 finding in 1 file" in run.stderr


def test_the_codemod_commands_run_under_libcst_tool(tmp_path):
    (tmp_path / ".libcst.codemod.yaml").write_text(
        'modules: ["flake8_pooling"]\nformatter: []\ngenerated_code_marker: "@generated"\n'
        'blacklist_patterns: []\nrepo_root: "."\n')
    target = tmp_path / "db.py"
    target.write_text(PGBOUNCER_ENGINE)
    run = subprocess.run([sys.executable, "-m", "libcst.tool", "codemod", "--no-format",
                          "codemods.FixPOL102", "db.py"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "pool_pre_ping=True" in target.read_text() and "NullPool" not in target.read_text()
    run = subprocess.run([sys.executable, "-m", "libcst.tool", "codemod", "--no-format",
                          "codemods.FixPooling", "--unsafe-fixes", "db.py"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert run.returncode == 0 and "poolclass=NullPool" in target.read_text()


def test_extend_select_adds_to_what_fix_fixes(tmp_path):
    target = tmp_path / "db.py"
    target.write_text(textwrap.dedent("""\
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        engine = create_engine("postgresql+psycopg2://app@pgbouncer:6432/app", poolclass=NullPool,
                               pool_size="5")
    """))
    run = cli("fix", "--isolated", "--pooling-sqlalchemy-version=2.0", "--extend-select=POL107",
              ".", cwd=tmp_path)
    fixed = target.read_text()
    assert "pool_size" not in fixed, run.stderr  # POL105's safe fix, selected by default
    assert '"application_name"' in fixed  # and the opt-in POL107, selected in addition


# -- reports that scale, and the flags of flake8 and ruff ------------------------------------------

def _apply_edits(text: str, edits: list[dict]) -> str:
    from flake8_pooling.report import _lines

    lines = _lines(text)
    for edit in sorted(edits, key=lambda edit: edit["start"]["line"], reverse=True):
        lines[edit["start"]["line"] - 1:edit["end"]["line"] - 1] = [edit["content"]]
    return "".join(lines)


def test_each_findings_edits_are_what_fixing_it_alone_gives():
    """Over every fixture: the edits JSON and SARIF print for a finding, worked out once per
    file, turn the file into what `fix` makes of that finding alone."""
    from flake8_pooling.lint import analyse
    from flake8_pooling.options import settings_from
    from flake8_pooling.report import _fixed, fix_edits

    compared = 0
    for path in sorted(FIXTURES.glob("**/*.py")):
        text = path.read_text()
        values = dict(option.lstrip("-").split("=", 1) for option in fixture_options(path)
                      if option.startswith("--pooling-") and "=" in option)
        analysis = analyse(text, str(path), settings_from(values))
        fixable = [finding for finding in analysis.findings if finding.fix]
        for finding, edits in zip(fixable, fix_edits(text, analysis, fixable, str(path))):
            assert _apply_edits(text, edits) == _fixed(analysis, [finding], str(path)), \
                (path.name, finding.code, finding.line)
            compared += 1
    assert compared > 150


def test_json_and_sarif_are_streamed_whole_documents_with_fixes_per_finding(tmp_path):
    engines = "".join(f'e{n} = create_engine("postgresql+psycopg2://app@pgbouncer:6432/d{n}")\n'
                      for n in range(30))
    target = tmp_path / "db.py"
    target.write_text("from sqlalchemy import create_engine\n\n" + engines)
    (tmp_path / "clean.py").write_text("x = 1\n")
    report = json.loads(cli("check", "--isolated", "--format", "json", ".",
                            cwd=tmp_path).stdout)
    assert report["summary"] == {"files": 2, "findings": 60,
                                 "by_code": {"POL101": 30, "POL102": 30}}
    for finding in report["findings"]:
        name = target.read_text().splitlines()[finding["line"] - 1].split(" = ")[0]
        fixed = _apply_edits(target.read_text(), finding["fix"]["edits"])
        ast.parse(fixed)
        # the call as the fix left it, on one line or wrapped one argument a line
        [call] = re.findall(rf"^{name} = create_engine\(.*?\)$", fixed, re.MULTILINE | re.DOTALL)
        assert ("pool_pre_ping=True" if finding["code"] == "POL102" else "NullPool") in call
    sarif = json.loads(cli("check", "--isolated", "--format", "sarif", ".", cwd=tmp_path).stdout)
    assert len(sarif["runs"][0]["results"]) == 60
    assert sarif["runs"][0]["invocations"][0]["executionSuccessful"] is True
    empty = json.loads(cli("check", "--isolated", "--format", "sarif", "clean.py",
                           cwd=tmp_path).stdout)
    assert empty["runs"][0]["results"] == []


def test_many_files_in_processes_give_the_same_output_in_the_same_order(tmp_path):
    for number in range(60):
        folder = tmp_path / f"pkg{number % 7}" / ("sub" if number % 3 else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"m{number}.py").write_text(PGBOUNCER_ENGINE if number % 4 == 0
                                              else "VALUE = 1\n")
    (tmp_path / "pkg0" / "broken.py").write_text("from sqlalchemy import create_engine\nx = (\n")
    one = cli("check", "--isolated", "-j", "1", ".", cwd=tmp_path)
    two = cli("check", "--isolated", "--jobs", "2", ".", cwd=tmp_path)
    auto = cli("check", "--isolated", ".", cwd=tmp_path)
    assert one.stdout == two.stdout == auto.stdout and one.stdout.count("POL101") == 15
    paths = [line.split(":")[0] for line in one.stdout.splitlines()]
    assert paths == sorted(paths)
    assert one.returncode == two.returncode == 2 and "broken.py: not checked" in two.stderr
    assert cli("check", "--jobs", "0", ".", cwd=tmp_path).returncode == 2


def test_closing_line_exit_zero_count_statistics_and_quiet(tmp_path):
    (tmp_path / "db.py").write_text(PGBOUNCER_ENGINE)
    run = cli("check", "--isolated", ".", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.strip() == ("Found 2 findings (1 fixable with `flake8-pooling fix`, 1 more "
                                  "with `--unsafe-fixes`).")
    assert cli("check", "--isolated", "--exit-zero", ".", cwd=tmp_path).returncode == 0
    counted = cli("check", "--isolated", "--count", "--statistics", ".", cwd=tmp_path)
    messages = {line.split()[1]: line.split(" ", 2)[2].rsplit(" [", 1)[0]
                for line in run.stdout.splitlines()}
    assert counted.stdout.splitlines()[-3:] == [
        f"1     POL101 {messages['POL101']}", f"1     POL102 {messages['POL102']}", "2"]
    quiet = cli("check", "--isolated", "-q", ".", cwd=tmp_path)
    assert quiet.stdout == run.stdout and quiet.stderr == ""
    silent = cli("check", "--isolated", "-qq", ".", cwd=tmp_path)
    assert silent.stdout == silent.stderr == "" and silent.returncode == 1
    (tmp_path / "db.py").write_text("from sqlalchemy import create_engine\n")
    clean = cli("check", "--isolated", ".", cwd=tmp_path)
    assert (clean.returncode, clean.stdout, clean.stderr) == (0, "", "All checks passed!\n")
    (tmp_path / "db.py").write_text("x = 1\n" + PGBOUNCER_ENGINE.replace(
        "pgbouncer:6432/app\")", "pgbouncer:6432/app\", pool_pre_ping=True)"))
    one = cli("check", "--isolated", ".", cwd=tmp_path)
    assert one.stderr.strip() == ("Found 1 finding (1 fixable with `flake8-pooling fix "
                                  "--unsafe-fixes`).")


def test_show_source_colour_and_output_file(tmp_path):
    (tmp_path / "db.py").write_text(PGBOUNCER_ENGINE)
    shown = cli("check", "--isolated", "--show-source", "--select=POL102", ".", cwd=tmp_path)
    assert shown.stdout.splitlines()[1:] == [PGBOUNCER_ENGINE.splitlines()[2], " " * 9 + "^"]
    # flake8's own --show-source on the same file: the same source line and caret
    flake8 = run_flake8(["db.py"], "--show-source", "--select=POL102", cwd=tmp_path)
    assert flake8.stdout.splitlines()[1:] == shown.stdout.splitlines()[1:]
    coloured = cli("check", "--isolated", "--color=always", ".", cwd=tmp_path)
    assert "\033[1m./db.py\033[m" in coloured.stdout and "\033[31m" in coloured.stdout
    plain = cli("check", "--isolated", ".", cwd=tmp_path)  # not a terminal: auto means none
    assert "\033[" not in plain.stdout
    report = tmp_path / "report.txt"
    written = cli("check", "--isolated", "--output-file", report, ".", cwd=tmp_path)
    assert written.stdout == "" and report.read_text() == plain.stdout
    alias = cli("check", "--isolated", "-o", tmp_path / "alias.txt", ".", cwd=tmp_path)
    assert alias.returncode == 1 and (tmp_path / "alias.txt").read_text() == plain.stdout
    nowhere = cli("check", "--isolated", "-o", tmp_path / "no" / "such" / "dir.txt", ".",
                  cwd=tmp_path)
    assert nowhere.returncode == 2 and "cannot write the report there" in nowhere.stderr


def test_no_color_is_honoured_on_a_terminal(tmp_path):
    """auto colours a terminal unless NO_COLOR is set: run under a real pseudo-terminal."""
    import pty

    (tmp_path / "db.py").write_text(PGBOUNCER_ENGINE)

    def on_terminal(environment: dict) -> bytes:
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "flake8_pooling.cli", "check", "--isolated", "-q", "."],
            stdout=follower, stderr=subprocess.DEVNULL, cwd=tmp_path, env=environment)
        os.close(follower)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            output += chunk
        process.wait(timeout=120)
        os.close(leader)
        return output

    environment = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    assert b"\033[31m" in on_terminal(environment)
    assert b"\033[" not in on_terminal({**environment, "NO_COLOR": "1"})


def test_a_code_that_matches_no_rule_is_a_warning_and_the_run_goes_on(tmp_path):
    (tmp_path / "db.py").write_text(PGBOUNCER_ENGINE)
    run = cli("check", "--isolated", "-q", "--ignore=POL1O2", "--extend-select=POL107,POL",
              ".", cwd=tmp_path)
    assert run.returncode == 1 and "POL102" in run.stdout
    assert run.stderr.splitlines() == [
        "flake8-pooling: warning: --ignore 'POL1O2' matches no rule (`flake8-pooling rules` "
        "lists them); it selects or ignores nothing"]
    # other plugins' codes in flake8's own config are theirs, not typos
    (tmp_path / "setup.cfg").write_text("[flake8]\nextend-ignore = E501,POL999\n")
    configured = cli("check", "-q", ".", cwd=tmp_path)
    assert configured.stderr.count("warning") == 1 and "'POL999'" in configured.stderr


def test_syntax_errors_exit_2_with_one_line_however_they_are_found(tmp_path):
    (tmp_path / "ast_rejects.py").write_text("from sqlalchemy import create_engine\nx = (\n")
    (tmp_path / "clean.py").write_text("from sqlalchemy import create_engine\n")
    run = cli("check", "--isolated", ".", cwd=tmp_path)
    assert run.returncode == 2
    assert "./ast_rejects.py: not checked: it is not valid Python ('(' was never closed at " \
        "line 2)" in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.splitlines()) == 2
    # a file with none of SQLAlchemy's words is not read past the prefilter, as the flake8
    # plugin never reads it: its syntax is flake8's E999, not ours
    (tmp_path / "ast_rejects.py").write_text("x = (\n")
    assert cli("check", "--isolated", ".", cwd=tmp_path).returncode == 0


def test_rules_as_json_and_by_name():
    listed = json.loads(cli("rules", "--format", "json").stdout)
    first = listed[0]
    assert set(first) == {"code", "name", "summary", "fix", "default", "level", "doc",
                          "references"}
    assert (first["code"], first["name"], first["default"]) == \
        ("POL101", "pooled-behind-pooler", "on")
    assert (ROOT / first["doc"]).is_file()
    assert {rule["default"] for rule in listed} == {"on", "opt-in"}
    by_name = cli("rules", "pooled-behind-pooler")
    assert by_name.stdout == cli("rules", "POL101").stdout and by_name.returncode == 0
    assert json.loads(cli("rules", "--format", "json", "pol107").stdout)["default"] == "opt-in"
    unknown = cli("rules", "pooled-behind-poolers")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.strip() == ("flake8-pooling: no rule 'pooled-behind-poolers'; "
                                      "`flake8-pooling rules` lists them")


def test_budget_json_is_a_document_even_with_nothing_to_count(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'empty'\n")
    run = cli("budget", "--format", "json", cwd=tmp_path)
    document = json.loads(run.stdout)
    assert run.returncode == 0 and document["budgets"] == []
    assert document["reason"].startswith("no gunicorn config or server command with engines")


def test_budget_says_each_assumption_once(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "db.py").write_text(PGBOUNCER_ENGINE)
    (tmp_path / "gunicorn.conf.py").write_text(
        "import multiprocessing\n\nworkers = multiprocessing.cpu_count() * 2\n"
        "threads = multiprocessing.cpu_count()\n")
    run = cli("budget", cwd=tmp_path)
    assert run.stdout.count(f"cpu_count() = {os.cpu_count()} on this machine") == 1, run.stdout
    document = json.loads(cli("budget", "--format", "json", cwd=tmp_path).stdout)
    [budget] = document["budgets"]
    assert len(budget["assumptions"]) == len(set(budget["assumptions"])) >= 1


def _loaded_by(*arguments, cwd: Path) -> set[str]:
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "flake8_pooling.cli",
                          *map(str, arguments)], capture_output=True, text=True, cwd=cwd,
                         timeout=120)
    return set(re.findall(r"^import time:.*\|\s+(\S+)$", run.stderr, re.MULTILINE))


def test_what_check_loads_is_what_the_file_needs(tmp_path):
    (tmp_path / "plain.py").write_text("import math\n\nROOT_TWO = math.sqrt(2)\n")
    (tmp_path / "db.py").write_text(PGBOUNCER_ENGINE)
    plain = _loaded_by("check", "--isolated", "plain.py", cwd=tmp_path)
    assert "flake8_pooling.checking" in plain  # the measurement sees our modules
    assert not {name for name in plain if name.split(".")[0] in ("libcst", "sqlalchemy")}
    assert "importlib.metadata" not in plain  # the installed versions matter to rules only
    text = _loaded_by("check", "--isolated", "db.py", cwd=tmp_path)
    assert "libcst" in text and not {"flake8_pooling.fix", "libcst.codemod"} & text
    as_json = _loaded_by("check", "--isolated", "--format", "json", "db.py", cwd=tmp_path)
    assert "flake8_pooling.fix" in as_json  # the edits of the fixes are the fixer's


def test_statistics_and_count_keep_a_json_document_whole(tmp_path):
    (tmp_path / "db.py").write_text(PGBOUNCER_ENGINE)
    for output in ([], ["-o", tmp_path / "report.json"]):
        run = cli("check", "--isolated", "--format", "json", "--statistics", "--count", *output,
                  ".", cwd=tmp_path)
        document = json.loads((tmp_path / "report.json").read_text() if output else run.stdout)
        assert document["summary"]["findings"] == 2
        assert run.stderr.splitlines()[-3:][0].startswith("1     POL101 ")
        assert run.stderr.splitlines()[-1] == "2"
