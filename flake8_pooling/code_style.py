"""How a project lays out its code, as its own tools are configured: the line length flake8
holds it to, and how isort orders its imports. Fixes follow both, so their output passes the
project's own lint steps unchanged.

Read from the file's folder up to its repository's root (never above it), the way the tools
look: the first folder with a flake8 section (setup.cfg, tox.ini, .flake8) gives the line length;
without one, ruff's `line-length` (pyproject.toml `[tool.ruff]`, ruff.toml, .ruff.toml); else
flake8's default, 79. isort's settings come from the first of .isort.cfg, pyproject.toml
`[tool.isort]`, setup.cfg or tox.ini `[isort]`; a project whose ruff selects its I rules and has
no isort settings gets ruff's isort (black's layout at ruff's line length). A file that cannot
be read is passed over.
"""

from __future__ import annotations

import configparser
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

FLAKE8_DEFAULT_LINE_LENGTH = 79
RUFF_DEFAULT_LINE_LENGTH = 88
GRID, VERTICAL_HANGING_INDENT = 0, 3  # isort's multi_line_output modes
_MODES = {"0": GRID, "grid": GRID, "3": VERTICAL_HANGING_INDENT,
          "vertical_hanging_indent": VERTICAL_HANGING_INDENT}
# isort settings this model follows, or that change nothing of where an added import goes
_MODELLED = {"profile", "line_length", "multi_line_output", "include_trailing_comma",
             "split_on_trailing_comma", "known_first_party", "known_third_party", "src_paths",
             "use_parentheses", "ensure_newline_before_comments", "lines_after_imports",
             "skip", "skip_glob", "extend_skip", "extend_skip_glob", "skip_gitignore",
             "filter_files", "py_version", "atomic", "color_output", "quiet", "verbose",
             "honor_noqa"}
# followed only at their defaults
_AT_DEFAULT = {"force_grid_wrap": "0", "combine_as_imports": "false", "float_to_top": "false",
               "force_sort_within_sections": "false", "force_single_line": "false"}


@dataclass(frozen=True)
class ImportStyle:
    """isort's layout of a block of imports, for the settings this model covers.

    `known` is False when the project sets isort options it does not model: its order is then
    not claimed, and fixes place their imports as libcst does."""
    line_length: int = 79
    mode: int = GRID
    trailing_comma: bool = False
    split_on_trailing_comma: bool = False
    first_party: frozenset[str] = frozenset()
    third_party: frozenset[str] = frozenset()
    src_paths: tuple[Path, ...] = ()
    known: bool = True
    # whose order it is: "isort" (settings in `folder`), "ruff" (its I rules), "default"
    # (isort's defaults, no settings anywhere)
    source: str = "default"
    folder: Path | None = None


BLACK = dict(line_length=88, mode=VERTICAL_HANGING_INDENT, trailing_comma=True,
             split_on_trailing_comma=True)


@dataclass(frozen=True)
class CodeStyle:
    max_line_length: int = FLAKE8_DEFAULT_LINE_LENGTH
    imports: ImportStyle = ImportStyle()


def style_for(path: str) -> CodeStyle:
    """The style of the project around `path` (a file, or "" for none: the defaults)."""
    if not path:
        return CodeStyle()
    start = Path(path).absolute()
    return _style(start if start.is_dir() else start.parent)


@cache
def _style(folder: Path) -> CodeStyle:
    folders = []
    for candidate in (folder, *folder.parents):  # up to the repository's root, not above it
        folders.append(candidate)
        if (candidate / ".git").exists() or (candidate / ".hg").exists():
            break
    return CodeStyle(_line_length(folders), _import_style(folders))


def _line_length(folders) -> int:
    for candidate in folders:
        for name in ("setup.cfg", "tox.ini", ".flake8"):
            section = _ini_section(candidate / name, "flake8")
            if section is not None:
                value = section.get("max-line-length") or section.get("max_line_length")
                return _number(value, FLAKE8_DEFAULT_LINE_LENGTH)
    for candidate in folders:
        ruff = _ruff_table(candidate)
        if ruff is not None:
            return _number(ruff.get("line-length"), RUFF_DEFAULT_LINE_LENGTH)
    return FLAKE8_DEFAULT_LINE_LENGTH


