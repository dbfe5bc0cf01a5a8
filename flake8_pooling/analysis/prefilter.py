"""The cheap gates before libcst: most files of a project never reach the parser.

1. The text must mention a word of the vocabulary (microseconds).
2. flake8's own `ast` tree (free) must use one the way a fact needs it: an engine creator
   called, a Flask-SQLAlchemy setting assigned or used as a key, `engine_options=` passed.
   Imports, re-exports, comments and docstrings do not count.

This module imports nothing heavy: the plugin loads libcst and SQLAlchemy only for files that
pass both gates.
"""

from __future__ import annotations

import ast

ENGINE_CREATORS = frozenset({"create_engine", "create_async_engine", "engine_from_config",
                             "async_engine_from_config"})
CONFIG_NAMES = frozenset({"SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_ENGINE_OPTIONS",
                          "SQLALCHEMY_BINDS"})
KEYWORDS = CONFIG_NAMES | {"engine_options"}
VOCABULARY = ENGINE_CREATORS | KEYWORDS


def mentions_vocabulary(text: str) -> bool:
    return any(word in text for word in VOCABULARY)


def uses_vocabulary(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else None
            if name in ENGINE_CREATORS:
                return True
        elif isinstance(node, ast.keyword):
            if node.arg in KEYWORDS:
                return True
        elif isinstance(node, ast.Name):
            if node.id in CONFIG_NAMES and isinstance(node.ctx, ast.Store):
                return True
        elif isinstance(node, ast.Constant):
            if node.value in CONFIG_NAMES:
                return True
    return False
