"""Where the command line finds its settings, the same places flake8 looks, plus pyproject.toml.

Least to most authoritative: `[tool.flake8-pooling]` in the nearest pyproject.toml (the keys
below, with or without the `pooling-` prefix), then the `[flake8]` section of the first of
setup.cfg, tox.ini or .flake8 found from the working directory upwards (`pooling-*` keys,
select, ignore, exclude, ...), then the command line. The flake8 plugin reads pyproject.toml the
same way under flake8's own options (`for_flake8`), so flake8 and `check` decide the same. A file
or value that cannot be read is reported in one line and skipped.
"""

from __future__ import annotations

import configparser
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import options
from .selection import Selection, names_a_rule
from .settings import Settings

FLAKE8_FILES = ("setup.cfg", "tox.ini", ".flake8")
SELECTION_KEYS = ("select", "ignore", "extend-select", "extend-ignore")
LIST_KEYS = (*SELECTION_KEYS, "exclude", "extend-exclude", *options.LIST_KEYS)
VALUE_KEYS = options.VALUE_KEYS
COMMAND_LINE = "the command line"
FLAKE8_OPTIONS = "flake8's options"


@dataclass
class Config:
    values: dict[str, object] = field(default_factory=dict)  # normalised key -> value
    sources: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    per_file_ignores: list[tuple[str, list[str]]] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # key -> the source that set it

    def merge(self, values: dict[str, object], source: str, own_table: bool = False) -> None:
        """Take the keys that concern us; in our own table (pyproject) the `pooling-` prefix may
        be left out, and an unknown key is reported."""
        for key, value in values.items():
            key = key.replace("_", "-").lower()
            if own_table and not key.startswith("pooling-") and key not in LIST_KEYS \
                    and key != "per-file-ignores":
                key = f"pooling-{key}"
            if key == "per-file-ignores":
                self.per_file_ignores = _per_file_ignores(value, Path(source.split(" ")[0]).parent)
                continue
            if key not in LIST_KEYS and key not in VALUE_KEYS:
                if key.startswith("pooling-"):
                    self.problems.append(f"{source}: unknown setting {key!r}; ignored")
                continue
            if key in LIST_KEYS and isinstance(value, str):
                value = [item.strip() for item in value.replace("\n", ",").split(",")
                         if item.strip()]
            self.values[key] = value
            self.origins[key] = source
        self.sources.append(source)

    def get_list(self, key: str) -> list[str]:
        value = self.values.get(key)
        return [str(item) for item in value] if isinstance(value, list) else []

    def unknown_codes(self) -> list[str]:
        """A line for each selected or ignored code that names no rule: a typo, most likely.
        Codes in flake8's own config files that are not POL codes are other plugins' (E501)."""
        warnings = []
        for key in SELECTION_KEYS:
            source = self.origins.get(key, "")
            ours = source == COMMAND_LINE or source.endswith("[tool.flake8-pooling]")
            for code in self.get_list(key):
                if (ours or code.startswith("POL")) and not names_a_rule(code):
                    where = f"--{key}" if source == COMMAND_LINE else f"{source}: {key}"
                    warnings.append(f"{where} {code!r} matches no rule (`flake8-pooling rules` "
                                    "lists them); it selects or ignores nothing")
        return warnings

    def settings(self) -> Settings:
        return options.settings_from(self.values)

    def selection(self) -> Selection:
        return Selection.of(self.get_list("select") or None, self.get_list("ignore"),
                            self.get_list("extend-select"), self.get_list("extend-ignore"),
                            self.per_file_ignores)


def load(start: Path, isolated: bool = False, config_file: str | None = None) -> Config:
    config = Config()
    if isolated:
        return config
    _read_pyproject(config, start)  # flake8's own files win where both set a key, as in flake8
    flake8 = Path(config_file) if config_file else _find(start, FLAKE8_FILES, _has_flake8)
    if flake8 is not None:
        parser = configparser.RawConfigParser()
        try:
            parser.read(flake8, encoding="utf-8")
            if parser.has_section("flake8"):
                config.merge(dict(parser.items("flake8")), str(flake8))
        except (configparser.Error, OSError, UnicodeDecodeError) as error:
            config.problems.append(f"{flake8}: cannot read it ({error}); ignored")
    return config


def for_flake8(parsed, start: Path | None = None) -> Config:
    """What the flake8 plugin decides by: `[tool.flake8-pooling]` in pyproject.toml, then
    flake8's own config files and command line (`parsed`), which win for every key they set,
    so an editor's flake8, CI's flake8 and `check` decide the same."""
    config = Config()
    _read_pyproject(config, start or Path.cwd())
    given: dict[str, object] = {}
    for option in options.OPTIONS:
        value = getattr(parsed, option.dest, None)
        if value not in (None, "", []):
            given[option.key] = value
    for key in SELECTION_KEYS:
        value = getattr(parsed, key.replace("-", "_"), None)
        if value:
            given[key] = list(value)
    if getattr(parsed, "per_file_ignores", ""):  # flake8 applies its own
        config.per_file_ignores = []
    config.merge(given, FLAKE8_OPTIONS)
    return config


def _read_pyproject(config: Config, start: Path) -> None:
    pyproject = _find(start, ("pyproject.toml",), lambda path: True)
    if pyproject is not None:
        try:
            table = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            own = table.get("tool", {}).get("flake8-pooling")
            if isinstance(own, dict):
                config.merge(own, f"{pyproject} [tool.flake8-pooling]", own_table=True)
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as error:
            config.problems.append(f"{pyproject}: cannot read it ({error}); ignored")


def _has_flake8(path: Path) -> bool:
    try:
        parser = configparser.RawConfigParser()
        parser.read(path, encoding="utf-8")
        return parser.has_section("flake8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return path.name == ".flake8"  # unreadable: reported when read


def _find(start: Path, names: tuple[str, ...], accept) -> Path | None:
    folder = start.resolve()
    folder = folder if folder.is_dir() else folder.parent
    for candidate in (folder, *folder.parents):
        for name in names:
            path = candidate / name
            if path.is_file() and accept(path):
                return path
    return None


def _per_file_ignores(value: object, base: Path) -> list[tuple[str, list[str]]]:
    """flake8's `pattern: CODE,CODE` pairs; relative patterns are relative to the config file."""
    text = value if isinstance(value, str) else "\n".join(map(str, value or []))
    pairs = []
    for line in text.replace(";", "\n").splitlines():
        pattern, _, codes = line.partition(":")
        if pattern.strip() and codes.strip():
            pattern = pattern.strip()
            if os.sep in pattern or "/" in pattern:
                pattern = str((base / pattern).absolute()) if not os.path.isabs(pattern) \
                    else pattern
            pairs.append((pattern, [code for code in codes.replace(",", " ").split()]))
    return pairs
