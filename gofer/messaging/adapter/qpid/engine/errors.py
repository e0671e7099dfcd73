"""What the broker's AMQP 0-10 error codes mean in gofer's error tree."""

from __future__ import annotations

from gofer.errors import (
    AccessDeniedError,
    ConnectionLostError,
    MessagingError,
    NotFoundError,
    PreconditionError,
    ProtocolError,
)
from gofer.messaging.adapter.qpid.engine.spec010 import ConnectionCloseCode, ExecutionErrorCode


class SessionLostError(ConnectionLostError):
    """The session ended under an operation (an earlier command failed, or the broker detached it).

    The broker executes no command after the one that failed, so an
    operation that got this error was not carried out and may be retried on
    a new session; the connection itself is still open.
    """


_BY_EXECUTION_CODE: dict[int, type[MessagingError]] = {
    ExecutionErrorCode.UNAUTHORIZED_ACCESS: AccessDeniedError,
    ExecutionErrorCode.NOT_FOUND: NotFoundError,
    ExecutionErrorCode.RESOURCE_LOCKED: AccessDeniedError,
    ExecutionErrorCode.PRECONDITION_FAILED: PreconditionError,
    ExecutionErrorCode.RESOURCE_DELETED: NotFoundError,
    ExecutionErrorCode.COMMAND_INVALID: ProtocolError,
    ExecutionErrorCode.NOT_ALLOWED: AccessDeniedError,
}


def execution_error(code: int | None, description: str | None, command: str) -> MessagingError:
    """The gofer error for an ``execution.exception``.

    Args:
        code: the ``error-code`` (404, 405, ...).
        description: the broker's text.
        command: the name of the command that failed, for the message.
    """
    try:
        name = ExecutionErrorCode(code or 0).name.lower().replace("_", "-")
    except ValueError:
        name = "unknown-error"
    text = f"{command} failed: {code} {name}: {description or 'no description'}"
    return _BY_EXECUTION_CODE.get(code or 0, MessagingError)(text)


def close_error(code: int | None, text: str | None) -> ConnectionLostError:
    """The error for a ``connection.close`` the broker sent to an open connection."""
    try:
        name = ConnectionCloseCode(code or 0).name.lower().replace("_", "-")
    except ValueError:
        name = "unknown"
    return ConnectionLostError(
        f"the broker closed the connection: {code} {name}: {text or 'no reason given'}"
    )
