"""Finding adapters by name, by provided name and by default."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from gofer.errors import AdapterNotFound, AdapterNotFoundError
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
    assert "amqp" in {point.name for point in entry_points(group=GROUP)}
    assert find("amqp") is amqp_adapter
