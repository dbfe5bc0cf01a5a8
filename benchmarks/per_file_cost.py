"""What the plugin costs per file, as flake8 calls it (with flake8's ast tree in hand), against
`ast.parse` of the same file.

Two kinds of files from real code (the installed SQLAlchemy package and the standard library):
- prefiltered: rejected by the text prefilter or the ast gate, never parsed by libcst;
- candidates: parsed by libcst, facts collected, rules run.

    python benchmarks/per_file_cost.py [--repeat 5]

Prints medians over the files of each kind (each file timed `repeat` times, best kept, to take
the machine's noise out) and the ratio to ast.parse.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
import sysconfig
import time
from pathlib import Path

import sqlalchemy

from flake8_pooling.analysis.prefilter import mentions_vocabulary, uses_vocabulary
from flake8_pooling.lint import lint
from flake8_pooling.settings import Settings


def best_of(repeat: int, action) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=int, default=400, help="prefiltered files to time")
    args = parser.parse_args()
    roots = [Path(sqlalchemy.__file__).parent, Path(sysconfig.get_paths()["stdlib"])]
    settings = Settings()
    rows = {"prefiltered": [], "candidate": []}
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "site-packages" in path.parts[len(root.parts):] or "test" in path.parts:
                continue
            try:
                source = path.read_text(encoding="utf-8")
                tree = ast.parse(source)
            except (SyntaxError, UnicodeDecodeError, ValueError):
                continue
            kind = "candidate" if mentions_vocabulary(source, str(path)) \
                and uses_vocabulary(tree, str(path), source) \
                else "prefiltered"
            if kind == "prefiltered" and len(rows[kind]) >= args.limit:
                continue
            parse = best_of(args.repeat, lambda: ast.parse(source))
            plugin = best_of(args.repeat, lambda: lint(source, str(path), settings, tree))
            rows[kind].append((path, len(source.splitlines()), parse, plugin))
    for kind, measured in rows.items():
        if not measured:
            continue
        lines = statistics.median(row[1] for row in measured)
        parse = statistics.median(row[2] for row in measured)
        plugin = statistics.median(row[3] for row in measured)
        ratio = statistics.median(row[3] / row[2] for row in measured)
        print(f"{kind:12} files={len(measured):4d} median lines={lines:6.0f} "
              f"ast.parse={parse * 1e3:8.3f} ms  plugin={plugin * 1e3:8.3f} ms  "
              f"plugin/ast.parse={ratio:6.3f}")
    print(f"python {sys.version.split()[0]}, repeat={args.repeat} (best of), "
          f"medians over files")


if __name__ == "__main__":
    main()
