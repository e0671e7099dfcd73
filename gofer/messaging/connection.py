"""A broker connection that survives broker restarts: it reconnects, its readers resubscribe."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar, cast

from gofer.errors import ConnectionLostError
from gofer.messaging.adapter import contract
from gofer.messaging.adapter.model import Broker, Delivery, Exchange, Queue
from gofer.messaging.adapter.registry import find
from gofer.messaging.connector import registered
from gofer.messaging.retry import Backoff, retry
from gofer.messaging.url import Url

log = logging.getLogger(__name__)

T = TypeVar("T")


class _Handle(NamedTuple):
    generation: int
    reader: contract.Reader
    delivery: Delivery


class Connection:
    """A connection to one broker, opened on first use and re-opened when lost.

    Every operation runs through :meth:`ensure`: a recoverable error (the
    adapter's ``recoverable``) closes the broken connection, waits according
    to the back-off, opens a new one and runs the operation again. Several
    threads may share one ``Connection``; a loss seen by many of them leads to
    one reconnect.

    Example::

        connection = Connection("amqp://localhost", backoff=Backoff(limit=60))
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
    ) -> None:
        if isinstance(broker, Broker):
            self.broker = broker
        else:  # a URL: a Connector registered for it gives its TLS files and heartbeat
            found = registered(broker)
            self.broker = found.broker(broker) if found is not None else Broker.of(broker)
        self.adapter = adapter or find(self.broker.url.adapter)
        self.backoff = backoff or Backoff()
        self._lock = threading.Lock()
        self._current: contract.Connection | None = None
        self._generation = 0
        self._closed = False

    @property
    def generation(self) -> int:
        """How many physical connections were opened so far."""
        return self._generation

    def open(self) -> None:
        """Connect now (with retries) rather than on first use."""
        self.ensure(lambda connection: None)

    def close(self) -> None:
        """Close the physical connection; a later use would open a new one."""
        with self._lock:
            self._closed = True
            current, self._current = self._current, None
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
            The last recoverable error once the back-off gives up, or any
            other error of the operation at once.
        """
        seen = [self._generation]

        def attempt() -> T:
            connection, seen[0] = self._connection()
            return operation(connection)

        def reset() -> None:
            self._drop(seen[0])

        return retry(
            attempt,
            self.adapter.recoverable,
            backoff or self.backoff,
            what=what or f"broker {self.broker}",
            before_retry=reset,
        )

    def _connection(self) -> tuple[contract.Connection, int]:
        with self._lock:
            if self._current is None or not self._current.is_open:
                if self._current is not None:
                    self._current.close()
                self._closed = False
                self._current = self.adapter.connect(self.broker)
                self._generation += 1
                if self._generation > 1:
                    log.info("reconnected to %s", self.broker)
            return self._current, self._generation

    def _drop(self, generation: int) -> None:
        """Close the connection of ``generation`` unless somebody replaced it already."""
        with self._lock:
            if self._current is not None and self._generation == generation:
                current, self._current = self._current, None
            else:
                return
        current.close()

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
    ) -> tuple[str, Reader]:
        """A queue for this process's replies: the address to give out, and its reader.

        With an adapter that offers ``contract.ReplyQueues`` the queue lives
        as long as its reader; after a reconnect the reader makes it again at
        the same address (replies sent in between are lost). Otherwise it is
        the non-durable queue ``name``, which the broker deletes
        ``expiration`` seconds after its last use.
        """
        address = self.ensure(
            lambda c: c.reply_address(name) if isinstance(c, contract.ReplyQueues) else None,
            backoff=backoff,
        )
        if address is None:
            # Durable, so that a broker restart keeps it (and the results in
            # it) for the caller; it expires once the caller is gone.
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
