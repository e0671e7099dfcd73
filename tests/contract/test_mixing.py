"""Callers and agents on different protocols through one broker: bodies arrive whole.

A 1.0 sender's body reaches a 0-9-1 reader through RabbitMQ as encoded 1.0
sections, which the amqp adapter unwraps (``amqp/sections.py``); Broker-J
converts bodies itself. Every direction between the adapters a broker
speaks is sent a gofer document and must read back exactly that document.
"""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest

from gofer.messaging.adapter.model import Broker, Queue
from gofer.messaging.adapter.registry import find
from tests import brokers

#: (sender adapter, reader adapter, broker name)
DIRECTIONS = [
    ("proton", "amqp", "rabbitmq"),
    ("amqp", "proton", "rabbitmq"),
    ("proton", "amqp", "brokerj"),
    ("amqp", "proton", "brokerj"),
    ("qpid", "proton", "brokerj"),
    ("proton", "qpid", "brokerj"),
    ("qpid", "amqp", "brokerj"),
    ("amqp", "qpid", "brokerj"),
]


def _broker(name: str, adapter: str) -> Broker:
    for test_broker in brokers.brokers():
        if test_broker.name == name:
            if not test_broker.reachable():
                message = f"{name} not reachable at {test_broker.parsed}"
                if brokers.required():
                    pytest.fail(message)
                pytest.skip(message)
            url = dataclasses.replace(test_broker.parsed, adapter=adapter)
            return Broker(url=url, connect_timeout=10.0)
    pytest.skip(f"{name} turned off")


@pytest.mark.parametrize(
    ("sender", "reader", "broker_name"),
    DIRECTIONS,
    ids=[f"{s}-to-{r}-{b}" for s, r, b in DIRECTIONS],
)
def test_a_document_crosses_protocols_whole(sender: str, reader: str, broker_name: str) -> None:
    queue = f"gofer-test-mixing-{uuid.uuid4()}"
    admin = find("amqp").connect(_broker(broker_name, "amqp"))
    try:
        admin.declare_queue(Queue(queue, durable=True))
        small = json.dumps({"sn": str(uuid.uuid4()), "version": "2.0", "data": "é"})
        large = json.dumps({"sn": str(uuid.uuid4()), "pad": "x" * 70_000})
        outgoing = find(sender).connect(_broker(broker_name, sender))
        try:
            for text in (small, large):
                outgoing.send(queue, text.encode())
        finally:
            outgoing.close()
        incoming = find(reader).connect(_broker(broker_name, reader))
        try:
            consumer = incoming.reader(queue, prefetch=2)
            got = []
            for _ in range(2):
                delivery = consumer.get(timeout=10)
                assert delivery is not None, f"only {len(got)} of 2 arrived"
                got.append(delivery.body)
                consumer.ack(delivery)
            consumer.close()
        finally:
            incoming.close()
        assert got == [small.encode(), large.encode()]
    finally:
        admin.delete_queue(queue)
        admin.close()
