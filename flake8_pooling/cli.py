"""`flake8-pooling check | fix | rules | budget`: the same engine as the flake8 plugin, plus fixes.

This module imports only what reading the command line and the config needs: libcst,
SQLAlchemy and the rules load with the first file that mentions the vocabulary, and the fixer
only when a fix is computed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections import Counter
from pathlib import Path

from . import __version__, options
from . import config as config_files
from .files import DEFAULT_EXCLUDE, SourceError, decode, python_files, read_source

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

def _jobs(value: str) -> int | None:
    """flake8's -j: a number of processes, or `auto` (every core, given enough files)."""
    if value == "auto":
        return None
    try:
        jobs = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is neither a number nor auto") from None
    if jobs < 1:
        raise argparse.ArgumentTypeError("needs at least 1 process")
    return jobs


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
    check.add_argument("--output-file", "--output", "-o", dest="output_file", metavar="FILE",
                       help="write the report to FILE")
    check.add_argument("--exit-zero", action="store_true",
                       help="exit 0 even when there are findings (files that could not be "
                            "read still exit 2)")
    check.add_argument("--count", action="store_true",
                       help="print the number of findings after all other output")
    check.add_argument("--statistics", action="store_true",
                       help="print how many findings each code has")
    check.add_argument("--show-source", action="store_true",
                       help="print the line of each finding, with a caret under its column")
    check.add_argument("-q", "--quiet", action="count", default=0,
                       help="-q: the findings and nothing else (no closing line); -qq: nothing "
                            "but the exit code (notices about unreadable files still go to "
                            "stderr)")
    check.add_argument("--color", "--colour", choices=("auto", "always", "never"),
                       default="auto", help="colour the text format: auto (on a terminal, "
                                            "unless NO_COLOR is set), always or never")
    check.add_argument("-j", "--jobs", type=_jobs, default=None, metavar="N",
                       help="processes to check files in: a number, or auto (the default: "
                            "every core once there are more than 50 files); 1 for one")
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
    rules.add_argument("code", nargs="?",
                       help="a rule's code or name, e.g. POL101 or pooled-behind-pooler")
    rules.add_argument("--format", choices=("text", "json"), default="text",
                       help="text (a table, or the rule's page) or json")
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
        config.merge(overrides, config_files.COMMAND_LINE)
        self.config = config
        self.settings = config.settings()
        self.selection = config.selection()
        self.notices: list[str] = []
        for problem in [*config.problems, *self.settings.problems]:
            self.notice(problem)
        for warning in config.unknown_codes():  # a typo, not a reason to stop
            print(f"flake8-pooling: warning: {warning}", file=sys.stderr)
        self.exclude = tuple(config.get_list("exclude") or DEFAULT_EXCLUDE) \
            + tuple(config.get_list("extend-exclude"))

    def notice(self, text: str) -> None:
        self.notices.append(text)
        print(f"flake8-pooling: {text}", file=sys.stderr)

    def files(self, paths: list[str], other_files: bool = False) -> list[str]:
        """The files to read, in the order reports list them (by path)."""
        patterns: tuple[str, ...] = ("*.py",)
        if other_files and any(Path(path).is_dir() for path in paths):
            from .rules import other_file_patterns  # uWSGI configs too: read by `check`

            patterns += other_file_patterns()
        return sorted(python_files(paths, self.exclude, patterns))

    def sources(self, paths: list[str], stdin_name: str):
        """(display path, SourceFile) for every file; unreadable ones become notices."""
        files = self.files(paths) if paths != ["-"] else ["-"]
        progress = _Progress(len(files), quiet=False)
        for path in files:
            progress.step()
            try:
                if path == "-":
                    yield stdin_name, decode(stdin_name, sys.stdin.buffer.read())
                else:
                    yield path, read_source(path)
            except SourceError as error:
                self.notice(f"{path}: {error}")
        progress.clear()


