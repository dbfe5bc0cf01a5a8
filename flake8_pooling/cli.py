"""`flake8-pooling check | fix | rules`: the same engine as the flake8 plugin, plus fixes."""

from __future__ import annotations

import argparse
import ast
import difflib
import gc
import json
import os
import sys
from collections import Counter
from pathlib import Path

from . import __version__, options
from . import config as config_files
from .analysis.prefilter import mentions_vocabulary
from .files import (DEFAULT_EXCLUDE, SourceError, SourceFile, decode, python_files, read_source,
                    write_atomically)
from .fix import fix_source
from .findings import UNSAFE
from .lint import INTERNAL_ERROR, UNPARSABLE, analyse, is_other_file
from .noqa import NoqaMap
from .report import FileReport, as_github, as_json, as_sarif, as_text
from .rules import all_rules, other_file_patterns, rule_by_code

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
FORMATS = ("text", "json", "sarif", "github")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    gc.freeze()  # the modules loaded by now live as long as the run: no collection need walk them
    if not getattr(arguments, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return arguments.run(arguments)
    except BrokenPipeError:  # `flake8-pooling check | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_CLEAN
    except KeyboardInterrupt:
        print("flake8-pooling: interrupted; files already written are complete, the rest "
              "untouched", file=sys.stderr)
        return 130


# -- options shared by check and fix ---------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flake8-pooling",
        description="Find (and fix) SQLAlchemy connection-pool misconfiguration.")
    parser.add_argument("--version", action="version", version=f"flake8-pooling {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    check = commands.add_parser("check", help="report findings",
                                description="Report findings, like flake8 --select=POL.")
    _common(check)
    check.add_argument("--format", choices=FORMATS, default="text",
                       help="text (like flake8), json, sarif (2.1.0) or github (annotations)")
    check.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE")
    check.set_defaults(run=run_check)

    fix = commands.add_parser("fix", help="apply the fixes",
                              description="Apply the fixes of the findings (safe ones unless "
                                          "--unsafe-fixes).")
    _common(fix)
    fix.add_argument("--unsafe-fixes", action="store_true",
                     help="also apply fixes that change run-time behaviour")
    fix.add_argument("--diff", action="store_true",
                     help="print a unified diff of the fixes and write nothing")
    fix.set_defaults(run=run_fix)

    budget = commands.add_parser(
        "budget", help="the connection arithmetic of the deployment",
        description="Workers x connections per worker, summed over the project's engines, "
                    "against the limit of what they connect to.")
    budget.add_argument("path", nargs="?", default=".",
                        help="the project, or a gunicorn config file (default: .)")
    budget.add_argument("--format", choices=("text", "json"), default="text")
    options.add_arguments(budget, ("max-connections", "pooler", "pooler-mode"))
    budget.add_argument("--isolated", action="store_true", help="read no config file")
    budget.set_defaults(run=run_budget, config=None)

    rules = commands.add_parser("rules", help="list the rules, or show one rule's page",
                                description="List the rules, or show one rule's documentation.")
    rules.add_argument("code", nargs="?", help="a rule code, e.g. POL101")
    rules.set_defaults(run=run_rules)

    server = commands.add_parser("server", help="run the language server (LSP over stdio)",
                                 description="A language server for editors: diagnostics, quick "
                                             "fixes and rule pages, over standard input/output.")
    server.set_defaults(run=run_server)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", default=["."], metavar="PATH",
                        help="files and directories (default: .); - reads standard input")
    listed = {"type": options.split_list}
    parser.add_argument("--select", **listed, help="codes or prefixes to report (default: all)")
    parser.add_argument("--ignore", **listed, help="codes or prefixes not to report")
    parser.add_argument("--extend-select", **listed, help="add to the selected codes")
    parser.add_argument("--extend-ignore", **listed, help="add to the ignored codes")
    parser.add_argument("--exclude", **listed, help="patterns of paths to skip")
    parser.add_argument("--extend-exclude", **listed, help="add to the patterns to skip")
    options.add_arguments(parser)
    parser.add_argument("--config", metavar="FILE", help="the flake8 config file to read")
    parser.add_argument("--isolated", action="store_true", help="read no config file")
    parser.add_argument("--stdin-display-name", default="stdin",
                        help="the name of the file read from standard input")


