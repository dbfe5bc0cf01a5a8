"""The cheap gates before libcst: most files of a project never reach the parser.

1. The text must mention a word of the vocabulary (microseconds).
2. flake8's own `ast` tree (free) must use one as a name, attribute, keyword or string key,
   not only in a comment or docstring.
"""

from __future__ import annotations

import ast

# Every name a fact is built from. A rule family that needs a new name adds it here.
VOCABULARY = frozenset({
    "create_engine", "create_async_engine", "engine_from_config", "async_engine_from_config",
    "SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_ENGINE_OPTIONS", "SQLALCHEMY_BINDS", "engine_options",
})


def mentions_vocabulary(text: str) -> bool:
    return any(word in text for word in VOCABULARY)


def uses_vocabulary(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.alias):
            name = node.name.rpartition(".")[2]
        elif isinstance(node, ast.keyword):
            name = node.arg
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and len(node.value) < 40:
            name = node.value
        else:
            continue
        if name in VOCABULARY:
            return True
    return False
