"""A broker connection that survives broker restarts: it reconnects, its readers resubscribe."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar, cast

from gofer.errors import ConnectionLostError, UnsupportedError
from gofer.messaging.adapter import contract
from gofer.messaging.adapter.model import Broker, Delivery, Exchange, Queue, QueueType
from gofer.messaging.adapter.registry import find
from gofer.messaging.connector import registered
from gofer.messaging.retry import Backoff, Throttled
from gofer.messaging.url import Url

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The default pacing of connection attempts: the first within a second of a
#: loss, then exponentially further apart up to a minute, each drawn at random
#: below its bound. Ten thousand agents thus come back over seconds, not at once.
RECONNECT = Backoff(initial=1.0, maximum=60.0, full_jitter=True)


class _Handle(NamedTuple):
    generation: int
    reader: contract.Reader
    delivery: Delivery


class Connection:
    """A connection to a broker, opened on first use and re-opened when lost.

    Every operation runs through :meth:`ensure`: a recoverable error (the
    adapter's ``recoverable``) drops the broken connection and runs the
    operation again on a new one. Several threads may share one
    ``Connection``, and reconnecting is the connection's own business: one
    attempt at a time, however many threads wait for it, paced by the
    ``reconnect`` back-off (full jitter, so that a fleet that lost its
    broker does not come back in step). A thread's own ``backoff`` only
    bounds how long it waits (``limit``, ``attempts``).

    When the URL names several brokers (the nodes of a cluster), the first
    connection goes to a random one (or the first, with ``Broker.shuffle``
    off), and each loss or failed attempt moves on to the next.

    Example::

        connection = Connection("amqp://h1,amqp://h2", backoff=Backoff(limit=60))
        connection.send("agent-123", b"...", ttl=30)
        reader = connection.reader("replies")
        delivery = reader.get(timeout=10)
    """

    def __init__(
        self,
        broker: Broker | Url | str,
        *,
        backoff: Backoff | None = None,
        adapter: contract.Adapter | None = None,
        reconnect: Backoff | None = None,
    ) -> None:
        """Args:
        broker: the broker settings, or its URL.
        backoff: bounds of each operation's retries (its ``limit`` and
            ``attempts``); by default an operation waits for the broker
            for ever.
        adapter: the driver; by default the one the URL names.
        reconnect: the pacing of connection attempts; by default
            ``RECONNECT`` (the first within a second of a loss, then up to
            a minute apart).
        """
        if isinstance(broker, Broker):
            self.broker = broker
        else:  # a URL: a Connector registered for it gives its TLS files and heartbeat
            found = registered(broker)
            self.broker = found.broker(broker) if found is not None else Broker.of(broker)
        self.adapter = adapter or find(self.broker.url.adapter)
        self.backoff = backoff or Backoff()
        self.reconnect = reconnect or RECONNECT
        self._brokers = self.broker.each()
        shuffled = self.broker.shuffle and len(self._brokers) > 1
        self._next = random.randrange(len(self._brokers)) if shuffled else 0  # noqa: S311
        self._changed = threading.Condition()
        self._current: contract.Connection | None = None
        self._at: Broker | None = None  # where _current goes
        self._generation = 0
        self._connecting = False
        self._failures = 0  # failed attempts since the last connection
        self._attempts = 0  # attempts ever made, to tell waiters one failed
        self._not_before = 0.0  # no attempt before this (monotonic)
        self._error: BaseException | None = None  # the last attempt's error
        self._down_since: float | None = None  # wall clock: lost, or first failed, at
        self._warn = Throttled(log)

    @property
    def generation(self) -> int:
        """How many physical connections were opened so far."""
        return self._generation

    @property
    def connected_to(self) -> Broker | None:
        """The broker of the open connection; None while there is none."""
        with self._changed:
            current = self._current
            return self._at if current is not None and current.is_open else None

    @property
    def down_since(self) -> float | None:
        """When (``time.time()``) the broker was lost or first failed to answer; None if up.

        None too before the first attempt, and once a connection opens again.
        """
        return self._down_since

    def open(self) -> None:
        """Connect now (with retries) rather than on first use."""
        self.ensure(lambda connection: None)

    def close(self) -> None:
        """Close the physical connection; a later use would open a new one."""
        with self._changed:
            current, self._current = self._current, None
            self._changed.notify_all()
        if current is not None:
            current.close()

    def ensure(
        self,
        operation: Callable[[contract.Connection], T],
        what: str = "",
        backoff: Backoff | None = None,
    ) -> T:
        """Run ``operation`` on an open connection, reconnecting on recoverable errors.

        Raises:
            The last recoverable error once ``backoff`` (default: the
            connection's) gives up, or any other error of the operation at once.
        """
        bounds = backoff or self.backoff
        deadline: float | None = None
        failures = 0
        while True:
            generation = -1
            try:
                connection, generation = self._connection(deadline)
                return operation(connection)
            except self.adapter.recoverable as exc:
                if generation >= 0:
                    self._lost(generation, exc, what)
                failures += 1
                now = time.monotonic()
                if deadline is None and bounds.limit is not None:
                    deadline = now + bounds.limit
                out_of_time = deadline is not None and now >= deadline
                if out_of_time or (bounds.attempts is not None and failures > bounds.attempts):
                    log.error("%s failed, giving up: %s", what or f"broker {self.broker}", exc)
                    raise

    def _connection(self, deadline: float | None) -> tuple[contract.Connection, int]:
        """The open connection; connects (one thread at a time, paced) when there is none.

        Raises:
            The error of a connection attempt, made here or by another
            thread while this one waited; or the last one, at ``deadline``.
        """
        with self._changed:
            seen = self._attempts
            while True:
                current = self._current
                if current is not None and current.is_open:
                    return current, self._generation
                if current is not None:  # found closed: the broker went away
                    self._drop_locked()
                    with contextlib.suppress(Exception):
                        current.close()  # closed already: this only frees what it holds
                    continue
                if self._attempts != seen and self._error is not None:
                    raise self._error  # the attempt this thread waited on failed
                now = time.monotonic()
                wait = None if self._connecting else self._not_before - now
                if wait is not None and wait <= 0:
                    self._connecting = True
                    broker = self._brokers[self._next]
                    break
                if deadline is not None:
                    if deadline <= now:
                        raise self._error or ConnectionLostError(f"not connected to {self.broker}")
                    wait = deadline - now if wait is None else min(wait, deadline - now)
                self._changed.wait(wait)
        return self._attempt(broker)

    def _attempt(self, broker: Broker) -> tuple[contract.Connection, int]:
        """One connection attempt to ``broker`` (this thread holds the ``_connecting`` turn)."""
        try:
            connection = self.adapter.connect(broker)
        except BaseException as exc:
            with self._changed:
                self._connecting = False
                self._attempts += 1
                self._error = exc
                if isinstance(exc, self.adapter.recoverable):
                    self._down_since = self._down_since or time.time()
                    bound = self.reconnect.bound(self._failures)
                    delay = self.reconnect.delay(self._failures)
                    self._failures += 1
                    self._not_before = time.monotonic() + delay
                    self._advance()
                    # The bound, not the draw, so that repeats read alike (and are throttled).
                    self._warn.warning(
                        "cannot connect to %s: %s; next attempt within %gs", broker, exc, bound
                    )
                    log.debug("next attempt, to %s, in %.1fs", self._brokers[self._next], delay)
                self._changed.notify_all()
            raise
        with self._changed:
            self._connecting = False
            self._attempts += 1
            self._error = None
            self._failures = 0
            self._down_since = None
            self._current, self._at = connection, broker
            self._generation += 1
            if self._generation > 1:
                log.info("reconnected to %s", broker)
            self._changed.notify_all()
            return connection, self._generation

    def _lost(self, generation: int, exc: BaseException, what: str) -> None:
        """Drop the connection of ``generation`` unless somebody replaced it already."""
        with self._changed:
            current = self._current
            if current is None or self._generation != generation:
                return
            self._warn.warning(
                "dropping the connection to %s%s: %s", self._at, f" ({what})" if what else "", exc
            )
            self._drop_locked()
        with contextlib.suppress(Exception):
            current.close()  # lost already: closing only frees what it holds

    def _drop_locked(self) -> None:
        """Forget the current connection (lock held); the next attempt comes after a jitter."""
        self._current = None
        self._down_since = self._down_since or time.time()
        self._not_before = time.monotonic() + self.reconnect.delay(0)
        self._advance()
        self._changed.notify_all()

    def _advance(self) -> None:
        """Move on to the next broker of the URL (failover)."""
        self._next = (self._next + 1) % len(self._brokers)

    # -- the contract's operations, each with reconnects -------------------

    def send(
        self,
        address: str,
        body: bytes,
        *,
        ttl: float | None = None,
        durable: bool = True,
        confirm: bool = True,
        backoff: Backoff | None = None,
    ) -> None:
        """Send a message (see ``contract.Connection.send``), reconnecting as needed.

        Args:
            confirm: False to return without waiting for the broker, where the
                adapter can (the loss of such a message must do no harm).
            backoff: bounds for this send's retries instead of the connection's.
        """

        def operation(connection: contract.Connection) -> None:
            if confirm or not _takes_confirm(type(connection)):
                connection.send(address, body, ttl=ttl, durable=durable)
            else:
                send: Callable[..., None] = connection.send
                send(address, body, ttl=ttl, durable=durable, confirm=False)

        self.ensure(operation, f"send to {address}", backoff)

    def reader(self, queue: str, *, prefetch: int = 1) -> Reader:
        """A reader of ``queue`` that resubscribes after reconnects."""
        return Reader(self, queue, prefetch)

    def reply_queue(
        self,
        name: str,
        *,
        prefetch: int = 1,
        expiration: float = 600.0,
        backoff: Backoff | None = None,
        queue_type: QueueType = "classic",
    ) -> tuple[str, Reader]:
        """A queue for this process's replies: the address to give out, and its reader.

        With an adapter that offers ``contract.ReplyQueues`` the queue lives
        as long as its reader; after a reconnect the reader makes it again at
        the same address (replies sent in between are lost). Otherwise it is
        the queue ``name`` (of ``queue_type``; classic where the broker
        has no other), which the broker deletes ``expiration`` seconds after
        its last use.
        """
        address = self.ensure(
            lambda c: c.reply_address(name) if isinstance(c, contract.ReplyQueues) else None,
            backoff=backoff,
        )
        if address is None:
            # Durable, so that a broker restart keeps it (and the results in
            # it) for the caller; it expires once the caller is gone.
            queue = Queue(name, durable=True, expiration=expiration, queue_type=queue_type)
            try:
                self.ensure(lambda c: c.declare_queue(queue), backoff=backoff)
            except UnsupportedError as exc:
                log.info("reply queue %s: %s; a classic one instead", name, exc)
                queue = Queue(name, durable=True, expiration=expiration)
                self.ensure(lambda c: c.declare_queue(queue), backoff=backoff)
            return name, self.reader(name, prefetch=prefetch)

        def open_reader(connection: contract.Connection) -> contract.Reader:
            return cast(contract.ReplyQueues, connection).reply_reader(name, prefetch=prefetch)

        reader = Reader(self, name, prefetch, open_reader)
        reader.open()  # the queue exists from now on: replies may be sent to it
        return address, reader

    def declare_queue(self, queue: Queue) -> None:
        self.ensure(lambda c: c.declare_queue(queue))

    def delete_queue(self, name: str) -> None:
        self.ensure(lambda c: c.delete_queue(name))

    def purge_queue(self, name: str) -> int:
        return self.ensure(lambda c: c.purge_queue(name))

    def queue_exists(self, name: str) -> bool:
        return self.ensure(lambda c: c.queue_exists(name))

    def declare_exchange(self, exchange: Exchange) -> None:
        self.ensure(lambda c: c.declare_exchange(exchange))

    def delete_exchange(self, name: str) -> None:
        self.ensure(lambda c: c.delete_exchange(name))

    def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        self.ensure(lambda c: c.bind(queue, exchange, routing_key))

    def unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        self.ensure(lambda c: c.unbind(queue, exchange, routing_key))


@functools.lru_cache(maxsize=32)
@functools.cache
def _takes_confirm(connection_class: type) -> bool:
    """True when an adapter's ``send`` takes the optional ``confirm`` keyword (once per class)."""
    try:
        return "confirm" in inspect.signature(connection_class.send).parameters  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return False


class Reader:
    """Reads a queue through a :class:`Connection`, subscribing again after each reconnect.

    A delivery received before a reconnect can no longer be acknowledged; the
    broker redelivers it (``redelivered`` is then set), so ``ack`` of such a
    delivery is logged and ignored.
    """

    def __init__(
        self,
        connection: Connection,
        queue: str,
        prefetch: int,
        open_reader: Callable[[contract.Connection], contract.Reader] | None = None,
    ) -> None:
        """Args:
        connection: the reconnecting connection.
        queue: the queue's name.
        prefetch: the most unacknowledged messages.
        open_reader: opens the adapter's reader on a new connection
            (default: ``connection.reader(queue, prefetch=prefetch)``).
        """
        self.connection = connection
        self.queue = queue
        self.prefetch = prefetch
        self._open_reader = open_reader or (lambda c: c.reader(queue, prefetch=prefetch))
        self._reader: contract.Reader | None = None
        self._generation = -1
        self._lock = threading.Lock()

    def _current(self, connection: contract.Connection) -> contract.Reader:
        with self._lock:
            generation = self.connection.generation
            if self._reader is None or self._generation != generation:
                self._reader = self._open_reader(connection)
                self._generation = generation
            return self._reader

    def open(self) -> None:
        """Subscribe now rather than at the first :meth:`get`."""
        self.connection.ensure(self._current, f"read {self.queue}")

    def get(self, timeout: float | None = None) -> Delivery | None:
        """The next message, or None after ``timeout`` seconds; see ``contract.Reader.get``."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def attempt(connection: contract.Connection) -> Delivery | None:
            reader = self._current(connection)
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            delivery = reader.get(remaining)
            if delivery is None:
                return None
            handle = _Handle(self._generation, reader, delivery)
            return Delivery(delivery.body, handle, delivery.redelivered)

        return self.connection.ensure(attempt, f"read {self.queue}")

    def ack(self, delivery: Delivery) -> None:
        """Acknowledge a delivery of this reader."""
        self._settle(delivery, lambda reader, inner: reader.ack(inner))

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge deliveries of this reader together (see ``contract.Reader.ack_many``)."""
        by_reader: dict[int, tuple[contract.Reader, list[Delivery]]] = {}
        for delivery in deliveries:
            current = self._current_handle(delivery)
            if current is not None:
                reader, inner = current
                by_reader.setdefault(id(reader), (reader, []))[1].append(inner)
        for reader, inners in by_reader.values():
            self._settled(functools.partial(reader.ack_many, inners))

    def reject(self, delivery: Delivery, requeue: bool = False) -> None:
        """Reject a delivery of this reader, requeueing it if asked."""
        self._settle(delivery, lambda reader, inner: reader.reject(inner, requeue))

    def _settle(
        self, delivery: Delivery, settle: Callable[[contract.Reader, Delivery], None]
    ) -> None:
        current = self._current_handle(delivery)
        if current is not None:
            reader, inner = current
            self._settled(lambda: settle(reader, inner))

    def _current_handle(self, delivery: Delivery) -> tuple[contract.Reader, Delivery] | None:
        """The adapter's reader and delivery behind ``delivery``; None (logged) if reconnected."""
        if not isinstance(delivery.tag, _Handle):
            raise TypeError(f"not a delivery of the reader of {self.queue!r}")
        generation, reader, inner = delivery.tag
        if generation != self.connection.generation:
            log.warning(
                "message of %r arrived before a reconnect; the broker redelivers it", self.queue
            )
            return None
        return reader, inner

    def _settled(self, settle: Callable[[], None]) -> None:
        try:
            settle()
        except ConnectionLostError as exc:
            log.warning(
                "cannot settle message of %r: %s; the broker redelivers it", self.queue, exc
            )

    def close(self) -> None:
        """Stop consuming."""
        with self._lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(ConnectionLostError):
                reader.close()
