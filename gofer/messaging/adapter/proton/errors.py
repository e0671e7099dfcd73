"""Translation of AMQP 1.0 error conditions and python-qpid-proton exceptions into gofer's tree.

AMQP 1.0 reports errors as *conditions* (a symbolic name and a text) on the
connection, session or link that the peer closes, on the transport when the
connection fails, and on a rejected delivery. proton itself raises
``ProtonException`` subclasses (a bad TLS file, a misuse of the engine) and
lets socket errors from its I/O handler escape. Everything ends up here.
"""

from __future__ import annotations

import socket
import ssl

from proton import Condition, ProtonException, SSLException, Timeout

from gofer.errors import (
    AccessDeniedError,
    AuthenticationError,
    BrokerUnavailableError,
    ConnectError,
    ConnectionLostError,
    MessagingError,
    NotFoundError,
    OperationTimeoutError,
    PreconditionError,
    ProtocolError,
    TLSError,
    UnsupportedError,
)

# Conditions that say something about the operation; the connection is fine.
_BY_CONDITION: dict[str, type[MessagingError]] = {
    "amqp:not-found": NotFoundError,
    "amqp:resource-deleted": NotFoundError,
    "amqp:precondition-failed": PreconditionError,
    "amqp:resource-locked": AccessDeniedError,
    "amqp:unauthorized-access": AccessDeniedError,
    "amqp:not-allowed": AccessDeniedError,
    "amqp:not-implemented": UnsupportedError,
    "amqp:resource-limit-exceeded": MessagingError,
    "amqp:internal-error": MessagingError,
    "amqp:link:message-size-exceeded": MessagingError,
    "amqp:link:transfer-limit-exceeded": MessagingError,
    "amqp:link:stolen": MessagingError,
    "amqp:link:detach-forced": MessagingError,
    "amqp:link:redirect": MessagingError,
}

# Conditions that mean somebody broke the protocol.
_PROTOCOL_CONDITIONS = frozenset(
    {
        "amqp:decode-error",
        "amqp:invalid-field",
        "amqp:illegal-state",
        "amqp:frame-size-too-small",
        "amqp:connection:framing-error",
        "amqp:session:window-violation",
        "amqp:session:errant-link",
        "amqp:session:handle-in-use",
        "amqp:session:unattached-handle",
    }
)

#: Every condition named by the AMQP 1.0 specification (section 2.8.15 ff.).
SPEC_CONDITIONS = frozenset(
    {
        *_BY_CONDITION,
        *_PROTOCOL_CONDITIONS,
        "amqp:connection:forced",
        "amqp:connection:redirect",
    }
)


def describe(condition: Condition | None) -> str:
    """``name: description`` of a condition, for messages."""
    if condition is None:
        return "no reason given"
    if condition.description:
        return f"{condition.name}: {condition.description}"
    return str(condition.name)


def from_condition(
    condition: Condition | None, *, where: str, connection_level: bool = False
) -> MessagingError:
    """The gofer error for a condition the peer (or proton) set.

    Args:
        condition: the condition; None when the peer closed without one.
        where: what was closed, for the message (``link to 'jobs'``).
        connection_level: the whole connection ended (its transport or the
            connection endpoint), so anything not specific is a lost connection.
    """
    text = f"{where}: {describe(condition)}"
    name = str(condition.name) if condition is not None else ""
    if connection_level and name not in ("amqp:unauthorized-access", "amqp:not-found"):
        # proton reports a broken socket as amqp:connection:framing-error too.
        return ConnectionLostError(text)
    if name in _PROTOCOL_CONDITIONS:
        return ProtocolError(text)
    if name in _BY_CONDITION:
        return _BY_CONDITION[name](text)
    if name.startswith("amqp:connection:") or connection_level:
        return ConnectionLostError(text)
    return MessagingError(text)


def while_connecting(condition: Condition | None, *, where: str) -> MessagingError:
    """The gofer error for a transport or connection condition before the connection opened.

    A refused login shows as ``amqp:unauthorized-access`` on the transport
    (from the SASL outcome); TLS failures carry ``SSL`` in their text
    (proton names them ``amqp:connection:framing-error``).
    """
    text = f"{where}: {describe(condition)}"
    name = str(condition.name) if condition is not None else ""
    description = str(condition.description or "") if condition is not None else ""
    if name == "amqp:unauthorized-access":
        return AuthenticationError(text)
    if "SSL" in description or "TLS" in description or "certificate" in description:
        return TLSError(text)
    if name == "amqp:not-found":
        # Broker-J: an unknown virtual host.
        return NotFoundError(text)
    return ConnectError(text)


def translate(exc: BaseException, *, connecting: bool = False) -> MessagingError:
    """The gofer error for an exception from proton or its I/O (chain it with ``from``).

    Args:
        exc: what was raised.
        connecting: raised while opening the connection, where a socket error
            means the broker cannot be reached rather than a lost connection.
    """
    if isinstance(exc, MessagingError):
        return exc
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    for kinds, error, when_connecting, prefix in _EXCEPTIONS:
        if isinstance(exc, kinds):
            return (when_connecting if connecting else error)(f"{prefix}{text}")
    return ProtocolError(f"unexpected driver error: {text}")


# (exception classes, error, error while connecting, message prefix); first match wins.
_EXCEPTIONS: tuple[
    tuple[tuple[type[BaseException], ...], type[MessagingError], type[MessagingError], str], ...
] = (
    ((SSLException, ssl.SSLError, ssl.CertificateError), TLSError, TLSError, "TLS failed: "),
    (
        (Timeout, socket.timeout, TimeoutError),
        OperationTimeoutError,
        ConnectError,
        "no answer in time: ",
    ),
    ((OSError,), ConnectionLostError, ConnectError, ""),
    ((ProtonException,), ProtocolError, ProtocolError, "AMQP 1.0 engine error: "),
)


def is_connection_failure(error: MessagingError) -> bool:
    """True when the error leaves the connection unusable."""
    return isinstance(error, (BrokerUnavailableError, OperationTimeoutError, ProtocolError))
