"""INI configuration as plugins of the existing gofer read their own files (``gofer.config``).

::

    from gofer.config import Config, get_bool

    cfg = Config("/etc/myplugin.conf", {"server": {"port": "443"}})
    host = cfg["server"]["host"]
    verify = get_bool(cfg["server"].get("verify", "1"))
    cfg.graph().server.port          # "443": attribute access, None when missing

A :class:`Config` is a dict of sections, each a dict of strings. Inputs
(INI or JSON files, dicts, other configs) are merged in order, key by key:
later ones win. Interpolation is off, so a ``%`` in a value is kept as it is.
"""

from __future__ import annotations

import configparser
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

from gofer.errors import ConfigError

#: What a Config is made from: a file's path, a mapping of sections, another Config.
Input = Union[str, "os.PathLike[str]", Mapping[str, Mapping[str, Any]]]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class Config(dict):  # type: ignore[type-arg]
    """Sections of settings merged from files and mappings.

    Args:
        inputs: INI or JSON files (``.json``), mappings of sections, Configs.

    Raises:
        ConfigError: a file cannot be read or parsed.
    """

    def __init__(self, *inputs: Input) -> None:
        super().__init__()
        for each in inputs:
            self.update(each)

    def update(self, other: Any = (), **sections: Any) -> None:  # type: ignore[override]
        """Merge a file, a mapping or a Config in, key by key."""
        if isinstance(other, (str, os.PathLike)):
            other = _read(Path(other))
        for name, values in dict(other, **sections).items():
            self.setdefault(str(name), {}).update(
                {str(key): value for key, value in dict(values).items()}
            )

    def graph(self, strict: bool = False) -> Any:
        """The sections by attribute: ``cfg.graph().server.port`` (None when missing)."""
        from gofer.agent.config.cfg import Cfg  # noqa: PLC0415 - the descriptors' reader

        return Cfg(self)


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", path=str(path)) from exc
    if path.suffix == ".json":
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise ConfigError(f"not JSON: {exc}", path=str(path)) from exc
        if not isinstance(loaded, dict) or not all(isinstance(v, dict) for v in loaded.values()):
            raise ConfigError("a JSON configuration is an object of sections", path=str(path))
        return loaded
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as exc:
        raise ConfigError(f"not an INI file: {exc}", path=str(path)) from exc
    return {name: dict(parser[name]) for name in parser.sections()}


def get_bool(value: Any) -> bool:
    """A setting read as a boolean: 1/true/yes/on or 0/false/no/off (any case).

    Raises:
        ValueError: anything else.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def get_integer(value: Any) -> int:
    """A setting read as an integer.

    Raises:
        ValueError: not one.
    """
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    return int(str(value).strip())


__all__ = ["Config", "get_bool", "get_integer"]
