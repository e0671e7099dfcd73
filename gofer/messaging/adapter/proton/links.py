"""Sender and receiver links, each on its own session, driven from the I/O thread only.

Every link gets a session of its own because RabbitMQ's AMQP 1.0 plugin
answers a refused link (a missing queue, a durability mismatch) by ending
the *session* with the condition; on a shared session one missing queue
would take every other link down with it. Qpid Broker-J refuses a link the
standard way: an attach without a terminus, then a detach carrying the
condition. Both end in :meth:`Link.fail`.

Nothing here is thread-safe; :class:`~gofer.messaging.adapter.proton.loop.Loop`
runs all of it in its thread.
"""

from __future__ import annotations

import collections
import itertools
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import NamedTuple, TypeVar

from proton import Condition, Delivery, Endpoint, Event, Handler, Message, Terminus
from proton import Connection as EngineConnection
from proton import Link as EngineLink
from proton import Receiver as EngineReceiver
from proton import Sender as EngineSender
from proton import Session as EngineSession

from gofer.errors import MessagingError, ProtocolError
from gofer.messaging.adapter.proton.errors import from_condition

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Terminus durability: RabbitMQ declares a ``/queue/NAME`` target durable
#: unless its durability is NONE.
DURABLE = Terminus.DELIVERIES
NOT_DURABLE = Terminus.NONDURABLE


def present(value: T | None, what: str) -> T:
    """``value``, which the engine promises for this event; a ProtocolError if it is missing."""
    if value is None:
        raise ProtocolError(f"AMQP 1.0 engine event without its {what}")
    return value


class Link(Handler):
    """One link and its session; the handler of both.

    Args:
        address: the terminus address (None for a dynamic receiver).
        what: names the link in error messages.
    """

    def __init__(self, address: str | None, what: str) -> None:
        super().__init__()
        self.address = address
        self.what = what
        self.attached: Future[None] = Future()
        self.failure: MessagingError | None = None
        self.closing = False
        self.session: EngineSession | None = None
        self.link: EngineLink | None = None

    @property
    def usable(self) -> bool:
        """Attached (or attaching), and neither failed nor closing."""
        return self.failure is None and not self.closing

    def open(self, connection: EngineConnection) -> None:
        """Begin the session and attach the link."""
        session = connection.session()
        session.handler = self
        session.open()
        self.session = session
        link = self._create(session)
        link.handler = self
        link.open()
        self.link = link

    def _create(self, session: EngineSession) -> EngineLink:
        raise NotImplementedError

    def close(self) -> None:
        """Detach and end the session; nobody waits for the broker's answer."""
        self.closing = True
        self._close_local()
        if not self.attached.done():
            self.attached.set_exception(MessagingError(f"{self.what} closed"))

    def fail(self, error: MessagingError) -> None:
        """The link is unusable from now on: record why and tell whoever waits (once)."""
        self._close_local()
        if self.failure is not None:
            return
        self.failure = error
        log.debug("%s failed: %s", self.what, error)
        if not self.attached.done():
            self.attached.set_exception(error)
        self.failed(error)

    def failed(self, error: MessagingError) -> None:
        """Hook for subclasses: fail whatever is still pending on the link."""

    def opened(self) -> None:
        """Hook for subclasses: the broker accepted the attach."""

    def _close_local(self) -> None:
        if self.link is not None and self.link.state & Endpoint.LOCAL_ACTIVE:
            self.link.close()
        if self.session is not None and self.session.state & Endpoint.LOCAL_ACTIVE:
            self.session.close()

    # -- engine events ------------------------------------------------------

    def on_link_remote_open(self, event: Event) -> None:
        link = present(event.link, "link")
        if link.remote_condition is not None or _refused(link):
            return  # the detach that carries the reason follows
        if not self.attached.done():
            self.attached.set_result(None)
        self.opened()

    def on_link_remote_close(self, event: Event) -> None:
        self._ended(present(event.link, "link").remote_condition)

    # RabbitMQ answers our detach(closed=true) with detach(closed=false).
    on_link_remote_detach = on_link_remote_close

    def on_session_remote_close(self, event: Event) -> None:
        self._ended(present(event.session, "session").remote_condition)

    def _ended(self, condition: Condition | None) -> None:
        if self.closing and condition is None:
            self._close_local()
            return
        if condition is None:
            error = MessagingError(f"{self.what}: closed by the broker")
        else:
            error = from_condition(condition, where=self.what)
        self.fail(error)


def _refused(link: EngineLink) -> bool:
    """True for an attach answered without a terminus: a refusal, a detach follows."""
    terminus = link.remote_target if link.is_sender else link.remote_source
    return bool(terminus.type == Terminus.UNSPECIFIED)


