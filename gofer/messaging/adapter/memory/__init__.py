"""An in-memory broker behind the adapter contract: ``memory://NAME`` URLs, for tests.

Every connection of the process to ``memory://NAME`` (or
``memory://NAME/vhost``) reaches the same broker, made on first use: a
plugin served by an in-process goferd and the ``Agent`` calling it meet
there without RabbitMQ. It keeps the contract's rules (a send to a missing
queue fails, prefetch bounds what a reader holds, a requeued or abandoned
message comes back marked redelivered, exclusive queues go with their
connection) and nothing a broker adds (persistence, clustering, limits).

::

    from gofer.messaging.adapter import memory

    memory.reset()                       # forget every in-memory broker (between tests)
    memory.broker("memory://test").queues()   # what is there, for assertions

Thread-safe: each broker has one lock and one condition; any thread may use
any connection.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import threading
import time
from collections.abc import Sequence
from typing import Any

from gofer.errors import (
    AccessDeniedError,
    BrokerUnavailableError,
    ConnectionLostError,
    MessagingError,
    NotFoundError,
    PreconditionError,
)
from gofer.messaging.adapter.model import Address, Broker, Delivery, Exchange, Queue
from gofer.messaging.url import Url

_PREDEFINED = {
    "amq.direct": Exchange("amq.direct", "direct"),
    "amq.topic": Exchange("amq.topic", "topic"),
    "amq.fanout": Exchange("amq.fanout", "fanout"),
}


@dataclasses.dataclass
class _Message:
    body: bytes
    expires: float | None
    redelivered: bool = False


@dataclasses.dataclass
class _Queue:
    spec: Queue
    owner: int | None  # the exclusive owner connection's id
    ready: collections.deque[_Message] = dataclasses.field(default_factory=collections.deque)
    consumers: int = 0
    deleted: bool = False


class MemoryBroker:
    """One in-memory broker: queues, exchanges, bindings; see the module docstring."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.changed = threading.Condition()
        self._queues: dict[str, _Queue] = {}
        self._exchanges: dict[str, Exchange] = dict(_PREDEFINED)
        self._bindings: dict[str, set[tuple[str, str]]] = collections.defaultdict(set)

    def queues(self) -> dict[str, int]:
        """Each queue's number of ready messages."""
        with self.changed:
            return {name: len(q.ready) for name, q in self._queues.items()}

    # -- called by connections and readers, lock held by them ---------------

    def queue(self, name: str) -> _Queue:
        found = self._queues.get(name)
        if found is None:
            raise NotFoundError(f"no queue {name!r} on memory://{self.name}")
        return found

    def declare_queue(self, queue: Queue, owner: int) -> None:
        found = self._queues.get(queue.name)
        if found is None:
            self._queues[queue.name] = _Queue(queue, owner if queue.exclusive else None)
            return
        if found.owner is not None and found.owner != owner:
            raise AccessDeniedError(f"queue {queue.name!r} is exclusive to another connection")
        if (found.spec.durable, found.spec.queue_type) != (queue.durable, queue.queue_type):
            raise PreconditionError(
                f"queue {queue.name!r} exists with durable={found.spec.durable}, "
                f"type {found.spec.queue_type}"
            )

    def delete_queue(self, name: str) -> None:
        found = self._queues.pop(name, None)
        if found is not None:
            found.deleted = True
            for bound in self._bindings.values():
                bound.difference_update({b for b in bound if b[0] == name})
            self.changed.notify_all()

    def route(self, address: Address, body: bytes, ttl: float | None) -> None:
        expires = None if ttl is None else time.monotonic() + ttl
        if not address.exchange:
            targets = [address.routing_key] if address.routing_key in self._queues else []
        else:
            exchange = self._exchanges.get(address.exchange)
            if exchange is None:
                raise NotFoundError(f"no exchange {address.exchange!r} on memory://{self.name}")
            targets = [
                queue
                for queue, key in self._bindings[exchange.name]
                if _matches(exchange, key, address.routing_key)
            ]
        if not targets:
            raise NotFoundError(f"no queue took the message sent to {address}")
        for name in sorted(set(targets)):
            self._queues[name].ready.append(_Message(body, expires))
        self.changed.notify_all()

    def declare_exchange(self, exchange: Exchange) -> None:
        found = self._exchanges.get(exchange.name)
        if found is None:
            self._exchanges[exchange.name] = exchange
        elif found.type != exchange.type:
            raise PreconditionError(f"exchange {exchange.name!r} exists as {found.type}")

    def delete_exchange(self, name: str) -> None:
        self._exchanges.pop(name, None)
        self._bindings.pop(name, None)

    def bind(self, queue: str, exchange: str, key: str) -> None:
        self.queue(queue)
        if exchange not in self._exchanges:
            raise NotFoundError(f"no exchange {exchange!r} on memory://{self.name}")
        self._bindings[exchange].add((queue, key))

    def unbind(self, queue: str, exchange: str, key: str) -> None:
        self._bindings.get(exchange, set()).discard((queue, key))


