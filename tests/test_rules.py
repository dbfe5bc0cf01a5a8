"""A rule's examples are its tests: invalid ones flag and fix as shown, valid ones stay quiet."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from flake8_pooling.analysis.project import forget_projects

from flake8_pooling.fix import fix_source
from flake8_pooling.lint import lint
from flake8_pooling.rules import all_rules, rule_by_code
from flake8_pooling.settings import Settings

RULES = all_rules()
INVALID = [(rule, example) for rule in RULES for example in rule.invalid]
VALID = [(rule, example) for rule in RULES for example in rule.valid]
PATH = "app/db.py"


def settings_for(example) -> Settings:
    values = {"sqlalchemy_version": "2.0"}
    values.update({key.replace("-", "_"): value for key, value in example.settings.items()})
    return Settings.from_values(**values)


def codes(source: str, settings: Settings, path: str = PATH) -> list[str]:
    return [finding.code for finding in lint(source, path, settings)]


def example_id(item) -> str:
    rule, example = item
    return f"{rule.code}-{(rule.invalid + rule.valid).index(example)}"


def example_path(example, tmp_path: Path) -> str:
    """Where the example is linted: in a scratch project when it comes with one."""
    if not example.project:
        return example.path
    forget_projects()
    for name, text in example.project.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return str(tmp_path / example.path)


@pytest.mark.parametrize("item", INVALID, ids=map(example_id, INVALID))
def test_invalid_example_is_flagged_and_fixed_as_documented(item, tmp_path):
    rule, example = item
    settings, path = settings_for(example), example_path(example, tmp_path)
    assert rule.code in codes(example.code, settings, path)
    if example.fixed is None:
        return
    result = fix_source(example.code, path, settings, unsafe=True, select=[rule.code])
    assert result.source == example.fixed
    assert rule.code not in codes(result.source, settings, path), "the fix must remove it"
    again = fix_source(result.source, path, settings, unsafe=True, select=[rule.code])
    assert again.source == result.source and not again.applied, "a second fix must change nothing"


@pytest.mark.parametrize("item", VALID, ids=map(example_id, VALID))
def test_valid_example_is_quiet(item, tmp_path):
    rule, example = item
    assert rule.code not in codes(example.code, settings_for(example),
                                  example_path(example, tmp_path))


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_rule_is_documented_in_ruffs_shape(rule):
    assert re.fullmatch(r"POL[1-8]\d\d", rule.code)  # flake8 accepts ^[A-Z]{1,3}[0-9]{0,3}$
    assert re.fullmatch(r"[a-z]+(-[a-z]+)+", rule.name)
    assert rule.fix_availability in ("safe", "unsafe", "safe or unsafe", "none")
    assert rule.invalid and rule.valid
    page = rule.documentation()
    for section in ("What it does", "Why is this bad?", "Example", "Use instead", "Fix safety",
                    "References"):
        body = page.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0].strip()
        assert body, f"{rule.code}: empty section {section}"
    assert "https://" in page.split("## References", 1)[1]


def test_codes_are_unique_and_findable():
    assert len({rule.code for rule in RULES}) == len(RULES)
    assert rule_by_code("pol101").name == "pooled-behind-pooler"
    assert rule_by_code("POL999") is None


def test_safe_fixes_alone_leave_unsafe_findings():
    source = 'from sqlalchemy import create_engine\n' \
             'engine = create_engine("postgresql+psycopg2://app@pgbouncer:6432/app")\n'
    result = fix_source(source, PATH, Settings.from_values(sqlalchemy_version="2.0"))
    assert [finding.code for finding in result.applied] == ["POL102"]
    assert [finding.code for finding in result.remaining] == ["POL101"]
    assert "pool_pre_ping=True" in result.source and "NullPool" not in result.source


def test_pooler_supports_prepared_statements_only_with_max_prepared_statements():
    from flake8_pooling.analysis.pooler import PoolerEvidence

    assert PoolerEvidence("ini", max_prepared_statements=200).supports_prepared_statements
    assert not PoolerEvidence("ini", max_prepared_statements=0).supports_prepared_statements
    assert not PoolerEvidence("URL").supports_prepared_statements


def test_engine_per_call_says_when_the_dispose_after_a_yield_does_not_count():
    source = textwrap.dedent('''
        from sqlalchemy import create_engine
        from sqlalchemy.orm import Session

        def get_db():
            engine = create_engine("postgresql://app@db/app")
            with Session(engine) as session:
                yield session
            engine.dispose()

        def count_orders():
            engine = create_engine("postgresql://app@db/app")
            engine.connect()
    ''')
    after_yield, never = [finding for finding in lint(source, "app/db.py")
                          if finding.code == "POL106"]
    assert (after_yield.line, never.line) == (6, 12)
    assert after_yield.message.startswith(
        "get_db() disposes the engine only after its yield, outside finally:")
    assert "dispose it in a finally: block" in after_yield.message
    assert "never disposes it" in never.message
