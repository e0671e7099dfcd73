"""Fixtures of the adapter contract suite: one run per (adapter, broker) pair."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator

import pytest

from gofer.errors import UnsupportedError
from gofer.messaging.adapter.contract import Connection
from gofer.messaging.adapter.model import Broker
from gofer.messaging.adapter.registry import find
from tests import brokers
from tests.brokers import TestBroker

# (adapter, broker name): the pairs the contract suite runs on. An adapter
# joins by adding its pairs here (and what differs through it to the
# broker's capabilities in tests/brokers.py).
PAIRS = [
    ("amqp", "rabbitmq"),
    ("amqp", "brokerj"),
    ("proton", "rabbitmq"),
    ("proton", "brokerj"),
    ("qpid", "brokerj"),
    ("memory", "memory"),
]


def _targets() -> list[pytest.param]:
    by_name = {b.name: b for b in brokers.brokers()}
    return [
        pytest.param((adapter, by_name[name]), id=f"{adapter}-{name}")
        for adapter, name in PAIRS
        if name in by_name
    ]


@pytest.fixture(params=_targets())
def target(request: pytest.FixtureRequest) -> tuple[str, TestBroker]:
    adapter, test_broker = request.param
    if not test_broker.reachable():
        message = f"{test_broker.name} not reachable at {test_broker.parsed}"
        if brokers.required():
            pytest.fail(message)
        pytest.skip(message)
    return adapter, test_broker


@pytest.fixture
def test_broker(target: tuple[str, TestBroker]) -> TestBroker:
    return target[1]


@pytest.fixture
def broker(target: tuple[str, TestBroker]) -> Broker:
    """Settings for the broker under test, through the adapter under test."""
    adapter, test_broker = target
    url = dataclasses.replace(test_broker.parsed, adapter=adapter)
    return Broker(url=url, connect_timeout=10.0)


@pytest.fixture
def connect(broker: Broker) -> Iterator[object]:
    """Open connections to the broker under test; all are closed afterwards."""
    opened: list[Connection] = []

    def open_connection(**settings: object) -> Connection:
        chosen = dataclasses.replace(broker, **settings)  # type: ignore[arg-type]
        connection = find(chosen.url.adapter).connect(chosen)
        opened.append(connection)
        return connection

    yield open_connection
    for connection in opened:
        connection.close()


@pytest.fixture
def connection(connect) -> Connection:  # type: ignore[no-untyped-def]
    return connect()


@pytest.fixture
def capable(target: tuple[str, TestBroker]) -> Callable[[str], bool]:
    """Whether the pair under test has a capability (for a difference inside a test)."""
    adapter, test_broker = target
    return lambda capability: test_broker.has(capability, adapter)


@pytest.fixture
def delete_queue(broker: Broker) -> Callable[[Connection, str], None]:
    """Delete a test queue, through AMQP 0-9-1 where the adapter cannot.

    RabbitMQ's AMQP 1.0 plugin cannot delete queues (UnsupportedError), so the
    queues the proton adapter's tests leave there are removed with the amqp adapter.
    """

    def delete(connection: Connection, name: str) -> None:
        if connection.is_open:
            try:
                connection.delete_queue(name)
                return
            except UnsupportedError:
                pass
        elif broker.url.adapter == "amqp":
            return
        fallback = find("amqp").connect(
            dataclasses.replace(broker, url=broker.url.without_adapter())
        )
        try:
            fallback.delete_queue(name)
        finally:
            fallback.close()

    return delete


@pytest.fixture
def queue_name(
    connection: Connection, delete_queue: Callable[[Connection, str], None]
) -> Iterator[str]:
    """A fresh queue name, deleted after the test."""
    name = f"gofer-test-{uuid.uuid4()}"
    yield name
    delete_queue(connection, name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark contract tests as broker tests; deselect pairs lacking what a test needs.

    ``@pytest.mark.needs("persistent")`` names a capability of ``TestBroker``
    (as reached through the pair's adapter, see ``TestBroker.has``); a pair
    without it is deselected (not skipped: it is not a failure to run).
    ``needs("!bind")`` selects the pairs *without* the capability.
    """
    kept, dropped = [], []
    for item in items:
        if "contract" not in item.nodeid.split("::")[0]:
            kept.append(item)
            continue
        item.add_marker(pytest.mark.broker)
        callspec = getattr(item, "callspec", None)
        pair = callspec.params.get("target") if callspec else None
        needs = [m.args[0] for m in item.iter_markers("needs")]
        if pair is not None and not all(_has(pair, need) for need in needs):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _has(pair: tuple[str, TestBroker], need: str) -> bool:
    adapter, test_broker = pair
    if need.startswith("!"):
        return not test_broker.has(need[1:], adapter)
    return test_broker.has(need, adapter)
