"""Every py-amqp exception is translated at the adapter's edge into gofer's tree."""

from __future__ import annotations

import inspect
import socket
import ssl

import pytest
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
from gofer.messaging.adapter.amqp import adapter
from gofer.messaging.adapter.amqp.errors import translate

DRIVER_ERRORS = [
    cls
    for _, cls in inspect.getmembers(amqp_errors, inspect.isclass)
    if issubclass(cls, amqp_errors.AMQPError)
]


@pytest.mark.parametrize("cls", DRIVER_ERRORS, ids=lambda cls: cls.__name__)
def test_every_driver_error_is_mapped(cls: type[amqp_errors.AMQPError]) -> None:
    error = translate(cls("text"))
    assert isinstance(error, MessagingError)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (amqp_errors.NotFound("no queue"), NotFoundError),
        (amqp_errors.PreconditionFailed("mismatch"), PreconditionError),
        (amqp_errors.ResourceLocked("exclusive"), AccessDeniedError),
        (amqp_errors.AccessRefused("perm"), AccessDeniedError),
        (amqp_errors.ConnectionForced("bye"), ConnectionLostError),
        (amqp_errors.RecoverableConnectionError("closed"), ConnectionLostError),
        (amqp_errors.UnexpectedFrame("bad"), ProtocolError),
        (ConnectionResetError("reset"), ConnectionLostError),
        (TimeoutError("slow"), OperationTimeoutError),
        (ssl.SSLCertVerificationError("bad cert"), TLSError),
    ],
)
def test_translation(exc: BaseException, expected: type[MessagingError]) -> None:
    assert type(translate(exc)) is expected


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (amqp_errors.AccessRefused("login refused"), AuthenticationError),
        (ConnectionRefusedError("refused"), ConnectError),
        (socket.gaierror("no such host"), ConnectError),
        (TimeoutError("slow"), ConnectError),
        (amqp_errors.RecoverableConnectionError("closed"), ConnectError),
    ],
)
def test_translation_while_connecting(exc: BaseException, expected: type[MessagingError]) -> None:
    assert type(translate(exc, connecting=True)) is expected


def test_only_unavailability_is_recoverable() -> None:
    assert adapter.recoverable == (BrokerUnavailableError,)
    assert issubclass(ConnectError, BrokerUnavailableError)
    assert issubclass(ConnectionLostError, BrokerUnavailableError)
    assert not issubclass(AuthenticationError, BrokerUnavailableError)
