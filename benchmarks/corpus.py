"""The pinned corpus of real application code the benchmarks and the corpus check run on.

Wheels are downloaded once with pip (PyPI) into a cache directory and unpacked there:
$FLAKE8_POOLING_CORPUS, else ~/.cache/flake8-pooling-corpus. Nothing here is committed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

# Applications that use SQLAlchemy in production, at fixed versions so results can be compared
APPLICATIONS = (
    ("apache-superset", "6.1.0"),
    ("mlflow", "3.18.0"),
    ("apache-airflow-core", "3.3.2"),
    ("prefect", "3.9.1"),
)
CACHE = Path(os.environ.get("FLAKE8_POOLING_CORPUS",
                            Path.home() / ".cache" / "flake8-pooling-corpus"))


def application_dirs(names: list[str] | None = None) -> list[Path]:
    """Unpacked wheels of the applications (all, or those named), downloading what is missing."""
    chosen = [(name, version) for name, version in APPLICATIONS if not names or name in names]
    wheels, sources = CACHE / "wheels", CACHE / "src"
    found = []
    for name, version in chosen:
        target = sources / f"{name}-{version}"
        if not target.is_dir():
            wheels.mkdir(parents=True, exist_ok=True)
            pattern = f"{name.replace('-', '_')}-{version}-*.whl"
            if not list(wheels.glob(pattern)):
                subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                                "-d", str(wheels), f"{name}=={version}"], check=True)
            with zipfile.ZipFile(next(wheels.glob(pattern))) as archive:
                archive.extractall(target)
        found.append(target)
    return found


def python_file_count(paths: list[Path]) -> int:
    return sum(1 for path in paths for _ in path.rglob("*.py"))
