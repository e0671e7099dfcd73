"""Queues and exchanges as the existing gofer's callers manage them, against a real RabbitMQ."""

from __future__ import annotations

import json
import queue as queues
import uuid

import pytest

from gofer import ENCODING
from gofer.errors import BrokerUnavailableError
from gofer.messaging import Exchange, Producer, Queue, nodes
from gofer.messaging.connection import Connection
from gofer.proxy import Agent
from gofer.rmi.async_ import ReplyConsumer


def test_asynchronous_replies_through_a_declared_queue(url: str, make_agent) -> None:
    agent_side = make_agent()
    tasks = Queue(f"gofer-test-tasks-{uuid.uuid4()}", url=url)
    tasks.durable = False
    tasks.declare()
    replies: queues.Queue[object] = queues.Queue()
    consumer = ReplyConsumer(tasks)  # a Queue, whose url it takes
    consumer.start(replies.put)
    try:
        sn = Agent(url, agent_side.address, reply=tasks.name).Dog().bark("async")
        while True:
            reply = replies.get(timeout=15)
            if getattr(reply, "sn", None) == sn and hasattr(reply, "retval"):
                break
        assert reply.retval.endswith('"async"')  # type: ignore[attr-defined]
    finally:
        consumer.shutdown()
        tasks.delete()


def test_purge_and_delete(url: str) -> None:
    box = Queue(f"gofer-test-box-{uuid.uuid4()}")
    box.auto_delete = False
    box.declare(url)
    connection = Connection(url)
    try:
        for n in range(3):
            connection.send(box.name, f'{{"n": {n}}}'.encode(ENCODING))
        assert box.purge(url) == 3
        box.delete(url)
        assert not connection.queue_exists(box.name)
    finally:
        connection.close()


def test_exchange_routes_to_a_bound_queue(url: str) -> None:
    name = f"gofer-test-{uuid.uuid4()}"
    exchange, box = Exchange(f"{name}-x", url=url), Queue(f"{name}-q", url=url)
    exchange.declare()
    box.declare()
    exchange.bind(box)
    connection = Connection(url)
    try:
        connection.send(f"{exchange.name}/{box.name}", b'{"routed": true}')
        reader = connection.reader(box.name, prefetch=1)
        delivery = reader.get(timeout=10)
        assert delivery is not None
        assert delivery.body == b'{"routed": true}'
        reader.ack(delivery)
        reader.close()
        exchange.unbind(box)
    finally:
        connection.close()
        box.delete()
        exchange.delete()


def test_an_unreachable_broker_is_an_error_not_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nodes, "CONNECT_LIMIT", 1.0)
    with pytest.raises(BrokerUnavailableError):
        Queue("nowhere", url="amqp://127.0.0.1:1").declare()


def test_producer_sends_gofer_documents(url: str) -> None:
    box = Queue(f"gofer-test-produced-{uuid.uuid4()}", url=url)
    box.declare()
    connection = Connection(url)
    try:
        with Producer(url) as producer:
            sn = producer.send(box.name, ttl=60, note="hello")
        reader = connection.reader(box.name, prefetch=1)
        delivery = reader.get(timeout=10)
        assert delivery is not None
        document = json.loads(delivery.body)
        assert document["sn"] == sn
        assert document["version"] == "2.0"
        assert document["routing"] == [None, box.name]
        assert document["note"] == "hello"
        reader.ack(delivery)
        reader.close()
    finally:
        connection.close()
        box.delete()
