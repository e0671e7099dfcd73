"""A minimal agent built on the dispatcher, serving the zoo plugin over a real RabbitMQ."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from gofer.errors import GoferError
from gofer.messaging.adapter.model import Queue
from gofer.messaging.connection import Connection
from gofer.rmi.catalog import Catalog
from gofer.rmi.dispatcher import Dispatcher
from gofer.rmi.serve import Refused, Replier, receive, run
from tests.conftest import mark_broker_tests
from tests.integration import zoo


class MiniAgent:
    """Reads one queue and serves each request on a small thread pool; acks when done."""

    def __init__(self, url: str, address: str, authenticator: object = None) -> None:
        self.url = url
        self.address = address
        self.authenticator = authenticator
        self.connection = Connection(url)
        self.connection.declare_queue(Queue(address, durable=False))
        self.dispatcher = Dispatcher([Catalog.of_module(zoo)])
        self.replier = Replier(self.connection.send, authenticator)  # type: ignore[arg-type]
        self.cancelled: set[str] = set()
        self.served: list[str] = []
        self._pool = ThreadPoolExecutor(4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        reader = self.connection.reader(self.address, prefetch=4)
        while not self._stop.is_set():
            try:
                delivery = reader.get(timeout=0.2)
            except GoferError:
                continue
            if delivery is not None:
                self._pool.submit(self._serve, reader, delivery)
        reader.close()

    def _serve(self, reader, delivery) -> None:  # type: ignore[no-untyped-def]
        try:
            request = receive(delivery.body, self.authenticator)  # type: ignore[arg-type]
        except Refused as refused:
            self.replier.refused(refused)
        else:
            self.served.append(request.sn)  # before the result reaches the caller
            self.replier.accepted(request)
            run(request, self.dispatcher, self.replier, lambda: request.sn in self.cancelled)
        reader.ack(delivery)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.connection.delete_queue(self.address)
        self.connection.close()


@pytest.fixture
def make_agent(url: str) -> Iterator[object]:
    agents: list[MiniAgent] = []

    def start(authenticator: object = None) -> MiniAgent:
        agent = MiniAgent(url, f"gofer-test-agent-{uuid.uuid4()}", authenticator)
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.close()


@pytest.fixture
def mini_agent(make_agent) -> MiniAgent:  # type: ignore[no-untyped-def]
    return make_agent()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_broker_tests(items, "integration")
