"""Opening an AMQP 1.0 connection: options, TLS, the handshake and how it fails.

A connection is opened by a fresh :class:`~.loop.Loop` (one I/O thread per
connection). The caller's thread waits, up to the broker's connect time-out,
for the broker's ``open``, then for the answer to a first session (a broker
may refuse a virtual host only after its ``open``); the handler
:class:`Events` turns every way the attempt can end into a gofer error. A
login the broker is still judging gets a few seconds more (RabbitMQ answers
a wrong password after 3 s).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from proton import Condition, Endpoint, Event, Handler, SSLDomain
from proton import Connection as EngineConnection

from gofer.errors import ConnectError, ConnectionLostError, MessagingError
from gofer.messaging.adapter.model import TLS, Broker
from gofer.messaging.adapter.proton import errors
from gofer.messaging.adapter.proton.links import present
from gofer.messaging.adapter.proton.loop import Loop

#: Extra seconds for a login the broker is still judging when the connect
#: time-out passes: RabbitMQ answers a wrong password only after 3 s.
SASL_GRACE = 5.0
#: Seconds a graceful close may take before the socket is simply dropped.
CLOSE_TIMEOUT = 2.0


class Events(Handler):
    """Connection-level events (I/O thread): opened, confirmed, closed, lost.

    ``opened`` is settled by the broker's ``open`` (or by how the attempt
    failed); ``confirmed`` by the answer to a first session, since a broker
    may refuse the connection only after its ``open`` (RabbitMQ, for a
    virtual host the user may not use). A failure before ``confirmed`` fails
    the connect; after it, the connection is lost.
    """

    def __init__(self, broker: Broker) -> None:
        super().__init__()
        self.broker = broker
        self.opened: Future[EngineConnection] = Future()
        self.confirmed: Future[None] = Future()
        self.closed: Future[None] = Future()
        self.closing = False
        self.on_lost: Callable[[MessagingError], None] | None = None

    def on_connection_remote_open(self, event: Event) -> None:
        connection = present(event.connection, "connection")
        # A refusal is an open at once followed by a close with the reason
        # (Broker-J, for an unknown virtual host): wait for that close.
        if connection.remote_condition is None and not self.opened.done():
            self.opened.set_result(connection)

    def on_connection_remote_close(self, event: Event) -> None:
        connection = present(event.connection, "connection")
        if connection.state & Endpoint.LOCAL_ACTIVE:
            connection.close()
        self._ended(connection.remote_condition)

    def on_transport_closed(self, event: Event) -> None:
        connection = event.connection
        condition = present(event.transport, "transport").condition
        if condition is None and connection is not None:
            condition = connection.remote_condition
        self._ended(condition)

    def confirm(self, connection: EngineConnection) -> None:
        """Begin (and then end) a session; its answer settles ``confirmed`` (I/O thread)."""
        session = connection.session()
        session.handler = _Confirmation(self.confirmed)
        session.open()

    def _ended(self, condition: Condition | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        if self.closing:
            return
        where = f"connection to {self.broker}"
        if not self.confirmed.done():
            error = errors.while_connecting(condition, where=where)
            for future in (self.opened, self.confirmed):
                if not future.done():
                    future.set_exception(error)
        elif self.on_lost is not None:
            self.on_lost(errors.from_condition(condition, where=where, connection_level=True))


class _Confirmation(Handler):
    """The handler of the first session: its ``begin`` answered means the broker took us."""

    def __init__(self, confirmed: Future[None]) -> None:
        super().__init__()
        self.confirmed = confirmed

    def on_session_remote_open(self, event: Event) -> None:
        if not self.confirmed.done():
            self.confirmed.set_result(None)
        present(event.session, "session").close()


def open_connection(
    broker: Broker, on_lost: Callable[[MessagingError], None]
) -> tuple[Loop, EngineConnection, Events]:
    """Connect, choosing RabbitMQ's ``vhost:NAME`` host name when that is the broker."""
    hostname = broker.url.virtual_host if broker.url.virtual_host not in (None, "/") else None
    loop, engine, events = _connect(broker, hostname)
    product = str((engine.remote_properties or {}).get("product") or "")
    if hostname and product.startswith("RabbitMQ") and not hostname.startswith("vhost:"):
        # RabbitMQ's plugin picks the virtual host from "vhost:NAME" and
        # silently uses its default one for any other host name.
        abort(loop, engine)
        loop, engine, events = _connect(broker, f"vhost:{hostname}")
    events.on_lost = on_lost
    return loop, engine, events


