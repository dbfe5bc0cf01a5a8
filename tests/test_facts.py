"""Every "(fact N)" in the code and the docs points at a fact docs/facts.md has."""

from __future__ import annotations

import re

from .helpers import ROOT

FACT = re.compile(r"^(\d+)\. \*\*", re.MULTILINE)
# "(fact 12)", "fact 2, approach 3", "facts 56-58", "facts 4-5", "facts 43-46 and fact 55"
CITATION = re.compile(r"\bfacts? (\d+)(?:\s*[-–]\s*(\d+))?")


def cited_in(text: str) -> set[int]:
    numbers = set()
    for match in CITATION.finditer(text):
        first, last = int(match[1]), int(match[2] or match[1])
        numbers.update(range(first, last + 1))
    return numbers


def test_every_citation_resolves():
    facts = {int(number) for number in FACT.findall((ROOT / "docs" / "facts.md").read_text())}
    sources = [*(ROOT / "flake8_pooling").rglob("*.py"), *(ROOT / "docs").rglob("*.md"),
               ROOT / "README.md"]
    missing = {f"{path.relative_to(ROOT)}: fact {number}"
               for path in sources for number in cited_in(path.read_text()) - facts}
    assert not missing, sorted(missing)


def test_nothing_cites_the_old_survey():
    sources = [*(ROOT / "flake8_pooling").rglob("*.py"), ROOT / "README.md"]
    assert not [path for path in sources if re.search(r"\(domain \d", path.read_text())]


def test_the_sheet_is_numbered_without_gaps():
    numbers = [int(number) for number in FACT.findall((ROOT / "docs" / "facts.md").read_text())]
    assert numbers == list(range(1, len(numbers) + 1))


def test_citations_are_read_as_written():
    assert cited_in("(fact 12)") == {12}
    assert cited_in("facts 56-58 and fact 2, approach 3") == {56, 57, 58, 2}
