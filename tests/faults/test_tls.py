"""TLS with certificates the suite makes: verified connections, clear refusals, RMI over amqps.

``scripts/rabbitmq tls-setup`` (idempotent) gives the test broker a TLS
listener on 5671 with ``verify_peer`` and ``fail_if_no_peer_cert``; the
certificates come from ``scripts/tls``. The broker's certificate names
``localhost`` only, so dialling ``127.0.0.1`` is a wrong host name.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from gofer.errors import BrokerUnavailableError, GoferError, TLSError
from gofer.messaging.adapter.model import TLS, Broker, Queue
from gofer.messaging.connection import Connection
from gofer.messaging.retry import Backoff
from gofer.messaging.url import Url
from gofer.proxy import Agent
from tests import brokers

TLS_URL = "amqps://guest:guest@localhost:5671"


@pytest.fixture(scope="module")
def certs(rabbitmq: brokers.TestBroker) -> Path:
    """The certificate directory, once the broker's TLS listener is up."""
    assert rabbitmq.control is not None
    subprocess.run([rabbitmq.control, "tls-setup"], check=True, timeout=180)
    made = subprocess.run(
        [str(brokers.ROOT / "scripts/tls")], check=True, timeout=60, capture_output=True, text=True
    )
    return Path(made.stdout.strip())


def connect(url: str, tls: TLS) -> Connection:
    """Open a connection now; recoverable failures are retried for two seconds at most."""
    broker = Broker(url=Url.parse(url), tls=tls, connect_timeout=5)
    connection = Connection(broker, backoff=Backoff(initial=0.1, maximum=0.5, limit=2))
    try:
        connection.open()
    except BaseException:
        connection.close()
        raise
    return connection


def good(certs: Path, **changes: object) -> TLS:
    settings: dict[str, object] = {
        "cacert": str(certs / "ca.pem"),
        "clientcert": str(certs / "client.pem"),
        "clientkey": str(certs / "client.key"),
    }
    settings.update(changes)
    return TLS(**settings)  # type: ignore[arg-type]


def test_verified_connection_carries_messages(certs: Path) -> None:
    connection = connect(TLS_URL, good(certs))
    name = f"gofer-faults-tls-{uuid.uuid4()}"
    try:
        connection.declare_queue(Queue(name, durable=False, auto_delete=False))
        connection.send(name, b'{"over": "tls"}')
        reader = connection.reader(name)
        delivery = reader.get(timeout=5)
        assert delivery is not None
        assert delivery.body == b'{"over": "tls"}'
        reader.ack(delivery)
        reader.close()
    finally:
        connection.delete_queue(name)
        connection.close()


@pytest.mark.parametrize(
    ("case", "url", "changes", "reason"),
    [
        ("wrong CA", TLS_URL, {"cacert": "other-ca.pem"}, "certificate verify failed"),
        (
            "wrong host name",
            "amqps://guest:guest@127.0.0.1:5671",
            {},
            "certificate is not valid for '127.0.0.1'",
        ),
        # With TLS 1.3 the broker refuses a client certificate after the
        # client's handshake is done: the client reads either the alert or
        # just an EOF, at random. Either way the operator must learn that the
        # client certificate is what failed.
        ("no client certificate", TLS_URL, {"clientcert": None, "clientkey": None}, "certificate"),
        (
            "client certificate of an unknown CA",
            TLS_URL,
            {"clientcert": "other-client.pem", "clientkey": "other-client.key"},
            "certificate",
        ),
        ("plain port", "amqps://guest:guest@localhost:5672", {}, "wrong version number"),
    ],
    ids=["wrong-ca", "wrong-host", "no-client-cert", "untrusted-client-cert", "plain-port"],
)
def test_refused_with_a_clear_tls_error(
    certs: Path, case: str, url: str, changes: dict[str, str | None], reason: str
) -> None:
    files = {key: None if name is None else str(certs / name) for key, name in changes.items()}
    with pytest.raises(GoferError) as caught:
        connect(url, good(certs, **files)).close()
    error = caught.value
    assert isinstance(error, TLSError), f"{case}: {type(error).__name__}: {error}"
    text = str(error)
    assert text.startswith("TLS failed"), text
    assert reason.lower() in text.lower(), text


def test_host_validation_off_accepts_the_wrong_host_name(certs: Path) -> None:
    connect("amqps://guest:guest@127.0.0.1:5671", good(certs, host_validation=False)).close()


def test_unreadable_certificate_file_is_a_clear_error_that_is_not_retried(
    certs: Path, tmp_path: Path
) -> None:
    """A typo in ``clientcert`` must not look like a broker outage (retried for ever by goferd)."""
    missing = tmp_path / "no-such-client.pem"
    with pytest.raises(GoferError) as caught:
        connect(TLS_URL, good(certs, clientcert=str(missing), clientkey=str(missing))).close()
    error = caught.value
    assert not isinstance(error, BrokerUnavailableError), (
        f"{type(error).__name__} is retried as if the broker were down: {error}"
    )
    assert str(missing) in str(error), str(error)


def test_rmi_through_goferd_over_amqps(certs: Path, fault_goferd) -> None:
    files = {
        "cacert": str(certs / "ca.pem"),
        "clientcert": str(certs / "client.pem"),
        "clientkey": str(certs / "client.key"),
    }
    goferd = fault_goferd(broker_url=TLS_URL, messaging=files)
    assert "consuming" in goferd.log()
    agent = Agent(TLS_URL, goferd.queue, wait=30, **files)
    assert agent.Fault().work("over-tls") == "over-tls"
    assert [tag for event, _, tag in goferd.executions() if event == "end"] == ["over-tls"]
