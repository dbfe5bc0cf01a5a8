"""flake8 with and without flake8-pooling, and flake8-pooling check, on real application code.

    python benchmarks/bench_flake8.py [--runs 5] [--apps prefect apache-airflow-core]
    python benchmarks/bench_flake8.py --trees DIR [DIR ...] [--jobs 2]

Prints, side by side from one run, medians over the runs (interleaved, so the machine's load
falls on all of them alike):
  (1) flake8 -jN with the plugin / flake8 -jN without it (same flake8 version): target <= 1.02
  (2) flake8-pooling check / plain flake8 -jN (without the plugin): target <= 0.10
  (3) peak memory (max RSS) of flake8-pooling check
Each ratio is given twice, as the ratio of the two columns' medians and as the median of each
run's own pair, and each as wall time and as CPU time (user + system, children included). On a
shared machine the wall time swings with the load of others; the CPU time a process spends is
much steadier, and with -j1 it is what the wall time is on a quiet machine.
The corpus is the pinned application wheels (corpus.py), or the trees given with --trees (the
real-world evaluation's, for example). The baseline flake8 lives in a virtual environment of
its own, made once in the corpus cache.
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


def timed(command: list[str]) -> tuple[float, float, int]:
    """Wall time, CPU time (its own and its children's) and peak RSS (KiB) of one command."""
    start = time.perf_counter()
    # from a neutral directory: a checkout's *.egg-info on sys.path would hand the plugin to
    # the baseline flake8
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=CACHE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    # wait4 counts the process's own CPU time and that of the children it waited for (-jN)
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{command[:4]} failed with {os.waitstatus_to_exitcode(status)}")
    if elapsed < 0.5:  # a run over a thousand files takes longer: something broke
        raise SystemExit(f"{command[:4]} finished in {elapsed:.2f}s: it did not lint the corpus")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--apps", nargs="*", default=["prefect", "apache-airflow-core"])
    parser.add_argument("--trees", nargs="*", type=Path, help="lint these directories instead")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="flake8's -j (default 1)")
    args = parser.parse_args()
    paths = [str(path.resolve()) for path in args.trees] if args.trees \
        else [str(path) for path in application_dirs(args.apps)]
    jobs = f"-j{args.jobs}"
    script = shutil.which("flake8-pooling", path=os.path.dirname(sys.executable))
    commands = {
        "flake8 without plugin": [str(baseline_python()), "-m", "flake8", "--isolated", jobs,
                                  "--exit-zero", *paths],
        "flake8 with plugin": [sys.executable, "-m", "flake8", "--isolated", jobs,
                               "--exit-zero", *paths],
        "flake8-pooling check": [script, "check", "--isolated", *paths],
    }
    times = {name: [] for name in commands}
    cpu = {name: [] for name in commands}
    memory = {name: [] for name in commands}
    for run in range(args.runs):
        for name, command in commands.items():
            elapsed, spent, peak = timed(command)
            times[name].append(elapsed)
            cpu[name].append(spent)
            memory[name].append(peak)
        print(f"run {run + 1}/{args.runs}: " + ", ".join(
            f"{name} {times[name][-1]:.2f}s (cpu {cpu[name][-1]:.2f}s)" for name in commands),
            flush=True)
    median = {name: statistics.median(values) for name, values in times.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    base, base_cpu = median["flake8 without plugin"], median_cpu["flake8 without plugin"]
    corpus = ", ".join(Path(p).name for p in paths) if args.trees else ", ".join(args.apps)
    print(f"\ncorpus: {corpus} ({python_file_count([Path(p) for p in paths])} .py files); "
          f"flake8 {metadata.version('flake8')} {jobs}; Python {sys.version.split()[0]}; "
          f"{os.cpu_count()} CPUs; {args.runs} runs, interleaved")
    for name in commands:
        print(f"  {name:24} median {median[name]:7.2f}s  (min {min(times[name]):.2f}s, max "
              f"{max(times[name]):.2f}s)  cpu {median_cpu[name]:7.2f}s  "
              f"peak RSS {max(memory[name]) / 1024:.0f} MiB")
    for label, name, target in (("(1) flake8 with / without plugin", "flake8 with plugin", 1.02),
                                ("(2) check / flake8 without plugin", "flake8-pooling check",
                                 0.10)):
        # the ratio of each run's pair too: flake8 alone swings by a tenth from run to run here,
        # more than the plugin costs, and the medians of two columns need not come from one run
        paired = statistics.median(with_ / without for with_, without
                                   in zip(times[name], times["flake8 without plugin"]))
        paired_cpu = statistics.median(with_ / without for with_, without
                                       in zip(cpu[name], cpu["flake8 without plugin"]))
        print(f"  {label + ':':36} wall {median[name] / base:.3f}, cpu "
              f"{median_cpu[name] / base_cpu:.3f}; run by run wall {paired:.3f}, cpu "
              f"{paired_cpu:.3f}  (target <= {target})")
    print(f"  (3) check peak memory:              {max(memory['flake8-pooling check']) / 1024:.0f}"
          f" MiB")


if __name__ == "__main__":
    main()
