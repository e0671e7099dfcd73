"""goferd and its callers over AMQP 0-10 (the ``qpid`` adapter) against the real Qpid Broker-J.

Also what the contract suite does not reach: message properties through the
engine, fragmentation at the smallest frame size, credit, TLS through a port
this module adds to the running broker, and the time to connect.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import queue
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.errors import MemberNotFound, TLSError
from gofer.messaging.adapter.model import TLS, Broker, Queue
from gofer.messaging.adapter.qpid import adapter
from gofer.messaging.adapter.qpid.engine import spec010
from gofer.messaging.adapter.qpid.engine.connection import Connection, Settings
from gofer.messaging.adapter.qpid.engine.message import Message
from gofer.messaging.adapter.qpid.engine.session import Transfer
from gofer.messaging.url import Url
from gofer.proxy import Agent
from tests import brokers
from tests.e2e.conftest import Goferd
from tests.e2e.scenarios import cancel_while_running, reply_consumer
from tests.unit.qpid.certs import make_certs


@pytest.fixture(scope="module")
def brokerj() -> brokers.TestBroker:
    """Broker-J (fails in CI when unreachable)."""
    for test_broker in brokers.brokers():
        if test_broker.name == "brokerj":
            if test_broker.reachable():
                return test_broker
            message = f"Broker-J not reachable at {test_broker.parsed}"
            break
    else:
        message = "Broker-J turned off (GOFER_TEST_BROKERJ=off)"
    if brokers.required():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def url(brokerj: brokers.TestBroker) -> str:
    """Broker-J's URL through the qpid adapter: ``qpid+amqp://gofer:gofer@localhost:5673``."""
    return dataclasses.replace(brokerj.parsed, adapter="qpid").secret()


def _settings(url: str, **options: object) -> Settings:
    parsed = Url.parse(url)
    return Settings(
        parsed.host,
        parsed.port,
        username=parsed.userid,
        password=parsed.password,
        **options,  # type: ignore[arg-type]
    )


# -- goferd and the caller over 0-10 ---------------------------------------------------


def test_sync_call_constructor_args_and_exceptions(shared_goferd: Goferd) -> None:
    agent = Agent(shared_goferd.url, shared_goferd.queue)
    assert agent.Cow().moo() == "moo from daisy"
    cow = agent.Cow()
    cow("bella")
    assert cow.moo(times=2) == "moo moo from bella"
    with pytest.raises(ValueError, match="bella kicks"):
        cow.kick()
    with pytest.raises(MemberNotFound):
        agent.Cow().fly()


def test_async_replies_and_progress(shared_goferd: Goferd) -> None:
    reports: list[dict[str, object]] = []
    agent = Agent(shared_goferd.url, shared_goferd.queue)
    assert agent.Cow(progress=reports.append).graze(3) == "grazed"
    assert [r["completed"] for r in reports][-3:] == [1, 2, 3]
    with reply_consumer(shared_goferd) as (replies, seen):
        sn = Agent(shared_goferd.url, shared_goferd.queue, reply=replies).Cow().moo()
        kinds = [seen.get(timeout=10) for _ in range(3)]
        assert kinds == [("accepted", sn), ("started", sn), ("succeeded", sn)]


def test_cancel_a_running_request(shared_goferd: Goferd) -> None:
    cancelled = cancel_while_running(shared_goferd, "chew", 20, after=0.5)
    assert cancelled.answer == [cancelled.sn]
    assert cancelled.outcome == "stopped chewing"
    assert cancelled.seconds < 10


# -- the engine against Broker-J ----------------------------------------------------


@pytest.fixture
def engine(url: str) -> Iterator[Connection]:
    connection = Connection(_settings(url, max_frame_size=spec010.MIN_MAX_FRAME_SIZE))
    yield connection
    connection.close()


