"""An AMQP 0-9-1 connection on py-amqp, shareable between threads.

Threading rule: one :class:`AmqpConnection` may be used from any number of
threads. py-amqp itself is not thread-safe, so every use of the underlying
connection happens under one lock. A background I/O thread waits for the
socket to become readable *without* the lock, then takes it briefly to read
what arrived: deliveries go to their reader's buffer, heartbeats are sent and
checked even when nobody else uses the connection. A blocking operation
(a declare, a publish waiting for its confirm) holds the lock for one broker
round trip; a publish does not: it writes its frames under the lock and
waits for the broker's confirm without it (the I/O thread resolves confirms),
so publishers on one connection overlap.

py-amqp silently re-opens a channel the broker closed with an error, and the
channel's consumers are gone. This adapter never uses a revived channel: a
closed channel is retired, its owner sees the error, and a new channel is
opened on the next use (readers subscribe again).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import amqp
from amqp import spec
from amqp.exceptions import error_for_code

from gofer.errors import (
    ConnectionLostError,
    MessagingError,
    NotFoundError,
    OperationTimeoutError,
    PreconditionError,
    RefusedError,
    TLSError,
    UnsupportedError,
)
from gofer.messaging.adapter.amqp.errors import is_connection_failure, translate
from gofer.messaging.adapter.amqp.reader import AmqpReader
from gofer.messaging.adapter.model import Address, Broker, Exchange, Queue

log = logging.getLogger(__name__)

# Most frames handled in one turn of the I/O thread before others get the lock.
_DRAIN_BATCH = 64
# Longest wait of the I/O thread when heartbeats are off (to notice close()).
_IDLE_TICK = 5.0
# Times a publish dropped with a channel another publish closed is sent again.
_COLLATERAL_RETRIES = 5
# Seconds to wait for the return that follows a nack (Broker-J).
_RETURN_WAIT = 1.0


class _Channel(amqp.Channel):  # type: ignore[misc]
    """A py-amqp channel that retires, instead of reviving, when the broker closes it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failure: MessagingError | None = None
        self.on_failure: Callable[[], None] | None = None
        #: Publishes waiting for their confirm, by delivery tag (confirm mode only).
        self.unconfirmed: dict[int, _Publish] = {}
        self.published = 0
        self.events["basic_ack"].add(self._on_ack)
        self.events["basic_nack"].add(self._on_nack)
        self.events["basic_return"].add(self._on_returned)

    def _on_close(self, reply_code: int, reply_text: str, class_id: int, method_id: int) -> None:
        self.send_method(spec.Channel.CloseOk)
        exc = error_for_code(reply_code, reply_text, (class_id, method_id), amqp.ChannelError)
        self.failure = translate(exc)
        connection = self.connection
        self.collect()
        if self.on_failure is not None:
            self.on_failure()
        # Raise only into the thread working on this very channel; a thread
        # that happened to be reading the socket for another channel must not
        # see somebody else's error (the owner finds ``failure`` instead).
        if connection is not None and getattr(connection, "gofer_active", None) is self:
            raise exc

    def track(self, publish: _Publish) -> None:
        """Expect the broker's confirm of the next message published on this channel."""
        self.published += 1
        self.unconfirmed[self.published] = publish

    def _confirmed(self, delivery_tag: int, multiple: bool) -> list[_Publish]:
        if not multiple:
            found = self.unconfirmed.pop(delivery_tag, None)
            return [found] if found is not None else []
        tags = [tag for tag in self.unconfirmed if tag <= delivery_tag]
        return [self.unconfirmed.pop(tag) for tag in tags]

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        for publish in self._confirmed(delivery_tag, multiple):
            publish.settle(acked=True)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        for publish in self._confirmed(delivery_tag, multiple):
            publish.settle(acked=False)

    def _on_returned(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        # A return names no delivery tag; our message id finds the publish.
        token = (getattr(message, "properties", None) or {}).get("message_id")
        for publish in self.unconfirmed.values():
            if publish.token == token:
                publish.returned = str(exc)
                return
        returned = _recently_nacked.pop(token, None) if token else None
        if returned is not None:
            returned.returned = str(exc)
            returned.return_seen.set()

    def fail_all(self, error: MessagingError) -> None:
        """Wake every publish still waiting on this channel.

        A missing exchange closes the channel for every publish on it: the
        ones to that exchange get ``error``, the others are told to try again
        (:class:`_CollateralError`), since their messages were dropped with the channel.
        """
        pending, self.unconfirmed = sorted(self.unconfirmed.items()), {}
        if not isinstance(error, NotFoundError):
            for _, publish in pending:
                publish.fail(error)
            return
        # The broker routed what came before the culprit and dropped what came
        # after it: the earlier ones count as sent, the later ones go again.
        culprits = [
            tag
            for tag, publish in pending
            if publish.exchange and f"'{publish.exchange}'" in str(error)
        ]
        first = culprits[0] if culprits else 0
        for tag, publish in pending:
            if tag < first:
                publish.settle(acked=True)
            elif tag in culprits:
                publish.fail(error)
            else:
                publish.fail(_CollateralError(str(error)))


class _CollateralError(MessagingError):
    """Another publish's error closed the channel and dropped this message: send it again."""


def _collateral(error: MessagingError | None, target: Address) -> bool:
    """True when another publish's error (a missing exchange) dropped this one."""
    if isinstance(error, _CollateralError):
        return True
    text = str(error)
    return (
        isinstance(error, NotFoundError)
        and "no exchange '" in text
        and f"no exchange '{target.exchange}'" not in text
    )


class _Publish:
    """One message waiting for its confirm (and maybe its return)."""

    def __init__(self, token: str, exchange: str = "") -> None:
        self.token = token
        self.exchange = exchange
        self.done = threading.Event()
        self.return_seen = threading.Event()
        self.acked = False
        self.returned: str | None = None
        self.error: MessagingError | None = None

    def settle(self, *, acked: bool) -> None:
        self.acked = acked
        if not acked and self.returned is None:
            # Broker-J nacks an unroutable mandatory message, then returns it.
            _recently_nacked[self.token] = self
        self.done.set()

    def fail(self, error: MessagingError) -> None:
        self.error = error
        self.done.set()
        self.return_seen.set()


#: Message ids: unique in this process (and, with the pid and start time, beyond).
_TOKENS = itertools.count(1)
_PROCESS = f"{os.getpid():x}{int(time.time()):x}"
#: Nacked publishes whose return may still come (Broker-J), by message id.
_recently_nacked: dict[str, _Publish] = {}


class _Driver(amqp.Connection):  # type: ignore[misc]
    Channel = _Channel
    gofer_active: _Channel | None = None


class AmqpConnection:
    """One AMQP 0-9-1 connection; see the module docstring for the threading rule."""

    def __init__(self, broker: Broker) -> None:
        """Open the connection.

        Raises:
            ConnectError, AuthenticationError, TLSError: see the contract.
        """
        self.broker = broker
        heartbeat = broker.heartbeat or 0
        self._operation_timeout = broker.operation_timeout
        self._lock = threading.RLock()
        self._closed = False
        self._lost: ConnectionLostError | None = None
        self._control: _Channel | None = None
        self._readers: weakref.WeakSet[AmqpReader] = weakref.WeakSet()
        self._driver = self._open(broker)
        self._dialect = _Dialect(self._driver.server_properties or {})
        self._tick = max(0.2, heartbeat / 4) if heartbeat else _IDLE_TICK
        self._io = threading.Thread(target=self._pump, name=f"gofer-amqp {broker}", daemon=True)
        self._io.start()

    def _open(self, broker: Broker) -> _Driver:
        url = broker.url
        if url.tls:
            _check_tls_files(broker)
        host = f"[{url.host}]" if ":" in url.host else url.host
        driver = _Driver(
            host=f"{host}:{url.port}",
            userid=url.userid if url.userid is not None else "guest",
            password=url.password if url.password is not None else "guest",
            virtual_host=url.virtual_host or "/",
            heartbeat=int(broker.heartbeat or 0),
            connect_timeout=broker.connect_timeout,
            read_timeout=self._operation_timeout,
            write_timeout=self._operation_timeout,
            ssl=_ssl_options(broker) if url.tls else False,
            confirm_publish=False,  # confirms are awaited by our own code, without the lock
        )
        try:
            driver.connect()
        except Exception as exc:
            with contextlib.suppress(Exception):
                driver.collect()
            raise translate(exc, connecting=True) from exc
        log.debug("connected to %s", broker)
        return driver

    # -- the contract -------------------------------------------------------

    @property
    def cancel_notify(self) -> bool:
        """True when the broker tells a consumer that its queue was deleted."""
        return self._dialect.cancel_notify

    @property
    def is_open(self) -> bool:
        return not self._closed and self._lost is None

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._lost is None:
                    self._driver.close()
            except Exception as exc:  # noqa: BLE001 - closing must not fail the caller
                log.debug("closing %s: %s", self.broker, exc)
            finally:
                with contextlib.suppress(Exception):
                    self._driver.collect()
        self._wake_readers()
        if threading.current_thread() is not self._io:
            self._io.join(self._tick + 1)

    def send(
        self,
        address: str,
        body: bytes,
        *,
        ttl: float | None = None,
        durable: bool = True,
        confirm: bool = True,
    ) -> None:
        target = Address.parse(address)
        # A publish to a missing exchange closes the channel, and with it the
        # publishes after it: only default-exchange messages (whose failure is
        # a mere return) go unconfirmed.
        confirm = confirm or bool(target.exchange)
        for attempt in range(_COLLATERAL_RETRIES + 1):
            try:
                publish = self._publish(target, body, ttl, durable)
            except NotFoundError as exc:
                if _collateral(exc, target) and attempt < _COLLATERAL_RETRIES:
                    continue
                raise
            if not confirm:
                return  # a nack or return is dropped with the publish (see _Channel)
            # Wait without the lock: the I/O thread reads the confirm.
            if not publish.done.wait(self._operation_timeout):
                error = OperationTimeoutError(f"no confirm from the broker for {target}")
                with self._lock:
                    self._mark_lost(error)
                raise self._lost or error
            if _collateral(publish.error, target) and attempt < _COLLATERAL_RETRIES:
                log.debug("publish to %s dropped with its channel; sending it again", target)
                continue
            self._settled(publish, target)
            return

    def _publish(self, target: Address, body: bytes, ttl: float | None, durable: bool) -> _Publish:
        token = f"gofer-{_PROCESS}-{next(_TOKENS)}"
        properties: dict[str, Any] = {"delivery_mode": 2 if durable else 1, "message_id": token}
        if ttl is not None:
            properties["expiration"] = self._dialect.expiration(ttl)
        message = amqp.Message(body, **properties)
        publish = _Publish(token, target.exchange)
        with self.using(self._control_channel) as channel:
            channel.basic_publish(
                message, exchange=target.exchange, routing_key=target.routing_key, mandatory=True
            )
            channel.track(publish)
        return publish

    def _settled(self, publish: _Publish, target: Address) -> None:
        if publish.error is not None:
            raise publish.error
        if not publish.acked and publish.returned is None:
            publish.return_seen.wait(_RETURN_WAIT)
            _recently_nacked.pop(publish.token, None)
        if publish.returned is not None:
            # RabbitMQ returns an unroutable mandatory message before it
            # confirms it; Broker-J nacks it first and returns it after.
            raise NotFoundError(f"no queue took the message sent to {target}: {publish.returned}")
        if not publish.acked:
            raise RefusedError(f"the broker refused the message sent to {target}")

    def reader(self, queue: str, *, prefetch: int = 1) -> AmqpReader:
        reader = AmqpReader(self, queue, prefetch)
        self._readers.add(reader)
        return reader

    def declare_queue(self, queue: Queue) -> None:
        arguments: dict[str, Any] = {}
        if queue.queue_type != "classic":
            if not self._dialect.queue_types:
                raise UnsupportedError(
                    f"{self._dialect.product} has no {queue.queue_type} queues ({queue.name!r})"
                )
            arguments["x-queue-type"] = queue.queue_type
        if queue.expiration is not None and self._dialect.queue_expiry:
            arguments["x-expires"] = max(1, int(queue.expiration * 1000))
        elif queue.expiration is not None:
            log.warning(
                "%s has no queue expiration; %s declared without one",
                self._dialect.product,
                queue.name,
            )
        try:
            with self.using(self._control_channel) as channel:
                channel.queue_declare(
                    queue.name,
                    durable=queue.durable,
                    exclusive=queue.exclusive,
                    auto_delete=queue.auto_delete,
                    arguments=arguments or None,
                )
        except PreconditionError as exc:
            if "x-queue-type" not in str(exc):
                raise
            raise PreconditionError(
                f"queue {queue.name!r} exists with another type than {queue.queue_type}: "
                f"declare it as it is, or delete it to have it made again ({exc})"
            ) from exc

    def delete_queue(self, name: str) -> None:
        with contextlib.suppress(NotFoundError), self.using(self._control_channel) as channel:
            channel.queue_delete(name)

    def purge_queue(self, name: str) -> int:
        with self.using(self._control_channel) as channel:
            return int(channel.queue_purge(name) or 0)

    def queue_exists(self, name: str) -> bool:
        try:
            with self.using(self._control_channel) as channel:
                channel.queue_declare(name, passive=True)
        except NotFoundError:
            return False
        return True

    def declare_exchange(self, exchange: Exchange) -> None:
        with self.using(self._control_channel) as channel:
            channel.exchange_declare(
                exchange.name,
                exchange.type,
                durable=exchange.durable,
                auto_delete=exchange.auto_delete,
            )

    def delete_exchange(self, name: str) -> None:
        with contextlib.suppress(NotFoundError), self.using(self._control_channel) as channel:
            channel.exchange_delete(name)

    def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        with self.using(self._control_channel) as channel:
            channel.queue_bind(queue, exchange, routing_key)

    def unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        with self.using(self._control_channel) as channel:
            channel.queue_unbind(queue, exchange, routing_key)

    # -- shared machinery ---------------------------------------------------

    @contextlib.contextmanager
    def using(self, channel_of: Callable[[], _Channel]) -> Iterator[_Channel]:
        """Hold the lock and work on a channel; driver errors come out translated.

        A channel error retires the channel (its owner opens another); a
        connection error marks the whole connection lost.
        """
        with self._lock:
            self._check()
            channel: _Channel | None = None
            try:
                channel = channel_of()
                self._driver.gofer_active = channel
                yield channel
            except MessagingError:
                raise
            except Exception as exc:
                error = channel.failure if channel is not None and channel.failure else None
                error = error or translate(exc)
                if is_connection_failure(error):
                    self._mark_lost(error)
                    raise self._lost from exc  # type: ignore[misc]
                if not self._driver.connected:
                    # Broker-J closes the whole connection for some errors
                    # (an exclusive queue in use, basic.get of a missing queue).
                    self._mark_lost(error)
                raise error from exc
            finally:
                self._driver.gofer_active = None

    def new_channel(self) -> _Channel:
        """Open a channel (call it inside :meth:`using`)."""
        channel: _Channel = self._driver.channel()
        return channel

    def _control_channel(self) -> _Channel:
        """The channel for publishing (in confirm mode) and declarations."""
        channel = self._control
        if channel is None or not channel.is_open or channel.failure is not None:
            channel = self._control = self.new_channel()
            channel.confirm_select()
            failed = channel

            def fail_publishes() -> None:
                failed.fail_all(failed.failure or MessagingError("channel closed"))

            channel.on_failure = fail_publishes
        return channel

    def _check(self) -> None:
        if self._lost is not None:
            raise self._lost
        if self._closed:
            raise ConnectionLostError(f"connection to {self.broker} is closed")

    def _mark_lost(self, error: MessagingError) -> None:
        if self._lost is None:
            self._lost = (
                error
                if isinstance(error, ConnectionLostError)
                else ConnectionLostError(f"connection to {self.broker} lost: {error}")
            )
            log.warning("%s", self._lost)
            with contextlib.suppress(Exception):
                self._driver.collect()
            if self._control is not None:
                self._control.fail_all(self._lost)
        self._wake_readers()

    def _wake_readers(self) -> None:
        for reader in list(self._readers):
            reader.wake()

    # -- the I/O thread -----------------------------------------------------

    def _pump(self) -> None:
        """Read the socket while nobody else does; keep heartbeats both ways."""
        more = False
        while self.is_open:
            sock = getattr(self._driver.transport, "sock", None)
            if sock is None:
                break
            if not more:
                # A socket closed under us raises here; the checks below notice.
                with contextlib.suppress(OSError, ValueError):
                    select.select([sock], [], [], self._tick)
            with self._lock:
                if not self.is_open:
                    break
                try:
                    more = self._drain()
                    self._driver.heartbeat_tick()
                except Exception as exc:  # noqa: BLE001 - every failure ends the connection
                    self._mark_lost(translate(exc))

    def _drain(self) -> bool:
        """Handle the frames already here; True when the batch limit stopped us."""
        for _ in range(_DRAIN_BATCH):
            try:
                self._driver.drain_events(timeout=0)
            except (socket.timeout, TimeoutError):  # one class from Python 3.10 on
                return False
            except amqp.ChannelError:
                continue  # recorded on its channel by _Channel._on_close
        return True


class _Dialect:
    """What differs between brokers that speak 0-9-1, learned from their start properties.

    - Qpid Broker-J reads the ``expiration`` property as an absolute time
      (epoch milliseconds); RabbitMQ as milliseconds from now.
    - Broker-J has no ``x-expires`` queue argument: a queue expiration is
      dropped there (with a warning) rather than failing the declaration.
    - Broker-J does not tell a consumer that its queue was deleted
      (no ``consumer_cancel_notify``).
    - Only RabbitMQ has quorum queues (``x-queue-type``).
    """

    def __init__(self, properties: dict[str, Any]) -> None:
        product = str(properties.get("product") or "")
        capabilities = properties.get("capabilities") or {}
        self.product = product
        self.qpid = product.startswith("Apache Qpid")
        self.queue_expiry = not self.qpid
        self.queue_types = product == "RabbitMQ"  # x-queue-type: quorum (3.8 on)
        self.cancel_notify = bool(capabilities.get("consumer_cancel_notify"))

    def expiration(self, ttl: float) -> str:
        """The ``expiration`` property for a TTL in seconds (py-amqp wants a string)."""
        milliseconds = max(0, int(ttl * 1000))
        if self.qpid:
            return str(int(time.time() * 1000) + milliseconds)
        return str(milliseconds)


def _check_tls_files(broker: Broker) -> None:
    """Raise TLSError naming a CA, certificate or key file that cannot be read."""
    tls = broker.tls
    for what, path in (
        ("cacert", tls.cacert),
        ("clientcert", tls.clientcert),
        ("clientkey", tls.clientkey),
    ):
        if path and not os.access(path, os.R_OK):
            raise TLSError(f"{what} {path} cannot be read")


def _ssl_options(broker: Broker) -> dict[str, Any]:
    tls = broker.tls
    options: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED}
    if tls.cacert:
        options["ca_certs"] = tls.cacert
    if tls.clientcert:
        options["certfile"] = tls.clientcert
        options["keyfile"] = tls.clientkey
    if tls.host_validation:
        options["server_hostname"] = broker.url.host
    return options
