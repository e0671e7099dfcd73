"""The caller's link to a broker: one shared connection and one reply queue per broker and process.

Every ``Agent`` pointing at the same broker (with the same connection
settings) shares one :class:`Transport`: one broker connection, one reply
queue declared once, and one thread that reads replies and hands each to the
call waiting for its serial number. No call opens a connection or declares
or deletes a queue.
"""

from __future__ import annotations

import atexit
import logging
import queue as queues
import threading
import uuid

from gofer.errors import GoferError, InvalidDocumentError, NotFoundError
from gofer.messaging import auth
from gofer.messaging.adapter.model import TLS, Broker, Queue, QueueType
from gofer.messaging.connection import Connection, Reader
from gofer.messaging.connector import settings_for
from gofer.messaging.document import Document
from gofer.messaging.retry import Backoff
from gofer.messaging.url import Url
from gofer.rmi import wire

log = logging.getLogger(__name__)

#: Seconds an unused reply queue lives on after its caller is gone.
REPLY_QUEUE_EXPIRATION = 600.0
#: A reply as routed to its waiter: the raw body and its (unchecked) document.
Reply = tuple[bytes, Document]
#: How long a caller keeps retrying an unreachable broker before failing a call.
SEND_RETRY_LIMIT = 30.0
#: The pacing of a caller's reconnects: callers are few, and a call waits for
#: them within its own deadline, so they come back within a second.
RECONNECT = Backoff(initial=0.2, maximum=1.0, full_jitter=True)


class Transport:
    """A shared connection plus a lazily declared reply queue, safe for many threads.

    When the URL names several brokers (a cluster), the reply queue is a
    quorum queue: it lives on, with the replies in it, when the node the
    caller was connected to dies, and the caller reads it from the node it
    moves to. (A classic queue would be out of reach until its node came
    back.) Brokers without quorum queues get a classic one.
    """

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.connection = Connection(
            broker, backoff=Backoff(limit=SEND_RETRY_LIMIT), reconnect=RECONNECT
        )
        self.queue_type: QueueType = "quorum" if broker.url.alternates else "classic"
        self._lock = threading.Lock()
        self._waiters: dict[str, tuple[queues.SimpleQueue[Reply], bool]] = {}
        self._reply_queue: str | None = None
        self._reply_address: str | None = None
        self._reply_reader: Reader | None = None
        self._bound: set[str] = set()
        self._reader_thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- sending ------------------------------------------------------------

    def send(
        self, address: str, body: bytes, ttl: float | None, limit: float | None = None
    ) -> None:
        """Send a request (durable), reconnecting for at most ``limit`` seconds.

        Args:
            limit: how long to keep retrying an unreachable broker; None for
                the transport's ``SEND_RETRY_LIMIT``.
        """
        self.connection.send(address, body, ttl=ttl, durable=True, backoff=_limited(limit))

    # -- replies ------------------------------------------------------------

    def reply_address(self, exchange: str | None = None, limit: float | None = None) -> str:
        """The address of our reply queue (through ``exchange`` when given).

        The queue is declared, and its reader started, on first use only.

        Args:
            exchange: the exchange replies come through.
            limit: how long to keep retrying an unreachable broker.
        """
        with self._lock:
            if self._reply_queue is None:
                name = f"gofer.reply.{uuid.uuid4()}"
                self._reply_address, self._reply_reader = self.connection.reply_queue(
                    name,
                    prefetch=64,
                    expiration=REPLY_QUEUE_EXPIRATION,
                    backoff=_limited(limit),
                    queue_type=self.queue_type,
                )
                self._reply_queue = name
                self._reader_thread = threading.Thread(
                    target=self._read_replies, name=f"gofer-replies {name}", daemon=True
                )
                self._reader_thread.start()
            name = self._reply_queue
            if self._reply_address != name:
                # A queue that lives with its reader, reached through its own
                # address; it cannot be bound to another exchange.
                return self._reply_address or name
            if exchange and exchange not in self._bound:
                self.connection.bind(name, exchange, name)
                self._bound.add(exchange)
        return f"{exchange}/{name}" if exchange else name

    def _declare(self, name: str) -> None:
        self.connection.declare_queue(
            Queue(
                name,
                durable=True,
                auto_delete=False,
                expiration=REPLY_QUEUE_EXPIRATION,
                queue_type=self.queue_type,
            )
        )
        for exchange in self._bound:
            self.connection.bind(name, exchange, name)

    def expect(
        self,
        sn: str,
        *,
        progress: bool = False,
        into: queues.SimpleQueue[Reply] | None = None,
    ) -> queues.SimpleQueue[Reply]:
        """Register interest in replies to ``sn``; each arrives as (body, unchecked document).

        Only replies that can change the call's course are passed on: final
        ones, ``rejected``, and ``progress`` when asked for. ``accepted`` and
        ``started`` never are, so the caller is not woken for them.

        Args:
            into: the queue to put them in (one for many calls: their
                documents tell them apart by ``sn``); a new one by default.
        """
        waiter: queues.SimpleQueue[Reply] = queues.SimpleQueue() if into is None else into
        with self._lock:
            self._waiters[sn] = (waiter, progress)
        return waiter

    def forget(self, sn: str) -> None:
        """Stop routing replies to ``sn`` (late ones are dropped)."""
        with self._lock:
            self._waiters.pop(sn, None)

    def _read_replies(self) -> None:
        assert self._reply_queue is not None
        name = self._reply_queue
        reader = self._reply_reader
        assert reader is not None
        while not self._stopping.is_set():
            try:
                delivery = reader.get(timeout=1.0)
            except NotFoundError:
                if self._reply_address != name:
                    continue  # the reader makes its queue again itself
                log.warning("reply queue %s vanished; declaring it again", name)
                self._redeclare(name)
                continue
            except GoferError as exc:
                log.error("reading replies from %s: %s", name, exc)
                self._stopping.wait(1.0)
                continue
            if delivery is None:
                continue
            self._route(delivery.body)
            reader.ack(delivery)
        reader.close()

    def _redeclare(self, name: str) -> None:
        try:
            with self._lock:
                self._declare(name)
        except GoferError as exc:
            log.error("cannot declare reply queue %s: %s", name, exc)
            self._stopping.wait(1.0)

    def _route(self, body: bytes) -> None:
        try:
            document = auth.validate(None, body)
        except InvalidDocumentError as exc:
            log.warning("unreadable reply dropped: %s", exc)
            return
        sn = document.get("sn")
        with self._lock:
            wanted = self._waiters.get(sn) if isinstance(sn, str) else None
        if wanted is None:
            log.debug("reply for %s that nobody waits for dropped", sn)
            return
        waiter, progress = wanted
        status = document.get("status")
        if status in (wire.ACCEPTED, wire.STARTED) or (status == wire.PROGRESS and not progress):
            return
        waiter.put((body, document))

    def close(self) -> None:
        """Stop reading replies and close the connection."""
        self._stopping.set()
        if self._reader_thread is not None:
            self._reader_thread.join(5)
        self.connection.close()