@pytest.fixture
def scratch_queue(engine: Connection) -> Iterator[str]:
    name = f"gofer-test-{uuid.uuid4()}"
    session = engine.session()
    session.execute(spec010.QueueDeclare(queue=name, auto_delete=False), timeout=10)
    yield name
    if engine.is_open:
        engine.session().execute(spec010.QueueDelete(queue=name), timeout=10)


def test_message_properties_survive_the_broker(engine: Connection, scratch_queue: str) -> None:
    sent = Message(
        body=json.dumps({"sn": "1"}).encode(),
        routing_key=scratch_queue,
        durable=True,
        ttl=60,
        priority=7,
        message_id=uuid.uuid4(),
        correlation_id=b"c-1",
        reply_to=("amq.direct", "replies"),
        content_type="application/json",
        headers={"gofer": "3", "attempt": 2, "nested": {"ok": True}},
    )
    session = engine.session()
    session.transfer("", sent, timeout=10)
    received = _take(engine, scratch_queue, 1)[0].message
    for name in ("body", "routing_key", "durable", "priority", "message_id", "correlation_id"):
        assert getattr(received, name) == getattr(sent, name), name
    assert received.reply_to == sent.reply_to
    assert received.content_type == sent.content_type
    assert received.headers == sent.headers
    assert received.ttl is not None
    assert 0 < received.ttl <= 60


def test_a_large_message_crosses_the_smallest_frames_both_ways(
    engine: Connection, scratch_queue: str
) -> None:
    assert engine.max_frame_size == 4096
    body = bytes(range(256)) * 4096  # 1 MiB: 257 frames of 4 KiB each way
    engine.session().transfer("", Message(body, routing_key=scratch_queue), timeout=30)
    assert _take(engine, scratch_queue, 1)[0].message.body == body


def test_credit_bounds_what_the_broker_delivers(engine: Connection, scratch_queue: str) -> None:
    session = engine.session()
    for n in range(5):
        session.transfer("", Message(str(n).encode(), routing_key=scratch_queue), timeout=10)
    got: queue.Queue[Transfer] = queue.Queue()
    reader = engine.session()
    reader.subscribe(scratch_queue, "d", got.put, credit=2, timeout=10)
    first = [got.get(timeout=5), got.get(timeout=5)]
    with pytest.raises(queue.Empty):
        got.get(timeout=0.5)  # no credit left
    accept = spec010.MessageAccept(transfers=reader.transfers(t.id for t in first))
    reader.grant("d", 3, accept)
    rest = [got.get(timeout=5) for _ in range(3)]
    assert [t.message.body for t in first + rest] == [b"0", b"1", b"2", b"3", b"4"]


def _take(engine: Connection, queue_name: str, count: int) -> list[Transfer]:
    got: queue.Queue[Transfer] = queue.Queue()
    session = engine.session()
    session.subscribe(queue_name, "take", got.put, credit=count, timeout=10)
    transfers = [got.get(timeout=30) for _ in range(count)]
    session.send(spec010.MessageAccept(transfers=session.transfers(t.id for t in transfers)))
    session.execute(spec010.ExecutionSync(), timeout=10)
    session.detach()
    return transfers


# -- TLS through a port added to the running broker ---------------------------------


class _Management:
    """Broker-J's REST API (HTTP basic auth as the test user)."""

    def __init__(self, brokerj: brokers.TestBroker) -> None:
        self.base = f"http://127.0.0.1:{_http_port()}/api/latest/"
        user = f"{brokerj.parsed.userid}:{brokerj.parsed.password}".encode()
        self.auth = "Basic " + base64.b64encode(user).decode()

    def call(self, method: str, path: str, body: object = None) -> int:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": self.auth, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            return exc.code


