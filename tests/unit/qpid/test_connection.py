"""The engine's connection and sessions against a scripted peer: negotiation, errors, completion."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from gofer.errors import (
    AuthenticationError,
    ConnectError,
    ConnectionLostError,
    NotFoundError,
    OperationTimeoutError,
    ProtocolError,
)
from gofer.messaging.adapter.qpid.engine import codec, framing, spec010
from gofer.messaging.adapter.qpid.engine.base import Command, RangeSet
from gofer.messaging.adapter.qpid.engine.connection import Connection, Settings, sasl_response
from gofer.messaging.adapter.qpid.engine.errors import SessionLostError
from gofer.messaging.adapter.qpid.engine.message import Message
from gofer.messaging.adapter.qpid.engine.session import Transfer, to_wire, unwrap
from tests.unit.qpid.fakebroker import FakeBroker, Peer, Script

Fake = Callable[[Script], FakeBroker]


@pytest.fixture
def fake() -> Iterator[Fake]:
    made: list[FakeBroker] = []

    def make(script: Script) -> FakeBroker:
        broker = FakeBroker(script)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()


def _connect(broker: FakeBroker, **settings: object) -> Connection:
    options: dict[str, object] = {"username": "user", "password": "secret", "connect_timeout": 5.0}
    options.update(settings)
    return Connection(Settings("127.0.0.1", broker.port, **options))  # type: ignore[arg-type]


def _ready(peer: Peer) -> None:
    peer.negotiate()
    peer.attach()


def _eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# -- negotiation ----------------------------------------------------------------------


def test_plain_login_tune_open_and_close(fake: Fake) -> None:
    broker = fake(_ready)
    connection = _connect(broker, virtual_host="vh", heartbeat=0)
    session = connection.session()
    peer = broker.peer()
    start_ok = peer.received[0]
    assert isinstance(start_ok, spec010.ConnectionStartOk)
    assert (start_ok.mechanism, start_ok.response) == ("PLAIN", b"\0user\0secret")
    assert start_ok.client_properties is not None
    assert start_ok.client_properties["product"] == "gofer"
    opened = next(r for r in peer.received if isinstance(r, spec010.ConnectionOpen))
    assert opened.virtual_host == "vh"
    assert (connection.channel_max, connection.max_frame_size) == (16, 65535)
    assert session.is_open
    assert connection.is_open

    def answer_close() -> None:
        peer.expect(spec010.ConnectionClose)
        peer.control(spec010.ConnectionCloseOk())

    closer = threading.Thread(target=answer_close)
    closer.start()
    connection.close()
    closer.join(5)
    assert not connection.is_open
    assert not session.is_open
    with pytest.raises(ConnectionLostError):
        connection.session()
    connection.close()  # twice is fine


def test_anonymous_when_no_user_is_given() -> None:
    assert sasl_response(["PLAIN", "ANONYMOUS"], None, None) == ("ANONYMOUS", b"")
    assert sasl_response(["PLAIN"], None, None) == ("PLAIN", b"\0guest\0guest")
    assert sasl_response(["ANONYMOUS", "PLAIN"], "u", "p") == ("PLAIN", b"\0u\0p")
    with pytest.raises(AuthenticationError, match="offers CRAM-MD5; gofer needs PLAIN"):
        sasl_response(["CRAM-MD5"], "u", "p")


def test_anonymous_login_over_the_wire(fake: Fake) -> None:
    broker = fake(lambda peer: peer.negotiate(mechanisms=("ANONYMOUS",)))
    connection = _connect(broker, username=None, password=None)
    start_ok = broker.peer().received[0]
    assert isinstance(start_ok, spec010.ConnectionStartOk)
    assert start_ok.mechanism == "ANONYMOUS"
    connection.close(timeout=0.1)


def test_a_broker_silent_after_the_login_refused_it(fake: Fake) -> None:
    def silent(peer: Peer) -> None:
        assert peer.read_header() == b"AMQP\x01\x01\x00\x0a"
        peer.send(b"AMQP\x01\x01\x00\x0a")
        peer.control(spec010.ConnectionStart(mechanisms=["PLAIN"], locales=["en_US"]))
        peer.expect(spec010.ConnectionStartOk)
        time.sleep(3)

    broker = fake(silent)
    started = time.monotonic()
    # The message gives the measured wait: at least the login timeout, a little
    # more on a busy machine (the connect timeout, 5s, would be far more).
    with pytest.raises(AuthenticationError, match=r"no answer in (0\.[5-9]|1\.\d)s"):
        _connect(broker, login_timeout=0.5)
    assert time.monotonic() - started < 2


def test_a_close_during_the_login_is_an_authentication_error(fake: Fake) -> None:
    def refuse(peer: Peer) -> None:
        peer.read_header()
        peer.send(b"AMQP\x01\x01\x00\x0a")
        peer.control(spec010.ConnectionStart(mechanisms=["PLAIN"], locales=["en_US"]))
        peer.expect(spec010.ConnectionStartOk)
        peer.control(spec010.ConnectionClose(reply_code=320, reply_text="bad password"))

    with pytest.raises(AuthenticationError, match="bad password"):
        _connect(fake(refuse))


def test_a_broker_of_another_protocol_is_a_protocol_error(fake: Fake) -> None:
    def rabbit(peer: Peer) -> None:
        peer.read_header()
        peer.send(b"AMQP\x00\x00\x09\x01")

    with pytest.raises(ProtocolError, match="does not speak AMQP 0-10"):
        _connect(fake(rabbit))


def test_an_unknown_virtual_host_is_refused(fake: Fake) -> None:
    def refuse(peer: Peer) -> None:
        peer.read_header()
        peer.send(b"AMQP\x01\x01\x00\x0a")
        peer.control(spec010.ConnectionStart(mechanisms=["PLAIN"], locales=["en_US"]))
        peer.expect(spec010.ConnectionStartOk)
        peer.control(spec010.ConnectionTune(channel_max=1, max_frame_size=4096))
        peer.expect(spec010.ConnectionTuneOk)
        peer.expect(spec010.ConnectionOpen)
        peer.control(spec010.ConnectionClose(reply_code=402, reply_text="no such vhost"))

    with pytest.raises(Exception, match="no such vhost") as raised:
        _connect(fake(refuse), virtual_host="nope")
    assert type(raised.value).__name__ == "AccessDeniedError"


def test_a_silent_peer_fails_within_the_connect_timeout() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        started = time.monotonic()
        with pytest.raises(ConnectError, match="timed out"):
            Connection(Settings("127.0.0.1", server.getsockname()[1], connect_timeout=0.5))
        assert time.monotonic() - started < 2
    finally:
        server.close()


def test_a_refused_port_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectError):
        Connection(Settings("127.0.0.1", port, connect_timeout=2))


def test_the_frame_size_is_the_smaller_of_both(fake: Fake) -> None:
    def small(peer: Peer) -> None:
        peer.negotiate(max_frame_size=4096)
        peer.attach()
        peer.reader.max_frame_size = 4096  # a larger frame now fails the fake
        command = peer.expect(spec010.MessageTransfer)
        assert command.destination == "ex"

    broker = fake(small)
    connection = _connect(broker, max_frame_size=60000)
    assert connection.max_frame_size == 4096
    session = connection.session()
    session.transfer("ex", Message(b"x" * 20_000, routing_key="k"), timeout=1, wait=False)
    _eventually(
        lambda: any(isinstance(r, spec010.MessageTransfer) for r in broker.peers[0].received)
    )
    assert broker.errors == []
    connection.close(timeout=0.1)


def test_a_message_larger_than_the_write_backlog_is_sent_whole(fake: Fake) -> None:
    # The I/O thread hands the socket 1 MiB at a time; the rest must follow
    # without any incoming traffic to wake it (no heartbeats here).
    def receive(peer: Peer) -> None:
        peer.negotiate(max_frame_size=4096)
        peer.attach()
        peer.expect(spec010.MessageTransfer)

    broker = fake(receive)
    connection = _connect(broker, heartbeat=0)
    body = bytes(range(256)) * 12_000  # about 3 MiB, 750 frames
    connection.session().transfer("", Message(body, routing_key="q"), timeout=1, wait=False)
    peer = broker.peer(timeout=10)
    assert peer.bodies == [body]
    connection.close(timeout=0.1)


# -- heartbeats ---------------------------------------------------------------------------


def test_heartbeats_are_sent_while_idle_and_missing_ones_end_the_connection(fake: Fake) -> None:
    broker = fake(lambda peer: peer.negotiate(heartbeat_max=1))
    connection = _connect(broker, heartbeat=1)
    assert connection.heartbeat == 1
    peer = broker.peer()
    _eventually(
        lambda: (
            peer.next() is not None and isinstance(peer.received[-1], spec010.ConnectionHeartbeat)
        )
    )
    # The fake sends no heartbeats: after two intervals (and a second of slack) it is gone.
    _eventually(lambda: connection.failure is not None, seconds=6)
    assert "no frame from the broker" in str(connection.failure)
    assert isinstance(connection.failure, ConnectionLostError)


# -- an open connection ------------------------------------------------------------------


def test_a_close_from_the_broker_loses_the_connection(fake: Fake) -> None:
    broker = fake(_ready)
    connection = _connect(broker)
    session = connection.session()
    peer = broker.peer()
    peer.control(spec010.ConnectionClose(reply_code=320, reply_text="operator says bye"))
    assert isinstance(peer.expect(spec010.ConnectionCloseOk), spec010.ConnectionCloseOk)
    _eventually(lambda: not connection.is_open)
    assert "320 connection-forced: operator says bye" in str(connection.failure)
    with pytest.raises(ConnectionLostError):
        session.execute(spec010.ExecutionSync(), timeout=1)


def test_results_completion_and_our_completion_reports(fake: Fake) -> None:
    broker = fake(_ready)
    connection = _connect(broker)
    session = connection.session()
    peer = broker.peer()

    def answer() -> None:
        peer.expect(spec010.QueueQuery)
        peer.command(
            spec010.ExecutionResult(
                command_id=0,
                value=spec010.QueueQueryResult(queue="q", message_count=5, subscriber_count=0),
            )
        )
        peer.control(
            spec010.SessionCompleted(commands=RangeSet([(0, 0)]), timely_reply=True), channel=1
        )

    helper = threading.Thread(target=answer)
    helper.start()
    result = session.execute(spec010.QueueQuery(queue="q"), timeout=5)
    helper.join(5)
    assert isinstance(result, spec010.QueueQueryResult)
    assert result.message_count == 5
    # We acknowledge their report (timely-reply) and report their command (the result) done.
    replies = {type(r): r for r in (peer.next(), peer.next())}
    known = replies[spec010.SessionKnownCompleted]
    assert isinstance(known, spec010.SessionKnownCompleted)
    assert known.commands is not None
    assert list(known.commands.ranges) == [(0, 0)]
    completed = replies[spec010.SessionCompleted]
    assert isinstance(completed, spec010.SessionCompleted)
    assert completed.commands is not None
    assert list(completed.commands.ranges) == [(0, 0)]
    peer.control(spec010.SessionFlush(completed=True, expected=True), channel=1)
    assert isinstance(peer.expect(spec010.SessionExpected), spec010.SessionExpected)
    assert list(_commands(peer.expect(spec010.SessionCompleted))) == [(0, 0)]
    connection.close(timeout=0.1)


def test_we_can_ask_the_broker_for_its_completion_report(fake: Fake) -> None:
    broker = fake(_ready)
    connection = _connect(broker)
    connection.session().flush()
    flush = broker.peer().expect(spec010.SessionFlush)
    assert (flush.completed, flush.expected, flush.confirmed) == (True, False, False)
    connection.close(timeout=0.1)


def test_an_exception_fails_its_command_and_ends_the_session(fake: Fake) -> None:
    broker = fake(_ready)
    connection = _connect(broker)
    session = connection.session()
    peer = broker.peer()
    outcomes: dict[str, BaseException | None] = {}

    def call(name: str, command: Command) -> None:
        try:
            session.execute(command, timeout=5)
            outcomes[name] = None
        except BaseException as exc:  # noqa: BLE001 - inspected below
            outcomes[name] = exc

    first = threading.Thread(target=call, args=("declare", spec010.QueueDeclare(queue="a")))
    first.start()
    peer.expect(spec010.QueueDeclare)
    second = threading.Thread(
        target=call, args=("bind", spec010.ExchangeBind(queue="a", exchange="x", binding_key="k"))
    )
    second.start()
    peer.expect(spec010.ExchangeBind)
    third = threading.Thread(target=call, args=("delete", spec010.QueueDelete(queue="a")))
    third.start()
    peer.expect(spec010.QueueDelete)
    peer.command(
        spec010.ExecutionException(error_code=404, command_id=1, description="no exchange x")
    )
    for thread in (first, second, third):
        thread.join(5)
    assert outcomes["declare"] is None  # before the failed command: it ran
    assert isinstance(outcomes["bind"], NotFoundError)
    assert "exchange.bind failed: 404 not-found: no exchange x" in str(outcomes["bind"])
    assert isinstance(outcomes["delete"], SessionLostError)  # after it: never ran
    assert isinstance(peer.expect(spec010.SessionDetach), spec010.SessionDetach)
    assert not session.is_open
    assert connection.is_open
    connection.close(timeout=0.1)


def test_an_unanswered_command_times_out(fake: Fake) -> None:
    broker = fake(_ready)
    connection = _connect(broker)
    session = connection.session()
    with pytest.raises(OperationTimeoutError, match=r"did not complete queue\.purge within 0\.2s"):
        session.execute(spec010.QueuePurge(queue="q"), timeout=0.2)
    connection.close(timeout=0.1)


def test_deliveries_reach_their_subscription_and_are_completed(fake: Fake) -> None:
    broker = fake(_ready)
    connection = _connect(broker)
    session = connection.session()
    peer = broker.peer()
    got: list[Transfer] = []
    subscribing = threading.Thread(target=session.subscribe, args=("q", "d1", got.append, 2, 5))
    subscribing.start()
    peer.expect(spec010.MessageSubscribe)
    assert peer.expect(spec010.MessageSetFlowMode).flow_mode == spec010.MessageFlowMode.CREDIT
    units = {peer.expect(spec010.MessageFlow).unit: 0 for _ in range(2)}
    assert set(units) == {spec010.MessageCreditUnit.BYTE, spec010.MessageCreditUnit.MESSAGE}
    peer.expect(spec010.ExecutionSync)
    peer.control(spec010.SessionCompleted(commands=RangeSet([(0, 4)])), channel=1)
    subscribing.join(5)
    header = Message(b"", routing_key="q", headers={"k": "v"}).header()
    transfer = spec010.MessageTransfer(destination="d1", accept_mode=0, acquire_mode=0)
    segments = [
        (1, codec.encode_command(transfer)),
        (2, codec.encode_header(header)),
        (3, b"payload"),
    ]
    peer.send(b"".join(framing.encode_frames(segments, 1, 1, 4096)))
    _eventually(lambda: len(got) == 1)
    assert got[0].message.body == b"payload"
    assert got[0].message.headers == {"k": "v"}
    assert list(_commands(peer.expect(spec010.SessionCompleted))) == [(0, 0)]
    connection.close(timeout=0.1)


def _commands(control: spec010.SessionCompleted) -> list[tuple[int, int]]:
    assert control.commands is not None
    return list(control.commands.ranges)


# -- command ids ------------------------------------------------------------------------


def test_command_ids_survive_the_32_bit_wrap() -> None:
    top = 2**32
    assert unwrap(5, top + 3) == top + 5
    assert unwrap(top - 2, top + 3) == top - 2
    assert unwrap(7, 7) == 7
    ids = RangeSet([(top - 2, top + 1)])
    assert list(to_wire(ids).ranges) == [(0, 1), (top - 2, top - 1)]
