"""Precision and recall of flake8-pooling on labelled real repositories.

Reads repos.csv and labels.csv (top level and batches/*/), extracts each repository at its
pinned commit from a git mirror, runs flake8 with the plugin (and `flake8-pooling check` for
the files flake8 does not read), matches the findings to the labels and reports per rule, per
family and overall. See README.md beside this file.

    python benchmarks/real_world/evaluate.py [--repo owner/name] [--json FILE]
    python benchmarks/real_world/evaluate.py --validate
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent  # the checkout
REPO_COLUMNS = ["repo", "commit", "kind", "why"]
LABEL_COLUMNS = ["repo", "commit", "path", "line", "code", "verdict", "evidence", "reason"]
VERDICTS = ("bug", "ok")
EVIDENCE = ("local", "cross-file")
FAMILIES = {"1": "engine options and poolers", "2": "sessions", "3": "forks and process model",
            "9": "internal"}
INTERNAL_CODES = ("POL901", "POL902")
FLAKE8_FORMAT = "%(path)s\t%(row)d\t%(col)d\t%(code)s\t%(text)s"
TREE_STAMP = "flake8-pooling-tree"  # inside the tree's .git/: the commit the tree holds
REPO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
CODE_RE = re.compile(r"[A-Z]+[0-9]+")


class InputError(Exception):
    """Malformed input files: each problem is 'file:line: what'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class RepoRow:
    repo: str
    commit: str
    kind: str
    why: str
    source: str  # file:line


@dataclass
class Label:
    repo: str
    commit: str
    path: str
    line: int
    code: str
    verdict: str
    evidence: str
    reason: str
    source: str  # file:line

    @property
    def key(self) -> tuple:
        return (self.repo, self.commit, self.path, self.line, self.code)


@dataclass
class Finding:
    repo: str
    commit: str
    path: str
    line: int
    col: int
    code: str
    message: str
    tool: str  # flake8 or check


@dataclass
class RepoRun:
    repo: str
    commit: str
    kind: str = ""
    status: str = "ok"  # ok, or why it was skipped
    tree: str = ""
    findings: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


# -- inputs ----------------------------------------------------------------------------------------

