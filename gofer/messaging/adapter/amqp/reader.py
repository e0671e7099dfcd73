"""Consuming one queue over an AMQP 0-9-1 channel of a shared connection."""

from __future__ import annotations

import logging
import queue as queues
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from gofer.errors import MessagingError, NotFoundError
from gofer.messaging.adapter.amqp.sections import unwrap
from gofer.messaging.adapter.model import Delivery
from gofer.messaging.adapter.waiting import WAKE, next_item

if TYPE_CHECKING:
    from gofer.messaging.adapter.amqp.connection import AmqpConnection, _Channel

log = logging.getLogger(__name__)


class _Tag(NamedTuple):
    channel: _Channel
    delivery_tag: int


class AmqpReader:
    """A consumer with ``prefetch`` unacknowledged messages at most.

    Deliveries arrive through the connection's I/O thread into a local buffer,
    which never holds more than ``prefetch`` messages because the broker sends
    no more. When the broker closes the channel or cancels the consumer, the
    buffered messages are dropped (the broker requeues them) and the next
    :meth:`get` subscribes again on a new channel, raising
    :class:`~gofer.errors.NotFoundError` if the queue is gone.
    """

    def __init__(self, connection: AmqpConnection, queue: str, prefetch: int) -> None:
        self._connection = connection
        self.queue = queue
        self.prefetch = max(1, prefetch)
        self._buffer: queues.SimpleQueue[Any] = queues.SimpleQueue()
        self._channel: _Channel | None = None
        self._failure: MessagingError | None = None
        self._closed = False
        # Delivery tags handed out by get() and not settled, of the current
        # channel: ack_many() acks with one multiple basic.ack when its
        # deliveries are all of them up to its last.
        self._unsettled: set[int] = set()
        self._unsettled_lock = threading.Lock()
        self._subscribe()

    def _subscribe(self) -> None:
        self._buffer = queues.SimpleQueue()
        self._failure = None
        with self._unsettled_lock:
            self._unsettled = set()
        with self._connection.using(self._connection.new_channel) as channel:
            channel.on_failure = self.wake
            channel.basic_qos(0, self.prefetch, False)
            channel.basic_consume(self.queue, callback=self._buffer.put, on_cancel=self._cancelled)
            self._channel = channel

    def _cancelled(self, consumer_tag: str) -> None:
        self._failure = NotFoundError(
            f"the broker cancelled the consumer of {self.queue!r} (queue deleted?)"
        )
        self.wake()

    def wake(self) -> None:
        """Wake a blocked :meth:`get` so that it looks at the state again."""
        self._buffer.put(WAKE)

    def get(self, timeout: float | None = None) -> Delivery | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        item = next_item(lambda: self._buffer, deadline, self._recover)
        if item is None:
            return None
        body = item.body
        if isinstance(body, str):
            body = body.encode(getattr(item, "content_encoding", None) or "utf-8")
        body = unwrap(bytes(body))  # sent over AMQP 1.0 through RabbitMQ
        info = item.delivery_info
        tag = info["delivery_tag"]
        if item.channel is self._channel:
            with self._unsettled_lock:
                self._unsettled.add(tag)
        return Delivery(
            body=body,
            tag=_Tag(item.channel, tag),
            redelivered=bool(info.get("redelivered")),
        )

    def _recover(self) -> None:
        """Raise if the connection is gone; subscribe again after a channel failure."""
        if self._closed:
            raise MessagingError(f"reader of {self.queue!r} is closed")
        self._connection._check()
        channel = self._channel
        failure = self._failure or (channel.failure if channel is not None else None)
        if failure is None and channel is not None and channel.is_open:
            return
        log.info("reader of %r: channel gone (%s); subscribing again", self.queue, failure)
        self._channel = None
        self._subscribe()

    def ack(self, delivery: Delivery) -> None:
        self.ack_many([delivery])

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        current = [tag for tag in (self._current(d, "ack") for d in deliveries) if tag]
        if not current:
            return
        channel = current[0].channel
        tags = {tag.delivery_tag for tag in current}
        last = max(tags)
        with self._unsettled_lock:
            at_once = all(t in tags for t in self._unsettled if t <= last)
            self._unsettled -= tags
        with self._connection.using(lambda: channel):
            if at_once:
                channel.basic_ack(last, multiple=True)
            else:
                for tag in sorted(tags):
                    channel.basic_ack(tag)

    def reject(self, delivery: Delivery, requeue: bool = False) -> None:
        current = self._current(delivery, "reject")
        if current is None:
            return
        channel, tag = current
        with self._unsettled_lock:
            self._unsettled.discard(tag)
        with self._connection.using(lambda: channel):
            channel.basic_reject(tag, requeue=requeue)

    def _current(self, delivery: Delivery, how: str) -> _Tag | None:
        """The tag of ``delivery`` if it came on the current, open channel; warns if not."""
        if not isinstance(delivery.tag, _Tag):
            raise MessagingError(f"not a delivery of the reader of {self.queue!r}")
        channel, tag = delivery.tag
        if channel is not self._channel or channel.failure is not None or not channel.is_open:
            # The channel it came on is gone: the broker has put it back already.
            log.warning(
                "cannot %s message %s of %r: its channel is gone; the broker redelivers it",
                how,
                tag,
                self.queue,
            )
            return None
        return delivery.tag

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        channel, self._channel = self._channel, None
        if channel is None or not channel.is_open or not self._connection.is_open:
            return
        try:
            with self._connection.using(lambda: channel):
                channel.close()
        except MessagingError as exc:
            log.debug("closing reader of %r: %s", self.queue, exc)
