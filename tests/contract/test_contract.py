"""The adapter contract, run against every (adapter, real broker) pair.

Every adapter must pass this module unchanged; a difference a broker forces
is written here, next to the test it affects, and in the adapter's docstring.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from gofer.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    NotFoundError,
    UnsupportedError,
)
from gofer.messaging.adapter.contract import Connection, Reader
from gofer.messaging.adapter.model import Broker, Exchange, Queue
from gofer.messaging.connection import Connection as ReconnectingConnection
from gofer.messaging.retry import Backoff
from tests.brokers import TestBroker


def _fresh(prefix: str = "gofer-test") -> str:
    return f"{prefix}-{uuid.uuid4()}"


def _drain(connection: Connection, queue: str, timeout: float = 0.5) -> list[bytes]:
    reader = connection.reader(queue, prefetch=10)
    bodies = []
    while (delivery := reader.get(timeout)) is not None:
        bodies.append(delivery.body)
        reader.ack(delivery)
    reader.close()
    return bodies


@pytest.fixture
def queue(connection: Connection, queue_name: str) -> str:
    connection.declare_queue(Queue(queue_name, durable=True))
    return queue_name


# -- connecting -------------------------------------------------------------


def test_connect_and_close(connection: Connection) -> None:
    assert connection.is_open
    connection.close()
    assert not connection.is_open
    connection.close()  # twice is fine


@pytest.mark.needs("network")
def test_refused_port_fails_with_connect_error(broker: Broker, connect) -> None:
    url = dataclasses.replace(broker.url, host="127.0.0.1", port=_unused_port())
    with pytest.raises(ConnectError):
        connect(url=url)


@pytest.mark.needs("network")
def test_silent_peer_fails_within_the_connect_timeout(broker: Broker, connect) -> None:
    with _silent_server() as port:
        url = dataclasses.replace(broker.url, host="127.0.0.1", port=port)
        started = time.monotonic()
        with pytest.raises(ConnectError):
            connect(url=url, connect_timeout=1.0)
        assert time.monotonic() - started < 5


@pytest.mark.needs("network")
def test_wrong_password_fails_with_authentication_error(broker: Broker, connect) -> None:
    url = dataclasses.replace(broker.url, password="certainly-wrong")
    started = time.monotonic()
    with pytest.raises(AuthenticationError):
        connect(url=url)
    assert time.monotonic() - started < 10


# -- sending and reading ----------------------------------------------------


def test_round_trip(connection: Connection, queue: str) -> None:
    connection.send(queue, b'{"hello": "world"}')
    reader = connection.reader(queue)
    delivery = reader.get(timeout=5)
    assert delivery is not None
    assert delivery.body == b'{"hello": "world"}'
    assert not delivery.redelivered
    reader.ack(delivery)
    assert reader.get(timeout=0.3) is None


def test_get_times_out_with_none(connection: Connection, queue: str) -> None:
    reader = connection.reader(queue)
    started = time.monotonic()
    assert reader.get(timeout=0.5) is None
    assert 0.4 < time.monotonic() - started < 3


def test_ttl_expires_messages(connection: Connection, queue: str) -> None:
    connection.send(queue, b"short-lived", ttl=0.2)
    connection.send(queue, b"long-lived", ttl=60)
    time.sleep(0.6)
    assert _drain(connection, queue) == [b"long-lived"]


def test_reject_with_requeue_redelivers(
    connection: Connection, queue: str, capable: Callable[[str], bool]
) -> None:
    connection.send(queue, b"again")
    reader = connection.reader(queue)
    first = reader.get(timeout=5)
    assert first is not None
    reader.reject(first, requeue=True)
    second = reader.get(timeout=5)
    assert second is not None
    assert second.body == b"again"
    # Broker-J over AMQP 1.0 marks a redelivery only by delivery-count, which
    # a requeue (the ``released`` outcome, not counted) does not raise.
    assert second.redelivered or not capable("requeue_marks_redelivered")
    reader.ack(second)


def test_reject_without_requeue_drops(connection: Connection, queue: str) -> None:
    connection.send(queue, b"drop me")
    reader = connection.reader(queue)
    delivery = reader.get(timeout=5)
    assert delivery is not None
    reader.reject(delivery)
    assert reader.get(timeout=0.5) is None


def test_unacknowledged_message_returns_when_reader_closes(
    connection: Connection, queue: str
) -> None:
    connection.send(queue, b"unfinished")
    reader = connection.reader(queue)
    assert reader.get(timeout=5) is not None
    reader.close()
    assert _drain(connection, queue, timeout=3) == [b"unfinished"]


def test_prefetch_bounds_unacknowledged_messages(connection: Connection, queue: str) -> None:
    for n in range(5):
        connection.send(queue, str(n).encode())
    greedy = connection.reader(queue, prefetch=2)
    held = [greedy.get(timeout=5), greedy.get(timeout=5)]
    assert all(held)
    # The broker holds the other three back from `greedy` until it acks.
    other = connection.reader(queue, prefetch=10)
    rest = []
    while (delivery := other.get(timeout=1)) is not None:
        rest.append(delivery.body)
        other.ack(delivery)
    assert sorted(rest) == [b"2", b"3", b"4"]
    greedy.close()
    other.close()


def test_ack_many_settles_exactly_the_deliveries_given(connection: Connection, queue: str) -> None:
    for n in range(6):
        connection.send(queue, str(n).encode())
    reader = connection.reader(queue, prefetch=3)
    first = [reader.get(timeout=5) for _ in range(3)]
    assert all(first)
    # Settling a batch gives its credit back: the broker sends the rest.
    reader.ack_many([d for d in first if d is not None])
    second = [reader.get(timeout=5) for _ in range(3)]
    assert [d.body for d in second if d is not None] == [b"3", b"4", b"5"]
    # Not every unsettled delivery up to the last: "3" stays unsettled.
    reader.ack_many([d for d in second[1:] if d is not None])
    reader.close()
    assert _drain(connection, queue, timeout=3) == [b"3"]


def test_ack_many_of_nothing_does_nothing(connection: Connection, queue: str) -> None:
    connection.send(queue, b"kept")
    reader = connection.reader(queue)
    reader.ack_many([])
    delivery = reader.get(timeout=5)
    assert delivery is not None
    reader.ack_many([delivery])
    reader.close()
    assert _drain(connection, queue) == []


def test_large_message(connection: Connection, queue: str) -> None:
    body = bytes(range(256)) * (8 * 1024 * 1024 // 256)
    connection.send(queue, body)
    reader = connection.reader(queue)
    delivery = reader.get(timeout=30)
    assert delivery is not None
    assert delivery.body == body
    reader.ack(delivery)


def test_concurrent_senders_share_a_connection(connection: Connection, queue: str) -> None:
    threads, each = 8, 25
    errors: list[BaseException] = []

    def send_many(worker: int) -> None:
        try:
            for n in range(each):
                connection.send(queue, f"{worker}:{n}".encode())
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    workers = [threading.Thread(target=send_many, args=(w,)) for w in range(threads)]
    for worker in workers:
        worker.start()
    received = []
    reader = connection.reader(queue, prefetch=50)
    while len(received) < threads * each and (delivery := reader.get(timeout=10)) is not None:
        received.append(delivery.body.decode())
        reader.ack(delivery)
    for worker in workers:
        worker.join()
    assert errors == []
    assert sorted(received) == sorted(f"{w}:{n}" for w in range(threads) for n in range(each))


def test_readers_in_many_threads_share_a_connection(
    connection: Connection, delete_queue: Callable[[Connection, str], None]
) -> None:
    # Each thread reads and acknowledges its own queue while others send: what
    # goferd's plugins and a caller's reply reader do on one connection. (The
    # proton adapter once let its driver's objects be freed in reader threads,
    # which crashed the process under this load.)
    queues = [_fresh() for _ in range(4)]
    each = 250
    errors: list[BaseException] = []
    got: dict[str, list[int]] = {name: [] for name in queues}
    for name in queues:
        connection.declare_queue(Queue(name, durable=True))

    def send_all(name: str) -> None:
        try:
            for n in range(each):
                connection.send(name, str(n).encode())
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    def read_all(name: str) -> None:
        try:
            reader = connection.reader(name, prefetch=16)
            while len(got[name]) < each and (delivery := reader.get(timeout=15)) is not None:
                got[name].append(int(delivery.body))
                reader.ack(delivery)
            reader.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=read_all, args=(name,)) for name in queues]
    threads += [threading.Thread(target=send_all, args=(name,)) for name in queues]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert got == {name: list(range(each)) for name in queues}
    finally:
        for name in queues:
            delete_queue(connection, name)


# -- missing nodes ----------------------------------------------------------


def test_send_to_missing_queue_is_not_found(connection: Connection) -> None:
    with pytest.raises(NotFoundError):
        connection.send(_fresh("missing"), b"lost")
    assert connection.is_open


def test_send_to_missing_exchange_is_not_found(connection: Connection, queue: str) -> None:
    with pytest.raises(NotFoundError):
        connection.send(f"{_fresh('missing')}/{queue}", b"lost")
    connection.send(queue, b"still usable")  # the connection survives
    assert _drain(connection, queue) == [b"still usable"]


def test_reading_missing_queue_is_not_found(connection: Connection) -> None:
    with pytest.raises(NotFoundError):
        connection.reader(_fresh("missing"))
    assert connection.is_open


@pytest.mark.needs("cancel_notify")
def test_reader_reports_deleted_queue_then_recovers(connection: Connection, queue: str) -> None:
    reader = connection.reader(queue)
    connection.delete_queue(queue)
    with pytest.raises(NotFoundError):
        _keep_reading(reader, seconds=5)
    connection.declare_queue(Queue(queue))
    connection.send(queue, b"back")
    delivery = reader.get(timeout=5)
    assert delivery is not None
    assert delivery.body == b"back"
    reader.ack(delivery)


# -- queues and exchanges ---------------------------------------------------


def test_queue_exists(connection: Connection, queue: str) -> None:
    assert connection.queue_exists(queue)
    assert not connection.queue_exists(_fresh("missing"))


# RabbitMQ's AMQP 1.0 plugin can neither delete nor purge a queue.
@pytest.mark.needs("queue_admin")
def test_queue_exists_purge_and_delete(connection: Connection, queue: str) -> None:
    assert connection.queue_exists(queue)
    for n in range(3):
        connection.send(queue, str(n).encode())
    assert connection.purge_queue(queue) == 3
    assert _drain(connection, queue, timeout=0.3) == []
    connection.delete_queue(queue)
    assert not connection.queue_exists(queue)
    connection.delete_queue(queue)  # a missing queue is not an error


@pytest.mark.needs("queue_admin")
def test_purge_missing_queue_is_not_found(connection: Connection) -> None:
    with pytest.raises(NotFoundError):
        connection.purge_queue(_fresh("missing"))


# RabbitMQ's AMQP 1.0 plugin cannot bind; Broker-J's amq.* exchanges drop
# what they cannot route when it comes over AMQP 1.0.
@pytest.mark.needs("bind")
@pytest.mark.needs("amq_unroutable_refused")
def test_default_direct_exchange(connection: Connection, queue: str) -> None:
    connection.bind(queue, "amq.direct", queue)
    connection.send(f"amq.direct/{queue}", b"via amq.direct")
    assert _drain(connection, queue) == [b"via amq.direct"]
    connection.unbind(queue, "amq.direct", queue)
    with pytest.raises(NotFoundError):
        connection.send(f"amq.direct/{queue}", b"unrouted")


@pytest.mark.needs("bind")  # not over RabbitMQ's AMQP 1.0 plugin
def test_custom_direct_exchange(connection: Connection, queue: str) -> None:
    exchange = _fresh("ex")
    connection.declare_exchange(Exchange(exchange, "direct", durable=False))
    try:
        connection.bind(queue, exchange, "key")
        connection.send(f"{exchange}/key", b"direct")
        assert _drain(connection, queue) == [b"direct"]
    finally:
        connection.delete_exchange(exchange)


@pytest.mark.needs("bind")  # not over RabbitMQ's AMQP 1.0 plugin
def test_topic_exchange(connection: Connection, queue: str) -> None:
    exchange = _fresh("topic")
    connection.declare_exchange(Exchange(exchange, "topic", durable=False))
    try:
        connection.bind(queue, exchange, "agent.*.status")
        connection.send(f"{exchange}/agent.7.status", b"matched")
        with pytest.raises(NotFoundError):
            connection.send(f"{exchange}/agent.7.other", b"unmatched")
        assert _drain(connection, queue) == [b"matched"]
    finally:
        connection.delete_exchange(exchange)


@pytest.mark.needs("bind")  # not over RabbitMQ's AMQP 1.0 plugin
def test_fanout_exchange(connection: Connection, queue: str) -> None:
    exchange = _fresh("fanout")
    second = _fresh()
    connection.declare_exchange(Exchange(exchange, "fanout", durable=False))
    connection.declare_queue(Queue(second, durable=False))
    try:
        connection.bind(queue, exchange, "")
        connection.bind(second, exchange, "")
        connection.send(f"{exchange}/anything", b"everyone")
        assert _drain(connection, queue) == [b"everyone"]
        assert _drain(connection, second) == [b"everyone"]
    finally:
        connection.delete_exchange(exchange)
        connection.delete_queue(second)


@pytest.mark.needs("bind")  # not over RabbitMQ's AMQP 1.0 plugin
def test_bind_to_missing_exchange_is_not_found(connection: Connection, queue: str) -> None:
    with pytest.raises(NotFoundError):
        connection.bind(queue, _fresh("missing"), "key")


@pytest.mark.needs("!bind")
def test_management_the_broker_cannot_do_says_so(connection: Connection, queue: str) -> None:
    # Where the protocol offers no way (RabbitMQ's AMQP 1.0 plugin), the
    # adapter says so with UnsupportedError, and the connection stays usable.
    with pytest.raises(UnsupportedError):
        connection.bind(queue, "amq.direct", queue)
    with pytest.raises(UnsupportedError):
        connection.declare_exchange(Exchange(_fresh("ex"), "direct", durable=False))
    connection.send(queue, b"still usable")
    assert _drain(connection, queue) == [b"still usable"]


def test_reply_queue_reaches_its_reader(
    broker: Broker, connection: Connection, delete_queue: Callable[[Connection, str], None]
) -> None:
    # Adapters whose broker cannot expire queues give a queue that lives as
    # long as its reader (contract.ReplyQueues); the others a queue that expires.
    facade = ReconnectingConnection(broker)
    name = _fresh("gofer-test-reply")
    address, reader = facade.reply_queue(name, prefetch=5, expiration=60)
    try:
        connection.send(address, b"the answer")
        delivery = reader.get(timeout=5)
        assert delivery is not None
        assert delivery.body == b"the answer"
        reader.ack(delivery)
    finally:
        reader.close()
        facade.close()
        if address == name:
            delete_queue(connection, name)


# -- surviving trouble ------------------------------------------------------


@pytest.mark.slow
def test_idle_connection_survives_three_heartbeats(connect, queue_name: str) -> None:
    connection = connect(heartbeat=1)
    connection.declare_queue(Queue(queue_name, durable=False))
    time.sleep(3.5)
    assert connection.is_open
    connection.send(queue_name, b"still here")
    assert _drain(connection, queue_name) == [b"still here"]


@pytest.mark.slow
@pytest.mark.needs("network")
def test_reconnects_after_broker_drops_connections(
    broker: Broker, test_broker: TestBroker, queue_name: str
) -> None:
    if test_broker.control is None:
        pytest.skip(f"no control script for {test_broker.name}")
    resilient = ReconnectingConnection(broker, backoff=Backoff(initial=0.2, limit=30))
    try:
        resilient.declare_queue(Queue(queue_name))
        reader = resilient.reader(queue_name)
        resilient.send(queue_name, b"before")
        first = reader.get(timeout=5)
        assert first is not None
        reader.ack(first)
        generation = resilient.generation
        test_broker.run("drop-connections")
        resilient.send(queue_name, b"after")
        delivery = reader.get(timeout=10)
        assert delivery is not None
        assert delivery.body == b"after"
        reader.ack(delivery)
        assert resilient.generation > generation
    finally:
        resilient.close()


@pytest.mark.slow
@pytest.mark.needs("persistent")
def test_durable_message_survives_broker_restart(
    connect, test_broker: TestBroker, queue_name: str, delete_queue
) -> None:
    if test_broker.control is None:
        pytest.skip(f"no control script for {test_broker.name}")
    connection = connect()
    connection.declare_queue(Queue(queue_name, durable=True))
    connection.send(queue_name, b"kept", durable=True)
    connection.close()
    test_broker.run("restart")
    after = connect()
    try:
        assert _drain(after, queue_name, timeout=5) == [b"kept"]
    finally:
        delete_queue(after, queue_name)  # through 0-9-1 where the adapter cannot


@pytest.mark.needs("queue_expiry")
def test_queue_expires_when_unused(connection: Connection, queue_name: str) -> None:
    connection.declare_queue(Queue(queue_name, durable=False, expiration=1))
    # Polling with queue_exists would count as use and keep it alive.
    time.sleep(3)
    assert not connection.queue_exists(queue_name)


# RabbitMQ's AMQP 1.0 plugin never declares an exclusive queue.
@pytest.mark.needs("exclusive_queues")
def test_exclusive_queue_is_refused_to_other_connections(connect, queue_name: str) -> None:
    owner = connect()
    owner.declare_queue(Queue(queue_name, durable=False, exclusive=True))
    other = connect()
    with pytest.raises(AccessDeniedError):
        other.reader(queue_name)
    owner.close()  # the broker deletes the queue with its connection
    # (Broker-J closes `other` for trying; RabbitMQ only its channel.)
    assert not connect().queue_exists(queue_name)


@pytest.mark.needs("network")
def test_lost_connection_raises_connection_lost(
    connection: Connection, test_broker: TestBroker, queue: str
) -> None:
    if test_broker.control is None:
        pytest.skip(f"no control script for {test_broker.name}")
    reader = connection.reader(queue)
    test_broker.run("drop-connections")
    with pytest.raises(ConnectionLostError):
        _keep_reading(reader, seconds=10)
    assert not connection.is_open
    with pytest.raises(ConnectionLostError):
        connection.send(queue, b"after the drop")


# -- helpers ----------------------------------------------------------------


def _keep_reading(reader: Reader, seconds: float) -> None:
    """Read (and ack) for a while: the way to meet an error the broker sends later."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        delivery = reader.get(timeout=0.5)
        if delivery is not None:
            reader.ack(delivery)


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _silent_server() -> Iterator[int]:
    """A local port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def test_send_without_waiting_for_the_broker(broker: Broker, queue: str) -> None:
    # Status replies are sent this way: not confirmed, and a loss does no harm.
    facade = ReconnectingConnection(broker)
    try:
        for n in range(20):
            facade.send(queue, str(n).encode(), confirm=False)
        facade.send(_fresh("missing"), b"lost quietly", confirm=False)
        facade.send(queue, b"last")  # confirmed: everything before it has arrived
        reader = facade.reader(queue, prefetch=50)
        bodies = []
        while (delivery := reader.get(timeout=2)) is not None:
            bodies.append(delivery.body)
            reader.ack(delivery)
        assert bodies == [str(n).encode() for n in range(20)] + [b"last"]
    finally:
        facade.close()
