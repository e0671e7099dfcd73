"""An AMQP 0-10 client connection: negotiation, the I/O thread, heartbeats and close.

Opening a connection runs the whole negotiation in the calling thread, within
``Settings.connect_timeout``: TCP (and TLS), the protocol header,
``connection.start`` / ``start-ok`` (SASL PLAIN or ANONYMOUS), ``tune`` /
``tune-ok`` and ``open`` / ``open-ok``. Then one background I/O thread owns
the socket:

- it reads frames, joins them into assemblies (:mod:`.framing`) and hands
  controls and commands to their session (:mod:`.session`) or handles them
  itself (``connection.close``, ``heartbeat``);
- it writes what other threads queued (:meth:`Connection.enqueue`), in order;
- it sends a heartbeat when nothing else went out for half the negotiated
  interval, and declares the connection lost after two intervals without
  a frame from the broker.

Other threads never touch the socket: they encode their frames, queue them
under :attr:`Connection.lock` (which also orders command ids) and wake the
I/O thread. The queue is bounded: a sender waits while more than
``Settings.max_queued`` octets wait for the socket. Reading never waits for
writing, so a large send cannot deadlock against incoming traffic.

Errors: a refused login is :class:`~gofer.errors.AuthenticationError`
(Qpid Broker-J says nothing on bad credentials: a broker that answered up to
the login and then stays silent for ``login_timeout`` has refused it), an
unreachable broker :class:`~gofer.errors.ConnectError`, a broken handshake
:class:`~gofer.errors.TLSError`, anything malformed from the broker
:class:`~gofer.errors.ProtocolError` (the connection is closed with
``framing-error``), and a connection that broke later
:class:`~gofer.errors.ConnectionLostError`.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import logging
import os
import platform
import selectors
import socket
import ssl
import sys
import threading
import time
import uuid
from typing import Any

from gofer.errors import (
    AccessDeniedError,
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    MessagingError,
    ProtocolError,
    TLSError,
)
from gofer.messaging.adapter.qpid.engine import codec, framing, spec010
from gofer.messaging.adapter.qpid.engine.base import Command, Control
from gofer.messaging.adapter.qpid.engine.errors import close_error
from gofer.messaging.adapter.qpid.engine.message import Message
from gofer.messaging.adapter.qpid.engine.session import Session
from gofer.messaging.adapter.qpid.engine.spec010 import SegmentType, Track
from gofer.messaging.adapter.qpid.engine.transport import Transport

log = logging.getLogger(__name__)

_CONNECTION_CLASS = spec010.CLASSES["connection"]
#: The most octets the I/O thread hands the transport before the socket drains them.
_TRANSPORT_BACKLOG = 1 << 20
#: Slack on top of two heartbeat intervals before the broker counts as gone.
_HEARTBEAT_SLACK = 1.0


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a connection needs to know.

    Attributes:
        host: the broker's host.
        port: its port.
        virtual_host: the virtual host to open ("" for the broker's default).
        username: the SASL user; None logs in ANONYMOUS where the broker
            offers it (PLAIN as guest otherwise).
        password: the SASL password.
        tls: the TLS context; None for plain TCP.
        server_hostname: the name the broker's certificate must carry (None:
            not checked).
        heartbeat: seconds between heartbeats asked for; 0 turns them off.
        connect_timeout: seconds for TCP, TLS and the negotiation together.
        login_timeout: seconds the broker may stay silent after our login
            before it counts as refused.
        max_frame_size: the largest frame we accept and send (4096 to 65535).
        max_message_size: the largest message body we accept.
        max_queued: octets that may wait for the socket before senders wait.
        client_properties: extra ``client-properties`` for the broker.
    """

    host: str
    port: int = spec010.PORT
    virtual_host: str = ""
    username: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None
    server_hostname: str | None = None
    heartbeat: int = 0
    connect_timeout: float = 10.0
    login_timeout: float = 5.0
    max_frame_size: int = framing.MAX_FRAME_SIZE
    max_message_size: int = framing.MAX_BODY_SIZE
    max_queued: int = 8 << 20
    client_properties: dict[str, Any] = dataclasses.field(default_factory=dict)


