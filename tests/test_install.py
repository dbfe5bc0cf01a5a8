"""The install routes the README gives, from what exists: a checkout, and pre-commit pointed at
a commit of it (there is no release to install from)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT
from .test_cli import PGBOUNCER_ENGINE

PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def git(*arguments, cwd: Path) -> str:
    environment = {**os.environ, "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
                   "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com"}
    return subprocess.run(["git", *arguments], cwd=cwd, check=True, capture_output=True,
                          text=True, env=environment).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit try-repo needs git")
def test_pre_commit_try_repo_runs_the_hook_on_a_project(tmp_path):
    assert PRE_COMMIT.exists(), "pre-commit is in the test extra: pip install '.[test]'"
    # try-repo installs from a git repository: the checkout as it is, as one commit
    checkout = tmp_path / "flake8-pooling"
    tracked = git("ls-files", "-z", cwd=ROOT).split("\0")
    for name in filter(None, tracked):
        source = ROOT / name
        if source.is_file() and not name.startswith(("tests/", "benchmarks/", "docs/")):
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    git("init", "-q", cwd=checkout)
    git("add", ".", cwd=checkout)
    git("commit", "-q", "-m", "snapshot", cwd=checkout)
    project = tmp_path / "project"
    project.mkdir()
    (project / "db.py").write_text(PGBOUNCER_ENGINE)
    (project / "clean.py").write_text("VALUE = 1\n")
    git("init", "-q", cwd=project)
    git("add", ".", cwd=project)
    environment = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    run = subprocess.run([str(PRE_COMMIT), "try-repo", str(checkout), "flake8-pooling",
                          "--all-files"], cwd=project, capture_output=True, text=True,
                         env=environment, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr  # the hook failed: a finding
    assert "flake8-pooling check" in run.stdout and "Failed" in run.stdout
    assert "db.py:3:10: POL101" in run.stdout and "clean.py" not in run.stdout.split("Failed")[1]
