"""What every rule is: a code, a name, its documentation and the examples that prove it."""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import libcst as cst

from ..analysis.context import Context
from ..analysis.facts import ModuleFacts
from ..findings import Finding, Fix


@dataclass(frozen=True)
class Example:
    code: str
    # INVALID examples: the code after `flake8-pooling fix --unsafe-fixes`
    fixed: str | None = None
    # INVALID examples: the exception real SQLAlchemy raises running `code` (the tests run it)
    raises: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    path: str = "app/db.py"  # where the example lives: gunicorn examples are gunicorn.conf.py
    # other files of the example's project (path -> text), for rules that read the project
    project: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", textwrap.dedent(self.code).lstrip("\n"))
        if self.fixed is not None:
            object.__setattr__(self, "fixed", textwrap.dedent(self.fixed).lstrip("\n"))


class Rule:
    """Subclasses carry a docstring with the sections of `SECTIONS` (ruff's shape)."""

    code: ClassVar[str]
    name: ClassVar[str]
    fix_availability: ClassVar[str]  # "safe", "unsafe", "safe or unsafe", "none"
    opt_in: ClassVar[bool] = False
    # "error": the code fails at start or never runs as meant; "warning": it fails under load
    level: ClassVar[str] = "warning"
    valid: ClassVar[tuple[Example, ...]] = ()
    invalid: ClassVar[tuple[Example, ...]] = ()
    # names of files other than Python that `check_file` reads ("*.ini"): flake8 never hands
    # them over, `flake8-pooling check` does
    reads: ClassVar[tuple[str, ...]] = ()
    # the roles of code it stays quiet in: "test", "script" (see Context.role_of)
    quiet_in: ClassVar[tuple[str, ...]] = ()

    SECTIONS: ClassVar[tuple[str, ...]] = ("What it does", "Why is this bad?", "Fix safety",
                                           "References")

    def __init__(self, context: Context) -> None:
        self.context = context

    def check(self, facts: ModuleFacts) -> Iterator[Finding]:
        """Findings in a Python module, from its facts."""
        return iter(())

    def check_file(self, text: str) -> Iterator[Finding]:
        """Findings in a file this rule `reads` (its lines, not its tree)."""
        return iter(())

    def finding(self, node: cst.CSTNode, message: str, fix: Fix | None = None) -> Finding:
        return Finding(self.code, message, node, fix)

    @classmethod
    def sections(cls) -> dict[str, str]:
        return _split_sections(inspect.cleandoc(cls.__doc__ or ""))

    @classmethod
    def summary(cls) -> str:
        """The first sentence of "What it does"."""
        text = " ".join(cls.sections().get("What it does", cls.name).split())
        sentence = text.split(". ")[0].split(": -")[0].rstrip(".:")
        return sentence + "."

    @classmethod
    def references(cls) -> list[str]:
        return [line.lstrip("- ").strip() for line in cls.sections().get("References", "")
                .splitlines() if line.strip().startswith("- http")]

    @classmethod
    def documentation(cls) -> str:
        """The rule's page: its docstring with the first examples as Example / Use instead."""
        doc = inspect.cleandoc(cls.__doc__ or "")
        example = cls.invalid[0] if cls.invalid else None
        instead = example.fixed if example and example.fixed else \
            (cls.valid[0].code if cls.valid else None)
        parts = [f"# {cls.code} {cls.name}", ""]
        default = "off by default: enable with --extend-select=" + cls.code if cls.opt_in \
            else "on by default"
        parts += [f"Fix: {cls.fix_availability}. {default[0].upper()}{default[1:]}.", ""]
        sections = _split_sections(doc)
        for title in ("What it does", "Why is this bad?"):
            parts += [f"## {title}", sections.get(title, ""), ""]
        if example:
            parts += ["## Example", "```python", example.code.rstrip(), "```", ""]
        if instead:
            parts += ["## Use instead", "```python", instead.rstrip(), "```", ""]
        for title in ("Fix safety", "References"):
            parts += [f"## {title}", sections.get(title, ""), ""]
        return "\n".join(parts).rstrip() + "\n"


def _split_sections(doc: str) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in doc.splitlines():
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return {title: "\n".join(lines).strip() for title, lines in sections.items()}
