"""Typed values read from a section: booleans, integers, durations, names, URLs, paths, levels."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

from gofer.agent.config.files import Section
from gofer.agent.paths import Paths
from gofer.errors import InvalidURLError
from gofer.messaging.url import Url
from gofer.rmi import options

_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}
_LEVELS = {
    "CRITICAL": logging.CRITICAL,
    "DEBUG": logging.DEBUG,
    "ERROR": logging.ERROR,
    "FATAL": logging.FATAL,
    "INFO": logging.INFO,
    "WARN": logging.WARN,
    "WARNING": logging.WARNING,
}


def boolean(section: Section, key: str, default: bool) -> bool:
    value = section.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        return _BOOLEANS[value.lower()]
    raise section.error(key, f"expected a boolean (1/0, true/false, yes/no, on/off), got {value!r}")


def integer(section: Section, key: str, default: int, low: int, high: int) -> int:
    value = section.get(key)
    if value is None:
        return default
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,20}", value):
        number = int(value)
    if number is None or not low <= number <= high:
        raise section.error(key, f"expected an integer from {low} to {high}, got {value!r}")
    return number


def duration(section: Section, key: str, default: float | None) -> float | None:
    """Seconds: ``30``, ``2.5``, ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``."""
    value = section.get(key)
    if value is None:
        return default
    try:
        result = options.seconds(value, key)
    except ValueError as exc:
        raise section.error(key, f"expected seconds: {exc}") from exc
    if not math.isfinite(result):
        raise section.error(key, f"expected a finite number of seconds, got {value!r}")
    return result


def seconds(section: Section, key: str, default: float) -> float:
    result = duration(section, key, default)
    return default if result is None else result


def text(section: Section, key: str) -> str | None:
    value = section.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # JSON ``"queue": 123``, as ``queue=123`` in INI
    raise section.error(key, f"expected a string, got {value!r}")


def names(section: Section, key: str) -> tuple[str, ...]:
    """A comma-separated list (or a JSON list) of plugin names; ``*`` means all."""
    value = section.get(key)
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise section.error(key, f"expected a comma-separated list of plugin names, got {value!r}")
    return tuple(name.strip() for name in items if name.strip())


def dotted(section: Section, key: str, pattern: re.Pattern[str], example: str) -> str | None:
    value = text(section, key)
    if value is not None and not pattern.fullmatch(value):
        raise section.error(key, f"expected a dotted Python path like {example!r}, got {value!r}")
    return value


def url(section: Section, key: str) -> Url | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise section.error(key, "expected a broker URL string")
    try:
        return Url.parse(value)
    except InvalidURLError as exc:  # its message masks the password
        raise section.error(key, f"expected a broker URL: {exc}") from exc


def socket(section: Section, paths: Paths) -> Path | None:
    """The management socket; an explicit path moves below the root like every path."""
    if "socket" not in section.values:
        return paths.socket
    value = text(section, "socket")
    if value is None:
        return None
    if not Path(value).is_absolute():
        raise section.error("socket", f"expected an absolute path, got {value!r}")
    return paths.root / Path(value).relative_to("/")


def level(section: Section, key: str) -> int:
    value = section.get(key)
    if isinstance(value, str) and value.upper() in _LEVELS:
        return _LEVELS[value.upper()]
    raise section.error(key, f"expected a level ({', '.join(_LEVELS)}), got {value!r}")
