"""Finding, reading and writing source files without losing anything.

Reading follows Python and flake8: PEP 263 coding cookies, a UTF-8 BOM, line endings as they are.
Writing puts the new text in a temporary file in the same directory and renames it over the old
one, keeping its mode, encoding, BOM and line endings: an interrupted run leaves either the old
file or the new one, never half of either.
"""

from __future__ import annotations

import fnmatch
import io
import os
import re
import stat
import tempfile
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .vocabulary import NOT_SOURCE_DIRS

# flake8's default exclude, plus what a project's tree holds that is not its code
DEFAULT_EXCLUDE = ("*.egg", *sorted(NOT_SOURCE_DIRS))


class SourceError(Exception):
    """A file that cannot be read or written: its message is the one-line explanation."""


@dataclass(frozen=True)
class SourceFile:
    path: str
    text: str
    encoding: str  # "utf-8-sig" when the file starts with a BOM


def excluded(path: Path, patterns: tuple[str, ...]) -> bool:
    """flake8's test: a pattern matches the name or the absolute path."""
    matches = _matcher(patterns)
    return bool(matches(os.path.normcase(path.name))
                or matches(os.path.normcase(str(path.absolute()))))


@cache
def _matcher(patterns: tuple[str, ...]):
    """All the patterns as one expression: a tree walk tests every file against every one."""
    if not patterns:
        return lambda text: None
    return re.compile("|".join(f"(?:{fnmatch.translate(os.path.normcase(pattern))})"
                               for pattern in patterns)).match


def python_files(paths: list[str], exclude: tuple[str, ...],
                 patterns: tuple[str, ...] = ("*.py",)) -> Iterator[str]:
    """The files under `paths` whose names match `patterns` (a file named explicitly is always
    taken)."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            if excluded(path, exclude) and given not in (".", ""):
                continue
            # os.walk does not follow directory symlinks: a link loop cannot trap it
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not excluded(Path(folder, d), exclude))
                wanted = _matcher(tuple(patterns))
                for name in sorted(files):
                    if wanted(os.path.normcase(name)) and not excluded(Path(folder, name),
                                                                       exclude):
                        yield os.path.join(folder, name)
        else:
            yield given


def read_source(path: str) -> SourceFile:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise SourceError(f"cannot read it: {error.strerror or error}") from error
    return decode(path, data)


def decode(path: str, data: bytes) -> SourceFile:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return SourceFile(path, data.decode(encoding), encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as error:
        raise SourceError(f"cannot decode it: {error}") from error


def write_atomically(source: SourceFile, text: str) -> None:
    """Replace the file's text, keeping its encoding, BOM, line endings and mode."""
    path = Path(source.path)
    try:
        data = text.encode(source.encoding)
    except UnicodeEncodeError as error:
        raise SourceError(f"the fixed text cannot be written as {source.encoding}: {error}") \
            from error
    mode = stat.S_IMODE(path.stat().st_mode)
    # the mode bits say what the owner meant, even to root, whom os.access always lets write
    if not mode & 0o222 or not os.access(path, os.W_OK):
        raise SourceError("read-only; left unchanged")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                             dir=path.parent)
    except OSError as error:
        raise SourceError(f"cannot write next to it: {error.strerror or error}; left unchanged") \
            from error
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException as error:  # Ctrl-C included: the original stays as it was
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise SourceError(f"cannot write it: {error.strerror or error}; left unchanged") \
                from error
        raise