class SenderLink(Link):
    """A sender; messages wait for the attach and for credit, then for their outcome.

    Args:
        address: the target address.
        what: names the link in error messages.
        durability: the target's terminus durability.
    """

    def __init__(self, address: str, what: str, durability: int = NOT_DURABLE) -> None:
        super().__init__(address, what)
        self.target = address
        self.durability = durability
        self._backlog: collections.deque[tuple[Message, Future[None]]] = collections.deque()
        self._unsettled: dict[Delivery, Future[None]] = {}

    def _create(self, session: EngineSession) -> EngineLink:
        sender = session.sender(f"gofer-sender-{id(self):x}")
        sender.target.address = self.target
        sender.target.durability = self.durability
        return sender

    def send(self, message: Message, future: Future[None]) -> None:
        """Queue a message; ``future`` gets its outcome (accepted, or an error)."""
        if self.failure is not None:
            future.set_exception(self.failure)
            return
        self._backlog.append((message, future))
        self._pump()

    def opened(self) -> None:
        self._pump()

    def on_link_flow(self, event: Event) -> None:
        self._pump()

    def _pump(self) -> None:
        sender = self.link
        if not isinstance(sender, EngineSender) or not self.attached.done() or not self.usable:
            return
        while self._backlog and sender.credit > 0:
            message, future = self._backlog.popleft()
            self._unsettled[message.send(sender)] = future

    def on_delivery(self, event: Event) -> None:
        delivery = present(event.delivery, "delivery")
        if not (delivery.remote_state or delivery.remote_settled):
            return  # no outcome yet
        future = self._unsettled.pop(delivery, None)
        if future is not None:
            error = self._outcome_error(delivery)
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
        delivery.settle()

    def _outcome_error(self, delivery: Delivery) -> MessagingError | None:
        state = delivery.remote_state
        if state == Delivery.ACCEPTED or (not state and delivery.remote_settled):
            return None
        if state == Delivery.REJECTED:
            condition = delivery.remote.condition
            if condition is not None:
                return from_condition(condition, where=f"{self.what}: message rejected")
            return MessagingError(f"{self.what}: the broker rejected the message")
        return MessagingError(f"{self.what}: the broker did not take the message ({state})")

    def failed(self, error: MessagingError) -> None:
        pending = [future for _, future in self._backlog] + list(self._unsettled.values())
        self._backlog.clear()
        self._unsettled.clear()
        for future in pending:
            if not future.done():
                future.set_exception(error)


class Incoming(NamedTuple):
    """A complete message taken off a receiver (its delivery stays unsettled).

    Given to the receiver's ``deliver`` in the I/O thread, and valid there
    only: ``message`` is proton's, and proton objects must not be used, nor
    dropped, in other threads (their reference counts are not atomic; a
    reader thread releasing a delivery while the I/O thread works crashed the
    process). Settle it by ``token``.
    """

    link: ReceiverLink
    token: int
    message: Message


class ReceiverLink(Link):
    """A receiver holding at most ``credit`` unsettled messages.

    Credit is granted once the broker accepted the attach (Broker-J ends the
    session when credit arrives for a link it refused), and one more after
    each settlement: the broker never sends more than ``credit`` unsettled
    messages, which bounds the reader's local buffer.

    Args:
        address: the source address; None for a dynamic (broker-named) node.
        what: names the link in error messages.
        credit: the prefetch; 0 attaches without taking anything (a probe).
        deliver: called (in the I/O thread) with each complete message;
            it keeps nothing of proton's (see :class:`Incoming`).
        on_failure: called (in the I/O thread) when the link fails.
    """

    def __init__(
        self,
        address: str | None,
        what: str,
        credit: int,
        deliver: Callable[[Incoming], None] | None = None,
        on_failure: Callable[[MessagingError], None] | None = None,
    ) -> None:
        super().__init__(address, what)
        self.credit = credit
        self._deliver = deliver
        self._on_failure = on_failure
        self._unsettled: dict[int, Delivery] = {}
        self._tokens = itertools.count(1)

    @property
    def remote_address(self) -> str | None:
        """The address the broker gave a dynamic node (after the attach)."""
        return None if self.link is None else self.link.remote_source.address

    def _create(self, session: EngineSession) -> EngineLink:
        receiver = session.receiver(f"gofer-receiver-{id(self):x}")
        if self.address is None:
            receiver.source.dynamic = True
        else:
            receiver.source.address = self.address
        return receiver

    def opened(self) -> None:
        if self.credit > 0 and isinstance(self.link, EngineReceiver):
            self.link.flow(self.credit)

    def on_delivery(self, event: Event) -> None:
        delivery = present(event.delivery, "delivery")
        receiver = self.link
        if not delivery.readable or delivery.partial or not isinstance(receiver, EngineReceiver):
            return  # the rest of a large message is still coming
        data = receiver.recv(delivery.pending)
        receiver.advance()
        message = Message()
        message.decode(present(data, "message data"))
        if self._deliver is None or not self.usable:
            delivery.update(Delivery.RELEASED)
            delivery.settle()
            return
        token = next(self._tokens)
        self._unsettled[token] = delivery
        self._deliver(Incoming(self, token, message))

    def settle(self, token: int, outcome: int) -> None:
        """Settle a delivery of this link (in the I/O thread) and grant one more credit.

        A delivery of a link that has failed or closed is left alone: the
        broker took it back when the link went.
        """
        delivery = self._unsettled.pop(token, None)
        if delivery is None or not self.usable:
            return
        delivery.update(outcome)
        delivery.settle()
        if isinstance(self.link, EngineReceiver):
            self.link.flow(1)

    def close(self) -> None:
        """Give every unsettled message back, then detach.

        They are released (not delivered) explicitly, because a detach leaves
        them to the source's default outcome, which is ``modified`` (a failed
        delivery, counted) on Broker-J.
        """
        if self.usable:
            for delivery in self._unsettled.values():
                delivery.update(Delivery.RELEASED)
                delivery.settle()
        self._unsettled.clear()
        super().close()

    def failed(self, error: MessagingError) -> None:
        self._unsettled.clear()
        if self._on_failure is not None:
            self._on_failure(error)
