"""Fan-out against a real goferd serving 45 agent queues (one plugin each) on RabbitMQ."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gofer.messaging.adapter.model import Queue
from gofer.messaging.connection import Connection
from gofer.messaging.retry import Backoff
from gofer.proxy import Fleet
from gofer.rmi.fanout import CANCELLED, FAILED, NO_QUEUE, SUCCEEDED, TIMEOUT
from tests.e2e.conftest import REPO, Goferd

LIVE = 45
GOFER = [sys.executable, str(REPO / "bin/gofer")]


class FleetGoferd(Goferd):
    """goferd with ``LIVE`` copies of the demo plugin, each on a queue of its own."""

    def _layout(self, farm: dict[str, Any]) -> None:
        modules = self._root()
        self.queues = [f"{self.queue}-{n}" for n in range(LIVE)]
        for n, queue in enumerate(self.queues):
            shutil.copy(REPO / "plugins/demo.py", modules / f"demo{n}.py")
            self.write_descriptor(
                f"demo{n}",
                {
                    "main": {"enabled": 1, "threads": 2},
                    "messaging": {"url": self.url},
                    "model": {"queue": queue, "managed": 2},
                },
            )

    def serving(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.log().count(": consuming ") < LIVE:
            assert time.monotonic() < deadline, f"not all plugins consume:\n{self.log()[-2000:]}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def fleet_goferd(url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetGoferd]:
    root = tmp_path_factory.mktemp("goferd-fleet")
    goferd = FleetGoferd(root, url, f"gofer-fleet-{uuid.uuid4()}")
    goferd.start(timeout=60)
    goferd.serving()
    yield goferd
    goferd.stop()
    connection = Connection(url, backoff=Backoff(limit=10))
    try:
        for queue in goferd.queues:
            connection.delete_queue(queue)
    finally:
        connection.close()


@pytest.fixture
def dead_queues(url: str) -> Iterator[list[str]]:
    """Five queues nobody consumes: agents that are offline."""
    names = [f"gofer-fleet-dead-{uuid.uuid4()}" for _ in range(5)]
    connection = Connection(url, backoff=Backoff(limit=10))
    for name in names:
        connection.declare_queue(Queue(name, expiration=600))
    yield names
    for name in names:
        connection.delete_queue(name)
    connection.close()


def test_live_agents_answer_and_dead_ones_cost_one_deadline(
    url: str, fleet_goferd: FleetGoferd, dead_queues: list[str]
) -> None:
    agents = fleet_goferd.queues + dead_queues  # 50, of which 5 offline
    began = time.monotonic()
    outcomes = list(Fleet(url, agents, wait=6).Demo().echo("ping"))
    took = time.monotonic() - began

    by_status = Counter(o.status for o in outcomes)
    assert by_status == {SUCCEEDED: LIVE, TIMEOUT: 5}
    assert {o.agent for o in outcomes} == set(agents)
    assert all(o.result == "ping" for o in outcomes if o.ok)
    assert {o.agent for o in outcomes if o.status == TIMEOUT} == set(dead_queues)
    assert max(o.seconds for o in outcomes if o.ok) < 5  # answered well within the deadline
    assert 6 <= took < 9  # the offline agents cost the one deadline, not one each
    assert [o.status for o in outcomes][-5:] == [TIMEOUT] * 5  # streamed: answers came first


def test_a_missing_queue_ends_at_once(url: str, fleet_goferd: FleetGoferd) -> None:
    missing = [f"gofer-fleet-missing-{uuid.uuid4()}" for _ in range(2)]
    began = time.monotonic()
    outcomes = list(Fleet(url, [*fleet_goferd.queues[:3], *missing], wait=60).Demo().hello())

    assert time.monotonic() - began < 10
    assert Counter(o.status for o in outcomes) == {SUCCEEDED: 3, NO_QUEUE: 2}
    assert {o.agent for o in outcomes if o.status == NO_QUEUE} == set(missing)


def test_batches_roll_one_after_another(url: str, fleet_goferd: FleetGoferd) -> None:
    agents = fleet_goferd.queues[:30]
    outcomes = list(Fleet(url, agents, wait=30, batch=10).Demo().echo(1))

    assert all(o.ok for o in outcomes)
    for start in (0, 10, 20):  # every outcome of a batch before any of the next
        assert {o.agent for o in outcomes[start : start + 10]} == set(agents[start : start + 10])


def test_progress_and_remote_errors_per_agent(url: str, fleet_goferd: FleetGoferd) -> None:
    reports: dict[str, list[Any]] = {}
    agents = fleet_goferd.queues[:5]
    fleet = Fleet(
        url, agents, wait=30, on_progress=lambda a, r: reports.setdefault(a, []).append(r)
    )

    wagged = list(fleet.Dog().wag(3))
    missing = list(fleet.Dog().fly())

    assert all(o.ok for o in wagged)
    # Each agent's own reports, in order, reached the callback with its name.
    assert {a: [r["completed"] for r in got][-3:] for a, got in reports.items()} == {
        a: [1, 2, 3] for a in agents
    }
    assert {o.status for o in missing} == {FAILED}
    assert all(type(o.error).__name__ == "MemberNotFound" for o in missing)
    assert missing[0].as_dict()["error"]["type"] == "MemberNotFound"


def test_cancel_stops_the_rest_and_the_running(url: str, fleet_goferd: FleetGoferd) -> None:
    calls: Any = None

    def first_report(agent: str, report: dict[str, Any]) -> None:
        calls.cancel()  # as soon as the first agent is under way

    fleet = Fleet(url, fleet_goferd.queues, wait=30, concurrency=5, on_progress=first_report)
    calls = fleet.Demo().demo()  # ten steps of 0.1 s, checking for a cancel before each
    began = time.monotonic()
    outcomes = list(calls)

    assert time.monotonic() - began < 10
    assert len(outcomes) == LIVE
    assert calls.pending == 0
    ran = [o for o in outcomes if o.status != CANCELLED]
    assert len(ran) == 5  # the first window; the other 40 were never sent
    # Each agent running a request was told, and stopped it before its ten steps.
    assert all(o.ok for o in ran)
    assert all(str(o.result).startswith("cancelled after") for o in ran), ran


def test_agents_are_called_once_each(url: str, fleet_goferd: FleetGoferd) -> None:
    agents = [fleet_goferd.queues[0]] * 3 + [fleet_goferd.queues[1]]
    outcomes = list(Fleet(url, agents, wait=30).Demo().echo("x"))
    assert sorted(o.agent for o in outcomes) == sorted(set(agents))


def test_fleet_options_are_checked() -> None:
    with pytest.raises(ValueError, match="at least one agent"):
        Fleet("amqp://localhost", [])
    with pytest.raises(ValueError, match="no reply or trigger"):
        Fleet("amqp://localhost", ["a"], reply="somewhere")
    with pytest.raises(ValueError, match="at least 1"):
        Fleet("amqp://localhost", ["a"], concurrency=0)


def test_gofer_rmi_calls_many_agents(
    url: str, fleet_goferd: FleetGoferd, dead_queues: list[str], tmp_path: Path
) -> None:
    listed = tmp_path / "agents.txt"
    listed.write_text("\n".join(["# offline ones", *dead_queues[:2], ""]))
    began = time.monotonic()
    done = subprocess.run(
        [
            *GOFER, "rmi", "-u", url, "-a", fleet_goferd.queues[0], "-a", fleet_goferd.queues[1],
            "--agents-file", str(listed), "-w", "4", "--json", "-t", "Demo.echo", "hello",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )  # fmt: skip

    assert time.monotonic() - began < 15
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert {(o["agent"], o["status"]) for o in lines} == {
        (fleet_goferd.queues[0], "succeeded"),
        (fleet_goferd.queues[1], "succeeded"),
        (dead_queues[0], "timeout"),
        (dead_queues[1], "timeout"),
    }
    assert all(o["result"] == "hello" for o in lines if o["status"] == "succeeded")
    assert done.returncode == 6, done.stderr  # not every agent succeeded
    assert "4 agents: 2 succeeded, 2 not" in done.stderr
