"""The README promises what the code does: a row and a page per rule, the commands CI runs."""

from __future__ import annotations

import re
import subprocess

from flake8_pooling.rules import all_rules

from .helpers import ROOT

README = (ROOT / "README.md").read_text()


def test_every_rule_has_a_readme_row_with_its_page():
    for rule in all_rules():
        row = next((line for line in README.splitlines()
                    if line.startswith(f"| [{rule.code}](docs/rules/{rule.code}.md) ")), None)
        assert row, f"README has no row for {rule.code}"
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1] == rule.name
        assert cells[3] == rule.fix_availability
        assert cells[4] == ("opt-in" if rule.opt_in else "on")


def test_rule_pages_are_generated_from_the_rules():
    for rule in all_rules():
        page = ROOT / "docs" / "rules" / f"{rule.code}.md"
        assert page.read_text() == rule.documentation(), \
            f"{page} is stale: run python -m flake8_pooling.rules docs/rules"


def test_ci_runs_the_readme_test_command():
    commands = re.findall(r"```sh\n(.+?)\n```", README)
    assert len(commands) == 2
    install_and_run, test = commands
    assert "flake8 --select=POL examples/" in install_and_run
    assert 'pip install ".[test]"' in test and test.endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    extracted = subprocess.run(
        ["bash", "-c", re.search(r"command=\$\((.+)\)\n", ci).group(1)],
        capture_output=True, text=True, cwd=ROOT).stdout.strip()
    assert extracted == test


def test_readme_documents_every_option():
    from flake8_pooling.plugin import PoolingPlugin

    class Recorder:
        names: list[str] = []

        def add_option(self, name, **kwargs):
            self.names.append(name)

    recorder = Recorder()
    PoolingPlugin.add_options(recorder)
    for name in recorder.names:
        assert f"`{name.lstrip('-')}`" in README, f"{name} is not documented"


def test_the_project_lints_clean_with_its_own_config():
    import sys

    run = subprocess.run([sys.executable, "-m", "flake8", "flake8_pooling", "tests", "benchmarks"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