def _import_style(folders) -> ImportStyle:
    for candidate in folders:
        settings = _isort_settings(candidate)
        if settings is not None:
            return _from_isort(settings, candidate)
    for candidate in folders:
        ruff = _ruff_table(candidate)
        if ruff is not None and _ruff_sorts_imports(ruff):
            lint = ruff.get("lint") if isinstance(ruff.get("lint"), dict) else {}
            isort = lint.get("isort", ruff.get("isort", {}))
            isort = isort if isinstance(isort, dict) else {"?": True}
            return ImportStyle(**{**BLACK, "line_length": _number(
                ruff.get("line-length"), RUFF_DEFAULT_LINE_LENGTH)},
                first_party=frozenset(_list(isort.get("known-first-party"))),
                third_party=frozenset(_list(isort.get("known-third-party"))),
                src_paths=(candidate, candidate / "src"),
                known=set(isort) <= {"known-first-party", "known-third-party"},
                source="ruff", folder=candidate)
    root = next((candidate for candidate in folders
                 if any((candidate / marker).exists() for marker in (".git", "pyproject.toml",
                                                                     "setup.cfg", "setup.py"))),
                folders[0])
    return ImportStyle(src_paths=(root, root / "src"), folder=root)


def _from_isort(settings: dict, folder: Path) -> ImportStyle:
    values = {key.replace("-", "_").lower(): str(value).strip().strip("'\"")
              if not isinstance(value, list) else value for key, value in settings.items()}
    profile = str(values.get("profile", "")).lower()
    base = dict(BLACK) if profile == "black" else {}
    known = profile in ("", "black") and all(
        key in _MODELLED or str(values[key]).lower() in (_AT_DEFAULT.get(key), "none")
        for key in values)
    if "line_length" in values:
        base["line_length"] = _number(values["line_length"], base.get("line_length", 79))
    if "multi_line_output" in values:
        mode = _MODES.get(str(values["multi_line_output"]).strip().lower())
        if mode is None:
            known = False
        else:
            base["mode"] = mode
    for key, field in (("include_trailing_comma", "trailing_comma"),
                       ("split_on_trailing_comma", "split_on_trailing_comma")):
        if key in values:
            base[field] = _flag(values[key])
    sources = [folder / str(item) for item in _list(values.get("src_paths"))] \
        or [folder, folder / "src"]
    return ImportStyle(**base, first_party=frozenset(_list(values.get("known_first_party"))),
                       third_party=frozenset(_list(values.get("known_third_party"))),
                       src_paths=tuple(sources), known=known, source="isort", folder=folder)


def _isort_settings(folder: Path) -> dict | None:
    for name, sections in ((".isort.cfg", ("settings", "isort")), ("pyproject.toml", None),
                           ("setup.cfg", ("isort", "tool:isort")), ("tox.ini", ("isort",))):
        path = folder / name
        if not path.is_file():
            continue
        if sections is None:
            table = _toml(path).get("tool", {}).get("isort")
            if isinstance(table, dict):
                return table
            continue
        for section in sections:
            values = _ini_section(path, section)
            if values is not None:
                return values
    return None


def _ruff_sorts_imports(ruff: dict) -> bool:
    """ruff orders imports only when its I rules are selected (they are not by default)."""
    lint = ruff.get("lint") if isinstance(ruff.get("lint"), dict) else {}
    chosen = [str(code) for table in (ruff, lint) for key in ("select", "extend-select")
              for code in _list(table.get(key))]
    return any(code in ("I", "I0", "I00", "I001", "ALL") for code in chosen)


def _ruff_table(folder: Path) -> dict | None:
    for name in ("ruff.toml", ".ruff.toml"):
        if (folder / name).is_file():
            return _toml(folder / name)
    if (folder / "pyproject.toml").is_file():
        table = _toml(folder / "pyproject.toml").get("tool", {}).get("ruff")
        return table if isinstance(table, dict) else None
    return None


def _ini_section(path: Path, section: str) -> dict | None:
    if not path.is_file():
        return None
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
        return dict(parser.items(section)) if parser.has_section(section) else None
    except (configparser.Error, UnicodeDecodeError):
        return None


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _number(value, default: int) -> int:
    try:
        number = int(str(value).strip())
        return number if number > 0 else default
    except (TypeError, ValueError):
        return default


def _flag(value) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes", "on")


def _list(value) -> list[str]:
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    if isinstance(value, str):
        return [item.strip() for item in value.replace("\n", ",").split(",") if item.strip()]
    return []


def forget_styles() -> None:
    """Drop the styles read (for tests that change a project's files)."""
    _style.cache_clear()