def _matches(exchange: Exchange, pattern: str, key: str) -> bool:
    if exchange.type == "fanout":
        return True
    if exchange.type == "direct":
        return pattern == key
    return _topic(pattern.split("."), key.split("."))


def _topic(pattern: list[str], words: list[str]) -> bool:
    """A topic binding: words separated by dots; ``*`` is one word, ``#`` any number."""
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_topic(rest, words[n:]) for n in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _topic(rest, words[1:])


_brokers: dict[str, MemoryBroker] = {}
_brokers_lock = threading.Lock()
_ids = itertools.count(1)


def broker(url: str | Url) -> MemoryBroker:
    """The in-memory broker a ``memory://`` URL reaches (made on first use)."""
    parsed = url if isinstance(url, Url) else Url.parse(url)
    name = parsed.host + (f"/{parsed.virtual_host}" if parsed.virtual_host else "")
    with _brokers_lock:
        found = _brokers.get(name)
        if found is None:
            found = _brokers[name] = MemoryBroker(name)
        return found


def forget(url: str | Url) -> None:
    """Forget the in-memory broker of ``url`` and what it held."""
    parsed = url if isinstance(url, Url) else Url.parse(url)
    name = parsed.host + (f"/{parsed.virtual_host}" if parsed.virtual_host else "")
    with _brokers_lock:
        _brokers.pop(name, None)


def reset() -> None:
    """Forget every in-memory broker and what it held."""
    with _brokers_lock:
        _brokers.clear()


class MemoryConnection:
    """A connection to an in-memory broker (see ``contract.Connection``)."""

    def __init__(self, target: MemoryBroker) -> None:
        self.target = target
        self.id = next(_ids)
        self._open = True
        self._readers: list[MemoryReader] = []

    @property
    def is_open(self) -> bool:
        return self._open

    def close(self) -> None:
        with self.target.changed:
            if not self._open:
                return
            self._open = False
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.close()
        with self.target.changed:
            for name in [n for n, q in self.target._queues.items() if q.owner == self.id]:
                self.target.delete_queue(name)

    def _check(self) -> None:
        if not self._open:
            raise ConnectionLostError(f"connection to memory://{self.target.name} closed")

    def send(
        self,
        address: str,
        body: bytes,
        *,
        ttl: float | None = None,
        durable: bool = True,
        confirm: bool = True,
    ) -> None:
        if not isinstance(body, bytes):
            raise MessagingError(f"a message body is bytes, not {type(body).__name__}")
        parsed = Address.parse(address)
        with self.target.changed:
            self._check()
            try:
                self.target.route(parsed, body, ttl)
            except NotFoundError:
                if confirm:
                    raise  # unconfirmed: lost quietly, as a broker would

    def reader(self, queue: str, *, prefetch: int = 1) -> MemoryReader:
        with self.target.changed:
            self._check()
            found = self.target.queue(queue)
            if found.owner is not None and found.owner != self.id:
                raise AccessDeniedError(f"queue {queue!r} is exclusive to another connection")
            found.consumers += 1
            reader = MemoryReader(self, queue, found, max(1, prefetch))
            self._readers.append(reader)
            return reader

    def _forget(self, reader: MemoryReader) -> None:
        if reader in self._readers:
            self._readers.remove(reader)

    def declare_queue(self, queue: Queue) -> None:
        with self.target.changed:
            self._check()
            self.target.declare_queue(queue, self.id)

    def delete_queue(self, name: str) -> None:
        with self.target.changed:
            self._check()
            self.target.delete_queue(name)

    def purge_queue(self, name: str) -> int:
        with self.target.changed:
            self._check()
            found = self.target.queue(name)
            count = len(found.ready)
            found.ready.clear()
            return count

    def queue_exists(self, name: str) -> bool:
        with self.target.changed:
            self._check()
            return name in self.target._queues

    def declare_exchange(self, exchange: Exchange) -> None:
        with self.target.changed:
            self._check()
            self.target.declare_exchange(exchange)

    def delete_exchange(self, name: str) -> None:
        with self.target.changed:
            self._check()
            self.target.delete_exchange(name)

    def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        with self.target.changed:
            self._check()
            self.target.bind(queue, exchange, routing_key)

    def unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        with self.target.changed:
            self._check()
            self.target.unbind(queue, exchange, routing_key)