class _Progress:
    """`123/1612 files` on a terminal's stderr, for runs long enough to wonder about."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total = total
        self.shown = not quiet and sys.stderr.isatty() and total > 200
        self.done = 0

    def step(self) -> None:
        self.done += 1
        if self.shown and self.done % 50 == 0:
            print(f"\rflake8-pooling: {self.done}/{self.total} files", end="", file=sys.stderr)

    def clear(self) -> None:
        if self.shown:
            print("\r" + " " * 40 + "\r", end="", file=sys.stderr)


# -- check -----------------------------------------------------------------------------------------

def run_check(arguments) -> int:
    from .checking import CheckJob, check_paths, check_source, default_jobs
    from .report import WRITERS, FileResult, TextWriter

    run = _Run(arguments)
    stdin = arguments.paths == ["-"]
    paths = ["-"] if stdin else run.files(arguments.paths, other_files=True)
    if arguments.output_file:
        try:
            stream = open(arguments.output_file, "w", encoding="utf-8")
        except OSError as error:
            run.notice(f"{arguments.output_file}: cannot write the report there: "
                       f"{error.strerror or error}")
            return EXIT_ERROR
    else:
        stream = sys.stdout
    silent = arguments.quiet >= 2
    if arguments.format == "text":
        writer = TextWriter(stream, colour=_colour(arguments.color, stream),
                            show_source=arguments.show_source)
    else:
        writer = WRITERS[arguments.format](stream)
    if silent:
        writer.stream = open(os.devnull, "w")
    job = CheckJob(run.settings, run.selection, edits=writer.needs_edits,
                   source_lines=arguments.show_source)
    fixable: Counter = Counter()
    messages: dict[str, str] = {}  # the first message of each code, for --statistics
    progress = _Progress(len(paths), arguments.quiet > 0)
    try:
        if stdin:
            name = arguments.stdin_display_name
            try:
                results = iter([check_source(job, name,
                                             decode(name, sys.stdin.buffer.read()).text)])
            except SourceError as error:
                results = iter([FileResult(name, notices=[f"{name}: not checked: {error}"])])
        else:
            jobs = arguments.jobs or default_jobs(len(paths))
            results = check_paths(job, paths, jobs)
        unreadable = 0
        for result in results:
            progress.step()
            unreadable += bool(result.notices)
            for notice in result.notices:
                run.notice(notice)
            writer.file(result)
            for finding in result.findings:
                fixable[finding.safety] += 1
                messages.setdefault(finding.code, finding.message)
        progress.clear()
        writer.close(run.notices)
        # a JSON or SARIF document stays whole, wherever it is written
        document = arguments.format in ("json", "sarif")
        extra = sys.stderr if document else writer.stream
        if arguments.statistics:
            # flake8's --statistics: the count, the code and the first message of the code
            for code, count in sorted(writer.counts.items()):
                extra.write(f"{count:<5} {code} {messages[code]}\n")
        if arguments.count:
            (sys.stderr if document or silent else sys.stdout).write(
                f"{sum(writer.counts.values())}\n")
    finally:
        if stream is not sys.stdout:
            stream.close()
    total = sum(writer.counts.values())
    if arguments.format == "text" and not arguments.quiet:
        print(_closing_line(total, fixable["safe"], fixable["unsafe"], unreadable,
                            len(run.notices) - unreadable), file=sys.stderr)
    if run.notices:
        return EXIT_ERROR
    return EXIT_FINDINGS if total and not arguments.exit_zero else EXIT_CLEAN


def _colour(choice: str, stream) -> bool:
    """flake8's --color, and https://no-color.org: auto colours a terminal unless NO_COLOR is
    set; an explicit `always` wins over the environment."""
    if choice != "auto":
        return choice == "always"
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


def _closing_line(total: int, safe: int, unsafe: int, unreadable: int, problems: int) -> str:
    """ruff's: `Found 12 findings (7 fixable with ..., 3 more with --unsafe-fixes).`"""
    if not total:
        if unreadable:
            return f"No findings, but {_plural(unreadable, 'file')} could not be checked " \
                "(above)."
        return "No findings; settings that could not be read are above." if problems \
            else "All checks passed!"
    fixes = []
    if safe:
        fixes.append(f"{safe} fixable with `flake8-pooling fix`")
    if unsafe:
        fixes.append(f"{unsafe} more with `--unsafe-fixes`" if safe else
                     f"{unsafe} fixable with `flake8-pooling fix --unsafe-fixes`")
    line = f"Found {_plural(total, 'finding')}" + (f" ({', '.join(fixes)})" if fixes else "")
    if unreadable:
        line += f"; {_plural(unreadable, 'file')} could not be checked (above)"
    return line + "."


