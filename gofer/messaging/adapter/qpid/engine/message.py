"""Messages as the engine's users see them, and their mapping onto 0-10 header structs."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from gofer.messaging.adapter.qpid.engine.base import Struct
from gofer.messaging.adapter.qpid.engine.spec010 import (
    MessageDeliveryMode,
    MessageDeliveryPriority,
    MessageDeliveryProperties,
    MessageProperties,
    MessageReplyTo,
)


@dataclasses.dataclass
class Message:
    """One message with the delivery and message properties gofer uses.

    Attributes:
        body: the content.
        routing_key: the routing key (the queue name through the default exchange).
        durable: the broker keeps the message across its restart
            (``delivery-mode`` persistent).
        ttl: seconds the broker keeps the message before discarding it
            (``ttl`` is sent in milliseconds); None: no limit.
        priority: 0 (lowest) to 9 (highest); medium (4) when None.
        message_id: a UUID identifying the message.
        correlation_id: the id of the message this one answers.
        reply_to: (exchange, routing key) where answers go.
        content_type: the MIME type of the body.
        content_encoding: the body's encoding.
        app_id: the sending application.
        user_id: the authenticated user (checked by brokers that support it).
        headers: application headers (a 0-10 map).
        exchange: on receipt, the exchange the message was sent to.
        redelivered: on receipt, the broker delivered it before.
    """

    body: bytes = b""
    routing_key: str | None = None
    durable: bool = True
    ttl: float | None = None
    priority: int | None = None
    message_id: uuid.UUID | None = None
    correlation_id: bytes | None = None
    reply_to: tuple[str, str] | None = None
    content_type: str | None = None
    content_encoding: str | None = None
    app_id: bytes | None = None
    user_id: bytes | None = None
    headers: dict[str, Any] | None = None
    exchange: str | None = None
    redelivered: bool = False

    def header(self) -> list[Struct]:
        """The header segment's structs for sending this message."""
        delivery = MessageDeliveryProperties(
            priority=MessageDeliveryPriority.MEDIUM if self.priority is None else self.priority,
            delivery_mode=(
                MessageDeliveryMode.PERSISTENT
                if self.durable
                else MessageDeliveryMode.NON_PERSISTENT
            ),
            routing_key=self.routing_key,
            ttl=None if self.ttl is None else max(1, round(self.ttl * 1000)),
        )
        reply_to = None
        if self.reply_to is not None:
            reply_to = MessageReplyTo(exchange=self.reply_to[0], routing_key=self.reply_to[1])
        properties = MessageProperties(
            content_length=len(self.body),
            message_id=self.message_id,
            correlation_id=self.correlation_id,
            reply_to=reply_to,
            content_type=self.content_type,
            content_encoding=self.content_encoding,
            user_id=self.user_id,
            app_id=self.app_id,
            application_headers=self.headers,
        )
        return [delivery, properties]

    @classmethod
    def received(cls, header: list[Struct], body: bytes) -> Message:
        """The message of a transfer the broker sent, from its header structs and body."""
        message = cls(body=body, durable=False)
        for entry in header:
            if isinstance(entry, MessageDeliveryProperties):
                message.routing_key = entry.routing_key
                message.exchange = entry.exchange
                message.durable = entry.delivery_mode == MessageDeliveryMode.PERSISTENT
                message.redelivered = entry.redelivered
                message.priority = entry.priority
                message.ttl = None if entry.ttl is None else entry.ttl / 1000
            elif isinstance(entry, MessageProperties):
                message.message_id = entry.message_id
                message.correlation_id = entry.correlation_id
                if entry.reply_to is not None:
                    message.reply_to = (
                        entry.reply_to.exchange or "",
                        entry.reply_to.routing_key or "",
                    )
                message.content_type = entry.content_type
                message.content_encoding = entry.content_encoding
                message.app_id = entry.app_id
                message.user_id = entry.user_id
                message.headers = entry.application_headers
        return message
