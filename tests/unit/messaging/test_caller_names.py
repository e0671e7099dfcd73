"""What the existing gofer's callers import from gofer.messaging, and how it behaves (no broker)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer import errors
from gofer.messaging import (
    SSL,
    URL,
    AdapterError,
    AdapterNotFound,
    Broker,
    Connector,
    Document,
    DocumentError,
    Exchange,
    ModelError,
    NoAdaptersLoaded,
    Node,
    NotFound,
    Queue,
    VersionError,
    connector,
)
from gofer.messaging.model import VERSION, validate

# Every name gofer 3.0's gofer.messaging exports, but for the adapter
# factory (Adapter) and its process-wide registry (Domain); see docs/compat.md.
UPSTREAM = [
    "Document",
    "ModelError",
    "DocumentError",
    "VersionError",
    "Authenticator",
    "ValidationFailed",
    "Consumer",
    "URL",
    "SSL",
    "Connector",
    "Broker",
    "AdapterError",
    "AdapterNotFound",
    "NoAdaptersLoaded",
    "Connection",
    "Exchange",
    "Node",
    "Queue",
    "Reader",
    "Sender",
    "Producer",
    "NotFound",
]


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    yield
    connector.reset()


def test_every_upstream_name_imports() -> None:
    package = importlib.import_module("gofer.messaging")
    missing = [name for name in UPSTREAM if not hasattr(package, name)]
    assert missing == []
    for module in ("model", "consumer", "auth", "dispatcher", "mock"):
        importlib.import_module(f"gofer.messaging.{module}")


def test_model_errors_are_ours() -> None:
    assert issubclass(errors.NotFoundError, ModelError)
    assert issubclass(errors.BrokerUnavailableError, ModelError)
    assert issubclass(DocumentError, ModelError)
    assert issubclass(VersionError, DocumentError)
    assert NotFound is errors.NotFoundError
    assert AdapterError is AdapterNotFound is NoAdaptersLoaded is errors.AdapterNotFoundError


def test_documents_of_another_version_fail_validation() -> None:
    validate(Document(sn="1", version=VERSION))
    with pytest.raises(VersionError) as caught:
        validate(Document(sn="1", version="0.5"))
    assert caught.value.code == "model.version"
    assert caught.value.details == f"expected:{VERSION}, found:0.5"
    assert caught.value.document.sn == "1"


def test_url_parts() -> None:
    url = URL("qpid+amqps://admin:pw@mq.example.com:5999/vh")
    assert (url.adapter, url.scheme, url.port) == ("qpid", "amqps", 5999)
    assert url.host == "mq.example.com"
    assert (url.userid, url.password, url.path, url.is_ssl()) == ("admin", "pw", "vh", True)
    assert url.canonical == "amqps://admin:pw@mq.example.com:5999"
    assert str(url) == "amqps://admin:***@mq.example.com:5999"  # fit for a log line
    assert "pw" not in repr(url)


def test_url_defaults() -> None:
    url = URL("localhost")
    assert (url.scheme, url.port, url.adapter, url.userid, url.is_ssl()) == (
        "amqp",
        5672,
        None,
        None,
        False,
    )
    assert URL("ssl://h").port == 5671
    assert URL("amqp://h:5672") == URL("amqp://h")
    assert len({URL("amqp://h"), URL("tcp://h"), URL("amqp://h:5672")}) == 2
    with pytest.raises(errors.InvalidURLError):
        URL("http://h")


def test_connector_parts_and_find() -> None:
    found = Connector.find("amqps://u:p@mq.example.com/prod")
    assert found.url.host == "mq.example.com"  # not registered: a new one
    assert (found.scheme, found.host, found.port, found.userid, found.password) == (
        "amqps",
        "mq.example.com",
        5671,
        "u",
        "p",
    )
    assert (found.virtual_host, found.adapter, found.use_ssl()) == ("prod", None, True)
    mine = Connector("amqps://mq.example.com/prod")
    mine.add()
    assert Connector.find("amqps://u:p@mq.example.com/prod") is mine
    assert connector.registered("amqps://other.example.com/prod") is None


def test_broker_is_the_older_name_of_connector() -> None:
    broker = Broker("amqp://mq.example.com")
    broker.ssl.ca_certificate = "/etc/pki/ca.pem"
    broker.add()
    assert isinstance(Connector.find("amqp://mq.example.com"), Broker)


def test_ssl_validate_and_truth(tmp_path: Path) -> None:
    ssl = SSL()
    assert not ssl
    ssl.validate()  # nothing named, nothing to check
    ca = tmp_path / "ca.pem"
    ssl.ca_certificate = str(ca)
    assert ssl
    with pytest.raises(ValueError, match="not found"):
        ssl.validate()
    ca.write_text("PEM")
    ssl.validate()


def test_nodes() -> None:
    assert Queue("q").address == "q"
    assert str(Queue("q")) == "q"
    assert Queue("q") == Queue("q", url="amqp://elsewhere")
    assert Queue("q") != Queue("r")
    assert Queue("q") != Exchange("q")
    assert isinstance(Queue(), Node)
    assert isinstance(Exchange("x"), Node)
    assert Queue().name != Queue().name  # a random name each
    assert Exchange("x").policy == "direct"
    with pytest.raises(NotImplementedError):
        Node("n").declare()