# -- fix -------------------------------------------------------------------------------------------

def run_fix(arguments) -> int:
    import difflib

    from .checking import INTERNAL_CODES, parse
    from .analysis.prefilter import mentions_vocabulary
    from .findings import UNSAFE
    from .fix import fix_source

    run = _Run(arguments)
    applied: Counter = Counter()
    left_unsafe: Counter = Counter()
    left_unfixable: Counter = Counter()
    changed_files = 0
    for path, source in run.sources(arguments.paths, arguments.stdin_display_name):
        if mentions_vocabulary(source.text, path) and \
                (problem := parse(source.text)[1]) is not None:
            run.notice(f"{path}: not fixed: {problem}")
            continue
        result = fix_source(source.text, path, run.settings, unsafe=arguments.unsafe_fixes,
                            selection=run.selection)
        for finding in result.remaining:
            if finding.code in INTERNAL_CODES:
                run.notice(f"{path}: not fixed: {finding.message}")
            elif finding.fix is not None and finding.fix.safety == UNSAFE:
                left_unsafe[finding.code] += 1
            else:
                left_unfixable[finding.code] += 1
        if arguments.paths == ["-"]:
            sys.stdout.write(result.source)
        if not result.changed:
            continue
        applied.update(result.fixed)  # findings gone, whichever fix removed them
        changed_files += 1
        if arguments.diff:
            sys.stdout.writelines(difflib.unified_diff(
                source.text.splitlines(keepends=True), result.source.splitlines(keepends=True),
                f"a/{os.path.normpath(path)}", f"b/{os.path.normpath(path)}"))
        elif arguments.paths != ["-"]:
            from .files import write_atomically

            try:
                write_atomically(source, result.source)
            except SourceError as error:
                run.notice(f"{path}: {error}")
                changed_files -= 1
                applied.subtract(result.fixed)
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
    from .lint import analyse

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
    reason = None
    if not budgets:
        reason = (f"no gunicorn config or server command with engines to count in "
                  f"{project.root}" if not target.is_file() else
                  f"{target} sets no process model with engines to count")
    if arguments.format == "json":  # a document whether or not there is anything to count
        sys.stdout.write(json.dumps({
            "project": str(project.root),
            "budgets": [_budget_json(name, budget) for name, budget in budgets],
            "reason": reason, "notices": run.notices}, indent=2) + "\n")
    elif reason:
        print(f"flake8-pooling budget: {reason}", file=sys.stderr)
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
    from .rules import all_rules, rule_by_code

    if arguments.code:
        wanted = arguments.code.strip()
        rule = rule_by_code(wanted) or next(
            (rule for rule in all_rules() if rule.name == wanted.lower().replace("_", "-")),
            None)
        if rule is None:
            print(f"flake8-pooling: no rule {wanted!r}; `flake8-pooling rules` lists them",
                  file=sys.stderr)
            return EXIT_ERROR
        if arguments.format == "json":
            sys.stdout.write(json.dumps(_rule_json(rule), indent=2) + "\n")
        else:
            sys.stdout.write(rule.documentation())
        return EXIT_CLEAN
    if arguments.format == "json":
        sys.stdout.write(json.dumps([_rule_json(rule) for rule in all_rules()], indent=2) + "\n")
        return EXIT_CLEAN
    rows = [("code", "name", "fix", "default", "what it finds")]
    rows += [(rule.code, rule.name, rule.fix_availability, "opt-in" if rule.opt_in else "on",
              rule.summary()) for rule in all_rules()]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    print("\n`flake8-pooling rules CODE` shows a rule's documentation.")
    return EXIT_CLEAN


def _rule_json(rule) -> dict:
    return {"code": rule.code, "name": rule.name, "summary": rule.summary(),
            "fix": rule.fix_availability, "default": "opt-in" if rule.opt_in else "on",
            "level": rule.level, "doc": f"docs/rules/{rule.code}.md",
            "references": rule.references()}


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
