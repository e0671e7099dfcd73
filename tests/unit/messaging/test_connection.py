"""The reconnecting connection: one paced reconnect loop, failover across brokers.

The adapter here is a stand-in whose brokers are up or down at the test's
word: these tests are about the connection's own decisions (who connects,
when, and where to), not about any broker. Adapters are proven against
real brokers by the contract suite.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from gofer.errors import BrokerUnavailableError, ConnectError, ConnectionLostError
from gofer.messaging.adapter.model import Broker
from gofer.messaging.connection import Connection
from gofer.messaging.retry import Backoff, Throttled

FAST = Backoff(initial=0.01, maximum=0.02, full_jitter=True)


class Link:
    """An open connection to a stand-in broker."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.is_open = True

    def close(self) -> None:
        self.is_open = False


class Brokers:
    """A stand-in adapter: ``down`` hosts refuse connections; records every attempt."""

    name = "standin"
    provides = ()
    recoverable = (BrokerUnavailableError,)

    def __init__(self, *down: str) -> None:
        self.down = set(down)
        self.attempts: list[str] = []
        self.concurrent = 0
        self.most_concurrent = 0
        self._lock = threading.Lock()

    def connect(self, broker: Broker) -> Any:
        with self._lock:
            self.attempts.append(broker.url.host)
            self.concurrent += 1
            self.most_concurrent = max(self.most_concurrent, self.concurrent)
        try:
            threading.Event().wait(0.005)  # long enough for others to pile up
            if broker.url.host in self.down:
                raise ConnectError(f"{broker.url.host} refused the connection")
            return Link(broker.url.host)
        finally:
            with self._lock:
                self.concurrent -= 1


def connection(url: str, adapter: Brokers, *, shuffle: bool = False, **kw: Any) -> Connection:
    return Connection(
        Broker.of(url, shuffle=shuffle), adapter=adapter, reconnect=kw.pop("reconnect", FAST), **kw
    )


def test_threads_that_share_a_dead_broker_share_one_reconnect_loop() -> None:
    brokers = Brokers("h1")
    shared = connection("amqp://h1", brokers)
    failures: list[BaseException] = []

    def call() -> None:
        try:
            shared.ensure(lambda c: None, backoff=Backoff(attempts=3))
        except ConnectError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert len(failures) == 5  # every thread was told, with the broker's own error
    assert brokers.most_concurrent == 1
    # Each thread gives up after 4 failed attempts; they saw the same attempts,
    # so there were about 4 in all, not 5 x 4.
    assert len(brokers.attempts) <= 6


def test_the_given_order_is_kept_when_shuffle_is_off() -> None:
    brokers = Brokers("h1", "h2")
    shared = connection("amqp://h1,amqp://h2,amqp://h3", brokers)

    shared.open()

    assert brokers.attempts == ["h1", "h2", "h3"]
    assert shared.connected_to is not None
    assert shared.connected_to.url.host == "h3"


def test_a_lost_connection_moves_to_the_next_broker() -> None:
    brokers = Brokers()
    shared = connection("amqp://h1,amqp://h2", brokers)
    seen: list[str] = []

    def operation(link: Link) -> None:
        seen.append(link.host)
        if link.host == "h1":
            brokers.down.add("h1")
            link.close()
            raise ConnectionLostError("h1 went away")

    shared.ensure(operation)

    assert seen == ["h1", "h2"]
    assert shared.generation == 2


def test_shuffled_connections_spread_over_the_brokers() -> None:
    first = set()
    for _ in range(60):
        brokers = Brokers()
        connection("amqp://h1,amqp://h2,amqp://h3", brokers, shuffle=True).open()
        first.add(brokers.attempts[0])
    assert first == {"h1", "h2", "h3"}


def test_an_operation_with_a_limit_gives_up_with_the_brokers_error() -> None:
    brokers = Brokers("h1")
    shared = connection("amqp://h1", brokers)

    with pytest.raises(ConnectError, match="h1 refused"):
        shared.ensure(lambda c: None, backoff=Backoff(limit=0.1))
    assert len(brokers.attempts) >= 2  # it did retry within its limit


def test_connection_attempts_follow_the_reconnect_pacing() -> None:
    brokers = Brokers("h1")
    slow = Backoff(initial=0.2, maximum=0.2)  # half jitter: 0.1 to 0.2 s apart
    shared = connection("amqp://h1", brokers, reconnect=slow)

    with pytest.raises(ConnectError):
        shared.ensure(lambda c: None, backoff=Backoff(limit=0.5))

    assert 3 <= len(brokers.attempts) <= 6  # not a busy loop, nor a stall


def test_repeated_warnings_are_logged_once_with_a_count() -> None:
    now = [0.0]
    logger = logging.getLogger("gofer.test.throttled")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger.addHandler(Keep())
    logger.propagate = False
    warn = Throttled(logger, interval=60, clock=lambda: now[0])
    for _ in range(10):
        warn.warning("cannot connect to %s", "h1")
        now[0] += 1
    warn.warning("another thing")
    now[0] = 61
    warn.warning("cannot connect to %s", "h1")

    assert records == [
        "cannot connect to h1",
        "another thing",
        "cannot connect to h1 (and 9 more like it in the last 61s)",
    ]
