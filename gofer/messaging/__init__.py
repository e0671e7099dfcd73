"""Messaging: broker URLs, documents, adapters and connections that reconnect.

The package also offers the names the existing gofer's callers import from
it: ``Queue``, ``Exchange`` and ``Node`` (:mod:`gofer.messaging.nodes`),
``Producer``, ``Sender`` and ``Reader`` (:mod:`gofer.messaging.messengers`),
``Consumer`` (:mod:`gofer.messaging.consumer`), ``Connector``, ``Broker`` and
``SSL`` (:mod:`gofer.messaging.connector`), ``URL``, ``Document``, the
authenticator base and the model errors. Our own reading and settings
classes keep their homes: :class:`gofer.messaging.connection.Reader`,
:class:`gofer.messaging.adapter.model.Broker`, ``Queue`` and ``Exchange``.
"""

from gofer import ENCODING
from gofer.errors import AdapterNotFound, NotFound
from gofer.errors import AdapterNotFoundError as AdapterError
from gofer.errors import AdapterNotFoundError as NoAdaptersLoaded
from gofer.messaging.adapter.model import TLS, Address, Delivery
from gofer.messaging.auth import Authenticator, ValidationFailed
from gofer.messaging.connection import Connection
from gofer.messaging.connector import SSL, Broker, Connector
from gofer.messaging.consumer import Consumer
from gofer.messaging.document import Document
from gofer.messaging.messengers import Producer, Reader, Sender
from gofer.messaging.model import DocumentError, ModelError, VersionError
from gofer.messaging.nodes import Exchange, Node, Queue
from gofer.messaging.retry import Backoff
from gofer.messaging.url import URL, Url

__all__ = [
    "ENCODING",
    "SSL",
    "TLS",
    "URL",
    "AdapterError",
    "AdapterNotFound",
    "Address",
    "Authenticator",
    "Backoff",
    "Broker",
    "Connection",
    "Connector",
    "Consumer",
    "Delivery",
    "Document",
    "DocumentError",
    "Exchange",
    "ModelError",
    "NoAdaptersLoaded",
    "Node",
    "NotFound",
    "Producer",
    "Queue",
    "Reader",
    "Sender",
    "Url",
    "ValidationFailed",
    "VersionError",
]
