"""gofer.messaging.Connector: TLS files and heartbeat registered once for a broker URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gofer.messaging import Connection, Connector, connector
from gofer.messaging.adapter.model import TLS
from gofer.rmi import transport


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    yield
    connector.reset()
    transport.close_all()


def registered() -> Connector:
    found = Connector("amqps://mq.example.com/prod")
    found.ssl.ca_certificate = "/etc/pki/gofer/ca.pem"
    found.ssl.client_certificate = "/etc/pki/gofer/client.pem"
    found.ssl.host_validation = False
    found.heartbeat = 30
    found.add()
    return found


def test_connections_to_its_url_take_its_settings_and_keep_their_credentials() -> None:
    registered()
    connection = Connection("amqps://agent:secret@mq.example.com:5671/prod")
    assert connection.broker.tls == TLS(
        "/etc/pki/gofer/ca.pem", "/etc/pki/gofer/client.pem", None, False
    )
    assert connection.broker.heartbeat == 30
    assert connection.broker.url.userid == "agent"
    assert connection.broker.url.password == "secret"


def test_other_urls_are_untouched() -> None:
    registered()
    assert Connection("amqps://other.example.com/prod").broker.tls == TLS()
    assert Connection("amqps://mq.example.com/test").broker.tls == TLS()


def test_callers_settings_win_over_the_connectors() -> None:
    registered()
    given = TLS(cacert="/mine.pem")
    assert connector.settings_for("amqps://mq.example.com/prod", given, 5) == (given, 5)
    tls, heartbeat = connector.settings_for("amqps://mq.example.com/prod", TLS(), None)
    assert tls.cacert == "/etc/pki/gofer/ca.pem"
    assert heartbeat == 30


def test_agents_transports_use_it() -> None:
    registered()
    shared = transport.transport_for("amqps://mq.example.com/prod", TLS(), None)
    assert shared.broker.tls.cacert == "/etc/pki/gofer/ca.pem"
