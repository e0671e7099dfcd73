"""The virt plugin: list, start and shut down the host's libvirt domains (virtual machines).

It uses the libvirt Python bindings (``python3-libvirt``), imported when a
call needs them, so the plugin loads without them and each call says what is
missing. It connects to ``[virt] uri`` of its descriptor (``qemu:///system``
by default) for the length of one call.

Domains are named by their UUID (what :meth:`Virt.getDomainID` returns): it
stays the same while a domain is stopped, unlike libvirt's numeric ids.
libvirt's errors reach the caller as :class:`VirtError`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import uuid
from collections.abc import Iterator
from typing import Any

from gofer.agent.plugin import Plugin
from gofer.decorators import remote
from gofer.errors import GoferError

log = logging.getLogger(__name__)

#: The hypervisor connected to when the descriptor names none.
DEFAULT_URI = "qemu:///system"


class VirtError(GoferError):
    """libvirt is missing, or it refused or failed an operation."""


def bindings() -> Any:
    """The ``libvirt`` module.

    Raises:
        VirtError: it is not installed.
    """
    try:
        return importlib.import_module("libvirt")
    except ImportError as exc:
        raise VirtError(
            "libvirt Python bindings are not installed (package python3-libvirt)"
        ) from exc


def uri() -> str:
    """``[virt] uri`` of this plugin's descriptor, or :data:`DEFAULT_URI`."""
    plugin = Plugin.find(__name__)
    value = plugin.cfg.virt.uri if plugin is not None else None
    return str(value or "").strip() or DEFAULT_URI


@contextlib.contextmanager
def connection() -> Iterator[Any]:
    """An open libvirt connection, closed on leaving; libvirt's errors become VirtError.

    Raises:
        VirtError: the bindings are missing, or libvirt failed.
    """
    libvirt = bindings()
    target = uri()
    try:
        conn = libvirt.open(target)
        try:
            yield conn
        finally:
            conn.close()
    except libvirt.libvirtError as exc:
        raise VirtError(f"libvirt ({target}): {exc}") from exc


def _uuid(domain_id: Any) -> str:
    try:
        return str(uuid.UUID(str(domain_id)))
    except ValueError:
        raise ValueError(
            f"not a domain UUID: {domain_id!r} (getDomainID(name) gives one)"
        ) from None


class Virt:
    """The host's virtual machines.

    Methods and parameters keep the names of gofer 2.x (``isAlive(id)``), so
    existing callers, keyword arguments included, keep working.
    """

    @remote
    def getDomainID(self, name: str) -> str:  # noqa: N802 - the name callers know
        """The UUID of the domain called ``name``."""
        with connection() as conn:
            return str(conn.lookupByName(str(name)).UUIDString())

    @remote
    def isAlive(self, id: str) -> bool:  # noqa: N802 - the name callers know
        """Whether the domain with UUID ``id`` is running."""
        with connection() as conn:
            return bool(conn.lookupByUUIDString(_uuid(id)).isActive())

    @remote
    def listDomains(self) -> list[dict[str, Any]]:  # noqa: N802 - the name callers know
        """Every domain, running or not: ``[{"name", "id" (UUID), "alive"}]``, by name."""
        with connection() as conn:
            domains = [
                {"name": d.name(), "id": d.UUIDString(), "alive": bool(d.isActive())}
                for d in conn.listAllDomains()
            ]
        return sorted(domains, key=lambda domain: str(domain["name"]))

    @remote
    def shutdown(self, id: str) -> None:
        """Ask the domain with UUID ``id`` to shut down (as the power button does)."""
        domain_id = _uuid(id)
        log.info("shutting down domain %s", domain_id)
        with connection() as conn:
            conn.lookupByUUIDString(domain_id).shutdown()

    @remote
    def start(self, id: str) -> None:
        """Start the (defined, stopped) domain with UUID ``id``."""
        domain_id = _uuid(id)
        log.info("starting domain %s", domain_id)
        with connection() as conn:
            conn.lookupByUUIDString(domain_id).create()
