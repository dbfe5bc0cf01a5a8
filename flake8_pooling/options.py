"""Every setting of flake8-pooling, declared once.

flake8's `add_options`, the command line's parsers, the config-file reader and the codemod
commands are all built from `OPTIONS`, so a setting is spelled `--pooling-NAME` on every command
line and `pooling-NAME` in every config file. `Settings.from_values` validates the values.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .settings import POOLER_MODES, POOLERS, Settings


@dataclass(frozen=True)
class Option:
    name: str  # "pooler-mode"
    help: str
    choices: tuple[str, ...] = ()
    is_list: bool = False  # comma-separated

    @property
    def key(self) -> str:
        """In config files: `pooling-pooler-mode`."""
        return f"pooling-{self.name}"

    @property
    def flag(self) -> str:
        return f"--{self.key}"

    @property
    def dest(self) -> str:
        """The attribute flake8 and argparse store it in: `pooling_pooler_mode`."""
        return self.key.replace("-", "_")

    @property
    def setting(self) -> str:
        """The keyword of Settings.from_values: `pooler_mode`."""
        return self.name.replace("-", "_")


OPTIONS = (
    Option("pooler", "auto: find PgBouncer from the URLs in the code and the project's files "
                     "(default); pgbouncer: every PostgreSQL engine goes through one; none: never",
           POOLERS),
    Option("pooler-mode", "the pooler's pool_mode: transaction, session or statement (default: "
                          "from pgbouncer.ini or compose files, else transaction)", POOLER_MODES),
    Option("sqlalchemy-version", "the SQLAlchemy version the code targets (default: the "
                                 "project's pin, else the installed one)"),
    Option("max-connections", "the database's connection limit for POL304 and budget when no "
                              "PgBouncer max_client_conn applies (default: 100, PostgreSQL's "
                              "default max_connections)"),
    Option("engines", "engines a POL301 fix disposes, as module:name (default: found by "
                      "scanning the project for module-level engines)", is_list=True),
)
BY_KEY = {option.key: option for option in OPTIONS}
LIST_KEYS = tuple(option.key for option in OPTIONS if option.is_list)
VALUE_KEYS = tuple(option.key for option in OPTIONS if not option.is_list)


def _chosen(names: Iterable[str] | None) -> tuple[Option, ...]:
    return OPTIONS if names is None else tuple(BY_KEY[f"pooling-{name}"] for name in names)


def add_flake8_options(manager) -> None:
    for option in OPTIONS:
        manager.add_option(option.flag, default="", parse_from_config=True,
                           comma_separated_list=option.is_list, help=option.help)


def add_arguments(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """The options (all, or those named) as arguments of a command line."""
    for option in _chosen(names):
        if option.is_list:
            parser.add_argument(option.flag, dest=option.dest, type=split_list,
                                help=option.help)
        else:
            parser.add_argument(option.flag, dest=option.dest, help=option.help)


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]


def settings_from(values: Mapping[str, object]) -> Settings:
    """Settings from values by config key (`pooling-pooler-mode`); missing ones are defaults."""
    return Settings.from_values(**{option.setting: _text(values.get(option.key), option)
                                   for option in OPTIONS})


def settings_from_namespace(namespace) -> Settings:
    """Settings from flake8's or argparse's parsed options."""
    return settings_from({option.key: getattr(namespace, option.dest, None)
                          for option in OPTIONS})


def _text(value: object, option: Option):
    if value is None or value == "" or value == []:
        return None
    if option.is_list:
        return value if isinstance(value, list) else split_list(str(value))
    return str(value)
