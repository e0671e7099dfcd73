"""The proton adapter's broker dialects, message bodies and TLS settings, without a broker."""

from __future__ import annotations

from typing import Any

import pytest
from proton import Message

from gofer.errors import (
    AccessDeniedError,
    NotFoundError,
    PreconditionError,
    TLSError,
    UnsupportedError,
)
from gofer.messaging.adapter.model import TLS, Address, Broker, Exchange, Queue
from gofer.messaging.adapter.proton import ProtonConnection
from gofer.messaging.adapter.proton.connection import _message
from gofer.messaging.adapter.proton.management import (
    BrokerJ,
    Dialect,
    RabbitMQ,
    Reply,
    dialect_for,
)
from gofer.messaging.adapter.proton.reader import body_of


class FakeEngine:
    """Records what a dialect asks of the connection; answers from a script."""

    def __init__(self, *replies: Reply, missing: set[str] | None = None) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[dict[str, Any], Any]] = []
        self.attached: list[tuple[str, bool]] = []
        self.probed: list[str] = []
        self.forgotten: list[str] = []
        self.missing = missing or set()

    def request(self, properties: dict[str, Any], body: Any = None) -> Reply:
        self.requests.append((properties, body))
        return self.replies.pop(0)

    def probe(self, source: str) -> None:
        self.probed.append(source)
        if source in self.missing:
            raise NotFoundError(source)
        if source.endswith("locked"):
            raise AccessDeniedError(source)

    def declare_by_attach(self, target: str, durable: bool) -> None:
        if target in self.missing:
            raise NotFoundError(target)
        self.attached.append((target, durable))

    def forget_senders(self, queue: str) -> None:
        self.forgotten.append(queue)


def test_the_dialect_follows_the_product() -> None:
    engine = FakeEngine()
    assert type(dialect_for(engine, {"product": "RabbitMQ", "version": "3.10.8"})) is RabbitMQ
    assert type(dialect_for(engine, {"product": "Apache Qpid Broker-J Core"})) is BrokerJ
    assert type(dialect_for(engine, {"product": "apache-activemq-artemis"})) is Dialect
    assert type(dialect_for(engine, None)) is Dialect


@pytest.mark.parametrize(
    ("dialect", "address", "target", "source"),
    [
        (RabbitMQ, "jobs", "/amq/queue/jobs", "/amq/queue/jobs"),
        (RabbitMQ, "amq.direct/jobs", "/exchange/amq.direct/jobs", None),
        (BrokerJ, "jobs", "jobs", "jobs"),
        (BrokerJ, "amq.direct/jobs", "amq.direct/jobs", None),
        (Dialect, "x/y", "x/y", None),
    ],
)
def test_address_forms(dialect: type[Dialect], address: str, target: str, source: str) -> None:
    chosen = dialect(FakeEngine(), "")
    parsed = Address.parse(address)
    assert chosen.target(parsed) == target
    if source is not None:
        assert chosen.source(parsed.routing_key) == source


# -- Broker-J's $management ------------------------------------------------------


def test_declare_queue_creates_it() -> None:
    engine = FakeEngine(Reply(201, "", {}))
    BrokerJ(engine, "Broker-J").declare_queue(Queue("jobs", durable=True))
    properties, body = engine.requests[0]
    assert properties == {"operation": "CREATE", "type": "org.apache.qpid.Queue", "name": "jobs"}
    assert body == {"name": "jobs", "object-path": "jobs", "durable": True}


def test_declare_exclusive_queue() -> None:
    engine = FakeEngine(Reply(201, "", {}))
    BrokerJ(engine, "Broker-J").declare_queue(Queue("mine", durable=False, exclusive=True))
    _, body = engine.requests[0]
    assert body["exclusive"] == "CONNECTION"
    assert body["lifetimePolicy"] == "DELETE_ON_CONNECTION_CLOSE"


def test_declare_existing_queue_alike_is_fine_and_unlike_is_refused() -> None:
    alike = FakeEngine(Reply(409, "exists", None), Reply(200, "", {"durable": True}))
    BrokerJ(alike, "Broker-J").declare_queue(Queue("jobs", durable=True))
    unlike = FakeEngine(Reply(409, "exists", None), Reply(200, "", {"durable": True}))
    with pytest.raises(PreconditionError):
        BrokerJ(unlike, "Broker-J").declare_queue(Queue("jobs", durable=False))


def test_declare_exchange_refuses_unroutable_messages() -> None:
    engine = FakeEngine(Reply(201, "", {}))
    BrokerJ(engine, "Broker-J").declare_exchange(Exchange("events", "topic", durable=False))
    properties, body = engine.requests[0]
    assert properties["type"] == "org.apache.qpid.TopicExchange"
    assert body["unroutableMessageBehaviour"] == "REJECT"


def test_declare_existing_exchange_of_another_type_is_refused() -> None:
    engine = FakeEngine(Reply(409, "exists", None), Reply(200, "", {"qpid-type": "fanout"}))
    with pytest.raises(PreconditionError):
        BrokerJ(engine, "Broker-J").declare_exchange(Exchange("events", "topic"))


