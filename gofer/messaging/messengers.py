"""The existing gofer's senders and readers: ``Producer``, ``Sender`` and ``Reader``.

Callers of the existing gofer send their own gofer documents with a
``Producer`` (raw bodies with a ``Sender``) and read them with a ``Reader``::

    from gofer.messaging import Producer, Reader, Queue

    with Producer("amqp://localhost") as producer:
        sn = producer.send("notes", ttl=60, note="hello")

    with Reader(Queue("notes"), url="amqp://localhost") as reader:
        document = reader.search(sn, timeout=10)

Each holds one connection (:class:`gofer.messaging.connection.Connection`,
which reconnects), opened on first use or by ``open()``, closed by
``close()``. They are for one thread at a time.
"""

from __future__ import annotations

import uuid
from typing import Any

from gofer.errors import InvalidDocumentError
from gofer.messaging import auth
from gofer.messaging.adapter.model import Address, Delivery
from gofer.messaging.connection import Connection
from gofer.messaging.connection import Reader as QueueReader
from gofer.messaging.document import VERSION, Document
from gofer.messaging.model import validate

#: The URL used when none is given.
DEFAULT_URL = "amqp://localhost"


class Messenger:
    """What every sender and reader has: a broker URL and one connection to it."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or DEFAULT_URL
        self._connection: Connection | None = None

    def _connected(self) -> Connection:
        if self._connection is None:
            self._connection = Connection(self.url)
        return self._connection

    def is_open(self) -> bool:
        """True between :meth:`open` (or the first use) and :meth:`close`."""
        return self._connection is not None

    def open(self) -> None:
        """Connect now rather than on first use."""
        self._connected().open()

    def repair(self) -> None:
        """Connect again (after an error the connection did not recover from itself)."""
        self.close()
        self.open()

    def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Any:
        self.open()
        return self

    def __exit__(self, *unused: object) -> None:
        self.close()


class Sender(Messenger):
    """Sends message bodies as they are given.

    Attributes:
        durable: messages survive a broker restart.
    """

    def __init__(self, url: str | None = None) -> None:
        super().__init__(url)
        self.durable = True

    def send(self, address: str, content: str | bytes, ttl: float | None = None) -> None:
        """Send ``content`` to ``address`` (``queue`` or ``exchange/queue``).

        Args:
            ttl: seconds after which the broker drops the message unread.
        """
        body = content.encode("utf-8") if isinstance(content, str) else content
        self._connected().send(address, body, ttl=ttl, durable=self.durable)


class Producer(Messenger):
    """Sends gofer documents to addresses.

    Attributes:
        authenticator: signs what is sent, when set.
    """

    def __init__(self, url: str | None = None) -> None:
        super().__init__(url)
        self.authenticator: auth.Authenticator | None = None

    def send(self, address: str, ttl: float | None = None, **body: Any) -> str:
        """Send a document made of ``body`` to ``address``; its serial number.

        The document carries ``sn``, ``version`` and ``routing`` as every gofer
        message does; ``body`` adds the rest (and may replace those).
        """
        sn = str(uuid.uuid4())
        document = Document(sn=sn, version=VERSION, routing=[None, address])
        document.update(body)
        sn = str(document["sn"])
        self._connected().send(address, auth.sign(self.authenticator, document), ttl=ttl)
        return sn

    def broadcast(self, addresses: list[str], **body: Any) -> list[str]:
        """Send the same body to several addresses; their serial numbers."""
        return [self.send(address, **body) for address in addresses]


class Message:
    """A message read by a :class:`Reader`, to be acknowledged or rejected.

    Attributes:
        body: the content, as text (as bytes when it is not UTF-8).
    """

    def __init__(self, reader: QueueReader, delivery: Delivery) -> None:
        self._reader = reader
        self._delivery = delivery
        try:
            self.body: str | bytes = delivery.body.decode("utf-8")
        except UnicodeDecodeError:
            self.body = delivery.body

    def ack(self) -> None:
        """The message is handled: the broker forgets it."""
        self._reader.ack(self._delivery)

    def reject(self, requeue: bool = True) -> None:
        """Give the message back to the queue (``requeue``), or drop it."""
        self._reader.reject(self._delivery, requeue)

    def __str__(self) -> str:
        return str(self.body)


class Reader(Messenger):
    """Reads the messages of one queue.

    Args:
        node: the queue: a :class:`gofer.messaging.Queue` or its name.
        url: the broker URL; by default the queue's ``url``.

    Attributes:
        authenticator: checks signatures in :meth:`next` and :meth:`search`.
    """

    def __init__(self, node: Any, url: str | None = None) -> None:
        super().__init__(url or getattr(node, "url", None))
        self.node = node
        self.queue = Address.parse(getattr(node, "name", node)).routing_key
        self.authenticator: auth.Authenticator | None = None
        self._reader: QueueReader | None = None

    def _queue_reader(self) -> QueueReader:
        if self._reader is None:
            self._reader = self._connected().reader(self.queue, prefetch=1)
        return self._reader

    def open(self) -> None:
        """Connect and start reading the queue.

        Raises:
            NotFoundError: the queue does not exist.
        """
        self._queue_reader().open()

    def close(self) -> None:
        """Stop reading; unacknowledged messages go back to the queue."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        super().close()

    def get(self, timeout: float | None = None) -> Message | None:
        """The next message, or None when none comes within ``timeout`` seconds."""
        reader = self._queue_reader()
        delivery = reader.get(timeout)
        return None if delivery is None else Message(reader, delivery)

    def ack(self, message: Message) -> None:
        """Acknowledge ``message``."""
        message.ack()

    def reject(self, message: Message, requeue: bool = True) -> None:
        """Reject ``message``, back to the queue (``requeue``) or dropped."""
        message.reject(requeue)

    def next(self, timeout: float = 90) -> tuple[Message | None, Document | None]:
        """The next message and its checked document; ``(None, None)`` after ``timeout``.

        A message that is no valid document (or fails the authenticator, or
        is of another version) is acknowledged, so that it is not read again,
        and its error raised.

        Raises:
            InvalidDocumentError: not a gofer document (``VersionError``: of another version).
            ValidationFailed: the authenticator refused it.
        """
        message = self.get(timeout)
        if message is None:
            return None, None
        try:
            document = auth.validate(self.authenticator, message._delivery.body)
            validate(document)
        except (InvalidDocumentError, auth.ValidationFailed):
            message.ack()
            raise
        return message, document

    def search(self, sn: str, timeout: float = 90) -> Document | None:
        """Read (and acknowledge) documents until the one with serial number ``sn``.

        Returns:
            That document, or None once no message came for ``timeout`` seconds.
        """
        while True:
            message, document = self.next(timeout)
            if message is None or document is None:
                return None
            message.ack()
            if document.get("sn") == sn:
                return document


__all__ = ["Message", "Messenger", "Producer", "Reader", "Sender"]
