"""Addresses and broker settings."""

from __future__ import annotations

import pytest

from gofer.errors import ConfigError, MessagingError
from gofer.messaging.adapter.model import TLS, Address, Broker


@pytest.mark.parametrize(
    ("text", "exchange", "key"),
    [("agent-1", "", "agent-1"), ("amq.direct/agent-1", "amq.direct", "agent-1")],
)
def test_address(text: str, exchange: str, key: str) -> None:
    address = Address.parse(text)
    assert (address.exchange, address.routing_key) == (exchange, key)
    assert str(address) == text


@pytest.mark.parametrize("text", ["", "ex/", "a/b/c", None])
def test_bad_address(text: object) -> None:
    with pytest.raises(MessagingError):
        Address.parse(text)  # type: ignore[arg-type]


def test_broker_defaults_are_safe() -> None:
    broker = Broker.of("amqps://gofer:secret@broker")
    assert broker.tls == TLS(host_validation=True)
    assert broker.heartbeat == 10
    assert "secret" not in str(broker)


def test_config_error_names_file_section_and_key() -> None:
    error = ConfigError("not a number", "/etc/gofer/agent.conf", "main", "threads")
    assert str(error) == (
        "not a number (file '/etc/gofer/agent.conf', section 'main', key 'threads')"
    )