def test_bind_puts_its_parameters_in_the_properties() -> None:
    engine = FakeEngine(Reply(200, "", True))
    BrokerJ(engine, "Broker-J").bind("jobs", "amq.direct", "key")
    properties, body = engine.requests[0]
    assert properties == {
        "operation": "bind",
        "type": "org.apache.qpid.Exchange",
        "index": "object-path",
        "key": "amq.direct",
        "destination": "jobs",
        "bindingKey": "key",
    }
    assert body is None


@pytest.mark.parametrize(
    "reply",
    [Reply(404, "Not found", None), Reply(400, "Destination 'jobs' is not found.", None)],
)
def test_bind_to_something_missing_is_not_found(reply: Reply) -> None:
    with pytest.raises(NotFoundError):
        BrokerJ(FakeEngine(reply), "Broker-J").bind("jobs", "nope", "key")


def test_purge_exists_and_delete() -> None:
    engine = FakeEngine(
        Reply(200, "", 3), Reply(200, "", {}), Reply(404, "Not found", None), Reply(404, "", None)
    )
    dialect = BrokerJ(engine, "Broker-J")
    assert dialect.purge_queue("jobs") == 3
    assert dialect.queue_exists("jobs")
    assert not dialect.queue_exists("gone")
    dialect.delete_queue("gone")  # a missing queue is not an error
    assert engine.forgotten == ["gone"]
    assert [p["operation"] for p, _ in engine.requests] == ["clearQueue", "READ", "READ", "DELETE"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [(403, AccessDeniedError), (501, UnsupportedError), (409, PreconditionError)],
)
def test_management_failures(status: int, expected: type) -> None:
    with pytest.raises(expected):
        BrokerJ(FakeEngine(Reply(status, "no", None)), "Broker-J").purge_queue("jobs")


# -- RabbitMQ's plugin -------------------------------------------------------------


def test_rabbitmq_declares_by_attaching() -> None:
    engine = FakeEngine()
    dialect = RabbitMQ(engine, "RabbitMQ")
    dialect.declare_queue(Queue("jobs", durable=True))
    dialect.declare_queue(Queue("replies", durable=False, expiration=600))  # without expiry
    assert engine.attached == [("/queue/jobs", True), ("/queue/replies", False)]


@pytest.mark.parametrize("queue", [Queue("q", exclusive=True), Queue("q", auto_delete=True)])
def test_rabbitmq_cannot_declare_exclusive_or_auto_delete_queues(queue: Queue) -> None:
    with pytest.raises(UnsupportedError):
        RabbitMQ(FakeEngine(), "RabbitMQ").declare_queue(queue)


def test_rabbitmq_queue_exists_by_probing() -> None:
    engine = FakeEngine(missing={"/amq/queue/gone"})
    dialect = RabbitMQ(engine, "RabbitMQ")
    assert dialect.queue_exists("jobs")
    assert not dialect.queue_exists("gone")
    assert dialect.queue_exists("locked")  # exclusive to another connection
    assert engine.probed == ["/amq/queue/jobs", "/amq/queue/gone", "/amq/queue/locked"]


def test_rabbitmq_accepts_existing_exchanges_only() -> None:
    engine = FakeEngine(missing={"/exchange/new"})
    dialect = RabbitMQ(engine, "RabbitMQ")
    dialect.declare_exchange(Exchange("amq.topic", "topic"))
    with pytest.raises(UnsupportedError):
        dialect.declare_exchange(Exchange("new"))


@pytest.mark.parametrize(
    "operation",
    [
        lambda d: d.delete_queue("q"),
        lambda d: d.purge_queue("q"),
        lambda d: d.delete_exchange("x"),
        lambda d: d.bind("q", "x", "k"),
        lambda d: d.unbind("q", "x", "k"),
    ],
)
def test_rabbitmq_says_what_it_cannot_do(operation: Any) -> None:
    with pytest.raises(UnsupportedError, match=r"AMQP 1\.0"):
        operation(RabbitMQ(FakeEngine(), "RabbitMQ"))


# -- bodies ---------------------------------------------------------------------------


def test_a_json_body_goes_as_an_amqp_string() -> None:
    message = _message(b'{"sn": "1"}', ttl=30, durable=True)
    assert message.body == '{"sn": "1"}'
    assert message.durable
    assert message.ttl == 30


def test_a_binary_body_goes_as_binary() -> None:
    message = _message(bytes(range(256)), ttl=None, durable=False)
    assert message.body == bytes(range(256))
    assert not message.durable
    assert message.ttl == 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"a": "é"}', '{"a": "é"}'.encode()),
        (b"\x00\xff", b"\x00\xff"),
        (memoryview(b"abc"), b"abc"),
        (None, b""),
        ({"a": 1}, b'{"a": 1}'),
    ],
)
def test_bodies_are_read_as_bytes(body: Any, expected: bytes) -> None:
    assert body_of(Message(body=body)) == expected


# -- TLS settings -------------------------------------------------------------------------


def test_unreadable_tls_files_fail_at_once_with_tls_error(tmp_path: Any) -> None:
    broker = Broker.of(
        "proton+amqps://localhost:1",
        tls=TLS(cacert=str(tmp_path / "missing-ca.pem")),
        connect_timeout=2,
    )
    with pytest.raises(TLSError):
        ProtonConnection(broker)
