"""Real flake8 with the plugin over real code: the installed SQLAlchemy package, the Python
standard library and, with --apps, the pinned application wheels (downloaded once, see
corpus.py). Prints findings by code and every finding; exits 1 if there is any POL9xx.

    python benchmarks/corpus_check.py [--apps] [extra paths...]
"""

from __future__ import annotations

import collections
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import sqlalchemy


def main() -> int:
    arguments = sys.argv[1:]
    targets = [Path(sqlalchemy.__file__).parent, Path(sysconfig.get_paths()["stdlib"])]
    if "--apps" in arguments:
        arguments.remove("--apps")
        sys.path.insert(0, str(Path(__file__).parent))
        from corpus import application_dirs
        targets += application_dirs()
    targets += [Path(arg) for arg in arguments]
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--select=POL", "--exit-zero", "-j2",
         "--exclude=site-packages,lib2to3/tests/data,test/bad*,test/badsyntax*,"
         "test/tokenizedata/bad*", *map(str, targets)],
        capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    lines = run.stdout.splitlines()
    codes = collections.Counter(line.split(": ", 1)[1].split()[0] for line in lines
                                if ": POL" in line)
    internal = [line for line in lines if ": POL9" in line]
    files = sum(1 for target in targets for path in target.rglob("*.py")
                if "site-packages" not in path.relative_to(target).parts)
    print(f"flake8 --select=POL over {files} files in {', '.join(map(str, targets))}")
    print(f"{elapsed:.1f}s, findings by code: {dict(sorted(codes.items())) or 'none'}")
    for line in lines:
        print("  " + line)
    if run.stderr.strip():
        print("stderr:\n" + run.stderr)
    print(f"POL9xx: {len(internal)}")
    broken = _check_fixes(lines)
    return 1 if internal or broken or "Traceback" in run.stderr else 0


def _check_fixes(lines: list[str]) -> int:
    """The fix properties on every file with a finding: the fixed file parses, the fixed
    findings are gone, and a second run changes nothing."""
    import ast

    from flake8_pooling.fix import fix_source
    from flake8_pooling.lint import lint

    broken = 0
    for path in sorted({line.split(":", 1)[0] for line in lines if ": POL" in line}):
        source = Path(path).read_text(encoding="utf-8")
        once = fix_source(source, path, unsafe=True)
        twice = fix_source(once.source, path, unsafe=True)
        left = {f.code for f in lint(once.source, path)}
        fixed = {f.code for f in once.applied}
        ok = twice.source == once.source and not (fixed & left)
        try:
            ast.parse(once.source)
        except SyntaxError:
            ok = False
        print(f"fix {path}: {len(once.applied)} fixed, "
              f"{'parses, gone on re-check, second run no-op' if ok else 'FAILED'}")
        broken += not ok
    return broken


if __name__ == "__main__":
    sys.exit(main())
