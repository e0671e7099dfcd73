"""An AMQP 0-10 connection on gofer's own protocol engine, shareable between threads.

Threading rule: one :class:`QpidConnection` may be used from any number of
threads. The engine's I/O thread owns the socket (see
:mod:`.engine.connection`); operations queue their commands and wait for the
broker's completion without holding any lock, so operations of many threads
overlap on the wire. Heartbeats are kept by the I/O thread, also while idle.

Declarations, deletions and sends run on one *control session*. In AMQP
0-10 a command that fails (``execution.exception``) ends its session and
the broker executes nothing after it; the control session is then replaced
on its next use, and an operation that was cut off that way (not executed)
is retried once on the new session. Each reader has a session of its own,
so a failure on one never touches another.

What differs from the ``amqp`` adapter on Qpid Broker-J:

- a message that no queue takes (including one sent to a missing exchange)
  is rejected by the broker (``message.reject``, unroutable), which gives
  :class:`~gofer.errors.NotFoundError` just like a missing queue does;
- ``ttl`` is relative (``delivery-properties.ttl`` in milliseconds);
- a queue ``expiration`` is not supported by Broker-J and is dropped with a
  warning (other 0-10 brokers get ``qpid.auto_delete_timeout``);
- an exclusive queue is exclusive to the connection and deleted with it, as
  in 0-9-1 (Broker-J's ``qpid.exclusivity_policy`` / ``qpid.lifetime_policy``);
- a wrong password is met with silence: it is reported after the login
  timeout (see :mod:`.engine.connection`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from gofer.errors import (
    ConnectionLostError,
    NotFoundError,
    OperationTimeoutError,
    UnsupportedError,
)
from gofer.messaging.adapter.model import Address, Broker, Exchange, Queue
from gofer.messaging.adapter.qpid.engine import spec010
from gofer.messaging.adapter.qpid.engine.base import Command, Struct
from gofer.messaging.adapter.qpid.engine.connection import Connection, Settings
from gofer.messaging.adapter.qpid.engine.errors import SessionLostError
from gofer.messaging.adapter.qpid.engine.message import Message
from gofer.messaging.adapter.qpid.engine.session import Session
from gofer.messaging.adapter.qpid.engine.transport import tls_context
from gofer.messaging.adapter.qpid.reader import QpidReader

log = logging.getLogger(__name__)

T = TypeVar("T")

# Longest wait for a silent broker after our login (Broker-J's answer to bad credentials).
_MAX_LOGIN_TIMEOUT = 5.0


def settings_for(broker: Broker) -> Settings:
    """The engine's settings for a broker URL and its options."""
    url = broker.url
    tls = None
    if url.tls:
        tls = tls_context(
            broker.tls.cacert,
            broker.tls.clientcert,
            broker.tls.clientkey,
            broker.tls.host_validation,
        )
    return Settings(
        host=url.host,
        port=url.port,
        virtual_host=url.virtual_host or "",
        username=url.userid,
        password=url.password,
        tls=tls,
        server_hostname=url.host if url.tls and broker.tls.host_validation else None,
        heartbeat=math.ceil(broker.heartbeat) if broker.heartbeat else 0,
        connect_timeout=broker.connect_timeout,
        login_timeout=max(0.5, min(_MAX_LOGIN_TIMEOUT, broker.connect_timeout / 2)),
    )


