"""The fixes as libcst codemod commands, for teams that run `python -m libcst.tool codemod`.

With `modules: ["flake8_pooling"]` in `.libcst.codemod.yaml`:

    python -m libcst.tool codemod codemods.FixPooling src/            # every safe fix
    python -m libcst.tool codemod codemods.FixPooling --unsafe-fixes src/
    python -m libcst.tool codemod codemods.FixPOL102 src/             # one rule's fixes

They read no flake8 configuration: the pooling settings are command arguments, spelled as on
flake8's command line (`--pooling-pooler-mode transaction`).
"""

from __future__ import annotations

import argparse

import libcst as cst
from libcst.codemod import CodemodCommand, CodemodContext, SkipFile

from . import options
from .fix import fix_source
from .rules import all_rules


class FixPooling(CodemodCommand):
    DESCRIPTION = "Apply flake8-pooling's fixes (safe ones unless --unsafe-fixes)."
    CODES: tuple[str, ...] = ()  # empty: every rule

    def __init__(self, context: CodemodContext, unsafe_fixes: bool = False, **values) -> None:
        super().__init__(context)
        self.unsafe_fixes = unsafe_fixes
        self.settings = options.settings_from_namespace(argparse.Namespace(**values))

    @staticmethod
    def add_args(arg_parser: argparse.ArgumentParser) -> None:
        arg_parser.add_argument("--unsafe-fixes", dest="unsafe_fixes", action="store_true",
                                help="also apply fixes that change run-time behaviour")
        options.add_arguments(arg_parser)

    def transform_module_impl(self, tree: cst.Module) -> cst.Module:
        result = fix_source(tree.code, self.context.filename or "", self.settings,
                            unsafe=self.unsafe_fixes, select=self.CODES or None)
        if not result.changed:
            raise SkipFile("no flake8-pooling fix applies")
        return cst.parse_module(result.source)


# One command per fixable rule: FixPOL101, FixPOL102, ...
for _rule in all_rules():
    if _rule.fix_availability != "none":
        globals()[f"Fix{_rule.code}"] = type(f"Fix{_rule.code}", (FixPooling,), {
            "DESCRIPTION": f"Apply the fixes of {_rule.code} {_rule.name}.",
            "CODES": (_rule.code,), "__module__": __name__})
