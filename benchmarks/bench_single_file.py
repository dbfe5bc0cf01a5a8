"""What one lint of one candidate file costs, as editors and pre-commit run flake8 on it.

    python benchmarks/bench_single_file.py [--runs 15] [FILE ...]

(1) fresh process: `flake8 FILE` with the plugin against the same flake8 without it (its own
    virtual environment, made once in the corpus cache), interleaved runs, medians of wall and
    CPU time; target: at most 0.5 s added.
(2) warm: in one long-lived process (VS Code's flake8 extension, the language server, the
    pylsp plugin), flake8's application API run on the file again and again, with the plugin
    and with its checks switched off in the same process; the median difference per lint after
    the first; target: at most 50 ms.
Default FILE: the example service's db.py (a candidate with findings) and the same service's
settings.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_flake8 import baseline_python  # noqa: E402
from corpus import CACHE  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = [ROOT / "examples" / "orders_service" / "broken" / "db.py",
            ROOT / "examples" / "orders_service" / "broken" / "settings.py"]

_WARM = r"""
import statistics, sys, time
from flake8.main.application import Application
from flake8_pooling.plugin import PoolingPlugin

path, repeat, output = sys.argv[1], int(sys.argv[2]), sys.argv[3]
arguments = ["--isolated", f"--output-file={output}", path]
checks = PoolingPlugin.run


def lint():
    start = time.perf_counter()
    Application().run(arguments)
    return time.perf_counter() - start


def nothing(self):
    return iter(())


first = lint()
with_plugin, without = [], []
for _ in range(repeat):  # interleaved: the plugin's checks on, then off
    PoolingPlugin.run = checks
    with_plugin.append(lint())
    PoolingPlugin.run = nothing
    without.append(lint())
differences = [a - b for a, b in zip(with_plugin, without)]
print(first, statistics.median(with_plugin), statistics.median(without),
      statistics.median(differences))
"""


def fresh(python: str, path: Path) -> tuple[float, float]:
    start = time.perf_counter()
    process = subprocess.Popen([python, "-m", "flake8", "--isolated", str(path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=CACHE)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"flake8 on {path} failed with {os.waitstatus_to_exitcode(status)}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULTS)
    parser.add_argument("--runs", type=int, default=15)
    arguments = parser.parse_args()
    baseline = str(baseline_python())
    for path in arguments.files:
        path = path.resolve()
        timings = {"with": [], "without": []}
        for _ in range(arguments.runs):
            timings["with"].append(fresh(sys.executable, path))
            timings["without"].append(fresh(baseline, path))
        wall = {name: statistics.median(t[0] for t in values) for name, values in timings.items()}
        cpu = {name: statistics.median(t[1] for t in values) for name, values in timings.items()}
        with tempfile.TemporaryDirectory() as scratch:
            warm = subprocess.run([sys.executable, "-c", _WARM, str(path), "20",
                                   str(Path(scratch) / "out")], capture_output=True, text=True,
                                  check=True, cwd=path.parent)
        first, warm_with, warm_without, added = map(float, warm.stdout.split())
        print(f"{path.relative_to(ROOT) if ROOT in path.parents else path} "
              f"({len(path.read_text().splitlines())} lines), {arguments.runs} fresh runs each:")
        print(f"  (1) fresh flake8: with the plugin {wall['with']:.3f} s, without "
              f"{wall['without']:.3f} s: added {wall['with'] - wall['without']:.3f} s wall, "
              f"{cpu['with'] - cpu['without']:.3f} s CPU (target <= 0.5 s)")
        print(f"  (2) warm lint: first {first * 1000:.0f} ms; then {warm_with * 1000:.1f} ms "
              f"with the plugin, {warm_without * 1000:.1f} ms without: added "
              f"{added * 1000:.1f} ms per lint (target <= 50 ms)")


if __name__ == "__main__":
    main()
