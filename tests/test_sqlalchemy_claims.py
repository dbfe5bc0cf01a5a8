"""Where a rule says SQLAlchemy rejects something, real SQLAlchemy must reject it, and the fixed
code must run. Engines are only built, never connected, except on sqlite files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import create_engine
from sqlalchemy.util import get_cls_kwargs

from flake8_pooling.rules import all_rules
from flake8_pooling.rules.engine.pol104_option_wrong_type import NUMERIC_STRING_FAILURE
from flake8_pooling.rules.engine.pol105_option_rejected import KNOWN_OPTIONS, POOL_NATIVE

from .helpers import load_gunicorn_config

# Python examples run; the examples of rules on other files (uWSGI ini) are not programs
EXAMPLES = [(rule, example) for rule in all_rules() for example in rule.invalid + rule.valid
            if example.path.endswith(".py")]
RAISING = [(rule, example) for rule, example in EXAMPLES if example.raises]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Examples run in a scratch directory (sqlite files) with the URLs they read set, and a
    `myapp` package whose db module makes an engine, for the examples that import it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "db.py").write_text(
        'from sqlalchemy import create_engine\nengine = create_engine("sqlite:///app.db")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [name for name in sys.modules if name.split(".")[0] == "myapp"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("PGBOUNCER_URL", "postgresql+asyncpg://app@pgbouncer:6432/app")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://app@db:5432/app")
    created = []
    yield created
    for namespace in created:
        for value in namespace.values():
            if isinstance(value, sqlalchemy.engine.Engine):
                value.dispose()


def run(code: str, created: list, path: str = "app/db.py") -> dict:
    """Execute an example; a gunicorn config is loaded by gunicorn itself, which checks hooks."""
    if "gunicorn" in path:
        config = Path("gunicorn.conf.py")
        config.write_text(code)
        return {"cfg": load_gunicorn_config(config)}
    namespace: dict = {"__name__": "example"}
    created.append(namespace)
    exec(compile(code, "<example>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("item", RAISING, ids=lambda item: f"{item[0].code}")
def test_flagged_example_fails_in_sqlalchemy_and_its_fix_runs(item, sandbox):
    rule, example = item
    with pytest.raises(Exception) as failure:
        run(example.code, sandbox, example.path)
    assert type(failure.value).__name__ == example.raises
    if example.fixed:
        run(example.fixed, sandbox, example.path)


@pytest.mark.parametrize("item", EXAMPLES, ids=lambda item: f"{item[0].code}")
def test_every_correct_and_fixed_example_runs(item, sandbox):
    rule, example = item
    if example in rule.valid:
        run(example.code, sandbox, example.path)
    elif example.fixed:
        run(example.fixed, sandbox, example.path)


@pytest.mark.parametrize("option", sorted(NUMERIC_STRING_FAILURE))
def test_numeric_strings_fail_when_the_message_says(option, tmp_path):
    message = NUMERIC_STRING_FAILURE[option]
    kwargs = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2, option: "1"}
    if message.startswith("create_engine() fails at start"):
        with pytest.raises(TypeError):
            create_engine(f"sqlite:///{tmp_path}/app.db", **kwargs)
        return
    engine = create_engine(f"sqlite:///{tmp_path}/app.db", **kwargs)
    try:
        if "first checkout" in message and "wait" not in message:
            with pytest.raises(TypeError):
                engine.connect()
        else:  # only a checkout that has to wait fails: the pool's one connection is taken
            held = engine.connect()
            try:
                with pytest.raises(TypeError):
                    engine.connect()
            finally:
                held.close()
    finally:
        engine.dispose()


def test_truthy_string_turns_pre_ping_on():
    engine = create_engine("sqlite://", pool_pre_ping="false")  # noqa: POL104,POL112 (one thread)
    assert engine.pool._pre_ping == "false" and bool(engine.pool._pre_ping)


@pytest.mark.parametrize("native", sorted(POOL_NATIVE))
def test_pool_native_names_are_rejected(native):
    with pytest.raises(TypeError, match="Invalid argument"):
        create_engine("sqlite://", **{native: None})


def test_known_options_cover_what_sqlalchemy_accepts():
    """The misspelling check must never flag an option the installed SQLAlchemy takes."""
    import importlib
    import inspect
    import re

    from sqlalchemy.engine import create as create_module

    documented = set(re.findall(r":param (\w+)", inspect.getsource(create_module.create_engine)))
    dialects = set()
    for module, name in [("postgresql.psycopg2", "PGDialect_psycopg2"),
                         ("postgresql.asyncpg", "PGDialect_asyncpg"),
                         ("mysql.pymysql", "MySQLDialect_pymysql"),
                         ("sqlite.pysqlite", "SQLiteDialect_pysqlite"),
                         ("mssql.pyodbc", "MSDialect_pyodbc"),
                         ("oracle.oracledb", "OracleDialect_oracledb")]:
        cls = getattr(importlib.import_module(f"sqlalchemy.dialects.{module}"), name)
        dialects |= set(get_cls_kwargs(cls))
    assert documented - KNOWN_OPTIONS == set()
    assert dialects - KNOWN_OPTIONS == set()


def test_flask_sqlalchemy_rejects_a_string_poolclass_and_takes_the_class():
    flask = pytest.importorskip("flask")
    flask_sqlalchemy = pytest.importorskip("flask_sqlalchemy")
    from sqlalchemy.pool import NullPool

    def init(options):
        app = flask.Flask("example")
        app.config.update(SQLALCHEMY_DATABASE_URI="postgresql+psycopg2://app@db/app",
                          SQLALCHEMY_ENGINE_OPTIONS=options)
        db = flask_sqlalchemy.SQLAlchemy()
        db.init_app(app)
        with app.app_context():
            return db.engine

    with pytest.raises(AttributeError, match="__dict__"):
        init({"poolclass": "sqlalchemy.pool.NullPool"})
    assert isinstance(init({"poolclass": NullPool}).pool, NullPool)
    with pytest.raises(TypeError, match="Invalid argument"):
        init({"poolclass": NullPool, "pool_size": 5})


def test_gunicorn_ignores_a_misspelt_hook_and_rejects_a_wrong_arity(tmp_path, capsys):
    """POL303's two claims, through gunicorn's own config loading."""
    misspelt = tmp_path / "misspelt.conf.py"
    misspelt.write_text("def postfork(server, worker):\n    pass\n")
    cfg = load_gunicorn_config(misspelt)
    assert cfg.post_fork.__module__ == "gunicorn.config"  # gunicorn's default: never ours

    renamed = tmp_path / "renamed.conf.py"
    renamed.write_text("def post_fork(server, worker):\n    pass\n")
    assert load_gunicorn_config(renamed).post_fork.__code__.co_filename == str(renamed)

    wrong = tmp_path / "wrong.conf.py"
    wrong.write_text("def post_fork(server, worker, engine=None):\n    pass\n")
    with pytest.raises(SystemExit):
        load_gunicorn_config(wrong)
    assert "Value must have an arity of: 2" in capsys.readouterr().err


def test_flask_sqlalchemy_3_ignores_the_removed_pool_keys_and_the_fix_sizes_the_pool():
    """POL110 (fact 96): the keys removed in 3.0 leave the pool at 5 + 10; the fix's
    SQLALCHEMY_ENGINE_OPTIONS sizes it."""
    flask = pytest.importorskip("flask")
    flask_sqlalchemy = pytest.importorskip("flask_sqlalchemy")
    from flake8_pooling.fix import fix_source

    config = ('SQLALCHEMY_DATABASE_URI = "postgresql+psycopg2://app@db/app"\n'
              'SQLALCHEMY_POOL_SIZE = 20\nSQLALCHEMY_MAX_OVERFLOW = 0\n')
    fixed = fix_source(config, "", unsafe=True, select=["POL110"]).source
    assert "SQLALCHEMY_POOL_SIZE" not in fixed

    def pool(source: str):
        settings: dict = {}
        exec(source, settings)
        app = flask.Flask("example")
        app.config.from_mapping({key: value for key, value in settings.items()
                                 if key.startswith("SQLALCHEMY_")})
        db = flask_sqlalchemy.SQLAlchemy(app)
        with app.app_context():
            return db.engine.pool

    assert (pool(config).size(), pool(config)._max_overflow) == (5, 10)
    assert (pool(fixed).size(), pool(fixed)._max_overflow) == (20, 0)


def test_a_memory_database_is_empty_on_other_threads_until_static_pool(tmp_path):
    """POL112 (fact 103): the default SingletonThreadPool gives each thread its own connection,
    and so its own memory database; FastAPI's TestClient runs sync endpoints on other threads.
    The fix's StaticPool shares the one connection."""
    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from flake8_pooling.fix import fix_source

    flagged = ('from fastapi.testclient import TestClient\n'
               'from sqlalchemy import create_engine\n'
               'engine = create_engine("sqlite://")\n')
    fixed = fix_source(flagged, "", select=["POL112"]).source
    assert "StaticPool" in fixed

    def count_from_an_endpoint(source: str):
        namespace: dict = {}
        exec(source, namespace)
        engine = namespace["engine"]
        with engine.begin() as connection:
            connection.exec_driver_sql("create table users (id integer)")
        app = fastapi.FastAPI()

        @app.get("/users")
        def users():  # a sync endpoint: FastAPI runs it on a worker thread
            with engine.connect() as connection:
                return {"count": connection.exec_driver_sql("select count(*) from users")
                        .scalar()}

        try:
            with TestClient(app, raise_server_exceptions=True) as client:
                return client.get("/users").json()
        finally:
            engine.dispose()

    with pytest.raises(sqlalchemy.exc.OperationalError, match="no such table: users"):
        count_from_an_endpoint(flagged)
    assert count_from_an_endpoint(fixed) == {"count": 0}