def _limited(limit: float | None) -> Backoff | None:
    """Retries bounded by ``limit`` seconds (None: the transport's own bound)."""
    if limit is None:
        return None
    return Backoff(limit=max(0.0, min(limit, SEND_RETRY_LIMIT)))


_transports: dict[tuple[object, ...], Transport] = {}
#: The same, found by the URL as given (a call need not parse it again).
_by_text: dict[tuple[object, ...], Transport] = {}
_transports_lock = threading.Lock()


def transport_for(url: str | Url, tls: TLS, heartbeat: float | None) -> Transport:
    """The process's shared transport for this broker and these settings.

    TLS and heartbeat not given come from a ``Connector`` registered for the URL.
    """
    tls, heartbeat = settings_for(url, tls, heartbeat)
    given = (url, tls, heartbeat)
    transport = _by_text.get(given)
    if transport is not None:
        return transport
    parsed = url if isinstance(url, Url) else Url.parse(url)
    key = (parsed.secret(), tls, heartbeat)
    with _transports_lock:
        transport = _transports.get(key)
        if transport is None:
            broker = Broker(url=parsed, tls=tls, heartbeat=heartbeat if heartbeat else 10.0)
            transport = _transports[key] = Transport(broker)
        if len(_by_text) >= 1024:  # spellings are few; keep a caller that varies them bounded
            _by_text.clear()
        _by_text[given] = transport
        return transport


def close_for(url: str | Url) -> None:
    """Close the shared transports to the broker(s) of ``url``; later calls open new ones."""
    wanted = (url if isinstance(url, Url) else Url.parse(url)).secret()
    with _transports_lock:
        found = [key for key, t in _transports.items() if t.broker.url.secret() == wanted]
        closing = [_transports.pop(key) for key in found]
        for given in [g for g, t in _by_text.items() if t in closing]:
            del _by_text[given]
    for shared in closing:
        try:
            shared.close()
        except GoferError as exc:
            log.debug("closing %s: %s", shared.broker, exc)


@atexit.register
def close_all() -> None:
    """Close every shared transport (at exit, or between tests)."""
    with _transports_lock:
        transports = list(_transports.values())
        _transports.clear()
        _by_text.clear()
    for transport in transports:
        try:
            transport.close()
        except GoferError as exc:
            log.debug("closing %s: %s", transport.broker, exc)


def parse_reply(reply: Reply, authenticator: auth.Authenticator | None) -> Document:
    """The reply's document, checked first when an authenticator is given."""
    body, document = reply
    return document if authenticator is None else auth.validate(authenticator, body)
