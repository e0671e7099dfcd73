"""Reading INI and JSON files into sections merged key by key, each key knowing its file."""

from __future__ import annotations

import configparser
import dataclasses
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from gofer.errors import ConfigError

log = logging.getLogger(__name__)

# configparser copies the keys of its default section into every other one;
# no header line can name a section "\n", so no file can fill it.
_NO_DEFAULT_SECTION = "\n"

RawSections = dict[str, dict[str, object]]


@dataclasses.dataclass(frozen=True)
class Section:
    """One section as merged from files, remembering which file set each key."""

    name: str
    values: Mapping[str, object]
    origins: Mapping[str, str]
    path: str | None

    def get(self, key: str) -> object:
        """The value, stripped; None when absent or empty."""
        value = self.values.get(key)
        if isinstance(value, str):
            value = value.strip()
        return None if value == "" else value

    def error(self, key: str, message: str) -> ConfigError:
        """An error about ``key``, naming the file that set it."""
        return ConfigError(message, self.origins.get(key, self.path), self.name, key)

    def folded(self) -> Section:
        """The section with its keys in lower case, for matching known keys."""
        values = {key.lower(): value for key, value in self.values.items()}
        origins = {key.lower(): path for key, path in self.origins.items()}
        return Section(self.name, values, origins, self.path)

    def warn_unknown(self, known: Iterable[str]) -> None:
        """Log every key that is not in ``known``."""
        for key in sorted(set(self.values) - set(known)):
            log.warning(
                "%s: unknown key %r in section [%s] ignored",
                self.origins.get(key, self.path),
                key,
                self.name,
            )


def empty(name: str, path: str | None = None) -> Section:
    return Section(name, {}, {}, path)


class _Parser(configparser.ConfigParser):
    """configparser that keeps the case of keys (the old gofer did)."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def _read_text(path: Path) -> str:
    """The file's text.

    Raises:
        ConfigError: it does not exist, cannot be read or is not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", str(path)) from exc


def read_ini(path: Path) -> RawSections:
    """Sections of an INI file; error messages give line numbers, never line text."""
    parser = _Parser(
        interpolation=None,
        strict=False,
        allow_no_value=True,
        default_section=_NO_DEFAULT_SECTION,
    )
    try:
        parser.read_string(_read_text(path), source=str(path))
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(f"line {exc.lineno}: text before the first [section]", str(path)) from exc
    except configparser.ParsingError as exc:
        lines = ", ".join(str(number) for number, _ in exc.errors)
        raise ConfigError(f"cannot parse line(s) {lines}", str(path)) from exc
    except configparser.Error as exc:
        raise ConfigError(f"not an INI file: {type(exc).__name__}", str(path)) from exc
    return {name: dict(parser[name]) for name in parser.sections()}


def _read_json(path: Path) -> RawSections:
    """Sections of a JSON descriptor: an object of objects."""
    try:
        document = json.loads(_read_text(path))
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"not JSON: {exc}", str(path)) from exc
    if not isinstance(document, dict):
        raise ConfigError("expected a JSON object of sections", str(path))
    for name, section in document.items():
        if not isinstance(section, dict):
            raise ConfigError("expected a JSON object of keys and values", str(path), name)
    return document


READERS: Mapping[str, Callable[[Path], RawSections]] = {
    ".conf": read_ini,
    ".ini": read_ini,
    ".json": _read_json,
}


def merge(documents: Iterable[tuple[str, RawSections]]) -> dict[str, Section]:
    """Merge files in order, later values winning key by key."""
    values: dict[str, dict[str, object]] = {}
    origins: dict[str, dict[str, str]] = {}
    files: dict[str, str] = {}
    for path, sections in documents:
        for name, section in sections.items():
            values.setdefault(name, {}).update(section)
            origins.setdefault(name, {}).update(dict.fromkeys(section, path))
            files[name] = path
    return {name: Section(name, values[name], origins[name], files[name]) for name in values}


def listed(directory: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files of ``directory`` ending in one of ``suffixes``, sorted; hidden ones skipped.

    Raises:
        ConfigError: the directory exists but cannot be listed.
    """
    try:
        entries = sorted(directory.iterdir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"cannot list: {exc.strerror or exc}", str(directory)) from exc
    return [
        entry
        for entry in entries
        if entry.suffix in suffixes and not entry.name.startswith(".") and not entry.is_dir()
    ]
