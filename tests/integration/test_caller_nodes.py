"""Queues, exchanges, senders, readers and consumers as the existing gofer's callers use them.

Against a real RabbitMQ.
"""

from __future__ import annotations

import json
import queue as queues
import threading
import time
import uuid
from typing import Any

import pytest

from gofer import ENCODING
from gofer.errors import BrokerUnavailableError
from gofer.messaging import (
    Consumer,
    Document,
    Exchange,
    Producer,
    Queue,
    Reader,
    Sender,
    VersionError,
    auth,
    nodes,
)
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


def test_sender_and_reader(url: str) -> None:
    box = Queue(f"gofer-test-read-{uuid.uuid4()}", url=url)
    box.declare()
    try:
        sender = Sender(url)
        sender.send(box.name, '{"sn": "1", "version": "2.0", "note": "raw"}', ttl=60)
        sender.send(box.name, b'{"sn": "2", "version": "2.0"}')
        sender.close()
        with Reader(box) as reader:  # the queue's url
            first = reader.get(timeout=10)
            assert first is not None
            assert json.loads(first.body)["note"] == "raw"
            first.reject(requeue=True)  # back to the queue, read again below
            message, document = reader.next(timeout=10)
            assert message is not None
            assert document is not None
            assert document.note == "raw"
            message.ack()
            assert reader.search("2", timeout=10) == Document(sn="2", version="2.0")
            assert reader.get(timeout=0.2) is None
    finally:
        box.delete()


def test_reader_next_refuses_what_it_cannot_trust(url: str) -> None:
    box = Queue(f"gofer-test-trust-{uuid.uuid4()}", url=url)
    box.declare()
    key = auth.HmacAuthenticator(b"k" * 32)
    try:
        with Producer(url) as producer:
            producer.send(box.name, note="unsigned")
            producer.authenticator = key
            producer.send(box.name, note="signed", version="0.5")
            sn = producer.send(box.name, note="good")
        with Reader(box.name, url=url) as reader:
            reader.authenticator = key
            with pytest.raises(auth.ValidationFailed):
                reader.next(timeout=10)
            with pytest.raises(VersionError):
                reader.next(timeout=10)
            message, document = reader.next(timeout=10)
            assert document is not None
            assert document.sn == sn
            assert message is not None
            message.ack()
        assert box.purge() == 0  # the refused were acknowledged, not left behind
    finally:
        box.delete()


def test_a_consumer_subclass_gets_each_document(url: str) -> None:
    box = Queue(f"gofer-test-consumed-{uuid.uuid4()}", url=url)
    box.declare()
    seen: list[Any] = []
    done = threading.Event()

    class Notes(Consumer):
        def dispatch(self, document: Document) -> None:
            seen.append(document.note)
            if len(seen) == 3:
                done.set()

    consumer = Notes(box)
    consumer.start()
    try:
        with Producer(url) as producer:
            for note in ("a", "b", "c"):
                producer.send(box.name, note=note)
        assert done.wait(15), seen
        assert seen == ["a", "b", "c"]
    finally:
        consumer.shutdown()
        consumer.join(10)
        assert not consumer.is_alive()
        box.delete()


def test_a_consumer_waits_for_its_queue(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gofer.messaging.consumer.NOT_FOUND_DELAY", 0.5)
    box = Queue(f"gofer-test-late-{uuid.uuid4()}", url=url)
    routes: list[float] = []

    class Late(Consumer):
        def no_route(self) -> None:
            routes.append(time.monotonic())

    consumer = Late(box)
    consumer.start()
    try:
        deadline = time.monotonic() + 15
        while len(routes) < 2:  # it keeps trying
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        consumer.shutdown()
        consumer.join(15)
        assert not consumer.is_alive()
