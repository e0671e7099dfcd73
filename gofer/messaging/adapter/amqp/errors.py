"""Translation of py-amqp, socket and TLS exceptions into gofer's error tree."""

from __future__ import annotations

import socket
import ssl

from amqp import exceptions as amqp_errors

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
)

# Reply codes of channel (and connection) errors that say something about
# the operation, not about the connection.
_BY_CODE: dict[int, type[MessagingError]] = {
    amqp_errors.NotFound.code: NotFoundError,
    amqp_errors.PreconditionFailed.code: PreconditionError,
    amqp_errors.ResourceLocked.code: AccessDeniedError,
    amqp_errors.AccessRefused.code: AccessDeniedError,
    amqp_errors.NotAllowed.code: AccessDeniedError,
    amqp_errors.InvalidPath.code: AccessDeniedError,
}

# Reply codes of connection errors that mean we (or the peer) broke the protocol.
_PROTOCOL_CODES = frozenset(
    cls.code
    for cls in (
        amqp_errors.FrameError,
        amqp_errors.FrameSyntaxError,
        amqp_errors.InvalidCommand,
        amqp_errors.ChannelNotOpen,
        amqp_errors.UnexpectedFrame,
        amqp_errors.AMQPNotImplementedError,
    )
)


def translate(exc: BaseException, *, connecting: bool = False) -> MessagingError:  # noqa: PLR0911
    """The gofer error for a driver exception (the caller chains it with ``from``).

    Args:
        exc: what py-amqp, the socket or ``ssl`` raised.
        connecting: the error happened while opening the connection, where a
            refusal means bad credentials and a socket error means the broker
            cannot be reached (rather than a lost connection).
    """
    if isinstance(exc, MessagingError):
        return exc
    text = _describe(exc)
    if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)) and connecting:
        return TLSError(
            f"TLS failed: the broker closed the connection during the handshake ({text}); "
            "it may have refused our client certificate (check clientcert and clientkey)"
        )
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        hint = ""
        if connecting and "alert" in text.lower():
            hint = (
                "; the broker refused the handshake (it may not trust our client "
                "certificate: check clientcert, clientkey and cacert)"
            )
        return TLSError(f"TLS failed: {text}{hint}")
    if isinstance(exc, amqp_errors.AMQPError):
        return _translate_amqp(exc, text, connecting)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        if connecting:
            return ConnectError(f"timed out connecting: {text}")
        return OperationTimeoutError(f"broker did not answer in time: {text}")
    if isinstance(exc, OSError):
        if connecting:
            return ConnectError(f"cannot connect: {text}")
        return ConnectionLostError(f"connection lost: {text}")
    return ProtocolError(f"unexpected driver error: {text}")


def _translate_amqp(exc: amqp_errors.AMQPError, text: str, connecting: bool) -> MessagingError:
    code = exc.reply_code or exc.code
    # RabbitMQ refuses a bad login with 403, Qpid Broker-J with 530.
    if connecting and code in (amqp_errors.AccessRefused.code, amqp_errors.NotAllowed.code):
        return AuthenticationError(f"broker refused the login: {text}")
    if code in _BY_CODE:
        return _BY_CODE[code](text)
    if code in _PROTOCOL_CODES:
        return ProtocolError(text)
    if isinstance(exc, amqp_errors.ConnectionError):
        return (ConnectError if connecting else ConnectionLostError)(text)
    if isinstance(exc, amqp_errors.ChannelError):
        return MessagingError(text)
    return ProtocolError(text)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def is_connection_failure(error: MessagingError) -> bool:
    """True when the error leaves the connection unusable."""
    return isinstance(error, (BrokerUnavailableError, OperationTimeoutError, ProtocolError))
