"""Each adapter fails over across a URL's brokers: to the next node when one is dead or dies."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from gofer.messaging.adapter.model import Broker, Queue
from gofer.messaging.connection import Connection
from gofer.messaging.retry import Backoff
from gofer.messaging.url import Url
from tests import brokers

ADAPTERS = ["amqp", "proton"]


def in_order(url: str, adapter: str) -> Broker:
    """The cluster's URL through ``adapter``, tried in the order given."""
    prefixed = ",".join(f"{adapter}+{each.secret()}" for each in Url.parse(url).each())
    return Broker.of(prefixed, shuffle=False)


@pytest.fixture
def quorum_queue(cluster: brokers.TestCluster) -> Any:
    name = f"gofer-cluster-adapter-{uuid.uuid4()}"
    admin = Connection(cluster.urls["b"], backoff=Backoff(limit=30))
    admin.declare_queue(Queue(name, queue_type="quorum"))
    yield name
    admin.delete_queue(name)
    admin.close()


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_dead_first_broker_is_passed_over(
    cluster: brokers.TestCluster, quorum_queue: str, adapter: str
) -> None:
    nodes = Url.parse(cluster.url)
    dead = f"{adapter}+amqp://guest:guest@localhost:1"  # nothing listens there
    broker = Broker.of(f"{dead},{adapter}+{nodes.alternates[0].secret()}", shuffle=False)
    connection = Connection(broker, backoff=Backoff(limit=30))
    try:
        connection.send(quorum_queue, b"past the dead one")
        assert connection.connected_to is not None
        assert connection.connected_to.url.port == nodes.alternates[0].port
        reader = connection.reader(quorum_queue)
        delivery = reader.get(timeout=10)
        assert delivery is not None
        assert delivery.body == b"past the dead one"
        reader.ack(delivery)
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.parametrize("adapter", ADAPTERS)
def test_the_connection_moves_on_when_its_node_dies(
    cluster: brokers.TestCluster, nodes: Any, quorum_queue: str, adapter: str
) -> None:
    connection = Connection(in_order(cluster.url, adapter), backoff=Backoff(limit=30))
    try:
        connection.send(quorum_queue, b"before")
        assert connection.connected_to is not None
        assert connection.connected_to.url.port == Url.parse(cluster.urls["a"]).port

        nodes.kill("a")
        connection.send(quorum_queue, b"after")

        assert connection.connected_to is not None
        assert connection.connected_to.url.port != Url.parse(cluster.urls["a"]).port
        reader = connection.reader(quorum_queue)
        got = []
        for _ in range(2):
            delivery = reader.get(timeout=10)
            assert delivery is not None
            got.append(delivery.body)
            reader.ack(delivery)
        assert got == [b"before", b"after"]
    finally:
        connection.close()
