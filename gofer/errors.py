"""gofer's one error tree; every layer raises from it and drivers are translated into it.

::

    GoferError
    ├── ConfigError                  a bad or missing setting (names file, section, key)
    ├── MessagingError               anything between us and a broker
    │   ├── InvalidURLError          a broker URL that cannot be parsed
    │   ├── InvalidDocumentError     a message body that is not a JSON object
    │   ├── AdapterNotFoundError     no adapter provides the name asked for
    │   ├── BrokerUnavailableError   recoverable: the broker cannot be reached now
    │   │   ├── ConnectError         connecting failed (refused, unknown host, timed out)
    │   │   └── ConnectionLostError  an open connection broke
    │   ├── AuthenticationError      the broker refused our credentials
    │   ├── TLSError                 the TLS handshake or certificate check failed
    │   ├── NotFoundError            a queue or exchange does not exist
    │   ├── PreconditionError        a declaration conflicts with what the broker has
    │   ├── AccessDeniedError        the broker user lacks permission for the operation
    │   ├── OperationTimeoutError    the broker did not answer an operation in time
    │   ├── UnsupportedError         the broker (or protocol) offers no way to do this
    │   └── ProtocolError            the peer broke the protocol, or we cannot speak it
    └── RmiError                     a remote call did not give a result
        ├── RequestTimeoutError      no final reply within ``wait`` (carries ``sn``)
        ├── RequestRejectedError     the agent refused to run it (carries ``code``)
        ├── RemoteError              the remote method raised an exception we do not rebuild
        ├── RequestInterruptedError  goferd stopped while it ran; it was not run again
        ├── ResultTooLargeError      the method's result was too large to send back
        └── DispatchError            the agent would not run it as asked
            ├── NotAuthorized        the shared secret (or PAM login) was wrong
            ├── NamespaceNotFound    no such class or plugin namespace on the agent
            └── MemberNotFound       no such remote method or function on the agent

``DispatchError``, ``NotAuthorized``, ``NamespaceNotFound`` and
``MemberNotFound`` keep the names they have on the wire (the ``xclass`` of
exception replies) and in the existing gofer.

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


class RefusedError(BrokerUnavailableError):
    """The broker would not take a message now (a publisher nack).

    A quorum queue refuses while it has no quorum (most of its nodes down, or
    this node cut off from them); another node, or the same one later, may
    take it. The message was not stored, so sending it again is safe.
    """


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


class UnsupportedError(MessagingError):
    """The broker offers no way to do this over the adapter's protocol.

    For example declaring an exchange or binding through RabbitMQ's AMQP 1.0
    plugin. Not worth retrying: the same broker refuses the same request again.
    """


class ProtocolError(MessagingError):
    """The peer broke the protocol, or speaks one we cannot."""


class RmiError(GoferError):
    """A remote call did not produce a result."""


class RequestTimeoutError(RmiError):
    """No final reply arrived within the wait.

    Attributes:
        sn: the serial number of the request; a late reply still carries it.
        wait: the seconds waited.
        timeout: the same as ``wait``.

    The existing gofer's callers read ``e.sn()`` and ``e.timeout()``: both
    attributes also answer when called.
    """

    def __init__(self, sn: str, wait: float) -> None:
        super().__init__(f"request {sn} timed out after {wait:g}s without a final reply")
        self.sn = _CallableText(sn)
        self.wait = wait
        self.timeout = _CallableNumber(wait)


class _CallableText(str):
    """Text that is also its own getter (the existing gofer had ``sn()`` methods)."""

    __slots__ = ()

    def __call__(self) -> str:
        return str(self)


class _CallableNumber(float):
    """A number that is also its own getter (the existing gofer had ``timeout()``)."""

    __slots__ = ()

    def __call__(self) -> float:
        return float(self)


class RequestRejectedError(RmiError):
    """The agent refused to run the request.

    Attributes:
        sn: serial number.
        code: the rejection code (``model.version``, ``security.authentication``, ...).
        description: the agent's reason.
        details: anything more the agent said.
    """

    def __init__(self, sn: str, code: str, description: str, details: object = None) -> None:
        super().__init__(f"request {sn} rejected [{code}]: {description}")
        self.sn = sn
        self.code = code
        self.description = description
        self.details = details


class RemoteError(RmiError):
    """The remote method raised an exception that the caller does not rebuild.

    Only built-in exceptions and classes registered with
    :func:`gofer.rmi.exceptions.register` are rebuilt as themselves; anything
    else arrives as this, carrying what the agent said.

    Attributes:
        xmodule: the remote exception's module.
        xclass: its class name.
        xargs: its ``args``.
        xstate: its attributes.
        remote_traceback: the formatted remote traceback.
    """

    def __init__(
        self,
        xmodule: str,
        xclass: str,
        xargs: list[object],
        xstate: dict[str, object],
        remote_traceback: str,
    ) -> None:
        message = xargs[0] if len(xargs) == 1 else tuple(xargs) if xargs else ""
        super().__init__(f"{xmodule}.{xclass}: {message}")
        self.xmodule = xmodule
        self.xclass = xclass
        self.xargs = xargs
        self.xstate = xstate
        self.remote_traceback = remote_traceback


class RequestInterruptedError(RmiError):
    """goferd stopped (crashed, was killed) while the request ran; it was not run again.

    A request that began to run may have done part of its work, so goferd
    does not repeat it after a restart; the caller decides whether to call again.
    """


class ResultTooLargeError(RmiError):
    """The remote method returned a result larger than a reply may carry.

    The method ran; its result was not sent (a broker refuses a message over
    its size limit), so the caller gets this instead of waiting for nothing.
    """


class DispatchError(RmiError):
    """The agent found nothing it may run for the request: not there, or not for this caller."""


class NotAuthorized(DispatchError):  # noqa: N818 - the name on the wire and in the user guide
    """The request's shared secret or PAM credentials were not accepted."""


class NamespaceNotFound(DispatchError):  # noqa: N818 - the name on the wire
    """The agent provides no class (or plugin namespace) of that name."""


class MemberNotFound(DispatchError):  # noqa: N818 - the name on the wire
    """The class or plugin provides no remote method or function of that name."""


# Names of the existing gofer, kept for callers that catch them.
NotFound = NotFoundError
AdapterNotFound = AdapterNotFoundError
RequestTimeout = RequestTimeoutError