class QpidConnection:
    """One AMQP 0-10 connection; see the module docstring for the threading rule."""

    def __init__(self, broker: Broker) -> None:
        """Open the connection and its control session.

        Raises:
            ConnectError, AuthenticationError, TLSError: see the contract.
        """
        self.broker = broker
        self.operation_timeout = broker.operation_timeout
        self.engine = Connection(settings_for(broker))
        self._dialect = _Dialect(self.engine.server_properties)
        self._lock = threading.Lock()
        self._control: Session | None = None
        self._readers: weakref.WeakSet[QpidReader] = weakref.WeakSet()
        try:
            self._control_session()
        except BaseException:
            self.engine.close()
            raise
        log.debug("connected to %s", broker)

    # -- the contract -------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.engine.is_open

    def close(self) -> None:
        self.engine.close()
        for reader in list(self._readers):
            reader.wake()

    def send(
        self,
        address: str,
        body: bytes,
        *,
        ttl: float | None = None,
        durable: bool = True,
        confirm: bool = True,
    ) -> None:
        """Send one message; see ``contract.Connection.send`` (``confirm=False`` is taken)."""
        target = Address.parse(address)
        if target.exchange and not target.exchange.startswith("amq."):
            # Broker-J routes a transfer to a missing exchange through the
            # default exchange, so the exchange is looked up first (the
            # ``amq.*`` exchanges always exist).
            self._check_exchange(target.exchange)
        message = Message(body, routing_key=target.routing_key, durable=durable, ttl=ttl)
        timeout = self.operation_timeout
        try:
            self.run(lambda s: s.transfer(target.exchange, message, timeout, wait=confirm))
        except NotFoundError as exc:
            raise NotFoundError(f"no queue took the message sent to {target}: {exc}") from exc

    def _check_exchange(self, name: str) -> None:
        found = self.execute(spec010.ExchangeQuery(name=name))
        if not isinstance(found, spec010.ExchangeQueryResult) or found.not_found:
            raise NotFoundError(f"exchange {name!r} does not exist")

    def reader(self, queue: str, *, prefetch: int = 1) -> QpidReader:
        reader = QpidReader(self, queue, prefetch)
        self._readers.add(reader)
        return reader

    def reply_address(self, name: str) -> str | None:
        """Reply queues live with their reader where the broker cannot expire queues.

        That is Broker-J (see ``contract.ReplyQueues``); elsewhere None: the
        caller declares a queue that expires.
        """
        return None if self._dialect.queue_expiry else name

    def reply_reader(self, name: str, *, prefetch: int = 1) -> QpidReader:
        """Make reply queue ``name`` (deleted by the broker when its reader goes) and read it."""
        self.declare_queue(Queue(name, durable=False, auto_delete=True))
        return self.reader(name, prefetch=prefetch)

    def declare_queue(self, queue: Queue) -> None:
        if queue.queue_type != "classic":
            raise UnsupportedError(f"AMQP 0-10 brokers have no {queue.queue_type} queues")
        arguments: dict[str, Any] = dict(self._dialect.queue_arguments)
        auto_delete = queue.auto_delete
        if queue.exclusive:
            # 0-10 ties an exclusive queue to the session; gofer means the connection.
            arguments["qpid.exclusivity_policy"] = "CONNECTION"
            arguments["qpid.lifetime_policy"] = "DELETE_ON_CONNECTION_CLOSE"
        if queue.expiration is not None:
            if self._dialect.queue_expiry:
                arguments["qpid.auto_delete_timeout"] = max(1, math.ceil(queue.expiration))
                auto_delete = True
            else:
                log.warning(
                    "%s has no queue expiration; %s declared without one",
                    self._dialect.product,
                    queue.name,
                )
        self.execute(
            spec010.QueueDeclare(
                queue=queue.name,
                durable=queue.durable,
                exclusive=queue.exclusive,
                auto_delete=auto_delete,
                arguments=arguments or None,
            )
        )

    def delete_queue(self, name: str) -> None:
        with contextlib.suppress(NotFoundError):
            self.execute(spec010.QueueDelete(queue=name))

    def purge_queue(self, name: str) -> int:
        # queue.purge returns nothing: the count is the queue's depth just before.
        found = self._query(name)
        if found is None:
            raise NotFoundError(f"queue {name!r} does not exist")
        self.execute(spec010.QueuePurge(queue=name))
        return found.message_count or 0

    def queue_exists(self, name: str) -> bool:
        return self._query(name) is not None

    def _query(self, name: str) -> spec010.QueueQueryResult | None:
        result = self.execute(spec010.QueueQuery(queue=name))
        if isinstance(result, spec010.QueueQueryResult) and result.queue == name:
            return result
        return None  # Broker-J answers an empty result for a missing queue

    def declare_exchange(self, exchange: Exchange) -> None:
        self.execute(
            spec010.ExchangeDeclare(
                exchange=exchange.name,
                type=exchange.type,
                durable=exchange.durable,
                auto_delete=exchange.auto_delete,
            )
        )

    def delete_exchange(self, name: str) -> None:
        with contextlib.suppress(NotFoundError):
            self.execute(spec010.ExchangeDelete(exchange=name))

    def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        self.execute(spec010.ExchangeBind(queue=queue, exchange=exchange, binding_key=routing_key))

    def unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        self.execute(
            spec010.ExchangeUnbind(queue=queue, exchange=exchange, binding_key=routing_key)
        )

    # -- shared machinery ---------------------------------------------------

    def execute(self, command: Command) -> Struct | None:
        """Run one command on the control session; return its result."""
        return self.run(lambda session: session.execute(command, self.operation_timeout))

    def run(self, operation: Callable[[Session], T]) -> T:
        """Run ``operation`` on the control session.

        An operation cut off because the session ended under it (an earlier
        command of another thread failed) was not executed by the broker and
        runs once more on a new session. An operation the broker does not
        complete in time marks the connection lost.
        """
        for attempt in (1, 2):
            session = self._control_session()
            try:
                return operation(session)
            except SessionLostError:
                if attempt == 2:
                    raise
                log.debug("control session ended under an operation; trying a new one")
            except OperationTimeoutError as exc:
                self.engine.close(timeout=0.5)
                raise ConnectionLostError(f"connection to {self.broker} lost: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _control_session(self) -> Session:
        with self._lock:
            session = self._control
            if session is None or not session.is_open:
                session = self._control = self.engine.session(timeout=self.operation_timeout)
            return session

    def check(self) -> None:
        """Raise :class:`~gofer.errors.ConnectionLostError` if the connection is gone."""
        if not self.engine.is_open:
            failure = self.engine.failure
            raise ConnectionLostError(
                f"connection to {self.broker} is {'lost: ' + str(failure) if failure else 'closed'}"
            ) from failure


class _Dialect:
    """What differs between 0-10 brokers, learned from their ``connection.start`` properties.

    Qpid Broker-J has no idle-time queue expiry; the C++ broker (qpidd) has
    ``qpid.auto_delete_timeout`` on auto-delete queues. Broker-J limits
    deliveries per queue (see ``queue_arguments``).
    """

    def __init__(self, properties: dict[str, Any]) -> None:
        self.product = str(properties.get("product") or "the broker")
        broker_j = "Broker-J" in self.product
        self.queue_expiry = not broker_j
        #: Declared on every queue. Broker-J counts 0-10 deliveries against
        #: ``maximumDeliveryAttempts`` and drops a released message once the
        #: count is reached (the test broker sets 1 for 0-9-1's sake); a
        #: gofer queue never limits deliveries: a requeue must redeliver.
        self.queue_arguments: dict[str, Any] = (
            {"x-qpid-maximum-delivery-count": 0} if broker_j else {}
        )
