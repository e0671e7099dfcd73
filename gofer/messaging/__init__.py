"""Messaging: broker URLs, documents, adapters and connections that reconnect."""

from gofer.messaging.adapter.model import TLS, Address, Broker, Delivery, Exchange, Queue
from gofer.messaging.connection import Connection, Reader
from gofer.messaging.document import Document
from gofer.messaging.retry import Backoff
from gofer.messaging.url import Url

__all__ = [
    "TLS",
    "Address",
    "Backoff",
    "Broker",
    "Connection",
    "Delivery",
    "Document",
    "Exchange",
    "Queue",
    "Reader",
    "Url",
]
