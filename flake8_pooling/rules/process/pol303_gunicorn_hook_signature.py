"""POL303 gunicorn-hook-signature: a gunicorn hook that never runs, or that gunicorn rejects."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from ...analysis.facts import ModuleFacts
from ...analysis.facts.gunicorn import near_hooks
from ...findings import SAFE, Edit, Fix
from ...vocabulary import GUNICORN_HOOKS, GUNICORN_SETTINGS
from ..base import Example, Rule


class GunicornHookSignature(Rule):
    """
    ## What it does
    Checks the module-level functions of gunicorn config files against gunicorn's server hooks:
    a name that is a near miss of a hook (`postfork`, `post_worker_int`, `prefork`), and a hook
    whose positional parameters do not match what gunicorn passes.

    ## Why is this bad?
    gunicorn skips names it does not know without a word ("Ignore unknown names"), so a
    misspelled `post_fork` never runs and the engines it was meant to dispose stay shared. A hook
    with the wrong number of positional parameters (defaults count, `*args` does not) stops
    gunicorn at start with `TypeError: Value must have an arity of: 2`.

    ## Fix safety
    Safe for a near miss: the function is renamed to the hook it was meant to be. No fix for a
    wrong arity: what the extra parameters were for is not in the code.

    ## References
    - https://docs.gunicorn.org/en/stable/settings.html#server-hooks
    """

    code = "POL303"
    level = "error"
    name = "gunicorn-hook-signature"
    fix_availability = "safe"
    wrong_arity = ("gunicorn rejects {hook}() at start: it has {positional} positional "
                   "parameters and gunicorn calls it with {arity} (TypeError: Value must have an "
                   "arity of: {arity})")
    misspelt = "gunicorn ignores unknown names: {name}() never runs; did you mean {near}?"
    invalid = (
        Example('''
            # gunicorn.conf.py
            workers = 4


            def postfork(server, worker):
                server.log.info("worker %s forked", worker.pid)
        ''', fixed='''
            # gunicorn.conf.py
            workers = 4


            def post_fork(server, worker):
                server.log.info("worker %s forked", worker.pid)
        ''', path="gunicorn.conf.py"),
        Example('''
            # gunicorn.conf.py
            workers = 4


            def post_fork(server, worker, engine=None):
                ...
        ''', path="gunicorn.conf.py"),
    )
    valid = (
        Example('''
            # gunicorn.conf.py
            workers = 4


            def post_fork(server, worker, *args):
                server.log.info("worker %s forked", worker.pid)


            def _log_config(server):
                ...
        ''', path="gunicorn.conf.py"),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        config = facts.gunicorn
        if config is None:
            return
        for function in config.functions:
            name = function.name.value
            positional = len(function.params.posonly_params) + len(function.params.params)
            if name in GUNICORN_HOOKS:
                arity = GUNICORN_HOOKS[name][0]
                if arity is not None and positional != arity:
                    yield self.finding(function, self.wrong_arity.format(
                        hook=name, positional=positional, arity=arity))
                continue
            if name.startswith("_") or name in GUNICORN_SETTINGS:
                continue
            near = [hook for hook in near_hooks(name) if hook not in config.hooks]
            if not near:
                continue
            # renamed only when the intended hook is clear: worker_init could be either
            fix = Fix(SAFE, (Edit(function, lambda node, new=near[0]: node.with_changes(
                name=cst.Name(new))),)) if len(near) == 1 else None
            yield self.finding(function, self.misspelt.format(name=name, near=" or ".join(near)),
                               fix)
