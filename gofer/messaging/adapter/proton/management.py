"""What differs between AMQP 1.0 brokers: address forms, and how queues and exchanges are managed.

AMQP 1.0 has no queue or exchange commands; each broker offers its own way:

- **Qpid Broker-J** has the AMQP management node ``$management``: requests
  carry ``operation``/``type``/``name`` (or ``index``/``key``) application
  properties and answer with a ``statusCode``. Queues and exchanges are
  created, read and deleted there; ``clearQueue`` purges and the exchange
  operations ``bind``/``unbind`` bind (their parameters go in the
  application properties, not the body). Addresses are node names
  (``queue``, ``exchange/routing-key``). Exchanges are created with
  ``unroutableMessageBehaviour=REJECT`` so that an unroutable message is
  refused (the broker detaches the sender with ``amqp:not-found``); the
  built-in ``amq.*`` exchanges discard them silently.
- **RabbitMQ 3.10's plugin** has no management node. Attaching to
  ``/queue/NAME`` declares the queue (durable unless the terminus
  durability is NONE; never exclusive, auto-delete or expiring);
  ``/amq/queue/NAME`` and ``/exchange/X/KEY`` never declare. A receiver
  attach on ``/amq/queue/NAME`` tells whether a queue exists. Deleting,
  purging, exchanges and bindings are impossible: those raise
  :class:`~gofer.messaging.adapter.proton.errors.UnsupportedError`.
- Any other broker gets plain node names and ``$management`` (an
  :class:`UnsupportedError` when it has none).
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import Future
from typing import Any, NamedTuple, Protocol

from proton import Connection as EngineConnection
from proton import Delivery, Message

from gofer.errors import (
    AccessDeniedError,
    MessagingError,
    NotFoundError,
    PreconditionError,
    UnsupportedError,
)
from gofer.messaging.adapter.model import Address, Exchange, Queue
from gofer.messaging.adapter.proton.links import Incoming, ReceiverLink, SenderLink

log = logging.getLogger(__name__)

MANAGEMENT_NODE = "$management"
_QUEUE = "org.apache.qpid.Queue"
_EXCHANGE = "org.apache.qpid.Exchange"
_EXCHANGE_TYPES = {
    "direct": "org.apache.qpid.DirectExchange",
    "topic": "org.apache.qpid.TopicExchange",
    "fanout": "org.apache.qpid.FanoutExchange",
}


class Reply(NamedTuple):
    """A management node's answer."""

    status: int
    description: str
    body: Any


class Engine(Protocol):
    """What the management strategies need from the connection."""

    def request(self, properties: dict[str, Any], body: Any = None) -> Reply:
        """Ask the ``$management`` node; raises UnsupportedError when there is none."""

    def probe(self, source: str) -> None:
        """Attach a receiver to ``source`` without credit and detach again.

        Raises:
            NotFoundError: the node does not exist.
            AccessDeniedError: it exists but is not ours to read (exclusive).
        """

    def declare_by_attach(self, target: str, durable: bool) -> None:
        """Attach a sender to ``target`` (the broker declares the node) and detach."""

    def forget_senders(self, queue: str) -> None:
        """Close cached senders to a queue before it is deleted."""


