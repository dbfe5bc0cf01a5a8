"""How many processes and threads a deployment runs, read from a gunicorn config file or from
the command line that starts gunicorn, uvicorn or a Celery worker.

Values that are expressions (`multiprocessing.cpu_count() * 2 + 1`,
`int(os.environ.get("WEB_CONCURRENCY", 4))`) are evaluated the way they would be here, and each
such step is kept as an assumption for the message or the budget table to print.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import libcst as cst

from .names import ImportTable
from .values import evaluate, resolve

_CPU_COUNT = {"multiprocessing.cpu_count", "os.cpu_count"}
_ENV_GET = {"os.environ.get", "os.getenv"}


@dataclass
class Estimate:
    value: int | None
    assumptions: list[str] = field(default_factory=list)


def estimate(expr: cst.BaseExpression | None, constants, imports: ImportTable,
             depth: int = 0) -> Estimate:
    if expr is None or depth > 20:
        return Estimate(None)
    expr = resolve(expr, constants)
    value = evaluate(expr, constants)
    if isinstance(value, int) and not isinstance(value, bool):
        return Estimate(value)
    if isinstance(value, str) and value.strip().isdigit():
        return Estimate(int(value))
    if isinstance(expr, cst.BinaryOperation):
        left = estimate(expr.left, constants, imports, depth + 1)
        right = estimate(expr.right, constants, imports, depth + 1)
        if left.value is None or right.value is None:
            return Estimate(None)
        operations = {cst.Add: lambda a, b: a + b, cst.Subtract: lambda a, b: a - b,
                      cst.Multiply: lambda a, b: a * b,
                      cst.FloorDivide: lambda a, b: a // b if b else None}
        operation = operations.get(type(expr.operator))
        result = operation(left.value, right.value) if operation else None
        return Estimate(result, left.assumptions + right.assumptions)
    if isinstance(expr, cst.Call):
        qualified = imports.qualify(expr.func) or (expr.func.value if isinstance(expr.func,
                                                                                 cst.Name) else "")
        arguments = [arg.value for arg in expr.args if arg.keyword is None and not arg.star]
        if qualified in _CPU_COUNT:
            count = os.cpu_count() or 1
            return Estimate(count, [f"cpu_count() = {count} on this machine"])
        if qualified in ("int", "float") and arguments:
            return estimate(arguments[0], constants, imports, depth + 1)
        if qualified in ("max", "min") and arguments:
            parts = [estimate(arg, constants, imports, depth + 1) for arg in arguments]
            if any(part.value is None for part in parts):
                return Estimate(None)
            pick = max if qualified == "max" else min
            return Estimate(pick(part.value for part in parts),
                            [note for part in parts for note in part.assumptions])
        if qualified in _ENV_GET and len(arguments) >= 2:
            name = evaluate(arguments[0], constants)
            default = estimate(arguments[1], constants, imports, depth + 1)
            if default.value is not None:
                return Estimate(default.value, default.assumptions + [
                    f"${name} unset: its default {default.value}"])
    return Estimate(None)


@dataclass
class ProcessModel:
    workers: Estimate
    threads: Estimate
    worker_class: str
    workers_node: cst.CSTNode | None  # where the rules report
    threads_node: cst.CSTNode | None


def gunicorn_model(settings: dict[str, cst.BaseExpression], constants,
                   imports: ImportTable) -> ProcessModel:
    workers = estimate(settings.get("workers"), constants, imports)
    if "workers" not in settings:  # gunicorn's default (fact 63)
        workers = Estimate(1, ["workers not set: gunicorn's default, $WEB_CONCURRENCY or 1"])
    threads = estimate(settings.get("threads"), constants, imports)
    if "threads" not in settings:
        threads = Estimate(1)
    worker_class = evaluate(settings["worker_class"], constants) \
        if "worker_class" in settings else "sync"
    worker_class = worker_class if isinstance(worker_class, str) else "unknown"
    if worker_class == "sync" and (threads.value or 1) > 1:
        worker_class = "gthread"  # gunicorn: sync with threads > 1 runs gthread (fact 63)
    return ProcessModel(workers, threads, worker_class, settings.get("workers"),
                        settings.get("threads"))


def _count(text: object, source: str) -> Estimate:
    if isinstance(text, str) and text.strip().isdigit():
        return Estimate(int(text))
    return Estimate(None, [f"{source} not known"])


def command_model(program: str, options: dict[str, object], environment: dict[str, str],
                  config: ProcessModel | None = None) -> ProcessModel:
    """The process model a command line starts. gunicorn: the command line wins over the
    config file, which wins over $WEB_CONCURRENCY (facts 62, 63). uvicorn: --workers, else
    $WEB_CONCURRENCY, else 1; its workers are spawned, each with its own pools (fact 99).
    Celery: prefork runs --concurrency children (default: the CPUs), the threads pool that many
    threads in one process (fact 101)."""
    if program == "celery":
        pool = str(options.get("pool") or "prefork")
        if "concurrency" in options:
            concurrency = _count(options["concurrency"], "--concurrency")
        else:
            cpus = os.cpu_count() or 1
            concurrency = Estimate(cpus, [f"--concurrency not set: Celery's default, the "
                                          f"{cpus} CPUs of this machine"])
        if pool in ("threads", "gevent", "eventlet"):
            return ProcessModel(Estimate(1), concurrency, pool, None, None)
        if pool == "solo":
            return ProcessModel(Estimate(1), Estimate(1), pool, None, None)
        return ProcessModel(concurrency, Estimate(1), "prefork", None, None)
    web = environment.get("WEB_CONCURRENCY")
    if "workers" in options:
        workers = _count(options["workers"], "--workers")
    elif config is not None and config.workers_node is not None:
        workers = config.workers
    elif web is not None:
        workers = _count(web, "$WEB_CONCURRENCY")
    else:
        workers = Estimate(1, ["workers not set: $WEB_CONCURRENCY or 1"])
    if program == "uvicorn":
        return ProcessModel(workers, Estimate(1), "uvicorn", None, None)
    if "threads" in options:
        threads = _count(options["threads"], "--threads")
    elif config is not None:
        threads = config.threads
    else:
        threads = Estimate(1)
    worker_class = str(options.get("worker_class") or (config.worker_class if config else "sync"))
    if worker_class == "sync" and (threads.value or 1) > 1:
        worker_class = "gthread"  # fact 63
    return ProcessModel(workers, threads, worker_class, None, None)