def input_files(labels_dir: Path | None) -> tuple[list[Path], list[Path]]:
    """(repos.csv files, labels.csv files): DIR and DIR/*/ for --labels-dir, else the top level
    of this directory and batches/*/."""
    folders = [labels_dir, *sorted(p for p in labels_dir.iterdir() if p.is_dir())] \
        if labels_dir is not None else [HERE, *sorted((HERE / "batches").glob("*/"))]
    repos = [folder / "repos.csv" for folder in folders if (folder / "repos.csv").is_file()]
    labels = [folder / "labels.csv" for folder in folders if (folder / "labels.csv").is_file()]
    return repos, labels


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _rows(path: Path, columns: list[str], problems: list[str]):
    """(file:line, cells) of each data row with the right number of cells; problems appended."""
    name = _display(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        problems.append(f"{name}: cannot read: {error}")
        return
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                problems.append(f"{name}:1: empty file; expected the header {','.join(columns)}")
                return
            if [cell.strip().lower() for cell in header] != columns:
                problems.append(f"{name}:1: header is {','.join(header)}; expected "
                                f"{','.join(columns)}")
                return
            for cells in reader:
                where = f"{name}:{reader.line_num}"
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(columns):
                    problems.append(f"{where}: {len(cells)} columns, expected {len(columns)} "
                                    f"({','.join(columns)}); quote cells that hold commas")
                    continue
                yield where, [cell.strip() for cell in cells]
        except (csv.Error, UnicodeDecodeError) as error:
            problems.append(f"{name}:{reader.line_num}: {error}")


def normal_path(path: str) -> str:
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return os.path.normpath(path).replace(os.sep, "/") if path else path


def read_repos(files: list[Path], problems: list[str]) -> list[RepoRow]:
    found: dict[tuple[str, str], RepoRow] = {}
    for path in files:
        for where, (repo, commit, kind, why) in _rows(path, REPO_COLUMNS, problems):
            commit = commit.lower()
            if not REPO_RE.fullmatch(repo):
                problems.append(f"{where}: repo {repo!r} is not owner/name")
            elif not COMMIT_RE.fullmatch(commit):
                problems.append(f"{where}: commit {commit!r} is not 40 hex digits")
            elif (repo, commit) not in found:
                found[(repo, commit)] = RepoRow(repo, commit, kind, why, where)
    return list(found.values())


def read_labels(files: list[Path], problems: list[str]) -> list[Label]:
    found: dict[tuple, Label] = {}
    for path in files:
        for where, cells in _rows(path, LABEL_COLUMNS, problems):
            repo, commit, file_path, line, code, verdict, evidence, reason = cells
            commit, code = commit.lower(), code.upper()
            verdict, evidence = verdict.lower(), evidence.lower()
            bad = []
            if not REPO_RE.fullmatch(repo):
                bad.append(f"repo {repo!r} is not owner/name")
            if not COMMIT_RE.fullmatch(commit):
                bad.append(f"commit {commit!r} is not 40 hex digits")
            if not file_path or file_path.startswith("/") or ".." in file_path.split("/"):
                bad.append(f"path {file_path!r} is not a path inside the repository")
            if not line.isdigit() or int(line) < 1:
                bad.append(f"line {line!r} is not a positive integer")
            if not CODE_RE.fullmatch(code):
                bad.append(f"code {code!r} is not a rule code like POL101")
            if verdict not in VERDICTS:
                bad.append(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
            if evidence not in EVIDENCE:
                bad.append(f"evidence {evidence!r} is not one of {', '.join(EVIDENCE)}")
            if bad:
                problems.extend(f"{where}: {text}" for text in bad)
                continue
            label = Label(repo, commit, normal_path(file_path), int(line), code, verdict,
                          evidence, reason, where)
            earlier = found.get(label.key)
            if earlier is None:
                found[label.key] = label
            elif earlier.verdict != label.verdict:
                problems.append(f"{where}: {label.code} at {label.path}:{label.line} is "
                                f"'{label.verdict}' here and '{earlier.verdict}' in "
                                f"{earlier.source}")
    return list(found.values())


def load_inputs(labels_dir: Path | None) -> tuple[list[RepoRow], list[Label], list[str],
                                                  list[str]]:
    """(repos, labels, files read, problems)."""
    repo_files, label_files = input_files(labels_dir)
    problems: list[str] = []
    repos = read_repos(repo_files, problems)
    labels = read_labels(label_files, problems)
    return repos, labels, [_display(p) for p in repo_files + label_files], problems


# -- mirrors and trees -----------------------------------------------------------------------------

def default_mirrors() -> Path:
    configured = os.environ.get("POOLING_MIRRORS")
    return Path(configured) if configured else ROOT.parent / ".mirror"


def git(git_dir: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, **kwargs)


def _is_git_dir(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir()


def find_mirror(mirrors: Path, repo: str) -> Path | None:
    """<mirrors>/owner+name as a bare repository, or the git directory inside it (repo/ or
    .git/), or <mirrors>/owner+name.git."""
    base = mirrors / repo.replace("/", "+")
    for candidate in (base, base / "repo", base / ".git", base.with_name(base.name + ".git")):
        if _is_git_dir(candidate):
            return candidate
    return None


def has_commit(git_dir: Path, commit: str) -> bool:
    return git(git_dir, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


def tree_for(trees: Path, repo: str, commit: str) -> Path:
    return trees / f"{repo.replace('/', '+')}@{commit[:12]}"


def extract(git_dir: Path, commit: str, target: Path, notes: list[str]) -> None:
    """The commit's files in target (reused when already there). The tree gets an empty .git
    directory, as a checkout has, so the plugin takes the tree as the project root instead of
    walking up into whatever directory holds the trees."""
    stamp = target / ".git" / TREE_STAMP
    if stamp.is_file():
        commit_line, *earlier_notes = stamp.read_text().splitlines()
        if commit_line.strip() == commit:
            notes += earlier_notes  # what extracting it found then
            return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        archive = subprocess.Popen(["git", f"--git-dir={git_dir}", "archive", commit],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        untar = subprocess.run(["tar", "-x", "-C", str(partial)], stdin=archive.stdout,
                               capture_output=True)
        archive.stdout.close()
        archive_error = archive.stderr.read().decode(errors="replace").strip()
        if archive.wait() != 0 or untar.returncode != 0:
            # A mirror can lack some blobs (large files): write the files one by one instead
            shutil.rmtree(partial)
            partial.mkdir()
            missing = _extract_by_blob(git_dir, commit, partial)
            notes.append(f"git archive failed ({_last_line(archive_error or untar.stderr)}); "
                         f"files extracted one by one, {len(missing)} absent from the mirror"
                         + (f": {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "")
                            if missing else ""))
        attributes = git(git_dir, "grep", "-l", "-E", "export-(ignore|subst)", commit, "--",
                         "*.gitattributes")
        if attributes.returncode == 0 and attributes.stdout.strip():
            notes.append("the commit's .gitattributes use export-ignore or export-subst: git "
                         "archive left out or rewrote some files")
        (partial / ".git").mkdir(exist_ok=True)
        (partial / ".git" / TREE_STAMP).write_text("\n".join([commit, *notes]) + "\n")
        partial.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)


def _extract_by_blob(git_dir: Path, commit: str, target: Path) -> list[str]:
    listing = git(git_dir, "ls-tree", "-r", "-z", "--full-tree", commit, check=True).stdout
    entries = []
    for record in listing.split(b"\0"):
        if record:
            meta, _, name = record.partition(b"\t")
            mode, kind, sha = meta.split()
            if kind == b"blob":
                entries.append((mode, sha, name.decode("utf-8", "surrogateescape")))
    missing = []
    batch = subprocess.Popen(["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    for mode, sha, name in entries:
        batch.stdin.write(sha + b"\n")
        batch.stdin.flush()
        header = batch.stdout.readline().split()
        if len(header) < 3 or header[1] == b"missing":
            missing.append(name)
            continue
        content = batch.stdout.read(int(header[2]))
        batch.stdout.read(1)
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if mode == b"120000":
            try:
                os.symlink(content.decode("utf-8", "surrogateescape"), path)
            except OSError:
                pass
        else:
            path.write_bytes(content)
    batch.stdin.close()
    batch.wait()
    return missing


def _last_line(text) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


# -- running the plugin ----------------------------------------------------------------------------

def known_codes() -> tuple[set[str], str]:
    """The codes the installed plugin implements, and where the list came from."""
    python = sys.executable
    listed = subprocess.run([python, "-m", "flake8_pooling.cli", "rules", "--format", "json"],
                            capture_output=True, text=True)
    if listed.returncode == 0:
        try:
            codes = _codes_in_json(json.loads(listed.stdout))
        except ValueError:
            codes = set()
        if codes:
            return codes, "flake8-pooling rules --format json"
    listed = subprocess.run([python, "-m", "flake8_pooling.cli", "rules"],
                            capture_output=True, text=True)
    if listed.returncode == 0:
        codes = {line.split()[0] for line in listed.stdout.splitlines()
                 if line.split() and re.fullmatch(r"POL[0-9]+", line.split()[0])}
        if codes:
            return codes, "flake8-pooling rules"
    listed = subprocess.run([python, "-c", "from flake8_pooling.rules import all_rules\n"
                             "print('\\n'.join(rule.code for rule in all_rules()))"],
                            capture_output=True, text=True)
    if listed.returncode == 0 and listed.stdout.split():
        return set(listed.stdout.split()), "flake8_pooling.rules.all_rules()"
    raise SystemExit("evaluate.py: cannot list the plugin's rules with "
                     f"{python}: is flake8-pooling installed there? "
                     f"{_last_line(listed.stderr)}")


def _codes_in_json(value) -> set[str]:
    codes: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if re.fullmatch(r"POL[0-9]+", str(key)):
                codes.add(str(key))
            if key == "code" and isinstance(item, str) and re.fullmatch(r"POL[0-9]+", item):
                codes.add(item)
            else:
                codes |= _codes_in_json(item)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str) and re.fullmatch(r"POL[0-9]+", item):
                codes.add(item)
            else:
                codes |= _codes_in_json(item)
    return codes


def _run(command: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """subprocess.run in a session of its own, so a timeout ends flake8's worker processes too."""
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, errors="replace", start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def run_plugin(row: RepoRow, tree: Path, codes: set[str], jobs: int, timeout: float,
               run: RepoRun) -> list[Finding] | None:
    """The findings in the tree: flake8's, plus check's on files that are not Python. None when
    flake8 failed (the reason is in run.status).

    `codes` are also selected in full, so opt-in rules report when they have labels; an opt-in
    rule nobody labelled is left as its users get it, off."""
    deadline = time.monotonic() + timeout
    extend = ",".join(sorted(codes))
    command = [sys.executable, "-m", "flake8", "--isolated", "--select=POL",
               f"--extend-select={extend}", f"--format={FLAKE8_FORMAT}", f"--jobs={jobs}", "."]
    try:
        done = _run(command, tree, timeout)
    except subprocess.TimeoutExpired:
        run.status = f"flake8 timed out after {timeout:g} s"
        return None
    findings, stray = [], []
    for line in done.stdout.splitlines():
        parts = line.split("\t", 4)
        if len(parts) == 5 and parts[1].isdigit() and parts[2].isdigit():
            findings.append(Finding(row.repo, row.commit, normal_path(parts[0]), int(parts[1]),
                                    int(parts[2]), parts[3], parts[4], "flake8"))
        elif line.strip():
            stray.append(line)
    if done.returncode not in (0, 1) or (done.returncode == 1 and not findings):
        run.status = (f"flake8 failed (exit {done.returncode}): "
                      f"{_last_line(done.stderr or chr(10).join(stray))}")
        return None
    run.notes += [f"flake8: {line}" for line in stray]
    run.notes += [f"flake8: {line}" for line in done.stderr.splitlines()
                  if line.startswith("flake8-pooling")]

    remaining = max(deadline - time.monotonic(), 30.0)
    command = [sys.executable, "-m", "flake8_pooling.cli", "check", "--isolated",
               "--extend-select", extend, "--format", "json", "."]
    try:
        done = _run(command, tree, remaining)
        report = json.loads(done.stdout)
        entries = report["findings"]
    except subprocess.TimeoutExpired:
        run.notes.append(f"flake8-pooling check timed out after {remaining:.0f} s; only flake8's "
                         "findings are counted")
        return findings
    except (ValueError, KeyError, TypeError):
        run.notes.append(f"flake8-pooling check failed (exit {done.returncode}): "
                         f"{_last_line(done.stderr or done.stdout)}; only flake8's findings "
                         "are counted")
        return findings
    for entry in entries:
        try:
            path = normal_path(str(entry["path"]))
            if path.endswith(".py"):
                continue  # flake8 reported these
            findings.append(Finding(row.repo, row.commit, path, int(entry["line"]),
                                    int(entry.get("column", 1)), str(entry["code"]),
                                    str(entry.get("message", "")), "check"))
        except (KeyError, TypeError, ValueError):
            run.notes.append(f"flake8-pooling check: unreadable finding {entry!r}")
    run.notes += [f"flake8-pooling check: {notice}" for notice in report.get("notices", [])]
    return findings


# -- matching and scoring --------------------------------------------------------------------------

def match(labels: list[Label], findings: list[Finding], window: int
          ) -> tuple[list[tuple[Label, Finding]], list[Label], list[Finding]]:
    """(label, finding) pairs: same repo, commit, path and code, lines at most `window` apart,
    nearest first, each used once. Then the unmatched labels and findings."""
    by_place: dict[tuple, list[int]] = defaultdict(list)
    for index, finding in enumerate(findings):
        by_place[(finding.repo, finding.commit, finding.path, finding.code)].append(index)
    candidates = []
    for label_index, label in enumerate(labels):
        for index in by_place.get((label.repo, label.commit, label.path, label.code), []):
            distance = abs(findings[index].line - label.line)
            if distance <= window:
                candidates.append((distance, label_index, findings[index].line,
                                   findings[index].col, index))
    candidates.sort()
    used_labels, used_findings, pairs = set(), set(), []
    for _, label_index, _, _, index in candidates:
        if label_index not in used_labels and index not in used_findings:
            used_labels.add(label_index)
            used_findings.add(index)
            pairs.append((labels[label_index], findings[index]))
    return (pairs, [label for i, label in enumerate(labels) if i not in used_labels],
            [finding for i, finding in enumerate(findings) if i not in used_findings])


def family_of(code: str) -> str:
    digit = code[3:4] if code.startswith("POL") else ""
    return f"POL{digit}xx {FAMILIES.get(digit, 'other')}" if digit else "other"


def _ratio(numerator: int, denominator: int) -> dict:
    return {"value": round(numerator / denominator, 4) if denominator else None,
            "of": f"{numerator}/{denominator}"}


def score(rows: list[dict], count_unlabelled: bool) -> dict:
    """Counts and ratios over outcome rows ({"outcome": ..., "evidence": ...})."""
    counts = Counter(row["outcome"] for row in rows)
    tp_local = sum(1 for row in rows if row["outcome"] == "TP" and row["evidence"] == "local")
    fn_local = sum(1 for row in rows if row["outcome"] == "FN" and row["evidence"] == "local")
    fp = counts["FP"] + (counts["unlabelled"] if count_unlabelled else 0)
    return {"TP": counts["TP"], "FN": counts["FN"], "FP_ok_label": counts["FP"],
            "unlabelled": counts["unlabelled"], "FP": fp, "ok_quiet": counts["quiet"],
            "precision": _ratio(counts["TP"], counts["TP"] + fp),
            "recall_local": _ratio(tp_local, tp_local + fn_local),
            "recall_all": _ratio(counts["TP"], counts["TP"] + counts["FN"])}


def evaluate(labels: list[Label], findings: list[Finding], window: int, count_unlabelled: bool
             ) -> dict:
    pairs, unmatched_labels, unmatched_findings = match(labels, findings, window)
    outcomes = []  # one row per label or finding that counts
    for label, finding in pairs:
        outcomes.append({"outcome": "TP" if label.verdict == "bug" else "FP", "code": label.code,
                         "evidence": label.evidence, "label": asdict(label),
                         "finding": asdict(finding)})
    for label in unmatched_labels:
        outcomes.append({"outcome": "FN" if label.verdict == "bug" else "quiet",
                         "code": label.code, "evidence": label.evidence, "label": asdict(label),
                         "finding": None})
    for finding in unmatched_findings:
        outcomes.append({"outcome": "unlabelled", "code": finding.code, "evidence": "",
                         "label": None, "finding": asdict(finding)})
    by_code: dict[str, list] = defaultdict(list)
    by_family: dict[str, list] = defaultdict(list)
    for row in outcomes:
        by_code[row["code"]].append(row)
        by_family[family_of(row["code"])].append(row)

    def place(row):
        item = row["label"] or row["finding"]
        return (item["repo"], item["path"], item["line"], item["code"])

    return {
        "by_code": {code: score(rows, count_unlabelled) for code, rows in sorted(by_code.items())},
        "by_family": {name: score(rows, count_unlabelled)
                      for name, rows in sorted(by_family.items())},
        "overall": score(outcomes, count_unlabelled),
        "true_positives": sorted((row for row in outcomes if row["outcome"] == "TP"), key=place),
        "false_negatives": sorted((row for row in outcomes if row["outcome"] == "FN"),
                                  key=place),
        "false_positives": sorted((row for row in outcomes if row["outcome"] == "FP"),
                                  key=place),
        "unlabelled_findings": sorted((row for row in outcomes if row["outcome"] == "unlabelled"),
                                      key=place),
    }


# -- the report ------------------------------------------------------------------------------------

def _cell(ratio: dict) -> str:
    return "n/a" if ratio["value"] is None else f"{ratio['value']:.2f} ({ratio['of']})"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def text_report(result: dict) -> str:
    out = []
    setting = result["settings"]
    runs = result["repos"]
    evaluated = [run for run in runs if run["status"] == "ok"]
    out.append(f"flake8-pooling {result['plugin_version']} on {len(evaluated)} of {len(runs)} "
               f"repositories: {_count(result['labels_counted'], 'label')} counted, "
               f"{_count(result['findings_counted'], 'finding')}")
    counted = "count as FP" if setting["unlabelled"] == "count" else "left out of precision"
    out.append(f"matching: same repo, path and code, line within +-{setting['window']}; "
               f"unlabelled findings {counted}")
    for run in runs:
        if run["status"] != "ok":
            out.append(f"skipped: {run['repo']}@{run['commit'][:12]}: {run['status']}")
    for run in evaluated:
        for note in run["notes"]:
            out.append(f"note: {run['repo']}@{run['commit'][:12]}: {note}")
    if result["labels_on_skipped_repos"]:
        out.append(f"labels on skipped repositories: {result['labels_on_skipped_repos']} "
                   "(not counted)")
    missing = result["not_implemented"]
    out.append(f"labels for codes not implemented: {missing['labels']}"
               + (f" (codes {', '.join(missing['codes'])})" if missing["codes"] else ""))
    out.append("")

    header = ("", "TP", "FN", "FP", "unlab", "ok-quiet", "precision", "recall (local)",
              "recall (all)")
    table = [header]

    def row(name, s):
        return (name, str(s["TP"]), str(s["FN"]), str(s["FP_ok_label"]), str(s["unlabelled"]),
                str(s["ok_quiet"]), _cell(s["precision"]), _cell(s["recall_local"]),
                _cell(s["recall_all"]))

    for code, s in result["by_code"].items():
        table.append(row(code, s))
    table.append(None)
    for name, s in result["by_family"].items():
        table.append(row(name, s))
    table.append(None)
    table.append(row("overall", result["overall"]))
    widths = [max(len(r[i]) for r in table if r) for i in range(len(header))]
    for r in table:
        if r is None:
            out.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        else:
            out.append("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                                 for i, cell in enumerate(r)).rstrip())
    out.append("")
    out.append("FP counts findings on 'ok' labels; unlab counts findings with no label"
               + (" (also counted as FP in precision)" if setting["unlabelled"] == "count"
                  else " (not in precision)")
               + "; ok-quiet counts 'ok' labels correctly left unreported.")

    def where(item):
        return f"{item['repo']} {item['path']}:{item['line']} {item['code']}"

    sections = (("False negatives (bug labels no finding matched)", "false_negatives"),
                ("False positives (findings on 'ok' labels)", "false_positives"),
                ("Unlabelled findings (review by hand, then label)", "unlabelled_findings"))
    for title, key in sections:
        rows = result[key]
        out.append("")
        out.append(f"{title}: {len(rows)}")
        for entry in rows:
            label, finding = entry["label"], entry["finding"]
            if key == "false_negatives":
                out.append(f"  {where(label)} [{label['evidence']}] {label['reason']}")
            else:
                line = f"  {where(finding)} {finding['message']}"
                if label is not None:
                    line += f"\n      label {label['source']}: {label['reason']}"
                out.append(line)
    return "\n".join(out) + "\n"


# -- validation ------------------------------------------------------------------------------------

def validate(repos: list[RepoRow], labels: list[Label], problems: list[str], mirrors: Path,
             codes: set[str] | None) -> int:
    commits: dict[str, set[str]] = defaultdict(set)
    for row in repos:
        commits[row.repo].add(row.commit)
    notes = []
    by_repo: dict[tuple[str, str], list[Label]] = defaultdict(list)
    for label in labels:
        if label.repo not in commits:
            problems.append(f"{label.source}: repo {label.repo} is in no repos.csv")
        elif label.commit not in commits[label.repo]:
            listed = ", ".join(commit[:12] for commit in sorted(commits[label.repo]))
            problems.append(f"{label.source}: commit {label.commit[:12]} of {label.repo} is not "
                            f"the one in repos.csv ({listed})")
        by_repo[(label.repo, label.commit)].append(label)
        if codes is not None and label.code not in codes:
            notes.append(f"{label.source}: {label.code} is not implemented by the installed "
                         "plugin (reported apart, not counted)")
    pairs = {(row.repo, row.commit): row.source for row in repos}
    for (repo, commit) in by_repo:
        pairs.setdefault((repo, commit), by_repo[(repo, commit)][0].source)
    for (repo, commit), source in sorted(pairs.items()):
        git_dir = find_mirror(mirrors, repo)
        if git_dir is None:
            notes.append(f"{source}: no mirror of {repo} in {mirrors}: its labels' paths and "
                         "lines were not checked")
            continue
        if not has_commit(git_dir, commit):
            problems.append(f"{source}: commit {commit} is not in the mirror of {repo} "
                            f"({git_dir})")
            continue
        for label, problem in _check_places(git_dir, commit, by_repo.get((repo, commit), [])):
            problems.append(f"{label.source}: {problem}")

    def order(line: str):
        where, _, _ = line.partition(": ")
        name, _, number = where.rpartition(":")
        return (name, int(number)) if number.isdigit() else (where, 0)

    for line in sorted(notes, key=order):
        print(f"note: {line}")
    for line in sorted(problems, key=order):
        print(line)
    print(f"{len(labels)} labels, {len(repos)} repositories: "
          f"{len(problems)} problem{'s' * (len(problems) != 1)}")
    return 2 if problems else 0


def _check_places(git_dir: Path, commit: str, labels: list[Label]):
    """(label, problem) for labels whose path is not a file at the commit, or whose line is past
    its end."""
    if not labels:
        return
    lengths: dict[str, int | str] = {}
    batch = subprocess.Popen(["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    for path in sorted({label.path for label in labels}):
        batch.stdin.write(f"{commit}:{path}\n".encode("utf-8", "surrogateescape"))
        batch.stdin.flush()
        header = batch.stdout.readline().split()
        if len(header) < 3 or header[-1] in (b"missing", b"ambiguous"):
            lengths[path] = f"path {path} does not exist at {commit[:12]} " \
                            "(or its content is absent from the mirror)"
            continue
        content = batch.stdout.read(int(header[2]))
        batch.stdout.read(1)
        if header[1] != b"blob":
            lengths[path] = f"path {path} is a {header[1].decode()} at {commit[:12]}, not a file"
        else:
            lengths[path] = content.count(b"\n") + (1 if content and
                                                    not content.endswith(b"\n") else 0)
    batch.stdin.close()
    batch.wait()
    for label in labels:
        length = lengths[label.path]
        if isinstance(length, str):
            yield label, length
        elif label.line > length:
            yield label, f"line {label.line} is past the end of {label.path} ({length} lines)"


# -- main ------------------------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Precision and recall of flake8-pooling on the labelled real repositories.")
    parser.add_argument("--labels-dir", type=Path, metavar="DIR",
                        help="read repos.csv and labels.csv from DIR and its subdirectories "
                             "instead of this directory and batches/*/")
    parser.add_argument("--mirrors", type=Path, metavar="DIR", default=None,
                        help="the git mirrors, one per repository as DIR/owner+name (default: "
                             "$POOLING_MIRRORS, else .mirror beside the checkout)")
    parser.add_argument("--trees", type=Path, metavar="DIR", default=HERE / ".trees",
                        help="where the extracted trees are kept (default: .trees beside this "
                             "script)")
    parser.add_argument("--repo", metavar="OWNER/NAME", help="evaluate this repository only")
    parser.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                        help="time allowed for one repository's lint (default: 600)")
    parser.add_argument("--jobs", type=int, default=max(1, os.cpu_count() or 1),
                        help="flake8 --jobs (default: the number of CPUs)")
    parser.add_argument("--window", type=int, default=2, metavar="LINES",
                        help="how far a finding's line may be from its label's (default: 2)")
    parser.add_argument("--unlabelled", choices=("count", "ignore"), default="count",
                        help="count findings with no label as false positives (default), or "
                             "leave them out of precision")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the result as JSON")
    parser.add_argument("--validate", action="store_true",
                        help="check the label files against repos.csv and the mirrors, and run "
                             "nothing")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    mirrors = arguments.mirrors or default_mirrors()
    if arguments.labels_dir is not None and not arguments.labels_dir.is_dir():
        print(f"evaluate.py: --labels-dir {arguments.labels_dir} is not a directory",
              file=sys.stderr)
        return 2
    repos, labels, files, problems = load_inputs(arguments.labels_dir)
    if not files:
        print("evaluate.py: no repos.csv or labels.csv found", file=sys.stderr)
        return 2
    if arguments.repo:
        repos = [row for row in repos if row.repo == arguments.repo]
        labels = [label for label in labels if label.repo == arguments.repo]
        if not repos and not labels and not problems:
            print(f"evaluate.py: {arguments.repo} is in no repos.csv or labels.csv",
                  file=sys.stderr)
            return 2

    if arguments.validate:
        try:
            codes, _ = known_codes()
        except SystemExit as error:
            print(f"note: {error}")
            codes = None
        return validate(repos, labels, problems, mirrors, codes)
    if problems:
        for line in problems:
            print(line, file=sys.stderr)
        print(f"evaluate.py: {len(problems)} problem{'s' * (len(problems) != 1)} in the input "
              "files; nothing evaluated", file=sys.stderr)
        return 2

    codes, codes_source = known_codes()
    labelled = {label.code for label in labels}
    version = subprocess.run([sys.executable, "-c", "import flake8_pooling; "
                              "print(flake8_pooling.__version__)"],
                             capture_output=True, text=True).stdout.strip() or "?"
    targets = {(row.repo, row.commit): row for row in repos}
    for label in labels:
        if (label.repo, label.commit) not in targets:
            print(f"warning: {label.source}: {label.repo}@{label.commit[:12]} is in no "
                  "repos.csv; evaluated anyway", file=sys.stderr)
            targets[(label.repo, label.commit)] = RepoRow(label.repo, label.commit, "", "",
                                                          label.source)

    runs: list[RepoRun] = []
    findings: list[Finding] = []
    for number, row in enumerate(sorted(targets.values(), key=lambda r: (r.repo, r.commit)),
                                 start=1):
        name = f"{row.repo}@{row.commit[:12]}"
        run = RepoRun(row.repo, row.commit, row.kind)
        runs.append(run)
        git_dir = find_mirror(mirrors, row.repo)
        if git_dir is None:
            run.status = f"no mirror at {mirrors / row.repo.replace('/', '+')}"
        elif not has_commit(git_dir, row.commit):
            run.status = f"commit {row.commit} is not in the mirror {git_dir}"
        if run.status != "ok":
            print(f"[{number}/{len(targets)}] {name}: skipped: {run.status}", file=sys.stderr)
            continue
        started = time.monotonic()
        tree = tree_for(arguments.trees, row.repo, row.commit)
        run.tree = str(tree)
        try:
            extract(git_dir, row.commit, tree, run.notes)
        except (OSError, subprocess.CalledProcessError) as error:
            run.status = f"cannot extract the tree: {error}"
            print(f"[{number}/{len(targets)}] {name}: skipped: {run.status}", file=sys.stderr)
            continue
        found = run_plugin(row, tree, codes & labelled, arguments.jobs, arguments.timeout,
                           run)
        run.seconds = round(time.monotonic() - started, 1)
        if found is None:
            print(f"[{number}/{len(targets)}] {name}: skipped: {run.status}", file=sys.stderr)
            continue
        run.findings = len(found)
        findings += found
        print(f"[{number}/{len(targets)}] {name}: {len(found)} finding{'s' * (len(found) != 1)} "
              f"({run.seconds:g} s)", file=sys.stderr)

    evaluated = {(run.repo, run.commit) for run in runs if run.status == "ok"}
    codes |= {finding.code for finding in findings} | set(INTERNAL_CODES)
    counted = [label for label in labels if (label.repo, label.commit) in evaluated]
    not_implemented = [label for label in counted if label.code not in codes]
    counted = [label for label in counted if label.code in codes]
    result = {
        "plugin_version": version,
        "python": sys.executable,
        "rules_from": codes_source,
        "inputs": files,
        "settings": {"window": arguments.window, "unlabelled": arguments.unlabelled,
                     "mirrors": str(mirrors), "trees": str(arguments.trees),
                     "repo": arguments.repo, "jobs": arguments.jobs,
                     "timeout": arguments.timeout},
        "repos": [asdict(run) for run in runs],
        "labels_total": len(labels),
        "labels_on_skipped_repos": len(labels) - len(counted) - len(not_implemented),
        "not_implemented": {"labels": len(not_implemented),
                            "codes": sorted({label.code for label in not_implemented})},
        "labels_counted": len(counted),
        "findings_counted": len(findings),
    }
    result.update(evaluate(counted, findings, arguments.window,
                           arguments.unlabelled == "count"))
    sys.stdout.write(text_report(result))
    if arguments.json:
        arguments.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