class Dialect:
    """A broker's address forms and management, chosen from its ``open`` properties.

    Attributes:
        product: the broker's ``product`` connection property.
        exists_on_attach: attaching a sender to a missing queue fails
            (False: the broker drops such messages silently, so the adapter
            checks that the queue exists).
        reports_deleted_queue: a reader learns that its queue was deleted.
        counts_first_acquirer: the broker's ``first-acquirer`` header says
            whether a message was delivered before (else only
            ``delivery-count`` does).
    """

    product = "AMQP 1.0 broker"
    exists_on_attach = True
    reports_deleted_queue = True
    counts_first_acquirer = False

    def __init__(self, engine: Engine, product: str) -> None:
        self.engine = engine
        self.product = product or self.product

    def target(self, address: Address) -> str:
        """The target address of a gofer address (``queue`` or ``exchange/key``)."""
        return str(address)

    def source(self, queue: str) -> str:
        """The source address that reads ``queue`` without declaring it."""
        return queue

    def reply_address(self, name: str) -> str | None:
        """Where replies to a reply queue ``name`` go; None when the broker has no such form."""
        return None

    def reply_source(self, name: str) -> str | None:
        """The source whose attach makes reply queue ``name`` (gone when the link goes)."""
        return None

    # -- management through $management ------------------------------------

    def declare_queue(self, queue: Queue) -> None:
        if queue.queue_type != "classic":
            raise UnsupportedError(f"{self.product} has no {queue.queue_type} queues")
        attributes: dict[str, Any] = {"name": queue.name, "durable": queue.durable}
        if queue.exclusive:
            attributes["exclusive"] = "CONNECTION"
            attributes["lifetimePolicy"] = "DELETE_ON_CONNECTION_CLOSE"
        elif queue.auto_delete:
            attributes["lifetimePolicy"] = "DELETE_ON_NO_OUTBOUND_LINKS"
        if queue.expiration is not None:
            log.warning(
                "%s has no queue expiration; %s declared without one", self.product, queue.name
            )
        reply = self._create(_QUEUE, queue.name, attributes)
        if reply.status == 409:
            current = self._read(_QUEUE, queue.name)
            if bool(current.get("durable")) != queue.durable:
                raise PreconditionError(
                    f"queue {queue.name!r} exists with durable={current.get('durable')}"
                )

    def delete_queue(self, name: str) -> None:
        self.engine.forget_senders(name)
        self._expect(self._by_key("DELETE", _QUEUE, name), (204, 404), f"delete queue {name!r}")

    def purge_queue(self, name: str) -> int:
        reply = self._by_key("clearQueue", _QUEUE, name)
        self._expect(reply, (200,), f"purge queue {name!r}")
        return int(reply.body or 0)

    def queue_exists(self, name: str) -> bool:
        reply = self._by_key("READ", _QUEUE, name)
        self._expect(reply, (200, 404), f"look up queue {name!r}")
        return reply.status == 200

    def declare_exchange(self, exchange: Exchange) -> None:
        if exchange.auto_delete:
            raise UnsupportedError(f"{self.product} has no auto-delete exchanges over AMQP 1.0")
        attributes = {
            "name": exchange.name,
            "durable": exchange.durable,
            "unroutableMessageBehaviour": "REJECT",
        }
        reply = self._create(_EXCHANGE_TYPES[exchange.type], exchange.name, attributes)
        if reply.status == 409:
            current = self._read(_EXCHANGE, exchange.name)
            if current.get("qpid-type") not in (None, exchange.type):
                raise PreconditionError(
                    f"exchange {exchange.name!r} exists as {current.get('qpid-type')}"
                )

    def delete_exchange(self, name: str) -> None:
        self._expect(
            self._by_key("DELETE", _EXCHANGE, name), (204, 404), f"delete exchange {name!r}"
        )

    def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        binding = {"destination": queue, "bindingKey": routing_key}
        reply = self._by_key("bind", _EXCHANGE, exchange, binding)
        self._expect(reply, (200,), f"bind {queue!r} to {exchange!r}")

    def unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        binding = {"destination": queue, "bindingKey": routing_key}
        reply = self._by_key("unbind", _EXCHANGE, exchange, binding)
        self._expect(reply, (200,), f"unbind {queue!r} from {exchange!r}")

    def _create(self, kind: str, name: str, attributes: dict[str, Any]) -> Reply:
        properties = {"operation": "CREATE", "type": kind, "name": name}
        reply = self.engine.request(properties, {**attributes, "object-path": name})
        self._expect(reply, (201, 409), f"create {name!r}")
        return reply

    def _read(self, kind: str, name: str) -> dict[str, Any]:
        reply = self._by_key("READ", kind, name)
        self._expect(reply, (200,), f"read {name!r}")
        return reply.body if isinstance(reply.body, dict) else {}

    def _by_key(
        self, operation: str, kind: str, name: str, extra: dict[str, Any] | None = None
    ) -> Reply:
        properties = {
            "operation": operation,
            "type": kind,
            "index": "object-path",
            "key": name,
            **(extra or {}),
        }
        return self.engine.request(properties)

    def _expect(self, reply: Reply, wanted: tuple[int, ...], what: str) -> None:
        if reply.status in wanted:
            return
        text = f"{self.product} cannot {what}: {reply.status} {reply.description}".rstrip()
        # Broker-J answers a bind to a missing queue with 400 "... is not found."
        if reply.status == 404 or "not found" in reply.description.lower():
            raise NotFoundError(text)
        if reply.status in (400, 409):
            raise PreconditionError(text)
        if reply.status in (401, 403):
            raise AccessDeniedError(text)
        if reply.status == 501:
            raise UnsupportedError(text)
        raise MessagingError(text)


