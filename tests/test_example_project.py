"""The README's first command: flake8 over examples/ reports the broken service, not the fixed."""

from __future__ import annotations

from flake8_pooling.fix import fix_source
from flake8_pooling.lint import lint

from .helpers import ROOT, reported, run_flake8

EXAMPLE = ROOT / "examples" / "orders_service"


def test_flake8_reports_the_broken_service_and_nothing_for_the_fixed_one():
    run = run_flake8([ROOT / "examples"])
    assert run.returncode == 1, run.stderr
    found = reported(run.stdout)
    broken = {path: counts for path, counts in found.items() if "/broken/" in path}
    fixed = {path: counts for path, counts in found.items() if "/broken/" not in path}
    assert fixed == {}
    codes = {code for counts in broken.values() for _, code in counts}
    assert codes == {"POL101", "POL102", "POL103", "POL104", "POL105", "POL106", "POL201",
                     "POL301", "POL302", "POL304"}


def test_fixing_the_broken_service_leaves_only_what_has_no_fix():
    for path in (EXAMPLE / "broken").glob("*.py"):
        result = fix_source(path.read_text(), str(path), unsafe=True)
        left = [finding for finding in lint(result.source, str(path))
                if finding.code != "POL107"]  # opt-in: not fixed unless selected
        assert all(finding.fix is None for finding in left), left
