"""Every python-qpid-proton exception and AMQP 1.0 condition is translated into gofer's tree."""

from __future__ import annotations

import socket
import ssl

import proton
import proton.handlers
import proton.reactor
import proton.utils
import pytest
from proton import Condition

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
from gofer.messaging.adapter.proton import adapter
from gofer.messaging.adapter.proton.errors import (
    SPEC_CONDITIONS,
    UnsupportedError,
    from_condition,
    translate,
    while_connecting,
)
from gofer.messaging.adapter.registry import Registry


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


PROTON_ERRORS = sorted(
    {proton.ProtonException, *_subclasses(proton.ProtonException)},
    key=lambda cls: f"{cls.__module__}.{cls.__qualname__}",
)


def test_the_proton_exception_tree_was_found() -> None:
    names = {cls.__name__ for cls in PROTON_ERRORS}
    assert {"SSLException", "Timeout", "ConnectionException", "LinkDetached"} <= names


@pytest.mark.parametrize("cls", PROTON_ERRORS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("connecting", [False, True])
def test_every_proton_exception_is_mapped(cls: type[BaseException], connecting: bool) -> None:
    try:
        exc = cls("text")
    except (TypeError, AttributeError):
        # LinkDetached and ConnectionClosed want an engine object: the class counts.
        exc = cls.__new__(cls)
    error = translate(exc, connecting=connecting)
    assert isinstance(error, MessagingError)
    assert type(error) is not MessagingError


@pytest.mark.parametrize(
    ("exc", "connecting", "expected"),
    [
        (proton.SSLException("bad file"), False, TLSError),
        (proton.SSLUnavailable(), True, TLSError),
        (ssl.SSLCertVerificationError("bad cert"), True, TLSError),
        (proton.Timeout("slow"), False, OperationTimeoutError),
        (proton.Timeout("slow"), True, ConnectError),
        (socket.gaierror("no such host"), True, ConnectError),
        (ConnectionRefusedError("refused"), True, ConnectError),
        (ConnectionResetError("reset"), False, ConnectionLostError),
        (proton.ConnectionException("bad use"), False, ProtocolError),
        (RuntimeError("?"), False, ProtocolError),
    ],
)
def test_translation(exc: BaseException, connecting: bool, expected: type) -> None:
    assert type(translate(exc, connecting=connecting)) is expected


def test_a_gofer_error_passes_through() -> None:
    error = NotFoundError("gone")
    assert translate(error) is error


@pytest.mark.parametrize("name", sorted(SPEC_CONDITIONS))
def test_every_spec_condition_is_mapped(name: str) -> None:
    for connection_level in (False, True):
        error = from_condition(
            Condition(name, "text"), where="x", connection_level=connection_level
        )
        assert isinstance(error, MessagingError)
    assert isinstance(while_connecting(Condition(name, "text"), where="x"), MessagingError)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("amqp:not-found", NotFoundError),
        ("amqp:resource-deleted", NotFoundError),
        ("amqp:precondition-failed", PreconditionError),
        ("amqp:resource-locked", AccessDeniedError),
        ("amqp:unauthorized-access", AccessDeniedError),
        ("amqp:not-implemented", UnsupportedError),
        ("amqp:session:unattached-handle", ProtocolError),
        ("amqp:connection:forced", ConnectionLostError),
        ("amqp:internal-error", MessagingError),
        ("x-broker:something", MessagingError),
    ],
)
def test_link_and_session_conditions(name: str, expected: type) -> None:
    assert type(from_condition(Condition(name, "text"), where="link")) is expected


def test_a_close_without_condition() -> None:
    assert type(from_condition(None, where="link")) is MessagingError
    assert type(from_condition(None, where="c", connection_level=True)) is ConnectionLostError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("amqp:connection:forced", ConnectionLostError),
        # proton names a broken socket this way too
        ("amqp:connection:framing-error", ConnectionLostError),
        ("amqp:resource-limit-exceeded", ConnectionLostError),
        ("amqp:unauthorized-access", AccessDeniedError),
    ],
)
def test_connection_conditions(name: str, expected: type) -> None:
    error = from_condition(Condition(name, "text"), where="connection", connection_level=True)
    assert type(error) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        # RabbitMQ's SASL outcome "auth", 3 s after a wrong password
        (
            Condition("amqp:unauthorized-access", "Authentication failed [mech=PLAIN]"),
            AuthenticationError,
        ),
        (
            Condition("amqp:connection:framing-error", "SSL Failure: certificate verify failed"),
            TLSError,
        ),
        (Condition("proton.pythonio", "Connection refused to all addresses"), ConnectError),
        (Condition("amqp:connection:framing-error", "connection aborted"), ConnectError),
        (Condition("amqp:not-found", "Unknown hostname in connection open: 'nope'"), NotFoundError),
        (None, ConnectError),
    ],
)
def test_conditions_while_connecting(condition: Condition | None, expected: type) -> None:
    assert type(while_connecting(condition, where="connect")) is expected


def test_unsupported_is_not_worth_retrying() -> None:
    assert issubclass(UnsupportedError, MessagingError)
    assert not issubclass(UnsupportedError, BrokerUnavailableError)
    assert adapter.recoverable == (BrokerUnavailableError,)


def test_the_registry_finds_the_adapter_by_its_names() -> None:
    registry = Registry()
    assert registry.find("proton") is adapter
    assert registry.find("amqp-1-0") is adapter
    assert {"proton", "amqp-1-0"} <= set(registry.names())