def _http_port() -> int:
    return int(os.environ.get("BROKERJ_HTTP_PORT", "8673"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tls_port(
    brokerj: brokers.TestBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, Path]]:
    """A TLS-only 0-10 port on the running Broker-J (removed afterwards), and the CA file.

    It is made through the broker's REST API, so it needs the project's test
    broker (``scripts/broker-j``), not any broker named by GOFER_TEST_BROKERJ.
    """
    if brokerj.control is None:
        pytest.skip("the TLS port is made through the management API of scripts/broker-j")
    certs = make_certs(tmp_path_factory.mktemp("brokerj-tls"))
    keystore = certs.server_cert.parent / "server.p12"
    export = ["openssl", "pkcs12", "-export", "-name", "server", "-passout", "pass:gofer"]
    export += [
        "-inkey",
        str(certs.server_key),
        "-in",
        str(certs.server_cert),
        "-out",
        str(keystore),
    ]
    subprocess.run(export, check=True, capture_output=True, timeout=60)
    management = _Management(brokerj)
    name = f"gofer-tls-{uuid.uuid4().hex[:8]}"
    store = "data:;base64," + base64.b64encode(keystore.read_bytes()).decode()
    made = management.call(
        "POST",
        "keystore",
        {"name": name, "type": "FileKeyStore", "storeUrl": store, "password": "gofer"},
    )
    if made != 201:
        pytest.fail(f"Broker-J refused the keystore ({made})")
    port = _free_port()
    made = management.call(
        "POST",
        "port",
        {
            "name": name,
            "type": "AMQP",
            "port": port,
            "bindingAddress": "127.0.0.1",
            "transports": ["SSL"],
            "keyStore": name,
            "protocols": ["AMQP_0_10"],
            "authenticationProvider": "plain",
        },
    )
    try:
        if made != 201:
            pytest.fail(f"Broker-J refused the TLS port ({made})")
        yield port, certs.ca
    finally:
        management.call("DELETE", f"port/{name}")
        management.call("DELETE", f"keystore/{name}")


def test_tls_to_broker_j_sends_and_receives(
    brokerj: brokers.TestBroker, tls_port: tuple[int, Path]
) -> None:
    port, ca = tls_port
    secure = dataclasses.replace(brokerj.parsed, adapter="qpid", scheme="amqps", port=port)
    connection = adapter.connect(Broker(url=secure, tls=TLS(cacert=str(ca))))
    name = f"gofer-test-{uuid.uuid4()}"
    try:
        connection.declare_queue(Queue(name, durable=False))
        connection.send(name, b"over TLS")
        reader = connection.reader(name)
        delivery = reader.get(timeout=10)
        assert delivery is not None
        assert delivery.body == b"over TLS"
        reader.ack(delivery)
        reader.close()
    finally:
        connection.delete_queue(name)
        connection.close()


def test_tls_to_broker_j_checks_the_host_name(
    brokerj: brokers.TestBroker, tls_port: tuple[int, Path]
) -> None:
    port, ca = tls_port
    by_address = dataclasses.replace(
        brokerj.parsed, adapter="qpid", scheme="amqps", host="127.0.0.1", port=port
    )
    with pytest.raises(TLSError, match=r"127\.0\.0\.1"):
        adapter.connect(Broker(url=by_address, tls=TLS(cacert=str(ca))))
    unchecked = adapter.connect(
        Broker(url=by_address, tls=TLS(cacert=str(ca), host_validation=False))
    )
    assert unchecked.is_open
    unchecked.close()


# -- connecting is fast -------------------------------------------------------------


def test_time_from_connect_to_an_open_session(url: str, record_property) -> None:  # type: ignore[no-untyped-def]
    broker = Broker.of(url)
    times = []
    for _ in range(25):
        started = time.perf_counter()
        connection = adapter.connect(broker)  # negotiation and the control session
        times.append(time.perf_counter() - started)
        connection.close()
    median = statistics.median(times[5:])
    record_property("connect_to_open_session_median_ms", round(median * 1000, 2))
    print(f"qpid adapter: connect() to an open session, median {median * 1000:.1f} ms")
    # No spec is parsed at run time: a round trip or four on loopback.
    assert median < 0.25
