"""gofer's one error tree; every layer raises from it and drivers are translated into it.

::

    GoferError
    ├── ConfigError                  a bad or missing setting (names file, section, key)
    └── MessagingError               anything between us and a broker
        ├── InvalidURLError          a broker URL that cannot be parsed
        ├── InvalidDocumentError     a message body that is not a JSON object
        ├── AdapterNotFoundError     no adapter provides the name asked for
        ├── BrokerUnavailableError   recoverable: the broker cannot be reached now
        │   ├── ConnectError         connecting failed (refused, unknown host, timed out)
        │   └── ConnectionLostError  an open connection broke
        ├── AuthenticationError      the broker refused our credentials
        ├── TLSError                 the TLS handshake or certificate check failed
        ├── NotFoundError            a queue or exchange does not exist
        ├── PreconditionError        a declaration conflicts with what the broker has
        ├── AccessDeniedError        the broker user lacks permission for the operation
        ├── OperationTimeoutError    the broker did not answer an operation in time
        └── ProtocolError            the peer broke the protocol, or we cannot speak it

Only ``BrokerUnavailableError`` and its subclasses are worth retrying: the
reconnect loop in :mod:`gofer.messaging.retry` retries on them and nothing else.
The old names ``NotFound`` and ``AdapterNotFound`` stay as aliases.
"""

from __future__ import annotations


class GoferError(Exception):
    """Root of every error gofer raises on purpose."""


class ConfigError(GoferError):
    """A configuration file, section or key is missing or wrong.

    Args:
        message: what is wrong.
        path: the file, when there is one.
        section: the section, when known.
        key: the key, when known.
    """

    def __init__(
        self,
        message: str,
        path: str | None = None,
        section: str | None = None,
        key: str | None = None,
    ) -> None:
        where = [
            f"{label} {value!r}"
            for label, value in (("file", path), ("section", section), ("key", key))
            if value
        ]
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.path = path
        self.section = section
        self.key = key


class MessagingError(GoferError):
    """Something went wrong talking to a broker."""


class InvalidURLError(MessagingError, ValueError):
    """A broker URL does not follow ``[adapter+]scheme://[user:password@]host[:port][/vhost]``."""


class InvalidDocumentError(MessagingError, ValueError):
    """A message body is not UTF-8 JSON holding an object."""


class AdapterNotFoundError(MessagingError, LookupError):
    """No installed adapter provides the requested name."""


class BrokerUnavailableError(MessagingError):
    """The broker cannot be reached right now; retrying later may work."""


class ConnectError(BrokerUnavailableError):
    """A connection could not be opened (refused, unknown host, timed out)."""


class ConnectionLostError(BrokerUnavailableError):
    """An open connection broke (closed by the broker, network, missed heartbeats)."""


class AuthenticationError(MessagingError):
    """The broker refused the credentials (or the mechanism)."""


class TLSError(MessagingError):
    """The TLS handshake failed: unknown CA, wrong host name, missing client certificate."""


class NotFoundError(MessagingError):
    """A queue or exchange does not exist, or a message routed to no queue."""


class PreconditionError(MessagingError):
    """A declaration conflicts with the broker's existing queue or exchange."""


class AccessDeniedError(MessagingError):
    """The broker user is not allowed to do this (permissions, exclusive queue)."""


class OperationTimeoutError(MessagingError):
    """The broker did not answer an operation in time."""


class ProtocolError(MessagingError):
    """The peer broke the protocol, or speaks one we cannot."""


# Names of the existing gofer, kept for callers that catch them.
NotFound = NotFoundError
AdapterNotFound = AdapterNotFoundError
