"""POL301's fix on fixture projects, checked by gunicorn itself and by running the hook."""

from __future__ import annotations

import shutil
import sys
import textwrap

import pytest

from flake8_pooling.fix import fix_source
from flake8_pooling.lint import lint
from flake8_pooling.settings import Settings

from .helpers import FIXTURES, load_gunicorn_config

PROJECTS = FIXTURES / "fork"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A copy of a fixture project, importable, so the fixed hook can run."""
    def copy(name: str):
        target = tmp_path / name
        shutil.copytree(PROJECTS / name, target)
        monkeypatch.syspath_prepend(str(target))
        for module in [module for module in sys.modules if module.split(".")[0] == "app"]:
            monkeypatch.delitem(sys.modules, module)
        return target
    return copy


def fixed_config(root, settings=None) -> str:
    path = root / "gunicorn.conf.py"
    result = fix_source(path.read_text(), str(path), settings or Settings(), select=["POL301"])
    assert [finding.code for finding in result.applied] == ["POL301"]
    path.write_text(result.source)
    assert not [f for f in lint(result.source, str(path), settings) if f.code == "POL301"]
    return result.source


def test_the_post_fork_fix_is_accepted_by_gunicorn_and_replaces_the_pool(project):
    root = project("pol301_preload")
    source = fixed_config(root)
    assert source.endswith(textwrap.dedent('''\
        preload_app = True  # POL301:15


        def post_fork(server, worker):
            # Workers inherit the master's engines: drop their pooled connections
            # without closing them, which would break the master's (SQLAlchemy docs:
            # "Using Connection Pools with Multiprocessing or os.fork()").
            from app.db import engine

            engine.dispose(close=False)
        '''))
    cfg = load_gunicorn_config(root / "gunicorn.conf.py")  # validates the hook's arity
    assert cfg.post_fork.__code__.co_filename == str(root / "gunicorn.conf.py")
    assert cfg.preload_app is True

    from app.db import engine
    before = engine.pool
    cfg.post_fork(None, None)
    assert engine.pool is not before  # a fresh pool; the old one's connections left alone


def test_flask_sqlalchemy_projects_dispose_every_engine_in_an_app_context(project):
    root = project("pol301_flask")
    source = fixed_config(root)
    assert textwrap.dedent('''\
            from app import app
            from app.extensions import db

            with app.app_context():
                for engine in db.engines.values():
                    engine.dispose(close=False)
        ''') in textwrap.dedent(source.split("Multiprocessing or os.fork()\").\n", 1)[1])
    cfg = load_gunicorn_config(root / "gunicorn.conf.py")

    from app import app
    from app.extensions import db
    with app.app_context():
        before = [engine.pool for engine in db.engines.values()]
    cfg.post_fork(None, None)
    with app.app_context():
        after = [engine.pool for engine in db.engines.values()]
    assert before and all(old is not new for old, new in zip(before, after))


def test_before_1_4_33_the_fix_recreates_the_pool(project):
    root = project("pol301_preload")
    source = fixed_config(root, Settings.from_values(sqlalchemy_version="1.4.20"))
    assert "engine.pool = engine.pool.recreate()" in source and "close=False" not in source
    cfg = load_gunicorn_config(root / "gunicorn.conf.py")
    from app.db import engine
    before = engine.pool
    cfg.post_fork(None, None)
    assert engine.pool is not before


def test_an_existing_post_fork_gets_the_disposal_added(project):
    root = project("pol301_preload")
    path = root / "gunicorn.conf.py"
    path.write_text(path.read_text().replace("  # POL301:15", "") + textwrap.dedent('''

        def post_fork(server, worker):
            server.log.info("worker %s forked", worker.pid)
        '''))
    source = fixed_config(root)
    assert source.count("def post_fork") == 1
    assert source.rstrip().endswith(textwrap.dedent('''\
        def post_fork(server, worker):
            server.log.info("worker %s forked", worker.pid)
            from app.db import engine

            engine.dispose(close=False)''').rstrip())
    load_gunicorn_config(path)


def test_configured_engines_are_used_and_unknown_ones_get_a_hint(project):
    root = project("pol301_quiet_no_engine")
    path = root / "gunicorn.conf.py"
    assert not lint(path.read_text(), str(path), Settings())  # no engine anywhere: quiet
    settings = Settings.from_values(engines="app.wsgi:engine")
    findings = [f for f in lint(path.read_text(), str(path), settings) if f.code == "POL301"]
    assert findings and findings[0].fix is not None
    assert "from app.wsgi import engine" in fix_source(path.read_text(), str(path),
                                                       settings).source

    flask_without_app = project("pol301_flask")
    (flask_without_app / "app" / "__init__.py").write_text("")
    config = flask_without_app / "gunicorn.conf.py"
    found = [f for f in lint(config.read_text(), str(config)) if f.code == "POL301"]
    assert found and found[0].fix is None and "pooling-engines" in found[0].message


def test_async_engines_are_disposed_through_their_sync_engine(project):
    root = project("pol301_preload")
    (root / "app" / "db.py").write_text(
        "from sqlalchemy.ext.asyncio import create_async_engine\n\n"
        'engine = create_async_engine("postgresql+asyncpg://app@db.internal/app")\n')
    from flake8_pooling.analysis.project import forget_projects
    forget_projects()
    source = fixed_config(root)
    assert "engine.sync_engine.dispose(close=False)" in source
    cfg = load_gunicorn_config(root / "gunicorn.conf.py")
    from app.db import engine
    before = engine.sync_engine.pool
    cfg.post_fork(None, None)
    assert engine.sync_engine.pool is not before
