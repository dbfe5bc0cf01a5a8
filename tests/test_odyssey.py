"""Odyssey compose services: the pool mode, prepared statements and port its config gives
(fact 119), and where that config is looked for."""

from __future__ import annotations

import textwrap

import pytest

from flake8_pooling.analysis.deployment import (UNKNOWN_MODE, OdysseyRoute, odyssey_config,
                                                read_deployment)
from flake8_pooling.analysis.pooler import pooler_for
from flake8_pooling.analysis.urls import parse_url
from flake8_pooling.settings import Settings

TRANSACTION_CONFIG = textwrap.dedent("""\
    listen {
        host "*"
        port 6440  # a comment
    }
    storage "postgres_server" {
        type "remote"
        port 5432
        watchdog {
            storage "postgres_server"
            pool "session"
        }
    }
    database default {
        user default {
            pool "transaction"
        }
    }
    database "reports" {
        user "app" "10.0.0.0/8" {
            pool "transaction"
            pool_reserve_prepared_statement yes
        }
        group "analysts" {
            pool "session"
        }
    }
    database "console" { user default { pool "session" } }
""")


def test_the_routes_and_listen_port_of_a_config_are_read():
    config = odyssey_config(TRANSACTION_CONFIG)
    assert config.listen_port == 6440
    assert config.routes == (  # a storage's watchdog is no route
        OdysseyRoute(None, None, "transaction"),
        OdysseyRoute("reports", "app", "transaction", reserves_prepared_statements=True),
        OdysseyRoute("reports", "analysts", "session"),
        OdysseyRoute("console", None, "session"),
    )


def compose(tmp_path, image="odyssey:1.3", service="", top=""):
    (tmp_path / "docker-compose.yml").write_text(
        f"services:\n  odyssey:\n    image: {image}\n" + textwrap.indent(service, "    ") + top)


def odyssey(tmp_path):
    deployment = read_deployment(tmp_path)
    (record,) = [bouncer for bouncer in deployment.pgbouncers if bouncer.kind == "Odyssey"]
    return record, deployment


def test_a_mounted_config_gives_the_mode_per_database_and_the_port(tmp_path):
    (tmp_path / "pooler.conf").write_text(TRANSACTION_CONFIG)
    compose(tmp_path, service="volumes:\n  - ./pooler.conf:/etc/odyssey/odyssey.conf:ro\n")
    record, deployment = odyssey(tmp_path)
    assert (record.pool_mode, record.listen_port, record.prepared_statements) == \
        ("transaction", 6440, False)
    assert record.database_modes == {"reports": "transaction", "console": "session"}
    assert record.database_prepared_statements == {"reports": True, "console": True}

    def evidence(url):
        return pooler_for(parse_url(url), None, Settings(), deployment)[0]

    app = evidence("postgresql+asyncpg://app@odyssey:6440/app")
    assert app.pools_transactions and not app.supports_prepared_statements
    assert app.prepared_statements_known and not app.refuses_startup_parameters
    assert "pool=transaction (database default, user default in pooler.conf)" in app.reason
    reports = evidence("postgresql+asyncpg://app@odyssey:6440/reports")
    assert reports.pools_transactions and reports.supports_prepared_statements
    assert not evidence("postgresql://app@odyssey:6440/console").pools_transactions


def test_an_odyssey_conf_below_the_compose_folder_is_read_when_none_is_mounted(tmp_path):
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "odyssey.conf").write_text(
        'database default {\n  user default {\n    pool "session"\n  }\n}\n')
    compose(tmp_path)
    record, _ = odyssey(tmp_path)
    assert (record.pool_mode, record.listen_port) == ("session", 6432)  # fact 119: 6432
    assert record.mode_source == "database default, user default in deploy/odyssey.conf"


@pytest.mark.parametrize("service", [
    "",
    "volumes:\n  - /srv/odyssey/odyssey.conf:/etc/odyssey/odyssey.conf\n",  # not the project's
    "volumes:\n  - ./missing.conf:/etc/odyssey/odyssey.conf\n",
])
def test_without_a_config_in_the_project_the_mode_is_unknown(tmp_path, service):
    compose(tmp_path, service=service)
    record, deployment = odyssey(tmp_path)
    assert record.pool_mode == UNKNOWN_MODE and record.prepared_statements is None
    evidence = pooler_for(parse_url("postgresql://app@odyssey:6432/app"), None, Settings(),
                          deployment)[0]
    assert not evidence.pools_transactions and not evidence.prepared_statements_known
    assert "pool mode unknown" in evidence.reason
    configured = pooler_for(parse_url("postgresql://app@odyssey:6432/app"), None,
                            Settings(pooler_mode="transaction"), deployment)[0]
    assert configured.pools_transactions  # the project's own word wins


@pytest.mark.parametrize("environment, mode, reserved, port", [
    ("", "session", True, 6432),
    ("environment:\n  POOL_TYPE: transaction\n  LISTEN_PORT: '6500'\n", "transaction", True,
     6500),
    ("environment:\n  - POOL_TYPE=transaction\n  - POOL_RESERVE_PREPARED_STATEMENT=no\n",
     "transaction", False, 6432),
    ("env_file: odyssey.env\n", "statement", True, 6432),
])
def test_odysseys_own_image_writes_its_config_from_its_environment(tmp_path, environment, mode,
                                                                   reserved, port):
    (tmp_path / "odyssey.env").write_text("POOL_TYPE=statement\n")
    compose(tmp_path, image="ghcr.io/yandex/odyssey:1.5", service=environment)
    record, _ = odyssey(tmp_path)
    assert (record.pool_mode, record.prepared_statements, record.listen_port) == \
        (mode, reserved, port)


def test_odysseys_own_image_reads_a_mounted_config_not_its_environment(tmp_path):
    (tmp_path / "odyssey.conf").write_text('database default { user default { pool "session" } }')
    compose(tmp_path, image="ghcr.io/yandex/odyssey",
            service="environment:\n  POOL_TYPE: transaction\nvolumes:\n  - .:/etc/odyssey\n")
    assert odyssey(tmp_path)[0].pool_mode == "session"


@pytest.mark.parametrize("image", ["example/odyssey-ui:1.0", "myodyssey:2", "odyssey/api:1"])
def test_images_that_only_contain_odyssey_are_no_pooler(tmp_path, image):
    compose(tmp_path, image=image)
    assert read_deployment(tmp_path).pgbouncers == ()
