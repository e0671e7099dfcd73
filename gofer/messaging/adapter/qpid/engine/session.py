"""An AMQP 0-10 session: numbered commands, completion, results, exceptions and deliveries.

Every command a peer sends on a session implicitly takes the next command id
(from the ``session.command-point``, 0 here). The receiver reports the ids it
has finished with ``session.completed``; the sender acknowledges such a report
with ``session.known-completed`` when asked (``timely-reply``). A command
with the ``sync`` bit asks for that report at once, which is how
:meth:`Session.execute` waits for a command: it sends it with ``sync`` and
returns once the broker completes it, with the ``execution.result`` if the
command has one. An ``execution.exception`` fails the command it names and
ends the session: the broker executes nothing after it, so every other
command still waiting fails with :class:`~.errors.SessionLostError`.

The broker's commands to us (deliveries, results, exceptions) are numbered
the same way; the session completes each as soon as it is handled and
reports them after each batch read from the socket. Without that report
Broker-J stops delivering.

Command ids are 32-bit serial numbers on the wire. Here they are plain,
ever-growing integers, mapped to and from the wire by their distance from
the current position, so a long-lived session survives the wrap-around.

Threading: any thread may send and wait; the connection's I/O thread calls
the ``on_*`` handlers. Session state is guarded by the connection's lock.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

from gofer.errors import MessagingError, NotFoundError, OperationTimeoutError
from gofer.messaging.adapter.qpid.engine import codec, spec010
from gofer.messaging.adapter.qpid.engine.base import Command, Control, RangeSet, Struct
from gofer.messaging.adapter.qpid.engine.errors import SessionLostError, execution_error
from gofer.messaging.adapter.qpid.engine.message import Message
from gofer.messaging.adapter.qpid.engine.spec010 import (
    MessageAcceptMode,
    MessageAcquireMode,
    MessageCreditUnit,
    MessageFlowMode,
    SegmentType,
)

if TYPE_CHECKING:
    from gofer.messaging.adapter.qpid.engine.connection import Connection

log = logging.getLogger(__name__)

_SERIAL = 1 << 32
_HALF = 1 << 31
#: Byte credit granted to a subscription: as much as the protocol can say.
UNLIMITED = 0xFFFFFFFF
#: Ask the broker to acknowledge our completion reports this often.
_KNOWN_COMPLETED_EVERY = 256


def unwrap(wire: int, reference: int) -> int:
    """The ever-growing id whose 32-bit value is ``wire``, nearest to ``reference``."""
    return reference + ((wire - reference + _HALF) % _SERIAL) - _HALF


def to_wire(ids: RangeSet) -> RangeSet:
    """A set of ever-growing ids as 32-bit sequence numbers (splitting at the wrap)."""
    wire = RangeSet()
    for first, upper in ids.ranges:
        lower = first
        while lower <= upper:
            top = min(upper, lower - lower % _SERIAL + _SERIAL - 1)
            wire.add_range(lower % _SERIAL, top % _SERIAL)
            lower = top + 1
    return wire


class Transfer(NamedTuple):
    """A message the broker delivered to a subscription.

    Attributes:
        id: the transfer's command id, to accept, reject or release it.
        destination: the subscription it was delivered to.
        message: the message.
    """

    id: int
    destination: str
    message: Message


class _Pending:
    """One command waiting for its completion (and result, or rejection)."""

    __slots__ = ("command", "completed", "done", "error", "rejected", "result")

    def __init__(self, command: Command) -> None:
        self.command = command
        self.done = threading.Event()
        self.completed = False
        self.result: Struct | None = None
        self.error: MessagingError | None = None
        self.rejected: str | None = None

    def settle(self) -> None:
        """Wake the waiter once everything it waits for has come."""
        if self.error is not None or (
            self.completed and (self.command.RESULT is None or self.result is not None)
        ):
            self.done.set()


class Session:
    """A session attached on one channel of a :class:`~.connection.Connection`.

    Open sessions with :meth:`Connection.session <.connection.Connection.session>`.

    Attributes:
        name: the session's name (unique on the connection).
        channel: its channel.
        failure: why the session ended, once it has.
    """

    def __init__(
        self,
        connection: Connection,
        channel: int,
        name: bytes,
        on_failure: Callable[[MessagingError], None] | None = None,
    ) -> None:
        self.connection = connection
        self.channel = channel
        self.name = name
        self.failure: MessagingError | None = None
        self.on_failure = on_failure
        self._lock = connection.lock
        self._attached = threading.Event()
        self._detached = threading.Event()
        self._next_id = 0  # our next command id
        self._pending: dict[int, _Pending] = {}
        self._incoming_next = 0  # the broker's next command id
        self._completed = RangeSet()  # the broker's commands we finished, not yet known-completed
        self._unreported = 0
        self._receivers: dict[str, Callable[[Transfer], None]] = {}

    # -- attaching and detaching ------------------------------------------------------

    def attach(self, timeout: float) -> None:
        """Attach the session and wait for the broker's ``attached``.

        Raises:
            OperationTimeoutError: no answer in time.
            SessionLostError: the broker refused the session.
        """
        self._send_controls(
            [
                spec010.SessionAttach(name=self.name),
                spec010.SessionCommandPoint(command_id=0, command_offset=0),
            ]
        )
        if not self._attached.wait(timeout) and self.failure is None:
            raise OperationTimeoutError(f"the broker did not attach a session in {timeout:g}s")
        self._check()

    def detach(self, timeout: float = 2.0) -> None:
        """Detach, waiting up to ``timeout`` for the broker to confirm; safe to repeat."""
        with self._lock:
            live = self.failure is None and self.connection.is_open
        if live:
            try:
                self._send_controls([spec010.SessionDetach(name=self.name)])
            except MessagingError as exc:
                log.debug("detaching session %r: %s", self.name, exc)
            else:
                self._detached.wait(timeout)
        self._end(SessionLostError(f"session {self.name.decode(errors='replace')} detached"))
        self.connection.forget(self)

    @property
    def is_open(self) -> bool:
        """True until the session ends (detached, failed, or its connection lost)."""
        return self.failure is None

    # -- sending ------------------------------------------------------------------------

    def execute(
        self,
        command: Command,
        timeout: float,
        message: Message | None = None,
        before: tuple[Command, ...] = (),
    ) -> Struct | None:
        """Send ``command`` with ``sync`` and wait until the broker completes it.

        Args:
            command: the command.
            timeout: seconds to wait for its completion.
            message: the message of a ``message.transfer``.
            before: commands sent just ahead of it, in the same write; if one
                fails, the error is raised here.

        Returns:
            The command's result (``execution.result``), for commands that have one.

        Raises:
            MessagingError: the broker raised an exception for it (translated;
                see :mod:`.errors`), or rejected the transferred message.
            SessionLostError: the session ended before the command ran.
            OperationTimeoutError: it did not complete in time.
        """
        pending = _Pending(command)
        self._send_many([*((c, None, None) for c in before), (command, pending, message)])
        if not pending.done.wait(timeout):
            with self._lock:
                self._pending = {k: v for k, v in self._pending.items() if v is not pending}
            raise OperationTimeoutError(
                f"the broker did not complete {command.NAME} within {timeout:g}s"
            )
        if pending.error is not None:
            raise _fresh(pending.error)
        if pending.rejected is not None:
            raise NotFoundError(f"the broker rejected the message: {pending.rejected}")
        return pending.result

    def send(self, *commands: Command) -> None:
        """Send commands without waiting (one write, in order)."""
        self._send_many([(command, None, None) for command in commands])

    def _send(self, command: Command, pending: _Pending | None, message: Message | None) -> None:
        self._send_many([(command, pending, message)])

    def _send_many(self, items: list[tuple[Command, _Pending | None, Message | None]]) -> None:
        connection = self.connection
        encoded = [
            (
                command,
                pending,
                connection.frame_command(self.channel, command, pending is not None, message),
            )
            for command, pending, message in items
        ]
        size = sum(len(frame) for *_, frames in encoded for frame in frames)
        with self._lock:
            connection.wait_for_room(size)
            self._check()
            for _command, pending, frames in encoded:
                if pending is not None:
                    self._pending[self._next_id] = pending
                self._next_id += 1
                connection.enqueue(frames)
        connection.wake()

    def _send_controls(self, controls: list[Control]) -> None:
        frames = [self.connection.frame_control(self.channel, control) for control in controls]
        with self._lock:
            self.connection.enqueue(frames)
        self.connection.wake()

    # -- messages -----------------------------------------------------------------------

    def transfer(self, exchange: str, message: Message, timeout: float, wait: bool = True) -> None:
        """Send ``message`` to ``exchange`` and wait until the broker has taken it.

        The transfer asks for explicit acceptance, so a message that no queue
        takes is rejected by the broker rather than silently dropped.

        Args:
            exchange: the exchange ("" for the default exchange).
            message: the message (its routing key included).
            timeout: seconds to wait for the broker.
            wait: False to return at once; a rejection is then only logged.

        Raises:
            NotFoundError: no queue took the message.
        """
        command = spec010.MessageTransfer(
            destination=exchange,
            accept_mode=MessageAcceptMode.EXPLICIT,
            acquire_mode=MessageAcquireMode.PRE_ACQUIRED,
        )
        if wait:
            self.execute(command, timeout, message)
        else:
            self._send(command, None, message)

    def subscribe(
        self,
        queue: str,
        destination: str,
        receiver: Callable[[Transfer], None],
        credit: int,
        timeout: float,
    ) -> None:
        """Subscribe to ``queue``: deliveries need explicit acceptance, credit flows per message.

        ``credit`` messages may be delivered before :meth:`grant` gives more;
        byte credit is unlimited. ``receiver`` is called on the I/O thread
        and must not block.

        Raises:
            NotFoundError: the queue does not exist.
            AccessDeniedError: the queue is exclusive to another connection.
        """
        with self._lock:
            self._receivers[destination] = receiver
        subscribe = (
            spec010.MessageSubscribe(
                queue=queue,
                destination=destination,
                accept_mode=MessageAcceptMode.EXPLICIT,
                acquire_mode=MessageAcquireMode.PRE_ACQUIRED,
            ),
            spec010.MessageSetFlowMode(destination=destination, flow_mode=MessageFlowMode.CREDIT),
            spec010.MessageFlow(
                destination=destination, unit=MessageCreditUnit.BYTE, value=UNLIMITED
            ),
            spec010.MessageFlow(
                destination=destination, unit=MessageCreditUnit.MESSAGE, value=credit
            ),
        )
        # One write: if the subscribe fails, the sync behind it carries the error.
        self.execute(spec010.ExecutionSync(), timeout, before=subscribe)

    def grant(self, destination: str, messages: int, *settle: Command) -> None:
        """Send ``settle`` commands (accept, release...), then give ``messages`` more credit."""
        self.send(
            *settle,
            spec010.MessageFlow(
                destination=destination, unit=MessageCreditUnit.MESSAGE, value=messages
            ),
        )

    def cancel(self, destination: str) -> None:
        """End a subscription (messages not yet accepted stay acquired until released)."""
        with self._lock:
            self._receivers.pop(destination, None)
        self.send(spec010.MessageCancel(destination=destination))

    @staticmethod
    def transfers(ids: Iterable[int]) -> RangeSet:
        """The wire set naming the transfers with these ids."""
        found = RangeSet()
        for transfer_id in ids:
            found.add(transfer_id)
        return to_wire(found)

    def flush(self) -> None:
        """Ask the broker to report what it has completed (``session.flush``)."""
        self._send_controls([spec010.SessionFlush(completed=True)])

    # -- the I/O thread's side ----------------------------------------------------------

    def on_control(self, control: Control) -> None:
        """Handle a session control from the broker."""
        name = getattr(control, "name", None)
        if name is not None and name != self.name:
            # About an earlier session on this channel (a late ``detached``).
            log.debug("session %r: ignored %r", self.name, control)
            return
        handler = _CONTROL_HANDLERS.get(type(control))
        if handler is None:
            log.debug("session %r: ignored %r", self.name, control)
            return
        handler(self, control)

    def on_command(self, command: Command, segments: list[tuple[int, bytes]]) -> None:
        """Handle a command from the broker, and count it completed."""
        with self._lock:
            command_id = self._incoming_next
            self._incoming_next += 1
        handler = _COMMAND_HANDLERS.get(type(command))
        if handler is not None:
            handler(self, command_id, command, segments)
        with self._lock:
            self._completed.add(command_id)
            self._unreported += 1

    def report_completed(self) -> None:
        """Tell the broker which of its commands are complete (after each read batch)."""
        with self._lock:
            if not self._unreported or self.failure is not None:
                return
            ask = self._unreported >= _KNOWN_COMPLETED_EVERY
            self._unreported = 0
            commands = to_wire(self._completed)
        self._send_controls([spec010.SessionCompleted(commands=commands, timely_reply=ask)])

    def _on_attached(self, control: spec010.SessionAttached) -> None:
        self._attached.set()

    def _on_detach(self, control: spec010.SessionDetach) -> None:
        self._send_controls([spec010.SessionDetached(name=self.name, code=0)])
        self._end(SessionLostError("the broker detached the session"))
        self.connection.forget(self)

    def _on_detached(self, control: spec010.SessionDetached) -> None:
        self._detached.set()
        code = control.code or 0
        reason = spec010.SessionDetachCode(code).name.lower() if code <= 4 else str(code)
        self._end(SessionLostError(f"the session was detached ({reason})"))
        self.connection.forget(self)

    def _on_command_point(self, control: spec010.SessionCommandPoint) -> None:
        with self._lock:
            self._incoming_next = unwrap(control.command_id or 0, self._incoming_next)

    def _on_completed(self, control: spec010.SessionCompleted) -> None:
        commands = control.commands or RangeSet()
        with self._lock:
            done = self._take_completed(commands)
        for pending in done:
            pending.completed = True
            pending.settle()
        if control.timely_reply:
            self._send_controls([spec010.SessionKnownCompleted(commands=commands)])

    def _take_completed(self, commands: RangeSet) -> list[_Pending]:
        done: list[_Pending] = []
        for first, last in self._ours(commands):
            for command_id in [i for i in self._pending if first <= i <= last]:
                done.append(self._pending.pop(command_id))
        return done

    def _ours(self, commands: RangeSet) -> list[tuple[int, int]]:
        """Wire ranges of our command ids as ranges of ever-growing ids."""
        ranges = []
        for lower, upper in commands.ranges:
            first = unwrap(lower % _SERIAL, self._next_id)
            ranges.append((first, first + (upper - lower)))
        return ranges

    def _on_known_completed(self, control: spec010.SessionKnownCompleted) -> None:
        last = (control.commands or RangeSet()).last()
        if last is not None:
            with self._lock:
                self._completed.remove_through(unwrap(last % _SERIAL, self._incoming_next))

    def _on_flush(self, control: spec010.SessionFlush) -> None:
        with self._lock:
            completed = to_wire(self._completed)
            expected = to_wire(RangeSet([(self._incoming_next, self._incoming_next)]))
            self._unreported = 0
        replies: list[Control] = []
        if control.expected:
            replies.append(spec010.SessionExpected(commands=expected))
        if control.confirmed:
            replies.append(spec010.SessionConfirmed(commands=completed))
        if control.completed:
            replies.append(spec010.SessionCompleted(commands=completed))
        self._send_controls(replies)

    def _on_request_timeout(self, control: spec010.SessionRequestTimeout) -> None:
        # Sessions here do not outlive their connection: grant no timeout.
        self._send_controls([spec010.SessionTimeout(timeout=0)])

    def _on_result(self, command_id: int, command: spec010.ExecutionResult, segments: Any) -> None:
        with self._lock:
            pending = self._pending.get(unwrap(command.command_id or 0, self._next_id))
        if pending is not None:
            pending.result = command.value if isinstance(command.value, Struct) else None
            pending.settle()

    def _on_exception(
        self, command_id: int, command: spec010.ExecutionException, segments: Any
    ) -> None:
        # Commands run in order: those before the failed one ran, none after it will.
        with self._lock:
            failed_id = unwrap(command.command_id or 0, self._next_id)
            earlier = [i for i in self._pending if i < failed_id]
            ran = [self._pending.pop(i) for i in earlier]
            failed = self._pending.pop(failed_id, None)
        for pending in ran:
            pending.completed = True
            pending.done.set()
        name = failed.command.NAME if failed is not None else "a command"
        error = execution_error(command.error_code, command.description, name)
        log.debug("session %r: %s", self.name, error)
        if failed is not None:
            failed.error = error
            failed.settle()
        self._send_controls([spec010.SessionDetach(name=self.name)])
        lost = SessionLostError(f"the session ended after an error: {error}")
        lost.__cause__ = error
        # A failed command nobody waited for (a subscribe) fails whoever waits after it.
        self._end(lost, error if failed is None else None)

    def _on_transfer(
        self, command_id: int, command: spec010.MessageTransfer, segments: Any
    ) -> None:
        header: list[Struct] = []
        body = b""
        for segment_type, data in segments:
            if segment_type == SegmentType.HEADER:
                header = codec.decode_header(data)
            elif segment_type == SegmentType.BODY:
                body = data
        destination = command.destination or ""
        with self._lock:
            receiver = self._receivers.get(destination)
        if receiver is None:
            log.debug("session %r: transfer for unknown subscription %r", self.name, destination)
            return
        receiver(Transfer(command_id, destination, Message.received(header, body)))

    def _on_reject(self, command_id: int, command: spec010.MessageReject, segments: Any) -> None:
        text = f"{command.text or 'rejected'} (code {command.code})"
        with self._lock:
            rejected = [
                self._pending[i]
                for first, last in self._ours(command.transfers or RangeSet())
                for i in self._pending
                if first <= i <= last
            ]
        for pending in rejected:
            pending.rejected = text
        if not rejected:
            log.info("the broker rejected a message sent without waiting: %s", text)

    # -- ending ---------------------------------------------------------------------------

    def connection_lost(self, error: MessagingError) -> None:
        """The connection is gone: end the session with ``error``."""
        self._end(error)

    def _end(self, error: MessagingError, waiters: MessagingError | None = None) -> None:
        """End the session: ``error`` is its failure, ``waiters`` (or it) fails what waits."""
        with self._lock:
            if self.failure is not None:
                return
            self.failure = error
            waiting, self._pending = list(self._pending.values()), {}
            self._receivers.clear()
        self._attached.set()
        for pending in waiting:
            if pending.error is None:
                pending.error = waiters or error
            pending.done.set()
        if self.on_failure is not None:
            cause = error.__cause__
            self.on_failure(cause if isinstance(cause, MessagingError) else error)

    def _check(self) -> None:
        if self.failure is not None:
            raise _fresh(self.failure)


def _fresh(error: MessagingError) -> MessagingError:
    """A copy of a stored error, so that each raise gets its own traceback."""
    fresh = copy.copy(error)
    fresh.__traceback__ = None
    return fresh


_CONTROL_HANDLERS: dict[type[Control], Callable[[Session, Any], None]] = {
    spec010.SessionAttached: Session._on_attached,
    spec010.SessionDetach: Session._on_detach,
    spec010.SessionDetached: Session._on_detached,
    spec010.SessionCommandPoint: Session._on_command_point,
    spec010.SessionCompleted: Session._on_completed,
    spec010.SessionKnownCompleted: Session._on_known_completed,
    spec010.SessionFlush: Session._on_flush,
    spec010.SessionRequestTimeout: Session._on_request_timeout,
}
_COMMAND_HANDLERS: dict[type[Command], Callable[[Session, int, Any, Any], None]] = {
    spec010.ExecutionResult: Session._on_result,
    spec010.ExecutionException: Session._on_exception,
    spec010.MessageTransfer: Session._on_transfer,
    spec010.MessageReject: Session._on_reject,
}
