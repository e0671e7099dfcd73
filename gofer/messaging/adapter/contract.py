"""The adapter contract: what gofer needs from an AMQP driver, and nothing more.

An adapter is an object with a ``name``, the names it ``provides``, the
errors worth retrying (``recoverable``) and a ``connect()`` that opens one
:class:`Connection`. Everything it raises is from :mod:`gofer.errors`: driver
exceptions are translated at the adapter's edge and chained (``from``).

Usage::

    from gofer.messaging.adapter.model import Broker, Queue
    from gofer.messaging.adapter.registry import find

    broker = Broker.of("amqp://guest:guest@localhost")
    connection = find(broker.url.adapter).connect(broker)
    try:
        connection.declare_queue(Queue("jobs"))
        connection.send("jobs", b'{"hello": 1}', ttl=30)
        reader = connection.reader("jobs", prefetch=4)
        delivery = reader.get(timeout=5)
        if delivery is not None:
            reader.ack(delivery)
    finally:
        connection.close()

A connection is one physical broker connection. Once it is lost it stays
lost: every call raises :class:`~gofer.errors.ConnectionLostError` and the
owner opens a new one (:class:`gofer.messaging.connection.Connection` does
this with back-off). Each adapter documents its threading rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from gofer.messaging.adapter.model import Broker, Delivery, Exchange, Queue


@runtime_checkable
class Reader(Protocol):
    """Consumes one queue with a bounded number of unacknowledged messages."""

    def get(self, timeout: float | None = None) -> Delivery | None:
        """The next message, or None when none arrives within ``timeout`` seconds.

        Raises:
            NotFoundError: the queue does not exist (or was deleted).
            ConnectionLostError: the connection broke.
        """

    def ack(self, delivery: Delivery) -> None:
        """Acknowledge: the broker forgets the message."""

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge several deliveries, in as few frames as the protocol allows.

        The same as :meth:`ack` on each, in one hand-off to the driver: AMQP
        0-9-1 needs one ``basic.ack`` when they are every unsettled delivery
        up to the last, 0-10 one ``message.accept`` of their ranges.
        """

    def reject(self, delivery: Delivery, requeue: bool = False) -> None:
        """Reject: the broker drops (or dead-letters) the message, or requeues it."""

    def close(self) -> None:
        """Stop consuming; unacknowledged messages go back to the queue."""


@runtime_checkable
class Connection(Protocol):
    """One open broker connection; see the module docstring."""

    @property
    def is_open(self) -> bool:
        """False once closed or lost."""

    def close(self) -> None:
        """Close; safe to call twice and on a lost connection."""

    def send(
        self, address: str, body: bytes, *, ttl: float | None = None, durable: bool = True
    ) -> None:
        """Send one message and return once the broker has taken it.

        Args:
            address: ``queue`` or ``exchange/routing-key``.
            body: the content.
            ttl: seconds after which the broker discards it; None keeps it.
            durable: the broker keeps it across its own restart.

        An adapter may also take ``confirm=False``: publish and return without
        waiting for the broker (for messages whose loss does no harm, such as
        status replies); its failures are then only logged. Callers go
        through :meth:`gofer.messaging.connection.Connection.send`, which
        passes it only to adapters that take it.

        Raises:
            NotFoundError: the exchange does not exist, or no queue took the message.
        """

    def reader(self, queue: str, *, prefetch: int = 1) -> Reader:
        """Start consuming ``queue`` with at most ``prefetch`` unacknowledged messages.

        Raises:
            NotFoundError: the queue does not exist.
        """

    def declare_queue(self, queue: Queue) -> None:
        """Create the queue if it is missing (no-op when it exists alike)."""

    def delete_queue(self, name: str) -> None:
        """Delete the queue; a missing queue is not an error."""

    def purge_queue(self, name: str) -> int:
        """Drop every ready message in the queue and return how many went.

        Raises:
            NotFoundError: the queue does not exist.
        """

    def queue_exists(self, name: str) -> bool:
        """True when the queue exists."""

    def declare_exchange(self, exchange: Exchange) -> None:
        """Create the exchange if it is missing."""

    def delete_exchange(self, name: str) -> None:
        """Delete the exchange; a missing exchange is not an error."""

    def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        """Route messages sent to ``exchange`` with ``routing_key`` into ``queue``.

        Raises:
            NotFoundError: the queue or the exchange does not exist.
        """

    def unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        """Remove a binding made by :meth:`bind`."""


@runtime_checkable
class ReplyQueues(Protocol):
    """Optional: reply queues that live as long as their reader, at an address that stays.

    An adapter offers this when its broker cannot make a queue expire once
    unused (RabbitMQ's AMQP 1.0 plugin): a caller's reply queue must not
    outlive the caller. Callers use
    :meth:`gofer.messaging.connection.Connection.reply_queue`, which falls
    back to a non-durable queue that expires when the adapter lacks this.
    """

    def reply_address(self, name: str) -> str | None:
        """The address reaching reply queue ``name`` (the same after reconnects); None declines."""

    def reply_reader(self, name: str, *, prefetch: int = 1) -> Reader:
        """Make reply queue ``name`` and read it; the broker removes it when the reader goes."""


@runtime_checkable
class Adapter(Protocol):
    """A driver for one AMQP protocol version, found through the registry.

    Attributes:
        name: the adapter's own name, used as a URL prefix (``amqp``).
        provides: other names it answers to (``amqp-0-9-1``, ``rabbitmq``).
        recoverable: the errors after which reconnecting is worth trying.
    """

    name: str
    provides: tuple[str, ...]
    recoverable: tuple[type[BaseException], ...]

    def connect(self, broker: Broker) -> Connection:
        """Open a connection, ready to use.

        Raises:
            ConnectError: the broker could not be reached within the broker's
                connect timeout.
            AuthenticationError: the credentials were refused.
            TLSError: the TLS handshake failed.
        """
