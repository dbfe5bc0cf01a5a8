"""`flake8-pooling check` against flake8 and ruff, and what one run costs in memory.

    python benchmarks/bench_cli.py [--runs 3] [TREE ...]

(a) One file without the vocabulary (what pre-commit hands `check` for most commits): `check`
    against `flake8` on it, and the modules `check` loaded (`python -X importtime`): neither
    libcst nor SQLAlchemy. Target: `check` at most flake8's own time.
(b) A whole tree (default: the pinned corpus, see corpus.py): `check` against `flake8` (its
    default `-j auto`) and against `ruff check` with ruff's default rules and no cache. Targets:
    at most 0.10x flake8 and 3x ruff.
(c) Peak memory of `check` (the largest process, with and without `--jobs 1`) on the tree
    copied once, twice and four times: it should not grow with the number of files.

Runs of the commands compared are interleaved; medians are quoted. ruff must be installed in
the same environment (`pip install ruff`). `--compare DIR` runs an older copy of the package
beside it (`git archive COMMIT | tar -x -C DIR`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import corpus  # noqa: E402

BIN = Path(sys.executable).parent
CHECK = [sys.executable, "-m", "flake8_pooling.cli", "check", "--isolated", "-q"]
# --compare DIR: the same check from another copy of the source (`git archive` of an older
# commit), which may have neither -q nor --jobs
OLD_CHECK = [sys.executable, "-m", "flake8_pooling.cli", "check", "--isolated"]
PLAIN_FILE = '''"""Arithmetic, and nothing about databases."""

import math


def hypotenuse(a: float, b: float) -> float:
    return math.sqrt(a * a + b * b)
'''


def environment(source: Path | None) -> dict[str, str] | None:
    return None if source is None else {**os.environ, "PYTHONPATH": str(source)}


def timed(command: list[str], cwd: Path, source: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=environment(source))
    return time.perf_counter() - start


def peak_memory(command: list[str], cwd: Path, source: Path | None = None) -> int:
    """The peak RSS in KiB of the command's largest process, measured in a fresh process."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], "
             "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    run = subprocess.run([sys.executable, "-c", probe, *command], cwd=cwd, capture_output=True,
                         text=True, env=environment(source))
    return int(run.stdout.strip())


def interleaved(commands: dict[str, tuple], cwd: Path, runs: int) -> dict[str, float]:
    """{name: (command, source or None)} -> {name: median seconds}."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (command, source) in commands.items():
            times[name].append(timed(command, cwd, source))
    return {name: statistics.median(values) for name, values in times.items()}


def heavy_modules(command: list[str], cwd: str, source: Path | None) -> list[str]:
    imports = subprocess.run([sys.executable, "-X", "importtime", *command[1:]],
                             capture_output=True, text=True, cwd=cwd,
                             env=environment(source)).stderr
    loaded = set(re.findall(r"\|\s+(\S+)$", imports, re.MULTILINE))
    return sorted(name for name in loaded if name.split(".")[0] in ("libcst", "sqlalchemy"))


def one_plain_file(runs: int, old: Path | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "geometry.py"
        path.write_text(PLAIN_FILE)
        commands = {"check": ([*CHECK, str(path)], None),
                    "flake8": ([sys.executable, "-m", "flake8", "--isolated", str(path)], None)}
        if old:
            commands["check (old)"] = ([*OLD_CHECK, str(path)], old)
        medians = interleaved(commands, Path(folder), runs)
        heavy = {name: heavy_modules(command, folder, source)
                 for name, (command, source) in commands.items() if name.startswith("check")}
    print(f"(a) one file without the vocabulary, {runs} interleaved runs")
    for name in commands:
        ratio = "" if name == "flake8" else \
            f"   / flake8 {medians[name] / medians['flake8']:.2f} (target <= 1)"
        loaded = "" if name == "flake8" else \
            f"   libcst/SQLAlchemy modules loaded: {len(heavy[name])}"
        print(f"    {name:<12} {medians[name]:.3f} s{ratio}{loaded}")


def whole_tree(trees: list[Path], runs: int, old: Path | None) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for tree in trees:
            shutil.copytree(tree, root / tree.name, symlinks=True)
        files = sum(1 for _ in root.rglob("*.py"))
        commands = {
            "check": ([*CHECK, "."], None),
            "check -j1": ([*CHECK, "--jobs", "1", "."], None),
            "flake8": ([sys.executable, "-m", "flake8", "--isolated", "."], None),
            "ruff": ([str(BIN / "ruff"), "check", "--isolated", "--no-cache", "-q", "."], None),
        }
        if old:
            commands["check (old)"] = ([*OLD_CHECK, "."], old)
        medians = interleaved(commands, root, runs)
    print(f"(b) {files} files ({', '.join(tree.name for tree in trees)}), {runs} interleaved "
          f"runs, {os.cpu_count()} CPUs")
    for name in commands:
        ratios = "" if name in ("flake8", "ruff") else (
            f"   / flake8 {medians[name] / medians['flake8']:.3f} (target <= 0.10)"
            f"   / ruff {medians[name] / medians['ruff']:.2f} (target <= 3)")
        print(f"    {name:<12} {medians[name]:6.2f} s{ratios}")


def memory(trees: list[Path], old: Path | None) -> None:
    print("(c) peak memory of check (its largest process), MiB")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for copies in (1, 2, 4):
            while len(list(root.iterdir())) < copies:
                copy = root / f"copy{len(list(root.iterdir()))}"
                for tree in trees:
                    shutil.copytree(tree, copy / tree.name, symlinks=True)
            files = sum(1 for _ in root.rglob("*.py"))
            figures = [f"--jobs 1 {peak_memory([*CHECK, '--jobs', '1', '.'], root) / 1024:.0f}",
                       f"default jobs {peak_memory([*CHECK, '.'], root) / 1024:.0f}"]
            if old:
                figures.append(f"old {peak_memory([*OLD_CHECK, '.'], root, old) / 1024:.0f}")
            print(f"    {copies}x ({files} files): {', '.join(figures)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--compare", type=Path, metavar="DIR",
                        help="also run the check of the flake8_pooling package in DIR")
    parser.add_argument("trees", nargs="*", type=Path,
                        help="trees to check (default: prefect and apache-airflow-core)")
    arguments = parser.parse_args()
    trees = arguments.trees or corpus.application_dirs(["prefect", "apache-airflow-core"])
    old = arguments.compare.resolve() if arguments.compare else None
    one_plain_file(max(arguments.runs, 5), old)
    whole_tree(trees, arguments.runs, old)
    if not arguments.skip_memory:
        memory(trees, old)


if __name__ == "__main__":
    main()