class BrokerJ(Dialect):
    """Qpid Broker-J: node names and ``$management``; see the module docstring.

    It passes the sender's header through: ``first-acquirer`` means nothing,
    and only ``delivery-count`` marks a redelivery. A ``released`` message
    (a requeue) is not counted, so it comes back looking new; ``modified``
    with delivery-failed would count it, and with the queue's
    ``maximumDeliveryAttempts`` reached, drop it.
    """

    product = "Apache Qpid Broker-J"

    # A receiver on "exchange/subject" gets a queue of its own, bound with
    # that subject and deleted with the link. (A dynamic receiver would work
    # too, but its address changes with every attach: replies in flight
    # across a reconnect would go astray.)
    def reply_address(self, name: str) -> str | None:
        return f"amq.direct/{name}"

    def reply_source(self, name: str) -> str | None:
        return f"amq.direct/{name}"


class RabbitMQ(Dialect):
    """RabbitMQ's AMQP 1.0 plugin (3.x); see the module docstring.

    Queues are reached as ``/amq/queue/NAME`` (never declares; a message to a
    missing one is accepted and dropped, so sends check existence) and
    exchanges as ``/exchange/X/KEY``. A deleted queue is not reported to its
    readers (goferd notices through its periodic ``queue_exists``). A
    ``modified`` outcome ends the session (requeues are ``released``); a
    released message comes back with ``first-acquirer`` false.
    """

    product = "RabbitMQ"
    exists_on_attach = False
    reports_deleted_queue = False
    counts_first_acquirer = True

    def target(self, address: Address) -> str:
        if address.exchange:
            return f"/exchange/{address.exchange}/{address.routing_key}"
        return f"/amq/queue/{address.routing_key}"

    def source(self, queue: str) -> str:
        return f"/amq/queue/{queue}"

    # No dynamic receivers: a receiver on /exchange/amq.direct/NAME gets an
    # auto-delete queue of its own, bound with NAME and deleted with the link.
    def reply_address(self, name: str) -> str | None:
        return f"amq.direct/{name}"

    def reply_source(self, name: str) -> str | None:
        return f"/exchange/amq.direct/{name}"

    def declare_queue(self, queue: Queue) -> None:
        if queue.queue_type != "classic":
            if self.queue_exists(queue.name):
                return  # made by the operator (or over AMQP 0-9-1): used as it is
            raise UnsupportedError(
                f"RabbitMQ 3.x cannot declare {queue.queue_type} queues over AMQP 1.0: "
                f"declare {queue.name!r} once with the amqp adapter or rabbitmqadmin"
            )
        if queue.exclusive or queue.auto_delete:
            raise UnsupportedError(
                f"RabbitMQ cannot declare exclusive or auto-delete queues over AMQP 1.0 "
                f"({queue.name!r})"
            )
        if queue.expiration is not None:
            log.warning(
                "RabbitMQ cannot expire queues declared over AMQP 1.0; %s stays until "
                "deleted (non-durable ones go with a broker restart)",
                queue.name,
            )
        self.engine.declare_by_attach(f"/queue/{queue.name}", queue.durable)

    def delete_queue(self, name: str) -> None:
        raise self._unsupported(f"delete queue {name!r}")

    def purge_queue(self, name: str) -> int:
        raise self._unsupported(f"purge queue {name!r}")

    def queue_exists(self, name: str) -> bool:
        try:
            self.engine.probe(self.source(name))
        except NotFoundError:
            return False
        except AccessDeniedError:
            return True  # exclusive to another connection, but there
        return True

    def declare_exchange(self, exchange: Exchange) -> None:
        # An existing exchange is fine (its type cannot be checked); a missing one cannot be made.
        try:
            self.engine.declare_by_attach(f"/exchange/{exchange.name}", durable=False)
        except NotFoundError:
            raise self._unsupported(f"create exchange {exchange.name!r}") from None

    def delete_exchange(self, name: str) -> None:
        raise self._unsupported(f"delete exchange {name!r}")

    def bind(self, queue: str, exchange: str, routing_key: str) -> None:
        raise self._unsupported(f"bind {queue!r} to {exchange!r}")

    def unbind(self, queue: str, exchange: str, routing_key: str) -> None:
        raise self._unsupported(f"unbind {queue!r} from {exchange!r}")

    @staticmethod
    def _unsupported(what: str) -> UnsupportedError:
        return UnsupportedError(
            f"RabbitMQ's AMQP 1.0 plugin offers no way to {what}; use the amqp "
            f"(0-9-1) adapter or rabbitmqctl for that"
        )