class _Run:
    """Settings and selection from config files and the command line, and the notices."""

    def __init__(self, arguments) -> None:
        config = config_files.load(Path.cwd(), arguments.isolated, arguments.config)
        overrides = {key: getattr(arguments, key.replace("-", "_"))
                     for key in config_files.LIST_KEYS + config_files.VALUE_KEYS
                     if getattr(arguments, key.replace("-", "_"), None) is not None}
        config.merge(overrides, "the command line")
        self.config = config
        self.settings = config.settings()
        self.selection = config.selection()
        self.notices: list[str] = []
        for problem in [*config.problems, *self.settings.problems]:
            self.notice(problem)
        self.exclude = tuple(config.get_list("exclude") or DEFAULT_EXCLUDE) \
            + tuple(config.get_list("extend-exclude"))
        self.patterns = ("*.py",)

    def notice(self, text: str) -> None:
        self.notices.append(text)
        print(f"flake8-pooling: {text}", file=sys.stderr)

    def sources(self, paths: list[str], stdin_name: str):
        """(display path, SourceFile) for every file; unreadable ones become notices."""
        files = list(python_files(paths, self.exclude, self.patterns)) if paths != ["-"] \
            else ["-"]
        show_progress = sys.stderr.isatty() and len(files) > 200
        for number, path in enumerate(files, start=1):
            if show_progress and number % 50 == 0:
                print(f"\rflake8-pooling: {number}/{len(files)} files", end="", file=sys.stderr)
            try:
                if path == "-":
                    yield stdin_name, decode(stdin_name, sys.stdin.buffer.read())
                else:
                    yield path, read_source(path)
            except SourceError as error:
                self.notice(f"{path}: {error}")
        if show_progress:
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr)

    def report_for(self, path: str, source: SourceFile) -> FileReport | None:
        other = is_other_file(path)
        tree = _parse(source.text) if not other and mentions_vocabulary(source.text, path) \
            else None
        if tree is False:
            self.notice(f"{path}: not analysed: it is not valid Python (flake8 reports E999)")
            return None
        analysis = analyse(source.text, path, self.settings, tree or None)
        noqa = None if other else NoqaMap(source.text)
        report = FileReport(path, source.text, analysis)
        for finding in analysis.findings:
            if finding.code in (INTERNAL_ERROR, UNPARSABLE):
                self.notice(f"{path}: {finding.message}")
            elif self.selection.reports(finding, path, noqa):
                report.findings.append(finding)
        return report


def _parse(text: str) -> ast.Module | bool:
    """The ast of valid Python, else False (flake8 would report E999 and run no plugin)."""
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError):
        return False


# -- check -----------------------------------------------------------------------------------------

def run_check(arguments) -> int:
    run = _Run(arguments)
    run.patterns = ("*.py", *other_file_patterns())  # uWSGI configs too
    reports = [report for path, source in run.sources(arguments.paths,
                                                      arguments.stdin_display_name)
               if (report := run.report_for(path, source)) is not None]
    reports.sort(key=lambda report: report.path)
    for report in reports:
        report.findings.sort(key=lambda finding: (finding.line, finding.col, finding.code))
    output = {"text": lambda: as_text(reports), "json": lambda: as_json(reports, run.notices),
              "sarif": lambda: as_sarif(reports, run.notices),
              "github": lambda: as_github(reports)}[arguments.format]()
    if arguments.output:
        Path(arguments.output).write_text(output, encoding="utf-8")
    else:
        sys.stdout.write(output)
    if run.notices:
        return EXIT_ERROR
    return EXIT_FINDINGS if any(report.findings for report in reports) else EXIT_CLEAN


