"""A thread that reads gofer documents from a queue and hands each to ``dispatch()``.

The existing gofer's ``Consumer``: subclass it, override :meth:`~ConsumerThread.dispatch`
(and, if wanted, :meth:`~ConsumerThread.rejected` and
:meth:`~ConsumerThread.no_route`), then ``start()`` it::

    from gofer.messaging import Consumer, Queue

    class Printer(Consumer):
        def dispatch(self, document):
            print(document.sn, document.note)

    queue = Queue("notes", url="amqp://localhost")
    queue.declare()
    printer = Printer(queue)
    printer.start()
    ...
    printer.shutdown()

Each message is acknowledged once ``dispatch()`` returns (or raises: the
error is logged, the message is not read again). A message that is no
document, or fails the ``authenticator``, goes to ``rejected()`` instead.
The queue is read through one reconnecting connection, closed when the
thread ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from gofer.errors import GoferError, InvalidDocumentError, NotFoundError
from gofer.messaging import auth
from gofer.messaging.adapter.model import Address
from gofer.messaging.connection import Connection, Reader
from gofer.messaging.document import Document
from gofer.messaging.retry import Backoff

log = logging.getLogger(__name__)

#: The URL used when neither the consumer nor its queue names one.
DEFAULT_URL = "amqp://localhost"
#: Seconds between looks at the shutdown flag while the queue is quiet.
POLL = 0.5
#: Seconds to wait before reading a queue again after it was not found.
NOT_FOUND_DELAY = 10.0


class ConsumerThread(threading.Thread):
    """Reads ``node`` in a daemon thread; see the module docstring.

    Args:
        node: the queue: a :class:`gofer.messaging.Queue` or its name (an
            ``exchange/queue`` address reads ``queue``).
        url: the broker URL; by default the queue's own ``url``, else
            ``amqp://localhost``.
        wait: the longest a read waits for a message, in seconds.

    Attributes:
        authenticator: checks each message's signature when set
            (:class:`gofer.messaging.auth.Authenticator`).
    """

    #: The most messages taken from the broker and not yet acknowledged.
    prefetch = 1

    def __init__(self, node: Any, url: str | None = None, wait: float = 3) -> None:
        self.node = node
        self.queue = Address.parse(getattr(node, "name", node)).routing_key
        self.url = url or getattr(node, "url", None) or DEFAULT_URL
        self.wait = wait
        self.authenticator: auth.Authenticator | None = None
        super().__init__(name=f"gofer-consumer {self.queue}", daemon=True)
        # Reads give up on an unreachable broker after a while, so that
        # shutdown() is seen during a long outage too.
        self._connection = Connection(
            self.url, backoff=Backoff(initial=0.5, maximum=5.0, limit=10.0)
        )
        self._stopping = threading.Event()

    def shutdown(self) -> None:
        """Stop after the message being handled, if any (``join()`` waits for that)."""
        self._stopping.set()

    def run(self) -> None:
        reader = self._connection.reader(self.queue, prefetch=self.prefetch)
        try:
            while not self._stopping.is_set():
                self._read(reader)
        finally:
            reader.close()
            self._connection.close()

    def _read(self, reader: Reader) -> None:
        try:
            delivery = reader.get(timeout=min(self.wait, POLL))
        except NotFoundError as exc:
            log.warning("%s: %s", self.name, exc)
            if not self._stopping.wait(NOT_FOUND_DELAY):
                self.no_route()
            return
        except GoferError as exc:
            log.error("%s: %s", self.name, exc)
            self._stopping.wait(1.0)
            return
        if delivery is None:
            return
        try:
            document = auth.validate(self.authenticator, delivery.body)
        except (InvalidDocumentError, auth.ValidationFailed) as exc:
            code = "security.authentication" if isinstance(exc, auth.ValidationFailed) else "model"
            self._safely(self.rejected, code, str(exc), delivery.body, None)
        else:
            log.debug("%s read: %s", self.name, document.get("sn"))
            self._safely(self.dispatch, document)
        reader.ack(delivery)

    def _safely(self, handler: Callable[..., object], *args: Any) -> None:
        try:
            handler(*args)
        except Exception:
            log.exception("%s: %s failed", self.name, handler.__name__)

    def dispatch(self, document: Document) -> None:
        """Handle one document; override this. The default logs it."""
        log.debug("%s dispatched: %s", self.name, document)

    def rejected(self, code: str, description: str, document: Any, details: Any) -> None:
        """Handle a message that is no valid document; override this. The default logs it.

        Args:
            code: ``model`` (not a JSON object) or ``security.authentication``.
            description: what is wrong.
            document: the message body as received.
            details: more, when known.
        """
        log.debug("%s rejected [%s]: %s", self.name, code, description)

    def no_route(self) -> None:
        """Called when the queue is not found (the read is tried again after it)."""


class Consumer(ConsumerThread):
    """The existing gofer's ``Consumer(node, url=None)``; see :class:`ConsumerThread`."""

    def __init__(self, node: Any, url: str | None = None) -> None:
        super().__init__(node, url)


__all__ = ["Consumer", "ConsumerThread"]