def _connect(broker: Broker, hostname: str | None) -> tuple[Loop, EngineConnection, Events]:
    url = broker.url
    events = Events(broker)
    loop = Loop(f"gofer-proton {broker}", Handler())
    try:
        options = _options(broker, hostname)
    except Exception as exc:
        raise errors.translate(exc, connecting=True) from exc
    host = f"[{url.host}]" if ":" in url.host else url.host
    address = f"{'amqps' if url.tls else 'amqp'}://{host}:{url.port}"
    engine = loop.container.connect(address, handler=events, **options)
    loop.track(events.opened)
    loop.track(events.confirmed)
    loop.start()
    try:
        _await_open(loop, engine, events, broker.connect_timeout)
        loop.call(lambda: events.confirm(engine), broker.connect_timeout)
        _wait_confirmed(events, broker.connect_timeout)
    except BaseException:
        abort(loop, engine)
        raise
    return loop, engine, events


def _await_open(loop: Loop, engine: EngineConnection, events: Events, timeout: float) -> None:
    try:
        events.opened.result(timeout)
        return
    except FutureTimeout:  # TimeoutError itself from Python 3.11 on
        pass
    except MessagingError as error:
        if loop.failure is not None:
            raise errors.translate(loop.failure, connecting=True) from loop.failure
        raise error from None
    if _judging_login(loop, engine):
        try:
            events.opened.result(SASL_GRACE)
            return
        except FutureTimeout:  # TimeoutError itself from Python 3.11 on
            pass
        except MessagingError as error:
            raise error from None
    raise ConnectError(f"timed out connecting to {events.broker} after {timeout:g}s")


def _wait_confirmed(events: Events, timeout: float) -> None:
    try:
        events.confirmed.result(timeout)
    except FutureTimeout:  # TimeoutError itself from Python 3.11 on
        raise ConnectError(
            f"{events.broker} opened the connection but did not answer in {timeout:g}s"
        ) from None
    except MessagingError as error:
        raise error from None


def _judging_login(loop: Loop, engine: EngineConnection) -> bool:
    """True when the broker has spoken SASL and not yet said whether our login is good."""

    def judging() -> bool:
        transport = engine.transport
        return transport is not None and transport.frames_input > 0

    try:
        return bool(loop.call(judging, 1.0))
    except MessagingError:
        return False


def abort(loop: Loop, engine: EngineConnection) -> None:
    """Drop the socket and end the loop (after a failed or superseded connect)."""

    def drop() -> None:
        transport = engine.transport
        if transport is not None:
            transport.close_head()
            transport.close_tail()
        loop.end(ConnectionLostError("connection abandoned"))

    with contextlib.suppress(MessagingError):
        loop.call(drop, CLOSE_TIMEOUT)
    loop.join(CLOSE_TIMEOUT)


def _options(broker: Broker, hostname: str | None) -> dict[str, Any]:
    url = broker.url
    options: dict[str, Any] = {
        "reconnect": False,
        # proton advertises half of its local idle time-out and gives up after
        # all of it: the broker then sends something at least every
        # ``heartbeat`` seconds and two silent periods end the connection, as
        # with 0-9-1. (RabbitMQ's plugin rounds the advertised value down to
        # whole seconds; below one it would send nothing.)
        "heartbeat": 2 * broker.heartbeat if broker.heartbeat else None,
        "sasl_enabled": True,
        "allow_insecure_mechs": True,
        "sni": url.host,
    }
    if hostname:
        options["virtual_host"] = hostname
    if url.userid is not None:
        # Without an explicit PLAIN, proton may pick ANONYMOUS and ignore the
        # credentials (RabbitMQ then lets a wrong password in).
        options.update(user=url.userid, password=url.password or "", allowed_mechs="PLAIN")
    else:
        options["allowed_mechs"] = "ANONYMOUS"
    if url.tls:
        options["ssl_domain"] = ssl_domain(broker.tls)
    return options


def ssl_domain(tls: TLS) -> SSLDomain:
    """A client TLS configuration: the broker's certificate always verified, its name by default.

    Raises:
        SSLException: a file cannot be read (translated by the caller).
    """
    domain = SSLDomain(SSLDomain.MODE_CLIENT)
    if tls.cacert:
        domain.set_trusted_ca_db(tls.cacert)
    if tls.clientcert:
        domain.set_credentials(tls.clientcert, tls.clientkey or tls.clientcert, None)
    mode = SSLDomain.VERIFY_PEER_NAME if tls.host_validation else SSLDomain.VERIFY_PEER
    domain.set_peer_authentication(mode, tls.cacert)
    return domain