# -- fix -------------------------------------------------------------------------------------------

def run_fix(arguments) -> int:
    run = _Run(arguments)
    applied: Counter = Counter()
    left_unsafe: Counter = Counter()
    left_unfixable: Counter = Counter()
    changed_files = 0
    for path, source in run.sources(arguments.paths, arguments.stdin_display_name):
        if mentions_vocabulary(source.text, path) and _parse(source.text) is False:
            run.notice(f"{path}: not fixed: it is not valid Python")
            continue
        result = fix_source(source.text, path, run.settings, unsafe=arguments.unsafe_fixes,
                            selection=run.selection)
        for finding in result.remaining:
            if finding.code in (INTERNAL_ERROR, UNPARSABLE):
                run.notice(f"{path}: not fixed: {finding.message}")
            elif finding.fix is not None and finding.fix.safety == UNSAFE:
                left_unsafe[finding.code] += 1
            else:
                left_unfixable[finding.code] += 1
        if arguments.paths == ["-"]:
            sys.stdout.write(result.source)
        if not result.changed:
            continue
        applied.update(finding.code for finding in result.applied)
        changed_files += 1
        if arguments.diff:
            sys.stdout.writelines(difflib.unified_diff(
                source.text.splitlines(keepends=True), result.source.splitlines(keepends=True),
                f"a/{os.path.normpath(path)}", f"b/{os.path.normpath(path)}"))
        elif arguments.paths != ["-"]:
            try:
                write_atomically(source, result.source)
            except SourceError as error:
                run.notice(f"{path}: {error}")
                changed_files -= 1
                applied.subtract(finding.code for finding in result.applied)
    _summary(arguments, changed_files, +applied, left_unsafe, left_unfixable)
    if run.notices:
        return EXIT_ERROR
    pending = sum(applied.values()) if arguments.diff else 0
    return EXIT_FINDINGS if pending or left_unsafe or left_unfixable else EXIT_CLEAN


def _summary(arguments, changed_files: int, applied: Counter, unsafe: Counter,
             unfixable: Counter) -> None:
    def by_code(counts: Counter) -> str:
        return ", ".join(f"{code} x{count}" for code, count in sorted(counts.items()))

    verb = "would fix" if arguments.diff else "fixed"
    total = sum(applied.values())
    lines = [f"{verb} {total} finding{'s' * (total != 1)} in {changed_files} "
             f"file{'s' * (changed_files != 1)}" + (f" ({by_code(applied)})" if total else "")]
    if unsafe:
        lines.append(f"{sum(unsafe.values())} left that need --unsafe-fixes ({by_code(unsafe)})")
    if unfixable:
        lines.append(f"{sum(unfixable.values())} left with no automatic fix "
                     f"({by_code(unfixable)})")
    print("flake8-pooling: " + "; ".join(lines), file=sys.stderr)


# -- budget ----------------------------------------------------------------------------------------

def run_budget(arguments) -> int:
    from .analysis.context import Context
    from .analysis.prefilter import is_gunicorn_config_name
    from .analysis.project import project_for

    run = _Run(arguments)
    target = Path(arguments.path)
    project = project_for(str(target if target.is_file() else target / "x.py"))
    configs = [target] if target.is_file() else sorted(
        path for path in project.root.rglob("*.py")
        if is_gunicorn_config_name(path.name) and len(path.relative_to(project.root).parts) <= 3
        and not set(path.relative_to(project.root).parts) & set(DEFAULT_EXCLUDE))
    budgets = []  # (what it counts: a config file or a command line, its budget)
    for config in configs:
        try:
            source = read_source(str(config))
        except SourceError as error:
            run.notice(f"{config}: {error}")
            continue
        facts = analyse(source.text, str(config), run.settings).facts
        budget = Context(run.settings, str(config)).budget(facts) if facts is not None else None
        if budget is not None:
            budgets.append((os.path.relpath(config, project.root), budget))
    if not target.is_file():  # the command lines of Procfiles, Dockerfiles, compose files
        context = Context(run.settings, str(project.root / "x.py"))
        budgets += [(f"{command.where} ({command.program})", budget)
                    for command, budget in context.command_budgets]
    if not budgets:
        print("flake8-pooling budget: no gunicorn config or server command with engines to "
              f"count in {project.root}", file=sys.stderr)
        return EXIT_ERROR if run.notices else EXIT_CLEAN
    if arguments.format == "json":
        sys.stdout.write(json.dumps([_budget_json(name, budget) for name, budget in budgets],
                                    indent=2) + "\n")
    else:
        for name, budget in budgets:
            sys.stdout.write(_budget_text(name, budget))
    if run.notices:
        return EXIT_ERROR
    return EXIT_FINDINGS if any(budget.over for _, budget in budgets) else EXIT_CLEAN