def dialect_for(engine: Engine, properties: dict[Any, Any] | None) -> Dialect:
    """The dialect of the broker that sent these ``open`` properties."""
    product = str((properties or {}).get("product") or "")
    if product.startswith("RabbitMQ"):
        return RabbitMQ(engine, product)
    if product.startswith("Apache Qpid Broker-J"):
        return BrokerJ(engine, product)
    return Dialect(engine, product)


class ManagementClient:
    """Requests to ``$management``: a sender, and a dynamic receiver for answers (I/O thread)."""

    def __init__(self, engine: EngineConnection) -> None:
        self._waiting: dict[str, Future[Reply]] = {}
        self.replies = ReceiverLink(
            None, "$management replies", credit=100, deliver=self._answer, on_failure=self.fail
        )
        self.sender = SenderLink(MANAGEMENT_NODE, "sender to $management")
        self.replies.open(engine)
        self.sender.open(engine)
        self.ready: Future[None] = Future()
        self.replies.attached.add_done_callback(self._attached)

    @property
    def usable(self) -> bool:
        return self.replies.usable and self.sender.usable

    def _attached(self, attached: Future[None]) -> None:
        error = attached.exception()
        if error is None:
            self.ready.set_result(None)
        else:
            self.ready.set_exception(no_management(error))

    def request(self, properties: dict[str, Any], body: Any, future: Future[Reply]) -> None:
        message_id = str(uuid.uuid4())
        message = Message(
            id=message_id, reply_to=self.replies.remote_address, properties=properties, body=body
        )
        self._waiting[message_id] = future
        sent: Future[None] = Future()
        sent.add_done_callback(lambda done: self._refused(message_id, done))
        self.sender.send(message, sent)

    def _refused(self, message_id: str, sent: Future[None]) -> None:
        error = sent.exception()
        future = self._waiting.pop(message_id, None) if error is not None else None
        if future is not None and not future.done():
            future.set_exception(no_management(error))

    def _answer(self, incoming: Incoming) -> None:
        message = incoming.message
        incoming.link.settle(incoming.token, Delivery.ACCEPTED)
        future = self._waiting.pop(str(message.correlation_id), None)
        if future is None or future.done():
            return
        properties: dict[Any, Any] = message.properties or {}
        future.set_result(
            Reply(
                int(properties.get("statusCode") or 0),
                str(properties.get("statusDescription") or ""),
                message.body,
            )
        )

    def fail(self, error: MessagingError) -> None:
        self.sender.fail(error)
        self.replies.fail(error)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        self._waiting.clear()

    def close(self) -> None:
        self.sender.close()
        self.replies.close()


def no_management(error: BaseException | None) -> MessagingError:
    if isinstance(error, (NotFoundError, UnsupportedError)):
        return UnsupportedError(f"the broker has no usable {MANAGEMENT_NODE} node: {error}")
    if isinstance(error, MessagingError):
        return error
    return MessagingError(f"{MANAGEMENT_NODE}: {error}")
