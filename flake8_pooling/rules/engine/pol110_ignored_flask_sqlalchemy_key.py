"""POL110 ignored-flask-sqlalchemy-key: settings Flask-SQLAlchemy 3 no longer reads."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from ...analysis.facts import ModuleFacts, RemovedKey
from ...analysis.values import UNKNOWN
from ...findings import SAFE, UNSAFE, Edit, Fix, remove_option, set_option
from ...settings import version_text
from ...vocabulary import REMOVED_FLASK_KEYS
from ..base import Example, Rule

OPTIONS_KEY = "SQLALCHEMY_ENGINE_OPTIONS"
# what the pool does instead when the key is ignored (SQLAlchemy's defaults, fact 12)
_INSTEAD = {"pool_size": "the pool keeps SQLAlchemy's default pool_size=5",
            "max_overflow": "the pool keeps SQLAlchemy's default max_overflow=10",
            "pool_timeout": "checkouts wait SQLAlchemy's default 30 seconds",
            "pool_recycle": "connections are never recycled"}


class IgnoredFlaskSqlalchemyKey(Rule):
    """
    ## What it does
    Finds Flask-SQLAlchemy settings that version 3 no longer reads: `SQLALCHEMY_POOL_SIZE`,
    `SQLALCHEMY_MAX_OVERFLOW`, `SQLALCHEMY_POOL_TIMEOUT`, `SQLALCHEMY_POOL_RECYCLE` and
    `SQLALCHEMY_NATIVE_UNICODE` (removed in 3.0), and `SQLALCHEMY_COMMIT_ON_TEARDOWN` (removed in
    3.1), set in a config class or module, on `app.config`, or through `app.config.update(...)`.
    The version is the one the project pins, else the installed one. It stays quiet when the
    project's own code reads the key (`app.config["SQLALCHEMY_POOL_SIZE"]` passed on by hand).

    ## Why is this bad?
    Flask-SQLAlchemy 3 never looks at these keys, and says nothing: an application that sets
    `SQLALCHEMY_POOL_SIZE = 20` runs with SQLAlchemy's default pool of 5 + 10, and under load its
    requests fail with `QueuePool limit of size 5 overflow 10 reached` although the config says
    otherwise. A removed `SQLALCHEMY_COMMIT_ON_TEARDOWN` means sessions are no longer committed
    at the end of a request. The pool options belong in `SQLALCHEMY_ENGINE_OPTIONS` (fact 96).

    ## Fix safety
    Unsafe: the fix moves the pool options into `SQLALCHEMY_ENGINE_OPTIONS` (into the dict the
    scope already has, or a new one in the place of the first removed key), so the pool really
    changes size, which changes how many connections the application opens. It is not offered
    where `SQLALCHEMY_ENGINE_OPTIONS` is set to something other than a dict literal, or where a
    config class has bases that may set it (a new dict would hide theirs). Safe: deleting
    `SQLALCHEMY_NATIVE_UNICODE`, which does nothing. `SQLALCHEMY_COMMIT_ON_TEARDOWN` has no fix:
    commit in the request code instead.

    ## References
    - https://flask-sqlalchemy.readthedocs.io/en/stable/config/
    - https://flask-sqlalchemy.readthedocs.io/en/stable/changes/#version-3-0-0
    """

    code = "POL110"
    name = "ignored-flask-sqlalchemy-key"
    fix_availability = "safe or unsafe"
    message = ("Flask-SQLAlchemy {version} no longer reads {key} (removed in {removed}): "
               "{instead}; {advice}")
    move = "set {option!r} in SQLALCHEMY_ENGINE_OPTIONS instead"
    no_effect = "it has no effect; delete it"
    teardown = ("sessions are no longer committed at the end of each request; call "
                "db.session.commit() in the request code")
    invalid = (
        Example('''
            class Config:
                SQLALCHEMY_DATABASE_URI = "postgresql://app@db/app"
                SQLALCHEMY_POOL_SIZE = 20
                SQLALCHEMY_MAX_OVERFLOW = 0
        ''', fixed='''
            class Config:
                SQLALCHEMY_DATABASE_URI = "postgresql://app@db/app"
                SQLALCHEMY_ENGINE_OPTIONS = {"pool_size": 20, "max_overflow": 0}
        ''', path="app/config.py", project={"requirements.txt": "flask-sqlalchemy==3.1.1\n"}),
        Example('''
            from flask import Flask

            app = Flask(__name__)
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_pre_ping": True}
            app.config["SQLALCHEMY_POOL_RECYCLE"] = 280
        ''', fixed='''
            from flask import Flask

            app = Flask(__name__)
            app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
                "pool_pre_ping": True,
                "pool_recycle": 280,
            }
        ''', project={"requirements.txt": "flask-sqlalchemy==3.1.1\n"}),
    )
    valid = (
        Example('''
            class Config:
                SQLALCHEMY_DATABASE_URI = "postgresql://app@db/app"
                SQLALCHEMY_ENGINE_OPTIONS = {"pool_size": 20, "max_overflow": 0}
        ''', path="app/config.py", project={"requirements.txt": "flask-sqlalchemy==3.1.1\n"}),
        Example('''
            class Config:
                SQLALCHEMY_POOL_SIZE = 20  # Flask-SQLAlchemy 2.5 still reads it
        ''', path="app/config.py", project={"requirements.txt": "flask-sqlalchemy==2.5.1\n"}),
    )

    def check(self, facts: ModuleFacts) -> Iterator:
        version = self.context.flask_sqlalchemy_version
        project = self.context.project if self.context.path else None
        for removed in facts.removed_keys:
            since, option = REMOVED_FLASK_KEYS[removed.key]
            if version < since or (project is not None and project.reads_setting(removed.key)):
                continue
            if option is not None:
                advice, instead = self.move.format(option=option), _INSTEAD[option]
            elif removed.key == "SQLALCHEMY_NATIVE_UNICODE":
                advice, instead = self.no_effect, "SQLAlchemy 2 always returns str"
            else:
                advice, instead = self.teardown, "nothing commits at teardown"
            yield self.finding(removed.node, self.message.format(
                version=version_text(version), key=removed.key, removed=version_text(since),
                instead=instead, advice=advice), _fix(removed, option))


def _fix(removed: RemovedKey, option: str | None) -> Fix | None:
    if removed.key == "SQLALCHEMY_NATIVE_UNICODE":
        return Fix(SAFE, (_removal(removed),))
    if option is None:
        return None
    if isinstance(removed.options, cst.Dict):  # the scope has its dict: the entry goes there
        return Fix(UNSAFE, (Edit(removed.options, lambda node: set_option(
            node, option, removed.value)), _removal(removed)))
    if removed.options is UNKNOWN or removed.inherits or not _is_statement(removed):
        return None
    anchor = removed.earlier or removed
    if not _is_statement(anchor):
        return None
    anchor_option = REMOVED_FLASK_KEYS[anchor.key][1]
    if anchor_option is None:
        return None
    edits = [Edit(anchor.node, lambda node: _as_options(node, anchor_option))]
    if anchor is not removed:
        edits += [Edit(anchor.node, lambda node: _with_entry(node, option, removed.value)),
                  _removal(removed)]
    return Fix(UNSAFE, tuple(edits))


def _is_statement(removed: RemovedKey) -> bool:
    return removed.container is None and isinstance(removed.node, (cst.Assign, cst.AnnAssign))


def _removal(removed: RemovedKey) -> Edit:
    if removed.container is not None:
        return Edit(removed.container, lambda node: remove_option(node, removed.key))
    return Edit(removed.node, lambda node: cst.RemovalSentinel.REMOVE)


def _as_options(node: cst.Assign | cst.AnnAssign, option: str) -> cst.CSTNode:
    """`SQLALCHEMY_POOL_SIZE = 20` -> `SQLALCHEMY_ENGINE_OPTIONS = {"pool_size": 20}`, however
    the target is spelled; once only (a later key's fix repeats this edit)."""
    target = node.targets[0].target if isinstance(node, cst.Assign) else node.target
    if _key_of(target) == OPTIONS_KEY:
        return node
    if isinstance(target, cst.Name):
        renamed = target.with_changes(value=OPTIONS_KEY)
    elif isinstance(target, cst.Attribute):
        renamed = target.with_changes(attr=cst.Name(OPTIONS_KEY))
    else:
        element = target.slice[0]
        renamed = target.with_changes(slice=[element.with_changes(slice=cst.Index(
            cst.SimpleString(f'"{OPTIONS_KEY}"')))])
    options = set_option(cst.Dict([]), option, node.value)
    if isinstance(node, cst.Assign):
        return node.with_changes(targets=[node.targets[0].with_changes(target=renamed)],
                                 value=options)
    return node.with_changes(target=renamed, annotation=cst.Annotation(cst.Name("dict")),
                             value=options)


def _with_entry(node: cst.Assign | cst.AnnAssign, option: str,
                value: cst.BaseExpression) -> cst.CSTNode:
    if isinstance(node.value, cst.Dict):
        return node.with_changes(value=set_option(node.value, option, value))
    return node


def _key_of(target: cst.BaseExpression) -> str | None:
    if isinstance(target, cst.Name):
        return target.value
    if isinstance(target, cst.Attribute):
        return target.attr.value
    if isinstance(target, cst.Subscript):
        index = target.slice[0].slice
        if isinstance(index, cst.Index) and isinstance(index.value, cst.SimpleString):
            return index.value.evaluated_value
    return None