class Connection:
    """One open AMQP 0-10 connection; see the module docstring.

    Example::

        connection = Connection(Settings("localhost", 5673, username="gofer", password="gofer"))
        try:
            session = connection.session()
            session.execute(spec010.QueueDeclare(queue="jobs"), timeout=10)
            session.transfer("", Message(b"hello", routing_key="jobs"), timeout=10)
        finally:
            connection.close()

    Attributes:
        settings: as given.
        server_properties: what the broker said about itself in ``connection.start``.
        max_frame_size: the negotiated frame size.
        channel_max: the highest channel number we may use.
        heartbeat: the negotiated heartbeat interval (0: none).
    """

    def __init__(self, settings: Settings) -> None:
        """Connect and negotiate; see :class:`Settings` and the module docstring for errors."""
        self.settings = settings
        self.server_properties: dict[str, Any] = {}
        self.max_frame_size = max(spec010.MIN_MAX_FRAME_SIZE, settings.max_frame_size)
        self.channel_max = 0xFFFF
        self.heartbeat = 0
        #: Guards the output queue, command numbering and session state.
        self.lock = threading.Lock()
        self._room = threading.Condition(self.lock)
        self._outgoing: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._sessions: dict[int, Session] = {}
        self._channels = itertools.count(1)
        self._failure: MessagingError | None = None
        self._closing = False
        self._close_ok = threading.Event()
        self._stopped = threading.Event()
        self._reader = framing.FrameReader(max_frame_size=framing.MAX_FRAME_SIZE)
        self._assembler = framing.Assembler(max_body_size=settings.max_message_size)
        self._ready: collections.deque[framing.Assembly] = collections.deque()
        self._transport = self._negotiate()
        self._last_sent = self._last_received = time.monotonic()
        self._waker, self._wakee = socket.socketpair()
        self._wakee.setblocking(False)
        self._waker.setblocking(False)
        self._thread = threading.Thread(
            target=self._run, name=f"gofer-qpid {settings.host}:{settings.port}", daemon=True
        )
        self._thread.start()

    # -- negotiation ------------------------------------------------------------------

    def _negotiate(self) -> Transport:
        settings = self.settings
        deadline = time.monotonic() + settings.connect_timeout
        transport = Transport.connect(
            settings.host, settings.port, deadline, settings.tls, settings.server_hostname
        )
        try:
            self._handshake(transport, deadline)
        except BaseException:
            transport.close()
            raise
        return transport

    def _handshake(self, transport: Transport, deadline: float) -> None:
        settings = self.settings
        try:
            transport.send_all(framing.PROTOCOL_HEADER, deadline)
            self._read_protocol_header(transport, deadline)
        except ConnectionLostError as exc:
            if settings.tls is not None:
                # TLS 1.3 checks our certificate after the handshake: a broker
                # that refuses it hangs up, often before its alert can be read.
                raise TLSError(
                    f"the broker hung up right after the TLS handshake ({exc}); "
                    "does it want a client certificate it trusts?"
                ) from exc
            raise ConnectError(str(exc)) from exc
        start = self._next_control(transport, deadline, "connection.start")
        if not isinstance(start, spec010.ConnectionStart):
            raise ProtocolError(f"expected connection.start, got {start!r}")
        self.server_properties = start.server_properties or {}
        mechanism, response = sasl_response(
            start.mechanisms or [], settings.username, settings.password
        )
        transport.send_all(
            self.frame_control(
                0,
                spec010.ConnectionStartOk(
                    client_properties=self._client_properties(),
                    mechanism=mechanism,
                    response=response,
                    locale="en_US",
                ),
            ),
            deadline,
        )
        tune = self._login(transport, deadline, mechanism)
        self._tune(transport, tune, deadline)
        transport.send_all(
            self.frame_control(0, spec010.ConnectionOpen(virtual_host=settings.virtual_host)),
            deadline,
        )
        opened = self._next_control(transport, deadline, "connection.open-ok")
        if isinstance(opened, spec010.ConnectionOpenOk):
            return
        if isinstance(opened, spec010.ConnectionRedirect):
            raise ConnectError(f"the broker redirects to {opened.host}; gofer does not follow")
        if isinstance(opened, spec010.ConnectionClose):
            raise _open_refused(opened, settings.virtual_host)
        raise ProtocolError(f"expected connection.open-ok, got {opened!r}")

    def _read_protocol_header(self, transport: Transport, deadline: float) -> None:
        received = b""
        while len(received) < len(framing.PROTOCOL_HEADER):
            data = transport.receive(deadline, "the broker's protocol header")
            if not data:
                raise ConnectionLostError("the broker closed the connection at the protocol header")
            received += data
        header, rest = received[:8], received[8:]
        if header != framing.PROTOCOL_HEADER:
            raise ProtocolError(f"the broker does not speak AMQP 0-10: it answered {header!r}")
        self._feed(rest)

    def _login(
        self, transport: Transport, deadline: float, mechanism: str
    ) -> spec010.ConnectionTune:
        started = time.monotonic()
        try:
            answer = self._next_control(
                transport, min(deadline, started + self.settings.login_timeout), "the login"
            )
        except ConnectError as exc:
            raise AuthenticationError(
                f"the broker did not accept the {mechanism} login of "
                f"{self.settings.username!r}: no answer in {time.monotonic() - started:.1f}s "
                "(Qpid Broker-J answers bad credentials with silence)"
            ) from exc
        except ConnectionLostError as exc:
            raise AuthenticationError(f"the broker refused the {mechanism} login: {exc}") from exc
        if isinstance(answer, spec010.ConnectionTune):
            return answer
        if isinstance(answer, spec010.ConnectionClose):
            raise AuthenticationError(
                f"the broker refused the {mechanism} login: {answer.reply_code} {answer.reply_text}"
            )
        if isinstance(answer, spec010.ConnectionSecure):
            raise AuthenticationError(
                f"the broker sent a {mechanism} challenge gofer cannot answer"
            )
        raise ProtocolError(f"expected connection.tune, got {answer!r}")

    def _tune(self, transport: Transport, tune: spec010.ConnectionTune, deadline: float) -> None:
        settings = self.settings
        self.channel_max = min(tune.channel_max or 0xFFFF, 0xFFFF)
        self.max_frame_size = max(
            spec010.MIN_MAX_FRAME_SIZE,
            min(tune.max_frame_size or framing.MAX_FRAME_SIZE, self.max_frame_size),
        )
        heartbeat = 0
        if settings.heartbeat > 0 and tune.heartbeat_max != 0:
            low = tune.heartbeat_min or 1
            high = tune.heartbeat_max or 0xFFFF
            heartbeat = max(low, min(high, settings.heartbeat))
        self.heartbeat = heartbeat
        self._reader.max_frame_size = self.max_frame_size
        self._reader.max_channel = self.channel_max
        transport.send_all(
            self.frame_control(
                0,
                spec010.ConnectionTuneOk(
                    channel_max=self.channel_max,
                    max_frame_size=self.max_frame_size,
                    heartbeat=heartbeat,
                ),
            ),
            deadline,
        )

    def _next_control(self, transport: Transport, deadline: float, what: str) -> Control:
        """The next connection control during negotiation (heartbeats skipped)."""
        while True:
            while not self._ready:
                data = transport.receive(deadline, what)
                if not data:
                    raise ConnectionLostError(f"the broker closed the connection during {what}")
                self._feed(data)
            assembly = self._ready.popleft()
            if assembly.track != Track.CONTROL:
                raise ProtocolError(f"unexpected command during {what}")
            control = codec.decode_control(assembly.segments[0][1])
            if not isinstance(control, spec010.ConnectionHeartbeat):
                return control

    def _feed(self, data: bytes) -> None:
        for frame in self._reader.feed(data):
            assembly = self._assembler.add(frame)
            if assembly is not None:
                self._ready.append(assembly)

    def _client_properties(self) -> dict[str, Any]:
        return {
            "product": "gofer",
            "version": "3",
            "platform": f"Python {platform.python_version()}",
            "qpid.client_pid": os.getpid(),
            "qpid.client_process": os.path.basename(sys.argv[0]) if sys.argv else "python",
            **self.settings.client_properties,
        }

    # -- sessions ------------------------------------------------------------------------

    def session(self, on_failure: Any = None, timeout: float | None = None) -> Session:
        """Attach a new session.

        Args:
            on_failure: called (on the I/O thread) with the error that ends
                the session, if it ends other than by :meth:`Session.detach`.
            timeout: seconds to wait for the broker; the connect timeout when None.

        Raises:
            ConnectionLostError: the connection is gone.
            OperationTimeoutError: the broker did not attach it in time.
        """
        name = f"gofer-{uuid.uuid4()}".encode()
        with self.lock:
            self._check()
            channel = self._free_channel()
            session = Session(self, channel, name, on_failure)
            self._sessions[channel] = session
        try:
            session.attach(self.settings.connect_timeout if timeout is None else timeout)
        except MessagingError:
            self.forget(session)
            raise
        return session

    def _free_channel(self) -> int:
        for _ in range(self.channel_max + 1):
            channel = next(self._channels)
            if channel > self.channel_max:
                self._channels = itertools.count(1)
                channel = next(self._channels)
            if channel not in self._sessions:
                return channel
        raise MessagingError(f"all {self.channel_max} channels are in use")

    def forget(self, session: Session) -> None:
        """Free the channel of a session that has ended."""
        with self.lock:
            if self._sessions.get(session.channel) is session:
                del self._sessions[session.channel]

    # -- output (any thread) ---------------------------------------------------------

    def frame_control(self, channel: int, control: Control) -> bytes:
        """The frame of a control on ``channel``."""
        return framing.encode_single(
            SegmentType.CONTROL, codec.encode_control(control), Track.CONTROL, channel
        )

    def frame_command(
        self, channel: int, command: Command, sync: bool, message: Message | None = None
    ) -> list[bytes]:
        """The frames of a command (with its message, for a transfer) on ``channel``."""
        segments = [(int(SegmentType.COMMAND), codec.encode_command(command, sync))]
        if message is not None:
            segments.append((SegmentType.HEADER, codec.encode_header(message.header())))
            segments.append((SegmentType.BODY, message.body))
        return framing.encode_frames(segments, Track.COMMAND, channel, self.max_frame_size)

    def wait_for_room(self, size: int) -> None:
        """Wait (holding :attr:`lock`) until the output queue has room for ``size`` octets.

        Raises:
            ConnectionLostError: the connection is gone.
        """
        limit = self.settings.max_queued
        while self._queued and self._queued + size > limit and self._failure is None:
            self._room.wait(1.0)
        self._check()

    def enqueue(self, frames: list[bytes] | tuple[bytes, ...] | bytes) -> None:
        """Queue frames for the I/O thread (holding :attr:`lock`); :meth:`wake` it after."""
        if self._failure is not None or self._stopped.is_set():
            return
        if isinstance(frames, bytes):
            frames = (frames,)
        for frame in frames:
            self._outgoing.append(frame)
            self._queued += len(frame)

    def wake(self) -> None:
        """Wake the I/O thread to write what was queued."""
        if threading.current_thread() is self._thread:
            return  # it looks at the queue before it sleeps again
        with contextlib.suppress(OSError):
            self._waker.send(b"\0")

    # -- state ---------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """False once closed or lost."""
        return self._failure is None and not self._closing

    @property
    def failure(self) -> MessagingError | None:
        """Why the connection was lost, if it was."""
        return self._failure

    def _check(self) -> None:
        if self._failure is not None:
            raise _lost(self._failure)
        if self._closing:
            raise ConnectionLostError("the connection is closed")

    def close(self, timeout: float = 2.0) -> None:
        """Send ``connection.close``, wait up to ``timeout`` for ``close-ok``; safe to repeat."""
        with self.lock:
            first = not self._closing
            self._closing = True
            if first and self._failure is None:
                self.enqueue(
                    self.frame_control(
                        0, spec010.ConnectionClose(reply_code=200, reply_text="goodbye")
                    )
                )
        if first and self._failure is None:
            self.wake()
            self._close_ok.wait(timeout)
        self._stop()
        self._fail(ConnectionLostError("the connection is closed"), quietly=True)

    def _stop(self) -> None:
        self._stopped.set()
        self.wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(self.heartbeat + 2.0)

    def _fail(self, error: MessagingError, quietly: bool = False) -> None:
        """Mark the connection lost with ``error`` and end every session."""
        with self.lock:
            if self._failure is not None:
                return
            self._failure = error
            sessions = list(self._sessions.values())
            self._sessions.clear()
            self._outgoing.clear()
            self._queued = 0
            self._room.notify_all()
        if not quietly:
            log.warning("AMQP 0-10 connection to %s:%s lost: %s", *self._where(), error)
        lost = _lost(error)
        for session in sessions:
            session.connection_lost(lost)

    def _where(self) -> tuple[str, int]:
        return self.settings.host, self.settings.port

    # -- the I/O thread ------------------------------------------------------------------

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            selector.register(self._transport.sock, selectors.EVENT_READ)
            selector.register(self._wakee, selectors.EVENT_READ)
            self._loop(selector)
        except ProtocolError as exc:
            self._goodbye(exc)
            self._fail(exc)
        except MessagingError as exc:
            self._fail(exc)
        except Exception as exc:
            log.exception("AMQP 0-10 I/O thread of %s:%s failed", *self._where())
            self._fail(ProtocolError(f"internal error: {exc!r}"))
        finally:
            selector.close()
            self._transport.close()
            for end in (self._waker, self._wakee):
                with contextlib.suppress(OSError):
                    end.close()
            self._stopped.set()

    def _loop(self, selector: selectors.BaseSelector) -> None:
        writing = False
        while not self._stopped.is_set():
            self._write()
            if self._transport.wants_write != writing:
                writing = self._transport.wants_write
                events = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
                selector.modify(self._transport.sock, events)
            for key, mask in selector.select(self._heartbeat_duty()):
                if key.fileobj is self._wakee:
                    with contextlib.suppress(OSError):
                        while self._wakee.recv(4096):
                            pass
                elif mask & selectors.EVENT_READ:
                    self._read()

    def _write(self) -> None:
        """Move queued frames to the transport and send, until done or the socket is full.

        At most ``_TRANSPORT_BACKLOG`` octets sit in the transport at a time,
        so a large message is encrypted and sent in slices, and the sender's
        queue keeps its bound.
        """
        transport = self._transport
        while True:
            moved = 0
            with self.lock:
                while self._outgoing and transport.backlog < _TRANSPORT_BACKLOG:
                    frame = self._outgoing.popleft()
                    transport.write(frame)
                    moved += len(frame)
                if moved:
                    self._queued -= moved
                    self._room.notify_all()
                more = bool(self._outgoing)
            if moved:
                self._last_sent = time.monotonic()
            if not transport.flush() or not more:
                return  # the socket is full (the selector waits for it) or all is sent

    def _read(self) -> None:
        data = self._transport.read()
        if data is None:
            return
        if not data:
            if self._closing:
                self._close_ok.set()
                self._stopped.set()
                return
            if self._reader.pending or self._assembler.pending:
                raise ProtocolError(
                    "the broker closed the connection inside a frame or an assembly "
                    f"({self._reader.pending} octets of an unfinished frame)"
                )
            raise ConnectionLostError("the broker closed the connection")
        self._last_received = time.monotonic()
        self._feed(data)
        touched: dict[int, Session] = {}
        while self._ready:
            session = self._dispatch(self._ready.popleft())
            if session is not None:
                touched[session.channel] = session
        for session in touched.values():
            session.report_completed()

    def _dispatch(self, assembly: framing.Assembly) -> Session | None:
        """Hand one assembly to its handler; return the session that got a command."""
        data = assembly.segments[0][1]
        if assembly.track == Track.CONTROL:
            control = codec.decode_control(data)
            if control.CLASS_CODE == _CONNECTION_CLASS:
                self._on_connection_control(control)
                return None
            target = self._sessions.get(assembly.channel)
            if target is None:
                log.debug("control for unknown channel %d: %r", assembly.channel, control)
            else:
                target.on_control(control)
            return None
        command, _sync = codec.decode_command(data)
        target = self._sessions.get(assembly.channel)
        if target is None:
            log.debug("command for unknown channel %d: %r", assembly.channel, command)
            return None
        target.on_command(command, assembly.segments[1:])
        return target

    def _on_connection_control(self, control: Control) -> None:
        if isinstance(control, spec010.ConnectionHeartbeat):
            return
        if isinstance(control, spec010.ConnectionCloseOk):
            self._close_ok.set()
            self._stopped.set()
            return
        if isinstance(control, spec010.ConnectionClose):
            with self.lock:
                self.enqueue(self.frame_control(0, spec010.ConnectionCloseOk()))
            self._write()
            if self._closing:
                self._close_ok.set()
            self._stopped.set()
            self._fail(close_error(control.reply_code, control.reply_text), quietly=self._closing)
            return
        raise ProtocolError(f"unexpected {control.NAME} on an open connection")

    def _heartbeat_duty(self) -> float | None:
        """Send a due heartbeat, check the broker's; return seconds until the next duty.

        Idle, the thread wakes only for these duties (and for the broker's
        heartbeats): no polling.
        """
        interval = self.heartbeat
        if not interval:
            return None
        now = time.monotonic()
        silent = now - self._last_received
        allowed = 2 * interval + _HEARTBEAT_SLACK
        if silent > allowed:
            raise ConnectionLostError(
                f"no frame from the broker in {silent:.1f}s (heartbeat {interval}s)"
            )
        if now - self._last_sent >= interval / 2:
            with self.lock:
                self.enqueue(self.frame_control(0, spec010.ConnectionHeartbeat()))
            self._write()
        send_due = self._last_sent + interval / 2 - now
        check_due = self._last_received + allowed - now
        return max(0.01, min(send_due, check_due))

    def _goodbye(self, error: ProtocolError) -> None:
        """Tell the broker why we hang up on it (best effort, without waiting)."""
        with contextlib.suppress(Exception):
            close = spec010.ConnectionClose(
                reply_code=spec010.ConnectionCloseCode.FRAMING_ERROR, reply_text=str(error)[:200]
            )
            self._transport.write(self.frame_control(0, close))
            self._transport.flush()