class MemoryReader:
    """Consumes one in-memory queue (see ``contract.Reader``)."""

    def __init__(
        self, connection: MemoryConnection, name: str, queue: _Queue, prefetch: int
    ) -> None:
        self.connection = connection
        self.name = name
        self._queue = queue
        self.prefetch = prefetch
        self._unacked: dict[int, _Message] = {}
        self._tags = itertools.count(1)
        self._closed = False

    def get(self, timeout: float | None = None) -> Delivery | None:
        target = self.connection.target
        deadline = None if timeout is None else time.monotonic() + timeout
        with target.changed:
            while True:
                self.connection._check()
                if self._closed:
                    raise MessagingError(f"the reader of {self.name!r} is closed")
                if self._queue.deleted:
                    self._resubscribe()
                message = self._next() if len(self._unacked) < self.prefetch else None
                if message is not None:
                    tag = next(self._tags)
                    self._unacked[tag] = message
                    return Delivery(message.body, (id(self), tag), message.redelivered)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                target.changed.wait(left)

    def _resubscribe(self) -> None:
        """Follow a queue deleted under this reader: NotFoundError until it is made again."""
        again = self.connection.target._queues.get(self.name)
        if again is None:
            raise NotFoundError(f"queue {self.name!r} was deleted")
        self._unacked.clear()  # their queue is gone
        self._queue = again
        again.consumers += 1

    def _next(self) -> _Message | None:
        ready = self._queue.ready
        now = time.monotonic()
        while ready:
            message = ready.popleft()
            if message.expires is None or message.expires > now:
                return message
        return None

    def ack(self, delivery: Delivery) -> None:
        self.ack_many([delivery])

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        with self.connection.target.changed:
            for delivery in deliveries:
                self._unacked.pop(self._tag(delivery), None)
            self.connection.target.changed.notify_all()

    def reject(self, delivery: Delivery, requeue: bool = False) -> None:
        with self.connection.target.changed:
            message = self._unacked.pop(self._tag(delivery), None)
            if message is not None and requeue and not self._queue.deleted:
                message.redelivered = True
                self._queue.ready.appendleft(message)
            self.connection.target.changed.notify_all()

    def _tag(self, delivery: Delivery) -> int:
        tag: Any = delivery.tag
        if not isinstance(tag, tuple) or tag[0] != id(self):
            raise MessagingError(f"not a delivery of the reader of {self.name!r}")
        return int(tag[1])

    def close(self) -> None:
        target = self.connection.target
        with target.changed:
            if self._closed:
                return
            self._closed = True
            for message in reversed(list(self._unacked.values())):
                message.redelivered = True
                self._queue.ready.appendleft(message)
            self._unacked.clear()
            self._queue.consumers -= 1
            if self._queue.spec.auto_delete and self._queue.consumers <= 0:
                target.delete_queue(self.name)
            self.connection._forget(self)
            target.changed.notify_all()


class MemoryAdapter:
    """The ``memory`` adapter: see the module docstring."""

    name = "memory"
    provides: tuple[str, ...] = ()
    recoverable: tuple[type[BaseException], ...] = (BrokerUnavailableError,)

    def connect(self, settings: Broker) -> MemoryConnection:
        return MemoryConnection(broker(settings.url))


adapter = MemoryAdapter()

__all__ = ["MemoryAdapter", "MemoryBroker", "adapter", "broker", "forget", "reset"]