def _budget_json(name: str, budget) -> dict:
    model = budget.model
    return {"config": name, "workers": model.workers.value,
            "threads": budget.threads, "worker_class": model.worker_class,
            "engines": [vars(engine) for engine in budget.engines],
            "per_worker": budget.per_process, "total": budget.total, "limit": budget.limit,
            "limit_source": budget.limit_source, "over": budget.over,
            "assumptions": budget.assumptions}


def _budget_text(name: str, budget) -> str:
    model = budget.model
    rows = [("process model", f"{model.workers.value} workers x {budget.threads} "
                              f"thread{'s' * (budget.threads != 1)} (worker_class "
                              f"{model.worker_class})")]
    for number, engine in enumerate(budget.engines):
        size = f"pool_size {engine.pool_size} + max_overflow {engine.max_overflow} = " \
            if engine.pool_size is not None else ""
        count = f"{engine.per_process}" if engine.per_process is not None else "not counted"
        rows.append(("engines" if number == 0 else "",
                     f"{engine.name} ({engine.where}) {engine.pool}: {size}{count}"))
    rows += [("per worker", f"{budget.per_process} connections"),
             ("total", f"{model.workers.value} x {budget.per_process} = {budget.total}"),
             ("limit", f"{budget.limit} ({budget.limit_source})"),
             ("verdict", f"OVER the limit by {budget.total - budget.limit}" if budget.over
              else "within the limit" if budget.total is not None else "not known")]
    rows += [("assumptions" if number == 0 else "", f"- {note}")
             for number, note in enumerate(budget.assumptions)]
    lines = [f"flake8-pooling budget: {name}"]
    lines += [f"  {label:<14}{text}" for label, text in rows]
    return "\n".join(lines) + "\n\n"


# -- rules -----------------------------------------------------------------------------------------

def run_rules(arguments) -> int:
    if arguments.code:
        rule = rule_by_code(arguments.code)
        if rule is None:
            print(f"flake8-pooling: no rule {arguments.code}; `flake8-pooling rules` lists them",
                  file=sys.stderr)
            return EXIT_ERROR
        sys.stdout.write(rule.documentation())
        return EXIT_CLEAN
    rows = [("code", "name", "fix", "default", "what it finds")]
    rows += [(rule.code, rule.name, rule.fix_availability, "opt-in" if rule.opt_in else "on",
              rule.summary()) for rule in all_rules()]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    print("\n`flake8-pooling rules CODE` shows a rule's documentation.")
    return EXIT_CLEAN


# -- server ----------------------------------------------------------------------------------------

def run_server(arguments) -> int:
    try:  # pygls is an extra: `check` and the flake8 plugin never import it
        from .server import main as serve
    except ModuleNotFoundError as error:
        missing = (error.name or "").partition(".")[0]
        if missing not in ("pygls", "lsprotocol"):
            raise
        print(f"flake8-pooling server: {missing} is not installed; pip install "
              "'flake8-pooling[server]'", file=sys.stderr)
        return EXIT_ERROR
    return serve()


if __name__ == "__main__":
    sys.exit(main())
