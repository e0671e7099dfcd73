"""The virt plugin: without libvirt it says which package is missing; with it, what it calls."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from gofer.agent.config import Cfg
from gofer.agent.plugin import Plugin
from tests.unit.plugins import load_plugin

virt = load_plugin("virt")

WEB = "6f1c3a1e-2f7b-4a53-9b1e-0d7c2b0f5a11"
DB = "0b8a3c55-7e3c-45d6-a1f0-9e2c4d6b7a22"


class LibvirtError(Exception):
    pass


class Domain:
    def __init__(self, name: str, uuid: str, active: bool) -> None:
        self._name, self.uuid, self.active = name, uuid, active
        self.calls: list[str] = []

    def name(self) -> str:
        return self._name

    def UUIDString(self) -> str:
        return self.uuid

    def isActive(self) -> int:
        return int(self.active)

    def create(self) -> int:
        if self.active:
            raise LibvirtError("Requested operation is not valid: domain is already running")
        self.calls.append("create")
        return 0

    def shutdown(self) -> int:
        self.calls.append("shutdown")
        return 0


class Connection:
    def __init__(self, domains: list[Domain]) -> None:
        self.domains = domains
        self.closed = False

    def lookupByName(self, name: str) -> Domain:
        return self._find(lambda d: d.name() == name, f"no domain with matching name '{name}'")

    def lookupByUUIDString(self, uuid: str) -> Domain:
        return self._find(lambda d: d.uuid == uuid, f"no domain with matching uuid '{uuid}'")

    def listAllDomains(self) -> list[Domain]:
        return list(self.domains)

    def close(self) -> int:
        self.closed = True
        return 0

    def _find(self, match: Any, message: str) -> Domain:
        for domain in self.domains:
            if match(domain):
                return domain
        raise LibvirtError(message)


@pytest.fixture
def hypervisor(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A fake ``libvirt`` module with two domains; records the URIs opened."""
    domains = [Domain("web", WEB, True), Domain("db", DB, False)]
    state = types.SimpleNamespace(domains=domains, uris=[], connections=[])

    def open_(uri: str) -> Connection:
        state.uris.append(uri)
        connection = Connection(domains)
        state.connections.append(connection)
        return connection

    fake = types.ModuleType("libvirt")
    fake.open = open_  # type: ignore[attr-defined]
    fake.libvirtError = LibvirtError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "libvirt", fake)
    return state


def test_without_libvirt_every_call_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "libvirt", None)  # import libvirt now fails
    with pytest.raises(virt.VirtError, match=r"not installed \(package python3-libvirt\)"):
        virt.Virt().listDomains()
    with pytest.raises(virt.VirtError, match="python3-libvirt"):
        virt.Virt().start(WEB)


def test_list_domains(hypervisor: types.SimpleNamespace) -> None:
    assert virt.Virt().listDomains() == [
        {"name": "db", "id": DB, "alive": False},
        {"name": "web", "id": WEB, "alive": True},
    ]
    assert hypervisor.uris == ["qemu:///system"]
    assert all(connection.closed for connection in hypervisor.connections)


def test_domain_id_and_alive(hypervisor: types.SimpleNamespace) -> None:
    assert virt.Virt().getDomainID("web") == WEB
    assert virt.Virt().isAlive(WEB) is True
    assert virt.Virt().isAlive(DB.upper()) is False  # any UUID spelling


def test_start_and_shutdown(hypervisor: types.SimpleNamespace) -> None:
    web, db = hypervisor.domains
    virt.Virt().start(DB)
    virt.Virt().shutdown(WEB)
    assert db.calls == ["create"]
    assert web.calls == ["shutdown"]


def test_libvirt_errors_become_virt_errors(hypervisor: types.SimpleNamespace) -> None:
    with pytest.raises(virt.VirtError, match="no domain with matching name 'nosuch'"):
        virt.Virt().getDomainID("nosuch")
    with pytest.raises(virt.VirtError, match="already running") as caught:
        virt.Virt().start(WEB)
    assert isinstance(caught.value.__cause__, LibvirtError)
    assert all(connection.closed for connection in hypervisor.connections)


@pytest.mark.parametrize("domain_id", ["web", "1", "", None, "$(reboot)"])
def test_ids_are_uuids(hypervisor: types.SimpleNamespace, domain_id: Any) -> None:
    with pytest.raises(ValueError, match="not a domain UUID"):
        virt.Virt().shutdown(domain_id)
    assert hypervisor.uris == []


def test_the_uri_comes_from_the_descriptor(
    monkeypatch: pytest.MonkeyPatch, hypervisor: types.SimpleNamespace
) -> None:
    plugin = types.SimpleNamespace(cfg=Cfg({"virt": {"uri": "qemu+ssh://host/system"}}))
    find = staticmethod(lambda name: plugin if name == virt.__name__ else None)
    monkeypatch.setattr(Plugin, "find", find)
    virt.Virt().listDomains()
    assert hypervisor.uris == ["qemu+ssh://host/system"]
