"""Messaging: broker URLs, documents, adapters and connections that reconnect.

``Queue`` and ``Exchange`` here are the objects callers of the existing
gofer manage their queues with (:mod:`gofer.messaging.nodes`); the
declaration settings the adapters take are
:mod:`gofer.messaging.adapter.model`'s.
"""

from gofer import ENCODING
from gofer.errors import NotFound
from gofer.messaging.adapter.model import TLS, Address, Broker, Delivery
from gofer.messaging.auth import Authenticator, ValidationFailed
from gofer.messaging.connection import Connection, Reader
from gofer.messaging.connector import Connector
from gofer.messaging.document import Document
from gofer.messaging.nodes import Exchange, Producer, Queue
from gofer.messaging.retry import Backoff
from gofer.messaging.url import Url

__all__ = [
    "ENCODING",
    "TLS",
    "Address",
    "Authenticator",
    "Backoff",
    "Broker",
    "Connection",
    "Connector",
    "Delivery",
    "Document",
    "Exchange",
    "NotFound",
    "Producer",
    "Queue",
    "Reader",
    "Url",
    "ValidationFailed",
]
