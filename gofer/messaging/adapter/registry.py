"""Finds adapters by name through the ``gofer.adapters`` entry-point group.

Each entry point names an adapter object (see ``contract.Adapter``); it is
imported only when first asked for, so a missing driver for one adapter never
stops the others. The built-in adapters are known even when the package's
metadata is not installed (running from a source tree), and their names are
theirs: the entry points are read (a scan of every installed distribution,
about 20 ms at goferd's start) only when a name is not a built-in one.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from gofer.errors import AdapterNotFoundError
from gofer.messaging.adapter.contract import Adapter

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

log = logging.getLogger(__name__)

GROUP = "gofer.adapters"
BUILTIN = {
    "amqp": "gofer.messaging.adapter.amqp:adapter",
    "proton": "gofer.messaging.adapter.proton:adapter",
    "qpid": "gofer.messaging.adapter.qpid:adapter",
    "memory": "gofer.messaging.adapter.memory:adapter",
}
DEFAULT_ENV = "GOFER_ADAPTER"


class Registry:
    """The adapters available in this process, by name and by provided name."""

    def __init__(self, targets: dict[str, str] | None = None, default: str = "amqp") -> None:
        """Args:
        targets: adapter name to ``module:attribute``; None means the
            built-ins and, once a name is not among them, the entry points.
        default: the adapter used for URLs without a prefix.
        """
        self._targets = dict(targets if targets is not None else BUILTIN)
        self._discovered = targets is not None
        self._loaded: dict[str, Adapter] = {}
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()
        self.default = default

    def names(self) -> list[str]:
        """Every adapter name and provided name that loads here, sorted."""
        self._discover()
        found: set[str] = set()
        for name in list(self._targets):
            adapter = self._load(name)
            if adapter is not None:
                found.add(adapter.name)
                found.update(adapter.provides)
        return sorted(found)

    def find(self, name: str | None = None) -> Adapter:
        """The adapter called or providing ``name`` (the default for None).

        Raises:
            AdapterNotFoundError: nothing provides the name; the message
                lists what is available and why any adapter failed to load.
        """
        wanted = name or os.environ.get(DEFAULT_ENV) or self.default
        found = self._known(wanted)
        if found is None and self._discover():
            found = self._known(wanted)
        if found is not None:
            return found
        broken = "".join(f"; {n} failed to load: {why}" for n, why in sorted(self._failed.items()))
        raise AdapterNotFoundError(
            f"no messaging adapter provides {wanted!r}; available: "
            f"{', '.join(self.names()) or 'none'}{broken}"
        )

    def _known(self, wanted: str) -> Adapter | None:
        """The adapter called or providing ``wanted`` among the targets known so far."""
        direct = self._load(wanted) if wanted in self._targets else None
        if direct is not None:
            return direct
        for candidate in list(self._targets):
            adapter = self._load(candidate)
            if adapter is not None and wanted in adapter.provides:
                return adapter
        return None

    def _discover(self) -> bool:
        """Add the entry points' adapters (once); True if that added any."""
        with self._lock:
            if self._discovered:
                return False
            self._discovered = True
            added = False
            for point in _entry_points(GROUP):
                if point.name not in self._targets:
                    self._targets[point.name] = point.value
                    added = True
            return added

    def _load(self, name: str) -> Adapter | None:
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            if name in self._failed:
                return None
            module_name, _, attribute = self._targets[name].partition(":")
            try:
                adapter: Adapter = getattr(importlib.import_module(module_name), attribute)
            except (ImportError, AttributeError) as exc:
                log.warning("messaging adapter %s cannot be loaded: %s", name, exc)
                self._failed[name] = str(exc)
                return None
            self._loaded[name] = adapter
            return adapter


_registry: Registry | None = None
_registry_lock = threading.Lock()


def registry() -> Registry:
    """The process-wide registry, built on first use."""
    global _registry  # noqa: PLW0603 - one lazily built registry per process
    with _registry_lock:
        if _registry is None:
            _registry = Registry()
        return _registry


def find(name: str | None = None) -> Adapter:
    """Shorthand for ``registry().find(name)``."""
    return registry().find(name)


def _entry_points(group: str) -> Iterable[EntryPoint]:
    """The entry points of a group (Python 3.9's ``entry_points()`` takes no group)."""
    from importlib import metadata  # noqa: PLC0415 - see the module's doc

    try:
        return metadata.entry_points(group=group)
    except TypeError:
        return metadata.entry_points().get(group, ())  # type: ignore[unused-ignore]
