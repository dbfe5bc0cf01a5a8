"""The text gate never turns away a file the tree gate would take: every word test in
`mentions_vocabulary` is implied by what `uses_vocabulary` looks for in the tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from flake8_pooling.analysis.prefilter import mentions_vocabulary, uses_vocabulary

FIXTURES = sorted((Path(__file__).parent / "fixtures").rglob("*.py"))


@pytest.mark.parametrize("path", FIXTURES, ids=lambda path: path.name)
def test_a_fixture_the_tree_gate_takes_passes_the_text_gate(path):
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    if uses_vocabulary(tree, str(path), text) or uses_vocabulary(tree, str(path)):
        assert mentions_vocabulary(text, str(path))


STATEMENTS = st.sampled_from([
    "from sqlalchemy.orm import sessionmaker\n",
    "def endpoint(db: Session = Depends(get_db)):\n    return db\n",
    "db = Session(bind=engine)\n", "db = Session (engine)\n", "db = AsyncSession(\n    engine)\n",
    "session = make_factory()()\n", "session = make_factory()\\\n    ()\n",
    "class Repo:\n    session = Session()\n", "SessionLocal = sessionmaker(bind=engine)\n",
    "db = SessionLocal()\n", "x: Session\n", "# Session(\n", "print('Session')\n",
    "def f():\n    with Session(engine) as s:\n        return s\n",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(STATEMENTS, min_size=1, max_size=6))
def test_session_words_the_tree_gate_takes_pass_the_text_gate(statements):
    # the text names Session (a file that does not is not looked at for sessions at all)
    text = "from sqlalchemy.orm import Session\n" + "".join(statements)
    if uses_vocabulary(ast.parse(text), "app/db.py", text):
        assert mentions_vocabulary(text, "app/db.py")


def test_a_file_that_only_annotates_sessions_is_turned_away_by_its_text():
    text = ("from sqlalchemy.orm import Session\n\n"
            "def read(db: Session = Depends(get_db)) -> list:\n    return db.scalars(q).all()\n")
    assert not uses_vocabulary(ast.parse(text), "app/api.py", text)
    assert not mentions_vocabulary(text, "app/api.py")
