"""Finding adapters by name, by provided name and by default."""

from __future__ import annotations

from importlib import metadata
from importlib.metadata import EntryPoint

import pytest

from gofer.errors import AdapterNotFound, AdapterNotFoundError
from gofer.messaging.adapter import registry
from gofer.messaging.adapter.amqp import adapter as amqp_adapter
from gofer.messaging.adapter.registry import BUILTIN, GROUP, Registry, find


@pytest.mark.parametrize("name", ["amqp", "amqp-0-9-1", "rabbitmq", "rabbit", None])
def test_builtin_amqp_found_by_every_name(name: str | None) -> None:
    assert Registry(BUILTIN).find(name) is amqp_adapter


def test_default_is_configurable() -> None:
    registry = Registry(BUILTIN, default="rabbit")
    assert registry.find(None) is amqp_adapter


def test_default_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOFER_ADAPTER", "nosuch")
    with pytest.raises(AdapterNotFoundError):
        Registry(BUILTIN).find(None)


def test_unknown_name_lists_what_is_available() -> None:
    with pytest.raises(AdapterNotFoundError) as caught:
        Registry(BUILTIN).find("carrier-pigeon")
    message = str(caught.value)
    assert "carrier-pigeon" in message
    assert "amqp-0-9-1" in message
    assert "rabbitmq" in message


def test_broken_adapter_is_reported_and_others_still_load() -> None:
    registry = Registry({**BUILTIN, "broken": "gofer.no_such_module:adapter"})
    assert registry.find("amqp") is amqp_adapter
    with pytest.raises(AdapterNotFound) as caught:
        registry.find("broken")
    assert "broken failed to load" in str(caught.value)


def test_installed_entry_points_include_amqp() -> None:
    assert "amqp" in {point.name for point in registry._entry_points(GROUP)}
    assert find("amqp") is amqp_adapter


def test_an_installed_adapter_is_found_by_its_entry_point_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    points = [EntryPoint("pigeon", "gofer.messaging.adapter.amqp:adapter", GROUP)]
    monkeypatch.setattr(metadata, "entry_points", lambda group: points if group == GROUP else [])
    registry = Registry()
    assert registry.find("pigeon") is amqp_adapter


def test_a_builtin_name_never_scans_the_installed_distributions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def scan(group: str) -> list[EntryPoint]:
        raise AssertionError("scanned the entry points for a built-in adapter")

    monkeypatch.setattr(metadata, "entry_points", scan)
    assert Registry().find("rabbitmq") is amqp_adapter
    assert Registry().find(None) is amqp_adapter


def test_an_entry_point_cannot_take_a_builtin_name(monkeypatch: pytest.MonkeyPatch) -> None:
    points = [EntryPoint("amqp", "gofer.no_such_module:adapter", GROUP)]
    monkeypatch.setattr(metadata, "entry_points", lambda group: points)
    registry = Registry()
    assert "amqp-0-9-1" in registry.names()
    assert registry.find("amqp") is amqp_adapter
