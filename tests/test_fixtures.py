"""Every fixture file through real flake8: each marked line reports its codes at the columns its
markers give (`# POL101:10`), nothing else does."""

from __future__ import annotations

from collections import defaultdict

import pytest

from .helpers import FIXTURES, expected, fixture_options, reported, run_flake8

FIXTURE_FILES = sorted(FIXTURES.glob("**/*.py"))


@pytest.fixture(scope="module")
def flake8_results() -> dict:
    by_options = defaultdict(list)
    for path in FIXTURE_FILES:
        by_options[fixture_options(path)].append(path)
    results = {}
    for options, paths in by_options.items():
        run = run_flake8(paths, *options)
        assert run.returncode in (0, 1), run.stderr
        assert "Traceback" not in run.stderr, run.stderr
        results.update(reported(run.stdout, columns=True))
    return results


@pytest.mark.parametrize("path", FIXTURE_FILES,
                         ids=lambda path: str(path.relative_to(FIXTURES)))
def test_fixture_reports_exactly_its_markers(path, flake8_results):
    assert flake8_results.get(str(path.resolve()), {}) == expected(path)


def test_every_rule_has_flagging_and_quiet_fixtures():
    from flake8_pooling.rules import all_rules

    for rule in all_rules():
        own = [path for path in FIXTURE_FILES
               if rule.code.lower() in str(path.relative_to(FIXTURES))]
        assert own, f"{rule.code} has no fixture file or project named after it"
        flagged = {line for path in own for line, _, code in expected(path) if code == rule.code}
        assert flagged, f"{rule.code}: no fixture line flags it"
        quiet = [number for path in own
                 for number, line in enumerate(path.read_text().splitlines(), start=1)
                 if line.strip() and not line.lstrip().startswith("#")
                 and (number, rule.code) not in {(line, code) for line, _, code in expected(path)}]
        assert quiet, f"{rule.code}: no fixture line that must stay quiet"


def test_editors_get_findings_for_the_buffer_not_the_file_on_disk(tmp_path):
    """Editors run `flake8 --stdin-display-name PATH -` on every save: the buffer is the truth."""
    import subprocess
    import sys

    on_disk = tmp_path / "db.py"
    on_disk.write_text("import os\n")
    buffer = ('from sqlalchemy import create_engine\n'
              'engine = create_engine("sqlite:///a.db", poolclass="NullPool")\n')
    run = subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--select=POL",
         "--stdin-display-name", str(on_disk), "-"],
        input=buffer, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert run.stdout.startswith(f"{on_disk}:2:"), run.stdout + run.stderr
    assert "POL104" in run.stdout
