"""Nodes of a RabbitMQ cluster SIGKILLed under load: goferd and its callers fail over.

goferd serves a quorum queue and is given the three nodes in order (so it
connects to node a first); callers are given all three, shuffled. Two
threads make synchronous calls and one sends asynchronous requests whose
replies go to a quorum queue, all through:

1. SIGKILL of the node goferd is connected to (a); a is started again;
2. SIGKILL of the node leading goferd's quorum queue then; it is started
   again.

After each kill, a synchronous call made after the kill must succeed
within ``RECOVERY`` seconds of it: goferd and the caller both moved to a
live node and work. At the end, every asynchronous request the cluster
confirmed was answered, and no request ran twice.

The recovery times are printed (the README's figures come from runs of
this test).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from gofer.messaging import auth
from gofer.messaging.adapter.model import Queue
from gofer.messaging.connection import Connection
from gofer.messaging.retry import Backoff
from gofer.proxy import Agent
from gofer.rmi import transport
from tests import brokers
from tests.faults.conftest import FaultGoferd, is_final
from tests.faults.load import Load

RECOVERY = 15.0
WAIT = 10.0


class QuorumReplies:
    """A quorum queue for asynchronous replies, read raw (so that duplicates show)."""

    def __init__(self, url: str) -> None:
        self.name = f"gofer-cluster-replies-{uuid.uuid4()}"
        self.connection = Connection(url, backoff=Backoff(limit=60))
        self.connection.declare_queue(
            Queue(self.name, durable=True, expiration=600, queue_type="quorum")
        )
        self.replies: list[dict[str, Any]] = []
        self._reader = self.connection.reader(self.name, prefetch=100)

    def read_until(self, wanted: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not wanted <= set(self.finals()) and time.monotonic() < deadline:
            delivery = self._reader.get(timeout=1.0)
            if delivery is not None:
                self.replies.append(dict(auth.validate(None, delivery.body)))
                self._reader.ack(delivery)

    def finals(self) -> Counter[str]:
        return Counter(r["sn"] for r in self.replies if is_final(r))

    def contradicting(self) -> dict[str, list[Any]]:
        answers: dict[str, list[Any]] = {}
        for reply in self.replies:
            if is_final(reply):
                answers.setdefault(reply["sn"], []).append(reply.get("result", reply.get("code")))
        return {sn: got for sn, got in answers.items() if any(a != got[0] for a in got)}

    def close(self) -> None:
        self._reader.close()
        self.connection.delete_queue(self.name)
        self.connection.close()


@pytest.fixture
def replies(cluster: brokers.TestCluster) -> Iterator[QuorumReplies]:
    queue = QuorumReplies(cluster.url)
    yield queue
    queue.close()


@pytest.fixture
def fresh_transports() -> Iterator[None]:
    yield
    transport.close_all()


def cluster_goferd(fault_goferd: Any, cluster: brokers.TestCluster, **model: Any) -> FaultGoferd:
    goferd: FaultGoferd = fault_goferd(
        broker_url=cluster.url,
        cleanup_url=cluster.url,
        threads=4,
        messaging={"shuffle": "no"},  # node a first: the test knows which node to kill
        model=model,
    )
    return goferd


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("fresh_transports")
def test_failover_under_load_loses_nothing_and_runs_nothing_twice(
    cluster: brokers.TestCluster, nodes: Any, fault_goferd: Any, replies: QuorumReplies
) -> None:
    goferd = cluster_goferd(fault_goferd, cluster, queue_type="quorum")
    assert Agent(cluster.url, goferd.queue, wait=30).Fault().work("warm-up") == "warm-up"
    load = Load(
        cluster.url,
        goferd.queue,
        replies.name,
        wait=WAIT,
        callers=2,
        work=0.02,
        send_work=0.01,
        pace=0.05,
        send_pace=0.05,
    )
    load.start()
    problems: list[str] = []
    recoveries: dict[str, float | None] = {}
    try:
        time.sleep(3.0)
        for step, node in (("goferd's node", "a"), ("the queue leader's node", None)):
            victim = node or nodes.leader(goferd.queue)
            killed = time.monotonic()
            nodes.kill(victim)
            recovery = load.recovered(killed, timeout=RECOVERY + 15)
            recoveries[f"{step} ({victim})"] = recovery
            if recovery is None or recovery > RECOVERY:
                problems.append(f"after killing {step} ({victim}): recovered in {recovery}")
            time.sleep(2.0)
            nodes.restart(victim)
            time.sleep(2.0)
    finally:
        load.stop()

    confirmed = set(load.confirmed)
    replies.read_until(confirmed, timeout=60)
    finals = replies.finals()
    ran = Counter(tag for event, _, tag in goferd.executions() if event == "start")
    starts = goferd.starts()
    failed = [o for o in load.outcomes if not o.ok]
    shown = [f"{k} {v:.2f}s" if v is not None else f"{k} never" for k, v in recoveries.items()]
    print(
        "\nfailover: recovery "
        + ", ".join(shown)
        + f"; sync calls {len(load.outcomes)} ({len(failed)} failed);"
        f" async {len(confirmed)} confirmed, {len(load.unsure)} unsure;"
        f" final replies sent twice {sum(finals.values()) - len(finals)}"
    )
    if lost := sorted(confirmed - set(finals)):
        problems.append(f"{len(lost)} confirmed, never answered: {lost[:5]}")
    if twice := {tag: n for tag, n in ran.items() if n > 1}:
        problems.append(f"run more than once: {twice}")
    if never := sorted(sn for sn in confirmed if starts[sn] != 1):
        problems.append(f"confirmed, not run exactly once: {never[:5]}")
    if differ := replies.contradicting():
        problems.append(f"answered differently more than once: {differ}")
    if wrong := [o.tag for o in load.outcomes if o.ok and ran[o.tag] != 1]:
        problems.append(f"results of calls that did not run once: {wrong[:5]}")
    if late := [o for o in load.outcomes if o.ended - o.began > WAIT + 5]:
        problems.append(f"{len(late)} calls outlived their wait, e.g. {late[:2]}")
    assert not problems, "\n".join(problems) + f"\ngoferd log tail:\n{goferd.log()[-3000:]}"


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("fresh_transports")
def test_a_classic_queue_whose_node_died_is_reported(
    cluster: brokers.TestCluster, nodes: Any, fault_goferd: Any
) -> None:
    goferd = cluster_goferd(fault_goferd, cluster)  # classic: it lives on node a only
    assert Agent(cluster.url, goferd.queue, wait=30).Fault().work("warm-up") == "warm-up"

    nodes.kill("a")
    deadline = time.monotonic() + RECOVERY
    while "is down or inaccessible" not in goferd.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    reported = [line for line in goferd.log().splitlines() if "is down or inaccessible" in line]
    nodes.restart("a")

    assert reported, f"goferd did not report its queue's node down:\n{goferd.log()[-2000:]}"
    assert goferd.queue in reported[0]
    assert "unavailable" in reported[0]
    # Back with its node, the queue is consumed again.
    assert Agent(cluster.url, goferd.queue, wait=60).Fault().work("again") == "again"


@pytest.mark.usefixtures("fresh_transports")
def test_a_queue_of_the_other_type_is_reported_at_load(
    cluster: brokers.TestCluster, fault_goferd: Any
) -> None:
    queue = f"gofer-cluster-classic-{uuid.uuid4()}"
    admin = Connection(cluster.url, backoff=Backoff(limit=30))
    admin.declare_queue(Queue(queue))  # classic, as an older goferd left it
    try:
        goferd: FaultGoferd = fault_goferd(
            start=False,
            broker_url=cluster.url,
            cleanup_url=cluster.url,
            queue=queue,
            model={"queue_type": "quorum"},
        )
        goferd.start(consuming=False)
        deadline = time.monotonic() + 20
        while "another type" not in goferd.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        said = [line for line in goferd.log().splitlines() if "another type" in line]
    finally:
        admin.delete_queue(queue)
        admin.close()

    assert said, f"goferd did not report the queue's type:\n{goferd.log()[-2000:]}"
    assert queue in said[0]
    assert "quorum" in said[0]
