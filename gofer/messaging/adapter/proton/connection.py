"""An AMQP 1.0 connection on python-qpid-proton's reactor, shareable between threads.

Threading rule: one :class:`ProtonConnection` (and each of its readers) may
be used from any number of threads. proton's engine is not thread-safe, so a
background thread per connection (:class:`~.loop.Loop`) runs the reactor
and is the only one that touches it. A public method hands its work to that
thread and waits, with a timeout, for the future the work settles: a send
waits for the broker's outcome, a declaration for the attach or the
management node's answer. Deliveries arrive in the I/O thread and wait in
their reader's buffer, bounded by the link credit (the prefetch). Heartbeats
(the AMQP idle time-out) are kept by the reactor even when nobody uses the
connection. Never call these methods from the I/O thread itself.

Senders are cached per target address (one link, on its own session, per
address; see :mod:`.links` for why). A connection that is lost stays lost
(the contract); :class:`gofer.messaging.connection.Connection` opens a new one.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from proton import Message

from gofer.errors import (
    AccessDeniedError,
    ConnectionLostError,
    MessagingError,
    NotFoundError,
    UnsupportedError,
)
from gofer.messaging.adapter.model import Address, Broker, Exchange, Queue
from gofer.messaging.adapter.proton import errors
from gofer.messaging.adapter.proton.links import (
    DURABLE,
    NOT_DURABLE,
    Link,
    ReceiverLink,
    SenderLink,
    present,
)
from gofer.messaging.adapter.proton.loop import wait
from gofer.messaging.adapter.proton.management import (
    Dialect,
    ManagementClient,
    Reply,
    dialect_for,
)
from gofer.messaging.adapter.proton.opening import CLOSE_TIMEOUT, open_connection
from gofer.messaging.adapter.proton.reader import ProtonReader

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Senders kept open per connection (least recently used ones are closed).
_MAX_SENDERS = 64
#: Seconds during which a queue seen to exist is not checked again before a
#: send (brokers that drop messages to missing queues silently; RabbitMQ).
_EXISTS_FRESH = 1.0


class ProtonConnection:
    """One AMQP 1.0 connection; see the module docstring for the threading rule."""

    def __init__(self, broker: Broker) -> None:
        """Open the connection.

        Raises:
            ConnectError, AuthenticationError, TLSError: see the contract.
        """
        self.broker = broker
        self.timeout = broker.operation_timeout
        self._lock = threading.Lock()
        self._closed = False
        self._lost: ConnectionLostError | None = None
        self._readers: weakref.WeakSet[ProtonReader] = weakref.WeakSet()
        self._exists: dict[str, float] = {}
        #: Checks under way, by queue: concurrent senders share one.
        self._checking: dict[str, Future[None]] = {}
        # Owned by the I/O thread:
        self._senders: collections.OrderedDict[str, SenderLink] = collections.OrderedDict()
        self._manager: ManagementClient | None = None
        self._loop, self._engine, self._events = open_connection(broker, self._lost_in_loop)
        # One session per link, and Broker-J allows 256 sessions per connection.
        transport = present(self._engine.transport, "transport")
        channels = int(transport.remote_channel_max or 0) + 1
        self._max_senders = max(4, min(_MAX_SENDERS, channels // 4))
        self.dialect: Dialect = dialect_for(self, self._engine.remote_properties)
        log.debug("connected to %s (%s)", broker, self.dialect.product)

    # -- the contract -------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return not self._closed and self._lost is None and self._loop.ended is None

    @property
    def cancel_notify(self) -> bool:
        """True when a reader learns that its queue was deleted."""
        return self.dialect.reports_deleted_queue

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self._lost is None and self._loop.ended is None:
            try:
                closed = self._loop.submit(self._close_in_loop)
                closed.result(CLOSE_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - closing must not fail the caller
                log.debug("closing %s: %s", self.broker, exc)
        self._loop.stop()
        self._loop.join(CLOSE_TIMEOUT + 1)
        self._wake_readers()

    def send(
        self,
        address: str,
        body: bytes,
        *,
        ttl: float | None = None,
        durable: bool = True,
        confirm: bool = True,
    ) -> None:
        """Send one message; see ``contract.Connection.send``.

        Args:
            confirm: False hands the message to the I/O thread and returns at
                once; its outcome is only logged, and a queue is not checked
                for existence first.
        """
        target = Address.parse(address)
        message = _message(body, ttl, durable)
        node = self.dialect.target(target)
        if not confirm:
            sent = self._submit(lambda future: self._sender(node).send(message, future))
            sent.add_done_callback(lambda done: _log_unconfirmed(address, done))
            return
        check = None
        if not target.exchange and not self.dialect.exists_on_attach:
            check = self._existence_check(target.routing_key)
        sent = self._submit(lambda future: self._sender(node).send(message, future))
        try:
            self._wait(sent, f"send to {address}")
        finally:
            if check is not None:
                self._wait_existence(target.routing_key, check)

    def reader(self, queue: str, *, prefetch: int = 1) -> ProtonReader:
        reader = ProtonReader(self, queue, self.dialect.source(queue), prefetch)
        self._readers.add(reader)
        return reader

    def reply_address(self, name: str) -> str | None:
        """See ``contract.ReplyQueues``: ``amq.direct/NAME`` on RabbitMQ and Broker-J."""
        return self.dialect.reply_address(name)

    def reply_reader(self, name: str, *, prefetch: int = 1) -> ProtonReader:
        """See ``contract.ReplyQueues``: a subscription to ``amq.direct`` with key ``name``.

        Raises:
            UnsupportedError: the broker has no such form (``reply_address`` said None).
        """
        source = self.dialect.reply_source(name)
        if source is None:
            raise UnsupportedError(f"{self.dialect.product}: no reply queues over AMQP 1.0")
        reader = ProtonReader(self, name, source, prefetch)
        self._readers.add(reader)
        return reader

    def declare_queue(self, queue: Queue) -> None:
        self.dialect.declare_queue(queue)

    def delete_queue(self, name: str) -> None:
        self.dialect.delete_queue(name)

    def purge_queue(self, name: str) -> int:
        return self.dialect.purge_queue(name)

    def queue_exists(self, name: str) -> bool:
        return self.dialect.queue_exists(name)

    def declare_exchange(self, exchange: Exchange) -> None:
        self.dialect.declare_exchange(exchange)

    def delete_exchange(self, name: str) -> None:
        self.dialect.delete_exchange(name)

    def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        self.dialect.bind(queue, exchange, routing_key)

    def unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        self.dialect.unbind(queue, exchange, routing_key)

    # -- what the dialects and readers use (management.Engine) ----------------

    def attach(self, link: Link) -> None:
        """Open ``link`` on this connection and wait until the broker accepts it.

        Raises:
            NotFoundError, AccessDeniedError, ...: the broker refused it.
        """

        def start(future: Future[None]) -> None:
            link.open(self._engine)
            link.attached.add_done_callback(lambda done: _copy(done, future))

        self._wait(self._submit(start), link.what)

    def detach(self, link: Link) -> None:
        """Close ``link`` (no wait for the broker's answer)."""
        with contextlib.suppress(ConnectionLostError):
            self.call(link.close)

    def call(self, function: Callable[[], T]) -> T:
        """Run ``function()`` in the I/O thread and return its result."""
        self.check()
        try:
            return self._loop.call(function, self.timeout)
        except MessagingError as error:
            raise self._failure(error) from None

    def probe(self, source: str) -> None:
        link = ReceiverLink(source, f"check of {source!r}", credit=0)
        try:
            self.attach(link)
        finally:
            self.detach(link)

    def declare_by_attach(self, target: str, durable: bool) -> None:
        link = SenderLink(target, f"declaration of {target!r}", DURABLE if durable else NOT_DURABLE)
        try:
            self.attach(link)
        finally:
            self.detach(link)

    def request(self, properties: dict[str, Any], body: Any = None) -> Reply:
        manager = self.call(self._management)
        self._wait(manager.ready, "the $management node")
        reply: Future[Reply] = self._submit(
            lambda future: manager.request(properties, body, future)
        )
        answer: Reply = self._wait(reply, f"$management {properties.get('operation')}")
        return answer

    def forget_senders(self, queue: str) -> None:
        node = self.dialect.target(Address("", queue))

        def forget() -> None:
            sender = self._senders.pop(node, None)
            if sender is not None:
                sender.close()

        self.call(forget)

    def check(self) -> None:
        """Raise ConnectionLostError once the connection is lost or closed."""
        if self._lost is not None:
            raise self._lost
        if self._closed or self._loop.ended is not None:
            raise ConnectionLostError(f"connection to {self.broker} is closed")

    # -- sending ---------------------------------------------------------------

    def _sender(self, node: str) -> SenderLink:
        """The cached sender to ``node``, attached anew if it failed (I/O thread)."""
        sender = self._senders.get(node)
        if sender is not None and sender.usable:
            self._senders.move_to_end(node)
            return sender
        sender = SenderLink(node, f"sender to {node!r}")
        sender.open(self._engine)
        self._senders[node] = sender
        while len(self._senders) > self._max_senders:
            _, oldest = self._senders.popitem(last=False)
            oldest.close()
        return sender

    def _existence_check(self, queue: str) -> Future[None] | None:
        """Start checking that ``queue`` exists, unless it was seen a moment ago.

        Senders to the same queue share a check under way. Each check is a
        session of its own, begun and ended; RabbitMQ's plugin can still be
        answering the end of one when proton begins the next on the same
        channel, and then its late detach ends the connection ("no such
        handle: 0"). Sharing keeps that churn to one check per queue and
        ``_EXISTS_FRESH``.
        """
        with self._lock:
            seen = self._exists.get(queue)
            if seen is not None and time.monotonic() - seen < _EXISTS_FRESH:
                return None
            running = self._checking.get(queue)
            if running is not None and not running.done():
                return running
            check = self._start_check(queue)
            self._checking[queue] = check
            return check

    def _start_check(self, queue: str) -> Future[None]:
        link = ReceiverLink(self.dialect.source(queue), f"queue {queue!r}", credit=0)

        def start(future: Future[None]) -> None:
            link.open(self._engine)

            def done(attached: Future[None]) -> None:
                link.close()
                _copy(attached, future)

            link.attached.add_done_callback(done)

        return self._submit(start)

    def _wait_existence(self, queue: str, check: Future[None]) -> None:
        try:
            self._wait(check, f"check of queue {queue!r}")
        except AccessDeniedError:
            pass  # exclusive to another connection: it exists
        except NotFoundError:
            with self._lock:
                self._exists.pop(queue, None)
                self._forget_check(queue, check)
            raise NotFoundError(
                f"no queue {queue!r}: {self.dialect.product} dropped the message"
            ) from None
        with self._lock:
            self._exists[queue] = time.monotonic()
            self._forget_check(queue, check)

    def _forget_check(self, queue: str, check: Future[None]) -> None:
        if self._checking.get(queue) is check:
            del self._checking[queue]

    # -- the I/O thread's side -------------------------------------------------

    def _submit(self, start: Any) -> Future[Any]:
        self.check()
        return self._loop.submit(start)

    def _wait(self, future: Future[Any], what: str) -> Any:
        try:
            return wait(future, self.timeout, what)
        except MessagingError as error:
            raise self._failure(error) from None

    def _failure(self, error: MessagingError) -> MessagingError:
        """The error to raise; a connection-level one marks the connection lost."""
        if self._lost is not None:
            return self._lost
        if errors.is_connection_failure(error) and not isinstance(error, ConnectionLostError):
            self._mark_lost(ConnectionLostError(f"connection to {self.broker} lost: {error}"))
            return self._lost or error
        return error

    def _mark_lost(self, error: ConnectionLostError) -> None:
        if self._lost is None:
            self._lost = error
            log.warning("%s", error)
        self._loop.stop()
        self._wake_readers()

    def _lost_in_loop(self, error: MessagingError) -> None:
        """The broker closed the connection or the socket broke (I/O thread)."""
        lost = error if isinstance(error, ConnectionLostError) else ConnectionLostError(str(error))
        if self._lost is None and not self._closed:
            self._lost = lost
            log.warning("%s", lost)
        for link in list(self._senders.values()):
            link.fail(lost)
        self._senders.clear()
        if self._manager is not None:
            self._manager.fail(lost)
        self._loop.end(lost)
        self._wake_readers()

    def _close_in_loop(self, future: Future[None]) -> None:
        self._events.closing = True
        for link in self._senders.values():
            link.close()
        self._senders.clear()
        if self._manager is not None:
            self._manager.close()
        self._events.closed.add_done_callback(lambda done: _copy(done, future))
        self._engine.close()

    def _management(self) -> ManagementClient:
        if self._manager is None or not self._manager.usable:
            self._manager = ManagementClient(self._engine)
        return self._manager

    def _wake_readers(self) -> None:
        for reader in list(self._readers):
            reader.wake()


def _message(body: bytes, ttl: float | None, durable: bool) -> Message:
    """The AMQP 1.0 message for a gofer body: an AMQP string value when it is UTF-8 text."""
    try:
        value: str | bytes = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        value = bytes(body)
    message = Message(body=value, durable=durable)
    if ttl is not None:
        message.ttl = max(0.001, float(ttl))
    return message


def _log_unconfirmed(address: str, sent: Future[None]) -> None:
    error = sent.exception()
    if error is not None:
        log.warning("unconfirmed message to %s was not taken: %s", address, error)


def _copy(source: Future[Any], target: Future[Any]) -> None:
    """Settle ``target`` as ``source`` was settled."""
    if target.done():
        return
    error = source.exception()
    if error is not None:
        target.set_exception(error)
    else:
        target.set_result(source.result())


__all__ = ["ProtonConnection"]
