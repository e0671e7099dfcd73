"""TLS in the engine: the in-memory handshake, certificate and host-name checks, client certs."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.errors import TLSError
from gofer.messaging.adapter.model import TLS, Broker
from gofer.messaging.adapter.qpid.connection import settings_for
from gofer.messaging.adapter.qpid.engine import spec010
from gofer.messaging.adapter.qpid.engine.connection import Connection, Settings
from gofer.messaging.adapter.qpid.engine.message import Message
from gofer.messaging.adapter.qpid.engine.transport import tls_context
from tests.unit.qpid.certs import Certs, make_certs
from tests.unit.qpid.fakebroker import FakeBroker, Peer


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _server_context(certs: Certs, require_client: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    if require_client:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(certs.ca)
    return context


def _serve(peer: Peer) -> None:
    peer.negotiate()
    peer.attach()
    transfer = peer.expect(spec010.MessageTransfer)
    assert transfer.destination == "amq.direct"


@pytest.fixture
def tls_broker(certs: Certs) -> Iterator[FakeBroker]:
    with FakeBroker(_serve, tls=_server_context(certs)) as broker:
        yield broker


def _connect(port: int, host: str, context: ssl.SSLContext, check_name: bool = True) -> Connection:
    return Connection(
        Settings(
            host,
            port,
            username="u",
            password="p",
            tls=context,
            server_hostname=host if check_name else None,
            connect_timeout=5,
        )
    )


def test_a_verified_tls_connection_carries_the_protocol(
    tls_broker: FakeBroker, certs: Certs
) -> None:
    connection = _connect(tls_broker.port, "localhost", tls_context(str(certs.ca)))
    session = connection.session()
    big = Message(b"t" * 200_000, routing_key="k")  # many TLS records, many frames
    session.transfer("amq.direct", big, timeout=5, wait=False)
    peer = tls_broker.peers[0]
    assert peer.done.wait(5)
    assert tls_broker.errors == []
    assert peer.bodies == [big.body]
    connection.close(timeout=0.2)


def test_an_unknown_ca_is_a_tls_error(tls_broker: FakeBroker, certs: Certs) -> None:
    with pytest.raises(TLSError, match="CERTIFICATE_VERIFY_FAILED"):
        _connect(tls_broker.port, "localhost", tls_context(str(certs.other_ca)))


def test_a_wrong_host_name_is_a_tls_error_unless_checks_are_off(
    tls_broker: FakeBroker, certs: Certs
) -> None:
    with pytest.raises(TLSError, match="match"):
        _connect(tls_broker.port, "127.0.0.1", tls_context(str(certs.ca)))
    unchecked = tls_context(str(certs.ca), host_validation=False)
    connection = _connect(tls_broker.port, "127.0.0.1", unchecked, check_name=False)
    assert connection.is_open
    connection.close(timeout=0.1)


def test_a_client_certificate_is_presented_when_the_broker_wants_one(certs: Certs) -> None:
    with FakeBroker(lambda peer: peer.negotiate(), tls=_server_context(certs, True)) as broker:
        context = tls_context(str(certs.ca), str(certs.client_cert), str(certs.client_key))
        connection = _connect(broker.port, "localhost", context)
        assert connection.is_open
        connection.close(timeout=0.1)
        with pytest.raises(TLSError):
            _connect(broker.port, "localhost", tls_context(str(certs.ca)))


def test_unreadable_tls_files_are_a_tls_error(tmp_path: Path) -> None:
    with pytest.raises(TLSError, match="cannot set up TLS"):
        tls_context(str(tmp_path / "missing.pem"))


def test_the_adapter_builds_tls_settings_from_the_url_and_options(certs: Certs) -> None:
    broker = Broker.of(
        "qpid+amqps://u:p@broker.example.com/vh",
        tls=TLS(
            cacert=str(certs.ca), clientcert=str(certs.client_cert), clientkey=str(certs.client_key)
        ),
        heartbeat=2.5,
    )
    settings = settings_for(broker)
    assert (settings.host, settings.port, settings.virtual_host) == (
        "broker.example.com",
        5671,
        "vh",
    )
    assert settings.tls is not None
    assert settings.tls.check_hostname
    assert settings.server_hostname == "broker.example.com"
    assert settings.heartbeat == 3
    plain = settings_for(Broker.of("qpid+amqp://localhost", tls=TLS(host_validation=False)))
    assert (plain.tls, plain.server_hostname, plain.port, plain.username) == (
        None,
        None,
        5672,
        None,
    )
