"""Queues and exchanges as callers of the existing gofer manage them.

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

from gofer.messaging.adapter.model import Exchange as ExchangeSettings
from gofer.messaging.adapter.model import Queue as QueueSettings
from gofer.messaging.connection import Connection
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


class Node:
    """A queue or an exchange: something on a broker with a name.

    Args:
        name: its name.
        url: the broker URL its operations use when they are given none.
    """

    def __init__(self, name: str, url: str | None = None) -> None:
        self.name = name
        self.url = url

    @property
    def address(self) -> str:
        """The address messages are sent to."""
        return self.name

    def declare(self, url: str | None = None) -> None:
        """Create it on the broker."""
        raise NotImplementedError

    def delete(self, url: str | None = None) -> None:
        """Remove it from the broker."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        """Queues are equal by name, and so are exchanges."""
        related = isinstance(other, type(self)) or isinstance(self, type(other))
        return related and isinstance(other, Node) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name


class Queue(Node):
    """A queue on a broker, declared, deleted and purged by its owner.

    Args:
        name: the queue's name; a random one when None.
        url: the broker URL its operations use when they are given none.
    """

    def __init__(self, name: str | None = None, url: str | None = None) -> None:
        super().__init__(name or str(uuid.uuid4()), url)
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

    def __repr__(self) -> str:
        return f"Queue({self.name!r}, url={self.url!r})"


class Exchange(Node):
    """An exchange on a broker, declared, deleted, and bound to queues by its owner.

    Args:
        name: the exchange's name.
        policy: its type: ``direct`` (the default), ``topic`` or ``fanout``.
        url: the broker URL its operations use when they are given none.
    """

    def __init__(self, name: str, policy: str = DIRECT, url: str | None = None) -> None:
        super().__init__(name, url)
        self.policy = policy
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

    def __repr__(self) -> str:
        return f"Exchange({self.name!r}, policy={self.policy!r}, url={self.url!r})"


def _name(queue: Any) -> str:
    return queue.name if isinstance(queue, Queue) else str(queue)


__all__ = ["DIRECT", "Exchange", "Node", "Queue"]
