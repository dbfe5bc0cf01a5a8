"""The checks a reviewer makes before merging a fix unchanged, over every fixable finding of the
real-world evaluation: the repositories of evaluate.py, at their pinned commits.

For each Python file `flake8-pooling fix` reads in a tree (the labelled opt-in codes selected, as
evaluate.py selects them), the file is fixed in memory as `fix --unsafe-fixes` writes it, and
with each fixable finding's fix alone. Each result must parse, and have no new pyflakes finding,
no line newly over the project's max-line-length, its imports still sorted if isort sorted them,
and every comment on the line of the code it described. Then `flake8-pooling fix --unsafe-fixes
--diff` runs on the tree, and its summary must give the findings gone and the findings left
that the files add up to (left: what the engine reports in each fixed file).

    python benchmarks/real_world/fix_properties.py [--repo owner/name] [--json FILE]

Trees are extracted from the mirrors as evaluate.py extracts them (see README.md beside this
file). The checks are those of tests/test_fix_properties.py (tests/fix_checks.py).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import evaluate  # noqa: E402  (beside this file)

from flake8_pooling.code_style import style_for  # noqa: E402
from flake8_pooling.files import DEFAULT_EXCLUDE, SourceError, python_files, read_source  # noqa: E402,E501
from flake8_pooling.fix import apply_fixes, fix_source  # noqa: E402
from flake8_pooling.lint import analyse  # noqa: E402
from flake8_pooling.noqa import NoqaMap  # noqa: E402
from flake8_pooling.selection import Selection  # noqa: E402
from flake8_pooling.settings import Settings  # noqa: E402
from tests.fix_checks import (isort_config, moved_comments, new_long_lines,  # noqa: E402
                              new_pyflakes_findings, sorted_by_isort)

PROPERTIES = ("parses", "no new pyflakes finding", "no line newly over the limit",
              "imports still sorted", "comments in place")
_SUMMARY = re.compile(r"would fix (\d+) findings? in (\d+) files?")
_LEFT = re.compile(r"(\d+) left (?:that need --unsafe-fixes|with no automatic fix)")


def problems_of(path: str, source: str, fixed: str, config) -> dict[str, list[str]]:
    """Property -> what breaks it in `fixed`."""
    found = {name: [] for name in PROPERTIES}
    try:
        ast.parse(fixed)
    except SyntaxError as error:
        found["parses"].append(str(error))
        return found
    limit = style_for(path).max_line_length
    found["no new pyflakes finding"] = new_pyflakes_findings(source, fixed)
    found["no line newly over the limit"] = new_long_lines(source, fixed, limit)
    if sorted_by_isort(source, config) and not sorted_by_isort(fixed, config):
        found["imports still sorted"].append("no longer sorted")
    found["comments in place"] = moved_comments(source, fixed)
    return found


def check_tree(tree: Path, selection: Selection, extend: list[str], totals: dict,
               examples: list[str]) -> dict:
    """The properties over one tree's files, and fix's summary against the files' counts."""
    settings = Settings()
    fixed_total, left_total, files_changed = 0, 0, 0
    for path in sorted(python_files([str(tree)], DEFAULT_EXCLUDE)):
        relative = Path(path).relative_to(tree)
        try:
            source = read_source(path).text
        except SourceError:
            continue
        analysis = analyse(source, path, settings)
        noqa = NoqaMap(source)
        reported = [finding for finding in analysis.findings
                    if selection.reports(finding, path, noqa)]
        fixable = [finding for finding in reported if finding.fix is not None]
        result = fix_source(source, path, settings, unsafe=True, selection=selection)
        # a file the engine could not read (POL9xx) is a notice of fix's, not a finding left
        left = Counter(finding.code for finding in result.remaining
                       if finding.code not in evaluate.INTERNAL_CODES)
        fixed_total += sum(result.fixed.values())
        left_total += sum(left.values())
        files_changed += result.changed
        counts_right = result.fixed + left == Counter(
            finding.code for finding in reported if finding.code not in evaluate.INTERNAL_CODES)
        totals["files' counts add up"][0 if counts_right else 1] += 1
        if not fixable or analysis.module is None:
            continue
        config = isort_config(path)
        runs = [(f"{finding.code} alone", apply_fixes(analysis, [finding], path))
                for finding in fixable]
        runs.append(("whole file", result.source))
        for what, fixed in runs:
            for name, broken in problems_of(path, source, fixed, config).items():
                totals[name][1 if broken else 0] += 1
                examples += [f"{relative} ({what}): {name}: {problem}" for problem in broken]
    summary = subprocess.run(
        [sys.executable, "-m", "flake8_pooling.cli", "fix", "--isolated", "--unsafe-fixes",
         "--diff", *(["--extend-select", ",".join(extend)] if extend else []), "."],
        cwd=tree, capture_output=True, text=True, timeout=1800).stderr
    said = _SUMMARY.search(summary)
    said_fixed = int(said.group(1)) if said else 0
    said_left = sum(int(number) for number in _LEFT.findall(summary))
    agrees = said is not None and (said_fixed, said_left) == (fixed_total, left_total)
    totals["fix's summary is right"][0 if agrees else 1] += 1
    if not agrees:
        examples.append(f"{tree.name}: fix says {said_fixed} fixed, {said_left} left; the "
                        f"files add up to {fixed_total} fixed, {left_total} left")
    return {"fixed": fixed_total, "left": left_total, "files_changed": files_changed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", help="only this owner/name")
    parser.add_argument("--mirrors", type=Path, help="the mirrors (default as evaluate.py)")
    parser.add_argument("--trees", type=Path, default=HERE / ".trees")
    parser.add_argument("--json", type=Path, help="also write the counts here")
    arguments = parser.parse_args(argv)
    mirrors = arguments.mirrors or evaluate.default_mirrors()
    repos, labels, _, problems = evaluate.load_inputs(None)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    codes, _ = evaluate.known_codes()
    extend = sorted(codes & {label.code for label in labels})
    selection = Selection.of(extend_select=extend)
    targets = sorted({(row.repo, row.commit) for row in repos}
                     | {(label.repo, label.commit) for label in labels})
    if arguments.repo:
        targets = [target for target in targets if target[0] == arguments.repo]
    totals = {name: [0, 0] for name in (*PROPERTIES, "files' counts add up",
                                        "fix's summary is right")}  # [held, broken]
    examples: list[str] = []
    trees = {}
    started = time.monotonic()
    for number, (repo, commit) in enumerate(targets, start=1):
        git_dir = evaluate.find_mirror(mirrors, repo)
        if git_dir is None or not evaluate.has_commit(git_dir, commit):
            print(f"[{number}/{len(targets)}] {repo}: skipped: no mirror with {commit[:12]}",
                  file=sys.stderr)
            continue
        tree = evaluate.tree_for(arguments.trees, repo, commit)
        evaluate.extract(git_dir, commit, tree, [])
        at = time.monotonic()
        trees[repo] = check_tree(tree, selection, extend, totals, examples)
        print(f"[{number}/{len(targets)}] {repo}: {trees[repo]['fixed']} fixed, "
              f"{trees[repo]['left']} left ({time.monotonic() - at:.0f} s)", file=sys.stderr)
    print(f"{len(trees)} repositories, {sum(tree['fixed'] for tree in trees.values())} "
          f"findings fixed in {sum(tree['files_changed'] for tree in trees.values())} files, "
          f"{time.monotonic() - started:.0f} s")
    width = max(map(len, totals))
    print(f"{'property':{width}}  held  broken")
    for name, (held, broken) in totals.items():
        print(f"{name:{width}}  {held:4}  {broken:6}")
    for line in examples[:40]:
        print(f"  {line}")
    if arguments.json:
        arguments.json.write_text(json.dumps({"totals": totals, "trees": trees,
                                              "examples": examples}, indent=2) + "\n")
    return 1 if any(broken for _, broken in totals.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
