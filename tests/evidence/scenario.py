"""Running a scenario: the flagged code and the code flake8-pooling's fix makes of it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from flake8_pooling.fix import fix_source
from flake8_pooling.lint import lint
from flake8_pooling.settings import Settings

# The scenario URLs use free ports, not 6432: the project says PgBouncer is in front
BEHIND_PGBOUNCER = Settings.from_values(pooler="pgbouncer", pooler_mode="transaction")


def flagged_and_fixed(code: str, rule: str, settings: Settings = BEHIND_PGBOUNCER,
                      unsafe: bool = False) -> str:
    """Check flake8-pooling reports `rule` on the code, and return the code its fix makes."""
    code = textwrap.dedent(code)
    assert rule in {finding.code for finding in lint(code, "scenario.py", settings)}
    fixed = fix_source(code, "scenario.py", settings, unsafe=unsafe, select=[rule])
    assert [finding.code for finding in fixed.applied] == [rule], fixed.applied
    left = lint(fixed.source, "scenario.py", settings)
    assert rule not in {finding.code for finding in left}
    return fixed.source


def run(*parts: str, timeout: float = 60, input: str | None = None
        ) -> subprocess.CompletedProcess:
    """Run scenario code (its parts, each dedented) in a fresh interpreter: forks and threads
    stay out of pytest's process."""
    code = "\n".join(textwrap.dedent(part) for part in parts)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, input=input)
