"""Queues, exchanges and a producer as callers of the existing gofer use them.

The existing gofer's callers manage their queues with these objects, e.g.
the reply queue of asynchronous calls::

    from gofer.messaging import Queue

    queue = Queue("tasks", url="amqp://localhost")
    queue.declare()
    ...
    queue.purge()
    queue.delete()

Attributes are set before :meth:`Queue.declare` (``durable``,
``auto_delete``, ``exclusive``, ``expiration`` in seconds, 0 for none). Each
operation opens a connection to ``url`` (the one given to the method, or
the object's), does its work and closes it; an unreachable broker raises
:class:`~gofer.errors.BrokerUnavailableError` after ``CONNECT_LIMIT``
seconds of retries, never hangs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from gofer.messaging import auth
from gofer.messaging.adapter.model import Exchange as ExchangeSettings
from gofer.messaging.adapter.model import Queue as QueueSettings
from gofer.messaging.connection import Connection
from gofer.messaging.document import VERSION, Document
from gofer.messaging.retry import Backoff

#: Seconds an operation retries an unreachable broker before it gives up.
CONNECT_LIMIT = 10.0
#: The URL used when neither the method nor the object names one.
DEFAULT_URL = "amqp://localhost"
#: The exchange type of the existing gofer's default.
DIRECT = "direct"

T = TypeVar("T")


def _with_connection(url: str | None, work: Callable[[Connection], T]) -> T:
    connection = Connection(
        url or DEFAULT_URL, backoff=Backoff(initial=0.5, maximum=2.0, limit=CONNECT_LIMIT)
    )
    try:
        return work(connection)
    finally:
        connection.close()


class Queue:
    """A queue on a broker, declared, deleted and purged by its owner.

    Args:
        name: the queue's name; a random one when None.
        url: the broker URL its operations use when they are given none.
    """

    def __init__(self, name: str | None = None, url: str | None = None) -> None:
        self.name = name or str(uuid.uuid4())
        self.url = url
        self.durable = True
        self.auto_delete = False
        self.exclusive = False
        #: Seconds the queue may stay unused before the broker deletes it; 0: never.
        self.expiration: float = 0

    def declare(self, url: str | None = None) -> None:
        """Create the queue (nothing happens when it exists with the same settings)."""
        settings = QueueSettings(
            self.name,
            durable=self.durable,
            auto_delete=self.auto_delete,
            exclusive=self.exclusive,
            expiration=self.expiration or None,
        )
        _with_connection(url or self.url, lambda c: c.declare_queue(settings))

    def delete(self, url: str | None = None) -> None:
        """Delete the queue and the messages in it."""
        _with_connection(url or self.url, lambda c: c.delete_queue(self.name))

    def purge(self, url: str | None = None) -> int:
        """Drop the messages in the queue; how many there were."""
        return _with_connection(url or self.url, lambda c: c.purge_queue(self.name))

    def address(self) -> str:
        """The address callers send to (``queue``)."""
        return self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Queue) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Queue({self.name!r}, url={self.url!r})"


class Exchange:
    """An exchange on a broker, declared, deleted, and bound to queues by its owner.

    Args:
        name: the exchange's name.
        policy: its type: ``direct`` (the default), ``topic`` or ``fanout``.
        url: the broker URL its operations use when they are given none.
    """

    def __init__(self, name: str, policy: str = DIRECT, url: str | None = None) -> None:
        self.name = name
        self.policy = policy
        self.url = url
        self.durable = True
        self.auto_delete = False

    def declare(self, url: str | None = None) -> None:
        """Create the exchange (nothing happens when it exists with the same settings)."""
        settings = ExchangeSettings(
            self.name,
            type=self.policy,  # type: ignore[arg-type]
            durable=self.durable,
            auto_delete=self.auto_delete,
        )
        _with_connection(url or self.url, lambda c: c.declare_exchange(settings))

    def delete(self, url: str | None = None) -> None:
        """Delete the exchange."""
        _with_connection(url or self.url, lambda c: c.delete_exchange(self.name))

    def bind(self, queue: Queue | str, url: str | None = None) -> None:
        """Route messages sent to ``exchange/<queue name>`` into the queue."""
        name = _name(queue)
        _with_connection(url or self.url, lambda c: c.bind(name, self.name, name))

    def unbind(self, queue: Queue | str, url: str | None = None) -> None:
        """Stop that routing."""
        name = _name(queue)
        _with_connection(url or self.url, lambda c: c.unbind(name, self.name, name))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Exchange) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Exchange({self.name!r}, policy={self.policy!r}, url={self.url!r})"


def _name(queue: Any) -> str:
    return queue.name if isinstance(queue, Queue) else str(queue)


class Producer:
    """Sends gofer documents to addresses (the existing gofer's ``Producer``).

    Example::

        with Producer("amqp://localhost") as producer:
            sn = producer.send("agent-1", ttl=30, note="hello")

    Args:
        url: the broker URL.

    Attributes:
        authenticator: signs what is sent, when set.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url or DEFAULT_URL
        self.authenticator: auth.Authenticator | None = None
        self._connection: Connection | None = None

    def open(self) -> None:
        """Connect (a later :meth:`send` would, too)."""
        if self._connection is None:
            self._connection = Connection(self.url)
        self._connection.open()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def send(self, address: str, ttl: float | None = None, **body: Any) -> str:
        """Send a document made of ``body`` to ``address``; its serial number.

        The document carries ``sn``, ``version`` and ``routing`` as every gofer
        message does; ``body`` adds the rest.
        """
        if self._connection is None:
            self._connection = Connection(self.url)
        sn = str(uuid.uuid4())
        document = Document(sn=sn, version=VERSION, routing=[None, address], **body)
        self._connection.send(address, auth.sign(self.authenticator, document), ttl=ttl)
        return sn

    def broadcast(self, addresses: list[str], **body: Any) -> list[str]:
        """Send the same body to several addresses; their serial numbers."""
        return [self.send(address, **body) for address in addresses]

    def __enter__(self) -> Producer:
        self.open()
        return self

    def __exit__(self, *unused: object) -> None:
        self.close()


__all__ = ["Exchange", "Producer", "Queue"]
