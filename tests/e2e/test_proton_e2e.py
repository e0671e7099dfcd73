"""goferd and its callers over AMQP 1.0 (``proton+amqp://``), on RabbitMQ and Qpid Broker-J.

The same goferd process and plugins as ``test_goferd.py``, with every
broker connection (goferd's and the caller's) made by the proton adapter.
Queues are removed afterwards through AMQP 0-9-1, because RabbitMQ's 1.0
plugin cannot delete them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.errors import (
    AuthenticationError,
    BrokerUnavailableError,
    MemberNotFound,
    MessagingError,
    NamespaceNotFound,
    RemoteError,
)
from gofer.messaging.adapter.model import Broker
from gofer.messaging.adapter.proton import adapter
from gofer.messaging.connection import Connection
from gofer.messaging.url import Url
from gofer.proxy import Agent
from gofer.rmi import transport
from tests import brokers
from tests.e2e.conftest import REPO, Goferd
from tests.e2e.scenarios import cancel_while_running, reply_consumer

BROKERS = ("rabbitmq", "brokerj")


def _proton_url(name: str) -> str:
    """``proton+<url>`` of a test broker; fails in CI (skips elsewhere) when it is unreachable."""
    found = {b.name: b for b in brokers.brokers()}.get(name)
    message = f"{name} turned off" if found is None else f"{name} not reachable at {found.parsed}"
    if found is not None and found.reachable():
        return f"proton+{found.url}"
    if brokers.required():
        pytest.fail(message)
    pytest.skip(message)


def _delete_queues(url: str, *names: str) -> None:
    """Delete queues through AMQP 0-9-1 (the 1.0 plugin of RabbitMQ cannot)."""
    connection = Connection(Url.parse(url).without_adapter())
    try:
        for name in names:
            connection.delete_queue(name)
    finally:
        connection.close()


@pytest.fixture(scope="module", autouse=True)
def _close_proton_transports() -> Iterator[None]:
    """The callers' shared AMQP 1.0 connections go with this module (others count theirs)."""
    yield
    transport.close_all()


@pytest.fixture(scope="module", params=BROKERS)
def proton_goferd(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Goferd]:
    """goferd speaking AMQP 1.0 to one broker (its descriptor has ``url=proton+amqp://...``)."""
    url = _proton_url(request.param)
    goferd = Goferd(
        tmp_path_factory.mktemp(f"goferd-proton-{request.param}"),
        url,
        f"gofer-e2e-proton-{uuid.uuid4()}",
    )
    goferd.start()
    yield goferd
    goferd.stop()
    _delete_queues(url, goferd.queue)


def test_goferd_consumes_over_amqp_1_0(proton_goferd: Goferd) -> None:
    assert "proton+amqp://" in (proton_goferd.root / "etc/gofer/plugins/farm.conf").read_text()
    assert f"consuming {proton_goferd.queue}" in proton_goferd.log()


def test_synchronous_calls_and_exceptions(proton_goferd: Goferd) -> None:
    agent = Agent(proton_goferd.url, proton_goferd.queue)
    assert agent.Cow().moo() == "moo from daisy"
    cow = agent.Cow()
    cow("bella")
    assert cow.moo(times=2) == "moo moo from bella"
    with pytest.raises(ValueError, match="bella kicks"):
        cow.kick()
    with pytest.raises(NamespaceNotFound):
        agent.Horse().neigh()
    with pytest.raises(MemberNotFound):
        agent.Cow().fly()
    assert agent.Admin().echo({"x": [1, "é"]}) == {"x": [1, "é"]}


def test_a_caller_over_amqp_1_0_and_goferd_over_0_9_1_on_rabbitmq(
    shared_goferd: Goferd,
) -> None:
    # RabbitMQ hands goferd the caller's 1.0 bodies as encoded 1.0 sections,
    # which the amqp adapter unwraps; goferd's 0-9-1 replies arrive intact.
    agent = Agent(f"proton+{shared_goferd.url}", shared_goferd.queue, wait=15)
    _mixed_calls(agent)


