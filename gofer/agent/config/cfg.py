"""A descriptor as written, for plugins to read and change at run time (``plugin.cfg.x.y``)."""

from __future__ import annotations

import threading
from collections.abc import ItemsView, Iterator, KeysView, Mapping
from typing import Any

from gofer.errors import InvalidURLError
from gofer.messaging.url import Url

_SECRET_WORDS = ("password", "passwd", "secret")


class CfgSection:
    """One section of a descriptor as written, read (and written) by attribute or by key.

    A key that is not there reads as None, so a plugin can probe for
    optional settings (``cfg.foobar.timeout or 100``), as with the old gofer.
    Values are strings in INI files and whatever the JSON held in JSON files.
    Iterating gives ``(key, value)`` pairs as the old gofer's sections did;
    ``keys()`` and ``items()`` make ``dict(section)`` work. Keys that are not
    identifiers, start with ``_``, or are named ``keys`` or ``items`` are read
    by key: ``section["max-size"]``.

    A plugin may change values at run time (``plugin.cfg.model.queue =
    "other"``), as the old gofer allowed; ``plugin.attach()`` then applies
    the messaging and model sections. Nothing is written back to the file.
    """

    __slots__ = ("_lock", "_name", "_owner", "_values")
    _name: str
    _values: dict[str, object]
    _owner: Cfg | None
    _lock: threading.Lock

    def __init__(self, name: str, values: Mapping[str, object], owner: Cfg | None = None) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_lock", threading.Lock())

    def __getattr__(self, key: str) -> Any:
        # Private and special names must fail as usual (copy, pickle, hasattr).
        if key.startswith("_"):
            raise AttributeError(key)
        with self._lock:
            return self._values.get(key)

    def __getitem__(self, key: str) -> Any:
        with self._lock:
            return self._values.get(key)

    def __setattr__(self, key: str, value: object) -> None:
        if key.startswith("_") or key in ("keys", "items"):
            raise AttributeError(f"section [{self._name}]: {key!r} is not a setting")
        self[key] = value

    def __setitem__(self, key: str, value: object) -> None:
        with self._lock:
            self._values[key] = value
        if self._owner is not None:
            self._owner._adopt(self)

    def keys(self) -> KeysView[str]:
        """The keys, as written."""
        with self._lock:
            return dict(self._values).keys()

    def items(self) -> ItemsView[str, object]:
        """The ``(key, value)`` pairs."""
        with self._lock:
            return dict(self._values).items()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._values

    def __iter__(self) -> Iterator[tuple[str, object]]:
        return iter(self.items())

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def __repr__(self) -> str:
        shown = {key: _masked(key, value) for key, value in self.items()}
        return f"CfgSection({self._name!r}, {shown!r})"


class Cfg:
    """A descriptor as written: sections by attribute or by key.

    ``cfg.foobar.timeout`` and the old form ``cfg().foobar.timeout`` both
    work (calling a ``Cfg`` returns it). A section that is not there reads as
    an empty section, which joins the others once a value is set in it.
    Iterating gives ``(name, section)`` pairs; sections named ``keys`` or
    ``items`` are read by key. Sections themselves cannot be replaced.
    """

    __slots__ = ("_lock", "_sections")
    _sections: dict[str, CfgSection]
    _lock: threading.Lock

    def __init__(self, sections: Mapping[str, Mapping[str, object]]) -> None:
        built = {name: CfgSection(name, values, self) for name, values in sections.items()}
        object.__setattr__(self, "_sections", built)
        object.__setattr__(self, "_lock", threading.Lock())

    def __call__(self) -> Cfg:
        return self

    def __getattr__(self, name: str) -> CfgSection:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> CfgSection:
        with self._lock:
            section = self._sections.get(name)
        return section if section is not None else CfgSection(name, {}, self)

    def _adopt(self, section: CfgSection) -> None:
        """A section that was missing got a value: it is one of ours from now on."""
        with self._lock:
            self._sections.setdefault(section._name, section)

    def keys(self) -> KeysView[str]:
        """The section names, in file order."""
        with self._lock:
            return dict(self._sections).keys()

    def items(self) -> ItemsView[str, CfgSection]:
        """The ``(name, section)`` pairs."""
        with self._lock:
            return dict(self._sections).items()

    def raw(self) -> dict[str, dict[str, object]]:
        """Every section's values as they are now."""
        return {name: dict(section.items()) for name, section in self.items()}

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a descriptor's sections cannot be replaced; set their values")

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._sections

    def __iter__(self) -> Iterator[tuple[str, CfgSection]]:
        return iter(self.items())

    def __len__(self) -> int:
        with self._lock:
            return len(self._sections)

    def __repr__(self) -> str:
        return f"Cfg({list(self.items())!r})"


def _masked(key: str, value: object) -> object:
    """A value fit for repr: secrets and URL passwords hidden."""
    if any(word in key.lower() for word in _SECRET_WORDS):
        return "***"
    if isinstance(value, str) and "://" in value and "@" in value:
        try:
            return str(Url.parse(value.strip()))
        except InvalidURLError:
            return "***"
    return value
