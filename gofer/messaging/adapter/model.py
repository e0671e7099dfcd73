"""Plain values shared by every adapter: broker settings, queue and exchange specs, deliveries."""

from __future__ import annotations

import dataclasses
from typing import Literal

from gofer.errors import MessagingError
from gofer.messaging.url import Url

ExchangeType = Literal["direct", "topic", "fanout"]
QueueType = Literal["classic", "quorum"]
QUEUE_TYPES: tuple[QueueType, ...] = ("classic", "quorum")

#: Shortest time allowed for one broker round trip (see Broker.operation_timeout).
MIN_OPERATION_TIMEOUT = 15.0

#: Longest queue, exchange or routing-key name, in UTF-8 bytes (AMQP's short string).
MAX_NAME = 255


@dataclasses.dataclass(frozen=True)
class TLS:
    """TLS settings for a broker connection.

    Host-name checking is on unless turned off; the broker's certificate is
    always verified (against ``cacert``, or the system's CAs without one).

    Attributes:
        cacert: PEM file of the CA(s) that signed the broker's certificate.
        clientcert: PEM file of our certificate (it may hold the key too).
        clientkey: PEM file of our private key.
        host_validation: check that the certificate names the host we dialled.
    """

    cacert: str | None = None
    clientcert: str | None = None
    clientkey: str | None = None
    host_validation: bool = True


@dataclasses.dataclass(frozen=True)
class Broker:
    """Everything needed to open a connection to one broker.

    Attributes:
        url: the parsed broker URL.
        tls: TLS settings, used when the URL's scheme asks for TLS.
        heartbeat: seconds between heartbeats; 0 or None turns them off.
        connect_timeout: seconds allowed for the TCP connect, TLS and the
            protocol handshake together.
        shuffle: when the URL names several brokers, start at a random one
            (spreading a fleet over a cluster's nodes); False keeps the
            order given.
    """

    url: Url
    tls: TLS = TLS()
    heartbeat: float | None = 10.0
    connect_timeout: float = 10.0
    shuffle: bool = True

    @classmethod
    def of(cls, url: str | Url, **settings: object) -> Broker:
        """Build settings from a URL string (or ``Url``) and keyword settings."""
        parsed = url if isinstance(url, Url) else Url.parse(url)
        return cls(url=parsed, **settings)  # type: ignore[arg-type]

    @property
    def operation_timeout(self) -> float:
        """Seconds one broker round trip may take before the connection counts as lost.

        Never less than ``MIN_OPERATION_TIMEOUT``, the connect timeout, or two
        heartbeats (a broker that heartbeats is alive, if slow).
        """
        return max(MIN_OPERATION_TIMEOUT, self.connect_timeout, 2 * (self.heartbeat or 0))

    def each(self) -> list[Broker]:
        """These settings for each broker the URL names, in the order given."""
        if not self.url.alternates:
            return [self]
        return [dataclasses.replace(self, url=url) for url in self.url.each()]

    def __str__(self) -> str:
        return str(self.url)


@dataclasses.dataclass(frozen=True)
class Queue:
    """A queue to declare.

    Attributes:
        name: the queue name.
        durable: survives a broker restart.
        auto_delete: deleted by the broker when its last consumer goes.
        exclusive: usable only by the declaring connection, deleted with it.
        expiration: seconds the queue may stay unused before the broker
            deletes it (AMQP ``x-expires``); None keeps it.
        queue_type: ``classic``, or ``quorum`` for a queue replicated over
            a RabbitMQ cluster's nodes (durable, never exclusive or
            auto-delete: declaring one otherwise is an error).
    """

    name: str
    durable: bool = True
    auto_delete: bool = False
    exclusive: bool = False
    expiration: float | None = None
    queue_type: QueueType = "classic"

    def __post_init__(self) -> None:
        if self.queue_type not in QUEUE_TYPES:
            raise MessagingError(
                f"queue {self.name!r}: unknown queue type {self.queue_type!r} "
                f"(expected {' or '.join(QUEUE_TYPES)})"
            )
        if self.queue_type == "quorum" and (self.exclusive or self.auto_delete or not self.durable):
            raise MessagingError(
                f"queue {self.name!r}: a quorum queue is durable, never exclusive or auto-delete"
            )


@dataclasses.dataclass(frozen=True)
class Exchange:
    """An exchange to declare.

    Attributes:
        name: the exchange name.
        type: ``direct``, ``topic`` or ``fanout``.
        durable: survives a broker restart.
        auto_delete: deleted by the broker when its last binding goes.
    """

    name: str
    type: ExchangeType = "direct"
    durable: bool = True
    auto_delete: bool = False


@dataclasses.dataclass(frozen=True)
class Delivery:
    """A message taken from a queue, to be acknowledged or rejected by its reader.

    Attributes:
        body: the message content.
        tag: the adapter's handle for ack/reject; opaque to everyone else.
        redelivered: the broker has delivered this message before.
    """

    body: bytes
    tag: object = dataclasses.field(repr=False)
    redelivered: bool = False


@dataclasses.dataclass(frozen=True)
class Address:
    """Where a message goes: ``queue`` or ``exchange/queue``.

    ``queue`` publishes through the default exchange with routing key
    ``queue``; ``exchange/queue`` publishes to ``exchange`` with that key.
    """

    exchange: str
    routing_key: str

    @classmethod
    def parse(cls, text: str) -> Address:
        """Split an address; an empty routing key or a second slash is an error.

        Raises:
            MessagingError: the address is empty or malformed.
        """
        if not isinstance(text, str) or not text:
            raise MessagingError(f"bad address: {text!r}")
        exchange, _, key = text.rpartition("/")
        if not key or "/" in exchange:
            raise MessagingError(f"bad address {text!r}: expected 'queue' or 'exchange/queue'")
        if len(exchange.encode()) > MAX_NAME or len(key.encode()) > MAX_NAME:
            raise MessagingError(
                f"bad address {text[:40]!r}...: names are {MAX_NAME} bytes at most"
            )
        return cls(exchange, key)

    @classmethod
    def valid(cls, text: object) -> bool:
        """True when ``text`` parses as an address."""
        try:
            cls.parse(text)  # type: ignore[arg-type]
        except MessagingError:
            return False
        return True

    def __str__(self) -> str:
        return f"{self.exchange}/{self.routing_key}" if self.exchange else self.routing_key
