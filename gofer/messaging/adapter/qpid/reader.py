"""Consuming one queue over an AMQP 0-10 session of a shared connection."""

from __future__ import annotations

import logging
import queue as queues
import threading
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from gofer.errors import MessagingError
from gofer.messaging.adapter.model import Delivery
from gofer.messaging.adapter.qpid.engine import spec010
from gofer.messaging.adapter.qpid.engine.base import Command
from gofer.messaging.adapter.qpid.engine.session import Session, Transfer
from gofer.messaging.adapter.waiting import WAKE, next_item

if TYPE_CHECKING:
    from gofer.messaging.adapter.qpid.connection import QpidConnection

log = logging.getLogger(__name__)


class _Tag(NamedTuple):
    session: Session
    transfer: int


class QpidReader:
    """A subscription with ``prefetch`` unsettled messages at most.

    The subscription takes its own session, asks for explicit acceptance
    and flows credit per message: ``prefetch`` at the start and one more for
    each message accepted, released or rejected, so the broker never has
    more than ``prefetch`` messages out to it (byte credit is unlimited).
    Deliveries arrive on the engine's I/O thread into a local buffer.

    When the session ends under the reader (the queue was deleted, an
    exception), the next :meth:`get` raises the broker's error once and the
    one after subscribes again, raising :class:`~gofer.errors.NotFoundError`
    while the queue is missing. Messages not yet settled are released when
    the reader closes (and by the broker when the session ends).
    """

    def __init__(self, connection: QpidConnection, queue: str, prefetch: int) -> None:
        self._connection = connection
        self.queue = queue
        self.prefetch = max(1, prefetch)
        self._buffer: queues.SimpleQueue[object] = queues.SimpleQueue()
        self._lock = threading.Lock()
        self._session: Session | None = None
        self._destination = ""
        self._unsettled: set[int] = set()
        self._failure: MessagingError | None = None
        self._closed = False
        self._subscribe()

    def _subscribe(self) -> None:
        connection = self._connection
        self._buffer = queues.SimpleQueue()
        self._failure = None
        self._unsettled = set()
        destination = f"gofer-{uuid.uuid4()}"
        session = connection.engine.session(
            on_failure=self._on_failure, timeout=connection.operation_timeout
        )
        try:
            session.subscribe(
                self.queue, destination, self._received, self.prefetch, connection.operation_timeout
            )
        except MessagingError:
            session.detach(timeout=0.5)
            connection.check()
            raise
        self._session, self._destination = session, destination

    def _received(self, transfer: Transfer) -> None:
        with self._lock:
            self._unsettled.add(transfer.id)
        self._buffer.put(transfer)

    def _on_failure(self, error: MessagingError) -> None:
        self._failure = error
        self.wake()

    def wake(self) -> None:
        """Wake a blocked :meth:`get` so that it looks at the state again."""
        self._buffer.put(WAKE)

    def get(self, timeout: float | None = None) -> Delivery | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            item = next_item(lambda: self._buffer, deadline, self._recover)
            if item is None:
                return None
            if isinstance(item, Transfer) and self._session is not None:
                message = item.message
                return Delivery(
                    body=message.body,
                    tag=_Tag(self._session, item.id),
                    redelivered=message.redelivered,
                )
            # A transfer of a session that failed: the broker has it back.

    def _recover(self) -> None:
        """Raise if the connection is gone; report a failure once, then subscribe again."""
        if self._closed:
            raise MessagingError(f"reader of {self.queue!r} is closed")
        self._connection.check()
        session = self._session
        if session is not None and session.is_open and self._failure is None:
            return
        failure, self._failure = self._failure, None
        self._session = None
        if failure is not None and session is not None:
            log.info("reader of %r: %s", self.queue, failure)
            raise failure
        log.info("reader of %r: session gone; subscribing again", self.queue)
        self._subscribe()

    def ack(self, delivery: Delivery) -> None:
        self._settle([delivery], "accept")

    def ack_many(self, deliveries: Sequence[Delivery]) -> None:
        self._settle(deliveries, "accept")

    def reject(self, delivery: Delivery, requeue: bool = False) -> None:
        self._settle([delivery], "release" if requeue else "reject")

    def _settle(self, deliveries: Sequence[Delivery], how: str) -> None:
        current = [tag for tag in (self._current(d, how) for d in deliveries) if tag]
        if current:
            self._send_settle(current[0].session, [tag.transfer for tag in current], how)

    def _current(self, delivery: Delivery, how: str) -> _Tag | None:
        """The tag of ``delivery`` if it came on the current, open session; warns if not."""
        if not isinstance(delivery.tag, _Tag):
            raise MessagingError(f"not a delivery of the reader of {self.queue!r}")
        session, transfer = delivery.tag
        if session is not self._session or not session.is_open:
            # The session it came on is gone: the broker has released it already.
            log.warning(
                "cannot %s message %s of %r: its session is gone; the broker redelivers it",
                how,
                transfer,
                self.queue,
            )
            return None
        return delivery.tag

    def _send_settle(self, session: Session, ids: list[int], how: str) -> None:
        """Settle transfers of ``session`` in one command and give back their credit."""
        with self._lock:
            self._unsettled.difference_update(ids)
        transfers = session.transfers(ids)
        command: Command
        if how == "accept":
            command = spec010.MessageAccept(transfers=transfers)
        elif how == "release":
            command = spec010.MessageRelease(transfers=transfers, set_redelivered=True)
        else:
            command = spec010.MessageReject(
                transfers=transfers, code=spec010.MessageRejectCode.UNSPECIFIED, text="rejected"
            )
        try:
            session.grant(self._destination, len(ids), command)
        except MessagingError as exc:
            self._connection.check()
            log.warning("cannot %s messages %s of %r: %s", how, ids, self.queue, exc)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        session, self._session = self._session, None
        if session is None or not session.is_open:
            return
        with self._lock:
            unsettled, self._unsettled = sorted(self._unsettled), set()
        try:
            session.cancel(self._destination)
            if unsettled:
                session.send(
                    spec010.MessageRelease(
                        transfers=session.transfers(unsettled), set_redelivered=True
                    )
                )
            session.execute(spec010.ExecutionSync(), self._connection.operation_timeout)
        except MessagingError as exc:
            log.debug("closing reader of %r: %s", self.queue, exc)
        session.detach(timeout=1.0)
