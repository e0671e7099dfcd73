"""Consuming one queue over an AMQP 1.0 receiver link of a shared connection."""

from __future__ import annotations

import json
import logging
import queue as queues
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from proton import Delivery as EngineDelivery
from proton import Message

from gofer.errors import MessagingError
from gofer.messaging.adapter.model import Delivery
from gofer.messaging.adapter.proton.links import Incoming, ReceiverLink
from gofer.messaging.adapter.waiting import WAKE, next_item

if TYPE_CHECKING:
    from gofer.messaging.adapter.proton.connection import ProtonConnection

log = logging.getLogger(__name__)


#: Outcomes: ``accepted`` acknowledges, ``rejected`` drops (or dead-letters),
#: ``released`` requeues without counting a delivery (as 0-9-1's requeue).
#: ``modified`` is never used: RabbitMQ's plugin ends the session on it, and
#: with delivery-failed Broker-J counts it towards ``maximumDeliveryAttempts``.
_ACK = EngineDelivery.ACCEPTED
_DROP = EngineDelivery.REJECTED
_REQUEUE = EngineDelivery.RELEASED


class _Received(NamedTuple):
    """A message as the reader's thread gets it: plain values, nothing of proton's."""

    link: ReceiverLink
    token: int
    body: bytes
    redelivered: bool


class ProtonReader:
    """A receiver with at most ``prefetch`` unsettled messages.

    Messages arrive through the connection's I/O thread into a local buffer
    that never holds more than ``prefetch`` of them, because that is all the
    credit the broker gets (one more after each ack or reject). When the link
    fails (the queue was deleted, the broker detached it) the next
    :meth:`get` attaches again, raising :class:`~gofer.errors.NotFoundError`
    if the queue is gone. Use a reader from one thread at a time; ``ack`` and
    ``reject`` may come from any thread.

    Only the I/O thread touches proton's objects: it reads each message into
    plain values before the reader's thread sees it, and settles by token.
    """

    def __init__(
        self, connection: ProtonConnection, queue: str, source: str, prefetch: int
    ) -> None:
        self._connection = connection
        self.queue = queue
        self.source = source
        self.prefetch = max(1, prefetch)
        self._buffer: queues.SimpleQueue[Any] = queues.SimpleQueue()
        self._link: ReceiverLink | None = None
        self._closed = False
        self._attach()

    def _attach(self) -> None:
        buffer: queues.SimpleQueue[Any] = queues.SimpleQueue()
        counts_first_acquirer = self._connection.dialect.counts_first_acquirer

        def deliver(incoming: Incoming) -> None:  # in the I/O thread
            message = incoming.message
            buffer.put(
                _Received(
                    incoming.link,
                    incoming.token,
                    body_of(message),
                    redelivered(message, counts_first_acquirer),
                )
            )

        link = ReceiverLink(
            self.source,
            f"reader of {self.queue!r}",
            credit=self.prefetch,
            deliver=deliver,
            on_failure=lambda error: buffer.put(WAKE),
        )
        self._buffer = buffer
        try:
            self._connection.attach(link)
        except MessagingError:
            self._connection.detach(link)
            raise
        self._link = link

    def wake(self) -> None:
        """Wake a blocked :meth:`get` so that it looks at the state again."""
        self._buffer.put(WAKE)

    def get(self, timeout: float | None = None) -> Delivery | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            item = next_item(lambda: self._buffer, deadline, self._recover)
            if item is None:
                return None
            if item.link is not self._link:
                continue  # from a link that failed; the broker has it back
            return Delivery(body=item.body, tag=item, redelivered=item.redelivered)

    def _recover(self) -> None:
        """Raise if the connection is gone; attach again after a link failure."""
        if self._closed:
            raise MessagingError(f"reader of {self.queue!r} is closed")
        self._connection.check()
        link = self._link
        if link is not None and link.failure is None:
            return
        log.info(
            "reader of %r: link gone (%s); attaching again",
            self.queue,
            link.failure if link is not None else "never attached",
        )
        self._link = None
        self._attach()

    def ack(self, delivery: Delivery) -> None:
        self._settle([delivery], _ACK)

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        self._settle(deliveries, _ACK)

    def reject(self, delivery: Delivery, requeue: bool = False) -> None:
        self._settle([delivery], _REQUEUE if requeue else _DROP)

    def _settle(self, deliveries: Sequence[Delivery], outcome: int) -> None:
        """Settle deliveries of the current link, in one hand-off to the I/O thread."""
        current = [tag for tag in (self._current(d) for d in deliveries) if tag]

        def settle_all() -> None:
            for received in current:
                received.link.settle(received.token, outcome)

        if current:
            self._connection.call(settle_all)

    def _current(self, delivery: Delivery) -> _Received | None:
        """The tag of ``delivery`` if it came on the current, working link; warns if not."""
        received = delivery.tag
        if not isinstance(received, _Received):
            raise MessagingError(f"not a delivery of the reader of {self.queue!r}")
        if received.link is not self._link or received.link.failure is not None:
            log.warning(
                "cannot settle a message of %r: its link is gone; the broker redelivers it",
                self.queue,
            )
            return None
        return received

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        link, self._link = self._link, None
        if link is not None and self._connection.is_open:
            self._connection.detach(link)


def redelivered(message: Message, counts_first_acquirer: bool) -> bool:
    """True when the broker delivered this message before.

    ``delivery-count`` counts failed deliveries (a lost connection);
    RabbitMQ also marks a released (requeued) message by clearing
    ``first-acquirer``, which Broker-J passes through from the sender.
    """
    if message.delivery_count:
        return True
    return counts_first_acquirer and not message.first_acquirer


def body_of(message: Message) -> bytes:
    """The message content as bytes: UTF-8 of a string value, bytes of binary data.

    gofer sends JSON as an AMQP string value (the old gofer's format); other
    senders may use binary data. Anything else (a map, a list) is given as JSON.
    """
    body = message.body
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    return json.dumps(body, default=str).encode("utf-8")
