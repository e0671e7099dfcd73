"""A plugin written for gofer 3.0's plugin API loads under goferd and moves its queue and broker."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gofer.messaging.connection import Connection
from gofer.messaging.url import Url
from gofer.proxy import Agent
from gofer.rmi import transport
from gofer.rmi.async_ import ReplyConsumer
from tests import brokers
from tests.e2e.conftest import PLUGINS, Goferd


def test_plugin_moves_its_queue_from_its_load_hook_and_on_a_watched_file(
    make_goferd: Callable[..., Any], url: str
) -> None:
    goferd: Goferd = make_goferd(start=False)
    name = f"gofer-e2e-mover-{uuid.uuid4()}"
    first, second, third = f"{name}-first", f"{name}-second", f"{name}-third"
    watched = goferd.root / "queue-name"
    watched.write_text(second)
    shutil.copy(PLUGINS / "mover.py", goferd.root / "usr/lib/gofer/plugins/mover.py")
    goferd.write_descriptor(
        "mover",
        {
            "main": {"enabled": 1},
            "messaging": {"url": url},
            "model": {"queue": first, "managed": 1},
            "mover": {"watch": str(watched)},
        },
    )
    goferd.start()
    try:
        # The @load hook moved it from the descriptor's queue to the file's.
        assert Agent(url, second, wait=30).Mover().where() == second
        watched.write_text(third)
        deadline = time.monotonic() + 30
        while f"consuming {third}" not in goferd.log():
            assert time.monotonic() < deadline, goferd.log()[-3000:]
            time.sleep(0.05)
        assert Agent(url, third, wait=30).Mover().where() == third
        child = Agent(url, third, wait=30).Mover().child()  # the fork model, after the move
        assert isinstance(child, int)
        assert child != goferd.process.pid  # type: ignore[union-attr]
        assert f"plugin mover detached from {second}" in goferd.log()
    finally:
        goferd.stop()
        connection = Connection(url)
        try:
            for queue in (first, second, third):
                connection.delete_queue(queue)
        finally:
            connection.close()


@pytest.fixture
def vhost_url(url: str) -> Iterator[str]:
    """A virtual host of its own on the test RabbitMQ, for the guest user; deleted afterwards.

    Another virtual host is another broker to a client: its queues are not
    the default virtual host's, and a reply sent there never reaches a
    caller waiting on the default one.
    """
    node = os.environ.get("GOFER_TEST_RABBITMQ_NODE", "rabbit@localhost")
    parsed = Url.parse(url)
    if shutil.which("rabbitmqctl") is None or parsed.virtual_host:
        message = "needs rabbitmqctl and the test RabbitMQ on its default virtual host"
        if brokers.required():
            pytest.fail(message)
        pytest.skip(message)
    name = f"gofer-e2e-{uuid.uuid4()}"

    def rabbitmqctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", "-q", "-n", node, *args], check=True, timeout=60)

    moved = f"{url.rstrip('/')}/{name}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, parsed.userid or "guest", ".*", ".*", ".*")
        yield moved
    finally:
        transport.close_for(moved)  # the callers' connection there, before the host goes
        rabbitmqctl("delete_vhost", name)


def test_a_plugin_moving_to_another_broker_answers_the_calls_it_had_taken(
    make_goferd: Callable[..., Any], url: str, vhost_url: str
) -> None:
    """A call running and one waiting for the worker are answered where their callers wait."""
    goferd: Goferd = make_goferd(start=False)
    name = f"gofer-e2e-mover-{uuid.uuid4()}"
    first, second = f"{name}-first", f"{name}-second"
    watched = goferd.root / "queue-name"
    watched.write_text(first)
    shutil.copy(PLUGINS / "mover.py", goferd.root / "usr/lib/gofer/plugins/mover.py")
    goferd.write_descriptor(
        "mover",
        {
            "main": {"enabled": 1, "threads": 1},
            "messaging": {"url": url},
            "model": {"queue": first, "managed": 1},
            "mover": {"watch": str(watched), "marks": str(goferd.marks)},
        },
    )
    goferd.start()
    replies = f"gofer-e2e-replies-{uuid.uuid4()}"
    seen: queue.Queue[Any] = queue.Queue()
    consumer = ReplyConsumer(replies, url=url)
    consumer.start(seen.put)
    try:
        agent = Agent(url, first, reply=replies)
        running = agent.Mover().slow("running", 3)
        waiting = agent.Mover().slow("waiting", 0.5)
        accepted = set()
        deadline = time.monotonic() + 30
        while accepted != {running, waiting} or not (goferd.marks / "running").exists():
            assert time.monotonic() < deadline, goferd.log()[-3000:]
            with contextlib.suppress(queue.Empty):
                reply = seen.get(timeout=0.1)
                assert reply.kind in ("accepted", "started"), reply
                accepted.add(reply.sn)
        # Moved while one call runs and the other waits for the only worker.
        watched.write_text(f"{vhost_url} {second}")
        deadline = time.monotonic() + 30
        while f"consuming {second}" not in goferd.log():
            assert time.monotonic() < deadline, goferd.log()[-3000:]
            time.sleep(0.05)
        assert Agent(vhost_url, second, wait=60).Mover().where() == second
        answers: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        while len(answers) < 2:
            assert time.monotonic() < deadline, (answers, goferd.log()[-4000:])
            with contextlib.suppress(queue.Empty):
                reply = seen.get(timeout=0.1)
                if reply.kind in ("succeeded", "failed", "rejected"):
                    assert reply.sn not in answers, f"{reply.sn} answered twice"
                    answers[reply.sn] = (reply.kind, getattr(reply, "retval", None))
        assert answers == {running: ("succeeded", "running"), waiting: ("succeeded", "waiting")}
        assert f"plugin mover detached from {first}" in goferd.log()
    finally:
        consumer.stop()
        consumer.join(5)
        goferd.stop()
        connection = Connection(url)
        try:
            for each in (first, replies):
                connection.delete_queue(each)
        finally:
            connection.close()
