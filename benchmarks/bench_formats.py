"""`check` on one file with 500 findings, as text, JSON and SARIF.

The file: 250 engines behind PgBouncer, each reported twice (POL101, POL102), each finding with
a fix whose edits JSON and SARIF print. JSON and SARIF should cost at most 1.2x the text
output: the edits of a file are worked out once, not by fixing the whole file per finding.

    python benchmarks/bench_formats.py [--engines 250] [--runs 5]

The runs of the three formats are interleaved and their medians compared, as wall time and as
CPU time (steadier on a shared machine). Each run writes its output to a file, as `-o` or a
shell redirect does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMATS = ("text", "json", "sarif")


def engines_file(count: int) -> str:
    lines = ["from sqlalchemy import create_engine", ""]
    for number in range(count):
        lines.append(f'engine_{number} = create_engine("postgresql+psycopg2://app@pgbouncer:6432/'
                     f'db_{number}", pool_size=5)')
    return "\n".join(lines) + "\n"


def run_check(path: Path, output_format: str) -> tuple[float, float, str]:
    """Wall and CPU time of one `check`, its output written to a file as `-o` or a redirect
    writes it (a pipe read by this process would time this process's reading too)."""
    out = path.with_suffix(f".{output_format}.out")
    with open(out, "w") as stream:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "flake8_pooling.cli", "check",
                                    "--isolated", "-q", "--format", output_format, str(path)],
                                   stdout=stream, stderr=subprocess.PIPE, cwd=path.parent)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 1:
        raise SystemExit(f"check --format {output_format} exited "
                         f"{os.waitstatus_to_exitcode(status)}: {process.stderr.read()}")
    process.stderr.close()
    return elapsed, usage.ru_utime + usage.ru_stime, out.read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, default=250)
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "engines.py"
        path.write_text(engines_file(arguments.engines))
        times: dict[str, list[float]] = {name: [] for name in FORMATS}
        cpu: dict[str, list[float]] = {name: [] for name in FORMATS}
        for _ in range(arguments.runs):
            for name in FORMATS:
                elapsed, spent, output = run_check(path, name)
                times[name].append(elapsed)
                cpu[name].append(spent)
                if name == "json":
                    findings = json.loads(output)["findings"]
                    assert all(finding["fix"]["edits"] for finding in findings)
        print(f"{len(findings)} findings in one file of {arguments.engines} engines, "
              f"{arguments.runs} interleaved runs each")
        text, text_cpu = statistics.median(times["text"]), statistics.median(cpu["text"])
        for name in FORMATS:
            median, median_cpu = statistics.median(times[name]), statistics.median(cpu[name])
            print(f"{name:<6} median {median:6.2f} s  {median / text:5.2f}x text   "
                  f"cpu {median_cpu:6.2f} s  {median_cpu / text_cpu:5.2f}x text")


if __name__ == "__main__":
    main()
