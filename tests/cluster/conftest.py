"""The cluster suite: goferd and callers on the three-node cluster of scripts/rabbitmq-cluster.

These tests SIGKILL and restart the cluster's nodes (never the single test
broker), so they may run beside the rest of the suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests import brokers
from tests.conftest import mark_broker_tests
from tests.faults.conftest import fault_goferd  # noqa: F401 - a fixture used here too


@pytest.fixture(scope="session")
def cluster() -> brokers.TestCluster:
    """The cluster, all three nodes up (fails in CI when it is not)."""
    found = brokers.cluster()
    message = "the test cluster is turned off (GOFER_TEST_CLUSTER=off)"
    if found is not None:
        if found.reachable():
            return found
        message = f"the test cluster is not running ({found.url}): scripts/rabbitmq-cluster start"
    if brokers.required():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def nodes(cluster: brokers.TestCluster) -> Iterator[Any]:
    """Kill nodes (``nodes.kill("a")``); whatever a test killed is started again after it."""

    class Nodes:
        def __init__(self) -> None:
            self.killed: list[str] = []

        def kill(self, node: str) -> None:
            self.killed.append(node)
            cluster.run("kill", node)

        def restart(self, node: str) -> None:
            cluster.run("restart", node, timeout=240)
            self.killed.remove(node)

        def leader(self, queue: str) -> str:
            return cluster.run("leader", queue)

    made = Nodes()
    yield made
    for node in list(made.killed):
        cluster.run("restart", node, timeout=240)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_broker_tests(items, "cluster")