def test_a_caller_over_0_9_1_and_goferd_over_amqp_1_0_on_rabbitmq(
    url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    goferd = Goferd(
        tmp_path_factory.mktemp("goferd-mixed"), f"proton+{url}", f"gofer-e2e-{uuid.uuid4()}"
    )
    goferd.start()
    try:
        _mixed_calls(Agent(url, goferd.queue, wait=15))
    finally:
        goferd.stop()
        _delete_queues(url, goferd.queue)


def _mixed_calls(agent: Agent) -> None:
    assert agent.Cow().moo() == "moo from daisy"
    assert agent.Admin().echo({"x": [1, "é"], "pad": "y" * 70_000})["x"] == [1, "é"]
    with pytest.raises(ValueError, match="daisy kicks"):
        agent.Cow().kick()


def test_progress_reports(proton_goferd: Goferd) -> None:
    reports: list[dict] = []
    agent = Agent(proton_goferd.url, proton_goferd.queue)
    assert agent.Cow(progress=reports.append).graze(3) == "grazed"
    assert [r["completed"] for r in reports][-3:] == [1, 2, 3]


def test_asynchronous_replies(proton_goferd: Goferd) -> None:
    with reply_consumer(proton_goferd) as (replies, seen):
        agent = Agent(proton_goferd.url, proton_goferd.queue, reply=replies)
        sn = agent.Cow().moo()
        assert [seen.get(timeout=10) for _ in range(3)] == [
            ("accepted", sn),
            ("started", sn),
            ("succeeded", sn),
        ]
        failing = agent.Cow().kick()
        kinds = [seen.get(timeout=10) for _ in range(3)]
        assert kinds[-1] == ("failed", failing)


def test_cancel_a_running_request(proton_goferd: Goferd) -> None:
    cancelled = cancel_while_running(proton_goferd, "chew", 20, after=0.5)
    assert cancelled.answer == [cancelled.sn]
    assert cancelled.outcome == "stopped chewing"
    assert cancelled.seconds < 10


def test_cancel_a_forked_request_kills_the_child(proton_goferd: Goferd) -> None:
    error = cancel_while_running(proton_goferd, "sleep_in_child", 30, after=0.7).outcome
    assert isinstance(error, RemoteError)
    assert error.xclass == "CancelledError"


def test_gofer_rmi_command_line(proton_goferd: Goferd) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = ["rmi", "-u", proton_goferd.url, "-a", proton_goferd.queue, "-t", "Cow.moo"]
    done = subprocess.run(
        [sys.executable, str(REPO / "bin/gofer"), *command, "times=2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "moo moo from daisy"), done.stderr


# -- connecting -----------------------------------------------------------------------


@pytest.mark.parametrize("name", BROKERS)
def test_an_unknown_virtual_host_fails_the_connect_for_good(name: str) -> None:
    # Broker-J refuses it with open-then-close; RabbitMQ (after the adapter
    # retries with "vhost:NAME") closes only after its open, which the
    # adapter's first session round trip catches. Neither is worth retrying.
    url = Url.parse(_proton_url(name))
    broker = Broker(url=Url.parse(f"{url.secret()}/gofer-no-such-vhost"), connect_timeout=5)
    with pytest.raises(MessagingError) as refused:
        adapter.connect(broker)
    assert not isinstance(refused.value, BrokerUnavailableError)


def test_a_wrong_password_is_told_even_with_a_short_connect_timeout() -> None:
    # RabbitMQ judges a PLAIN login for 3 s; the adapter waits that long for it.
    url = Url.parse(_proton_url("rabbitmq"))
    wrong = Broker(url=Url.parse(url.secret().replace(f":{url.password}@", ":wrong@")))
    started = time.monotonic()
    with pytest.raises(AuthenticationError):
        adapter.connect(Broker(url=wrong.url, connect_timeout=1.0))
    assert time.monotonic() - started < 8


# -- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs() -> Path:
    """The test certificates, once RabbitMQ's TLS listener (5671, client certificates) is up."""
    rabbitmq = {b.name: b for b in brokers.brokers()}.get("rabbitmq")
    if rabbitmq is None or rabbitmq.control is None:
        pytest.skip("RabbitMQ or its control script turned off")
    subprocess.run([rabbitmq.control, "tls-setup"], check=True, timeout=180)
    made = subprocess.run(
        [str(brokers.ROOT / "scripts/tls")], check=True, timeout=60, capture_output=True, text=True
    )
    return Path(made.stdout.strip())


# The TLS listener is RabbitMQ's: this test runs with the RabbitMQ goferd only.
@pytest.mark.parametrize("proton_goferd", ["rabbitmq"], indirect=True)
def test_a_call_over_amqps(certs: Path, proton_goferd: Goferd) -> None:
    agent = Agent(
        "proton+amqps://guest:guest@localhost:5671",
        proton_goferd.queue,
        cacert=str(certs / "ca.pem"),
        clientcert=str(certs / "client.pem"),
        clientkey=str(certs / "client.key"),
    )
    assert agent.Cow().moo() == "moo from daisy"
