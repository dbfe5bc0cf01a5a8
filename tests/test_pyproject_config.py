"""`[tool.flake8-pooling]` in pyproject.toml decides for flake8 as it does for `check`; flake8's
own config and command line win for the keys they set. Run through real flake8."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from .test_cli import PGBOUNCER_ENGINE, cli, findings_of

PYPROJECT = textwrap.dedent("""\
    [tool.flake8-pooling]
    pooler-mode = "session"
    extend-select = ["POL107"]
    extend-ignore = ["POL102"]
""")


def flake8(*arguments, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flake8", "--select=POL", *arguments, "."],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def codes(output: str) -> set[str]:
    return {code for _, _, _, code in findings_of(output)}


def test_flake8_reads_the_pyproject_table_as_check_does(tmp_path):
    (tmp_path / "db.py").write_text(PGBOUNCER_ENGINE)
    assert codes(flake8(cwd=tmp_path).stdout) == {"POL101", "POL102"}
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    through_flake8 = flake8(cwd=tmp_path)
    # session mode silences POL101, POL102 is ignored, the opt-in POL107 is selected
    assert codes(through_flake8.stdout) == {"POL107"}, through_flake8.stderr
    assert findings_of(through_flake8.stdout) == findings_of(
        cli("check", "-q", ".", cwd=tmp_path).stdout)


def test_flake8s_own_config_and_command_line_win_where_both_set_a_key(tmp_path):
    (tmp_path / "db.py").write_text(PGBOUNCER_ENGINE)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "setup.cfg").write_text("[flake8]\npooling-pooler-mode = transaction\n")
    # the pooler mode is flake8's; the selection keys flake8 was not given stay pyproject's
    assert codes(flake8(cwd=tmp_path).stdout) == {"POL101", "POL107"}
    assert codes(flake8("--extend-ignore=POL107", cwd=tmp_path).stdout) == {"POL101", "POL102"}
    assert codes(cli("check", "-q", ".", cwd=tmp_path).stdout) == {"POL101", "POL107"}


def test_a_broken_pyproject_is_one_line_and_flake8_goes_on(tmp_path):
    (tmp_path / "db.py").write_text(PGBOUNCER_ENGINE)
    (tmp_path / "pyproject.toml").write_text("[tool.flake8-pooling\npooler = 1\n")
    run = flake8(cwd=tmp_path)
    assert codes(run.stdout) == {"POL101", "POL102"}
    assert run.stderr.count("pyproject.toml: cannot read it") == 1, run.stderr
    (tmp_path / "pyproject.toml").write_text('[tool.flake8-pooling]\nextend-ignore = ["POL1O2"]\n')
    warned = flake8(cwd=tmp_path)
    assert "'POL1O2' matches no rule" in warned.stderr and codes(warned.stdout) == \
        {"POL101", "POL102"}
