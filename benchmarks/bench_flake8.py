"""flake8 with and without flake8-pooling, and flake8-pooling check, on real application code.

    python benchmarks/bench_flake8.py [--runs 5] [--apps prefect apache-airflow-core]

Prints, side by side from one run, medians over the runs (interleaved, so the machine's load
falls on all of them alike):
  (1) flake8 -j1 with the plugin / flake8 -j1 without it (same flake8 version): target <= 1.05
  (2) flake8-pooling check / plain flake8 -j1 (without the plugin): target <= 0.25
  (3) peak memory (max RSS) of flake8-pooling check
The baseline flake8 lives in a virtual environment of its own, made once in the corpus cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from corpus import CACHE, application_dirs, python_file_count  # noqa: E402


def baseline_python() -> Path:
    """A Python whose flake8 is the same version as ours, without flake8-pooling."""
    version = metadata.version("flake8")
    venv = CACHE / f"flake8-{version}-baseline"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", f"flake8=={version}"],
                       check=True)
    return python


def timed(command: list[str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one command."""
    start = time.perf_counter()
    # from a neutral directory: a checkout's *.egg-info on sys.path would hand the plugin to
    # the baseline flake8
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=CACHE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{command[:4]} failed with {os.waitstatus_to_exitcode(status)}")
    if elapsed < 0.5:  # a run over a thousand files takes longer: something broke
        raise SystemExit(f"{command[:4]} finished in {elapsed:.2f}s: it did not lint the corpus")
    return elapsed, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--apps", nargs="*", default=["prefect", "apache-airflow-core"])
    args = parser.parse_args()
    paths = [str(path) for path in application_dirs(args.apps)]
    script = shutil.which("flake8-pooling", path=os.path.dirname(sys.executable))
    commands = {
        "flake8 without plugin": [str(baseline_python()), "-m", "flake8", "--isolated", "-j1",
                                  "--exit-zero", *paths],
        "flake8 with plugin": [sys.executable, "-m", "flake8", "--isolated", "-j1",
                               "--exit-zero", *paths],
        "flake8-pooling check": [script, "check", "--isolated", *paths],
    }
    times = {name: [] for name in commands}
    memory = {name: [] for name in commands}
    for run in range(args.runs):
        for name, command in commands.items():
            elapsed, peak = timed(command)
            times[name].append(elapsed)
            memory[name].append(peak)
        print(f"run {run + 1}/{args.runs}: " + ", ".join(
            f"{name} {times[name][-1]:.2f}s" for name in commands), flush=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    base = median["flake8 without plugin"]
    print(f"\ncorpus: {', '.join(f'{name}' for name in args.apps)} "
          f"({python_file_count([Path(p) for p in paths])} .py files); flake8 "
          f"{metadata.version('flake8')}; Python {sys.version.split()[0]}; "
          f"{os.cpu_count()} CPUs; {args.runs} runs, interleaved")
    for name in commands:
        print(f"  {name:24} median {median[name]:7.2f}s  (min {min(times[name]):.2f}s, max "
              f"{max(times[name]):.2f}s)  peak RSS {max(memory[name]) / 1024:.0f} MiB")
    print(f"  (1) flake8 with / without plugin:   {median['flake8 with plugin'] / base:.3f}"
          f"  (target <= 1.05)")
    print(f"  (2) check / flake8 without plugin:  {median['flake8-pooling check'] / base:.3f}"
          f"  (target <= 0.25)")
    print(f"  (3) check peak memory:              {max(memory['flake8-pooling check']) / 1024:.0f}"
          f" MiB")


if __name__ == "__main__":
    main()