def sasl_response(
    offered: list[Any], username: str | None, password: str | None
) -> tuple[str, bytes]:
    """The SASL mechanism and initial response for the login.

    With a user name: PLAIN (``\\0user\\0password``). Without one: ANONYMOUS
    when offered, else PLAIN as guest/guest (as the ``amqp`` adapter does).

    Raises:
        AuthenticationError: the broker offers neither mechanism we need.
    """
    mechanisms = [str(m).upper() for m in offered]
    if username is None and "ANONYMOUS" in mechanisms:
        return "ANONYMOUS", b""
    if "PLAIN" in mechanisms:
        user = "guest" if username is None else username
        secret = "guest" if username is None and password is None else password or ""
        return "PLAIN", b"\0" + user.encode() + b"\0" + secret.encode()
    wanted = "ANONYMOUS or PLAIN" if username is None else "PLAIN"
    raise AuthenticationError(
        f"the broker offers {', '.join(mechanisms) or 'no mechanism'}; gofer needs {wanted}"
    )


def _open_refused(close: spec010.ConnectionClose, virtual_host: str) -> MessagingError:
    text = f"the broker refused to open virtual host {virtual_host!r}: "
    text += f"{close.reply_code} {close.reply_text}"
    if close.reply_code == spec010.ConnectionCloseCode.INVALID_PATH:
        return AccessDeniedError(text)
    return ConnectError(text)


def _lost(error: MessagingError) -> ConnectionLostError:
    """The error that operations on a lost connection raise (chained to its cause)."""
    if isinstance(error, ConnectionLostError):
        fresh = ConnectionLostError(str(error))
        fresh.__cause__ = error.__cause__
        return fresh
    lost = ConnectionLostError(f"the connection was lost: {error}")
    lost.__cause__ = error
    return lost
