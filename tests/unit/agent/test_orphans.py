"""Journaled requests of a plugin removed for good are answered, on the in-memory broker.

Removed for good: ``gofer mgt unload``, its descriptor deleted while the
descriptor watch is on, or its descriptor deleted while goferd was stopped.
Each request it leaves gets a ``rejected`` reply, code ``request.plugin``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gofer.agent.config import AgentConfig, MainConfig, load_agent_config
from gofer.agent.daemon import Goferd
from gofer.agent.journal import Entry, Journal
from gofer.agent.paths import Paths
from gofer.messaging import auth
from gofer.messaging.adapter import memory
from gofer.messaging.adapter.model import Queue
from gofer.messaging.connection import Connection
from gofer.rmi import transport, wire

PLUGIN = """
import time
from pathlib import Path

from gofer.decorators import remote


class Dog:
    @remote
    def bark(self, word):
        return word

    @remote
    def hold(self, until):
        deadline = time.monotonic() + 20
        while not Path(until).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return "held"
"""


class Agentd:
    """goferd serving plugin ``dog`` over an in-memory broker, in a root that outlives it."""

    def __init__(self, root: Path) -> None:
        self.paths = Paths.under(root)
        self.url = f"memory://orphans-{uuid.uuid4().hex[:12]}"
        self.queue = f"dog-{uuid.uuid4().hex[:8]}"
        self.replies = f"replies-{uuid.uuid4().hex[:8]}"
        self.descriptor = self.paths.descriptors / "dog.json"
        self.goferd: Goferd | None = None
        self.paths.descriptors.mkdir(parents=True)
        self.paths.plugin_dirs[0].mkdir(parents=True)
        (self.paths.plugin_dirs[0] / "dog.py").write_text(PLUGIN)
        sections = {
            "main": {"enabled": 1, "threads": 1},
            "messaging": {"url": self.url},
            "model": {"queue": self.queue},
        }
        self.descriptor.write_text(json.dumps(sections))
        self.connection = Connection(self.url)
        self.connection.declare_queue(Queue(self.replies))
        self.reader = self.connection.reader(self.replies, prefetch=10)

    def start(self, *, monitor: bool = False) -> Goferd:
        defaults = load_agent_config(self.paths)
        config = AgentConfig(
            main=MainConfig(action_splay=0.0, drain_timeout=0.2, monitor=monitor),
            management=defaults.management,
            logging=defaults.logging,
            pam=defaults.pam,
        )
        self.goferd = Goferd(self.paths, config)
        self.goferd.start()
        return self.goferd

    def stop(self) -> None:
        if self.goferd is not None:
            self.goferd.shutdown(drain_timeout=5.0)
            self.goferd = None

    def request(self, method: str, *args: Any) -> Any:
        return wire.request_document(
            sn=wire.new_sn(),
            address=self.queue,
            classname="Dog",
            method=method,
            args=args,
            replyto=self.replies,
        )

    def call(self, method: str, *args: Any) -> str:
        doc = self.request(method, *args)
        self.connection.send(self.queue, doc.dump())
        return str(doc["sn"])

    def reply(self, sn: str, *, final: bool = True, timeout: float = 10) -> dict[str, Any]:
        """The next reply to ``sn`` (the final one, skipping status replies, if ``final``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            delivery = self.reader.get(timeout=0.1)
            if delivery is None:
                continue
            self.reader.ack(delivery)
            reply = dict(auth.validate(None, delivery.body))
            if reply.get("sn") != sn:
                continue
            if final and reply.get("status") in ("accepted", "started", "progress"):
                continue
            return reply
        raise AssertionError(f"no reply to {sn} within {timeout}s")


@pytest.fixture
def agentd(tmp_path: Path) -> Iterator[Agentd]:
    made = Agentd(tmp_path)
    try:
        yield made
    finally:
        made.stop()
        made.reader.close()
        made.connection.close()
        transport.close_for(made.url)
        memory.forget(made.url)


def queue_behind_a_busy_worker(agentd: Agentd, tmp_path: Path) -> tuple[str, str, Path]:
    """A request running on the only worker, and one accepted waiting for it; the release file."""
    release = tmp_path / "release"
    running = agentd.call("hold", str(release))
    assert agentd.reply(running, final=False)["status"] == "accepted"
    waiting = agentd.call("bark", "never")
    assert agentd.reply(waiting, final=False)["status"] == "accepted"
    return running, waiting, release


def assert_removed(reply: dict[str, Any]) -> None:
    assert reply["status"] == "rejected", reply
    assert reply["code"] == wire.UNKNOWN_PLUGIN, reply
    assert "removed" in reply["description"], reply


def assert_finished(goferd: Goferd, sn: str, timeout: float = 5) -> None:
    """``sn`` leaves the journal (just after its reply is sent)."""
    assert goferd.journal is not None
    deadline = time.monotonic() + timeout
    while sn in goferd.journal:
        assert time.monotonic() < deadline, f"{sn} still journaled"
        time.sleep(0.02)


def test_management_unload_answers_the_requests_the_plugin_leaves(
    agentd: Agentd, tmp_path: Path
) -> None:
    goferd = agentd.start()
    running, waiting, release = queue_behind_a_busy_worker(agentd, tmp_path)
    assert goferd.manage("unload", {"name": "dog"}) == {"unloaded": "dog"}
    assert_removed(agentd.reply(waiting))
    release.touch()
    assert agentd.reply(running)["result"] == {"retval": "held"}
    assert_finished(goferd, waiting)


def test_a_descriptor_deleted_under_the_watch_answers_the_requests_the_plugin_leaves(
    agentd: Agentd, tmp_path: Path
) -> None:
    goferd = agentd.start(monitor=True)
    assert goferd.watch is not None
    goferd.watch.stop()  # its thread would race this test's looks
    running, waiting, release = queue_behind_a_busy_worker(agentd, tmp_path)
    agentd.descriptor.unlink()
    goferd._descriptors_changed(goferd.watch.poll())
    assert goferd.container.find("dog") is None
    assert_removed(agentd.reply(waiting))
    release.touch()
    assert agentd.reply(running)["result"] == {"retval": "held"}


def journal_while_stopped(agentd: Agentd) -> str:
    """A request for ``dog`` in the journal, as a goferd stopped with it accepted leaves it."""
    doc = agentd.request("bark", "left")
    journal = Journal(agentd.paths.journal)
    try:
        journal.write(Entry(str(doc["sn"]), "dog", doc.dump(), time.time()))
    finally:
        journal.close()
    return str(doc["sn"])


def test_a_descriptor_deleted_while_goferd_is_stopped_answers_on_the_broker_it_served(
    agentd: Agentd,
) -> None:
    agentd.start()
    agentd.stop()
    sn = journal_while_stopped(agentd)
    agentd.descriptor.unlink()
    goferd = agentd.start()
    assert_removed(agentd.reply(sn))
    assert_finished(goferd, sn)
    goferd._sweep()
    # Nothing is left to answer: the plugin's kept settings go too.
    assert goferd.origins.plugins() == []


def test_requests_whose_broker_goferd_never_knew_are_dropped_and_logged(
    agentd: Agentd, caplog: pytest.LogCaptureFixture
) -> None:
    sn = journal_while_stopped(agentd)  # goferd never served dog here
    agentd.descriptor.unlink()
    goferd = agentd.start()
    assert_finished(goferd, sn)
    assert "dropped unanswered" in caplog.text
    assert agentd.reader.get(timeout=0.2) is None


def test_kept_settings_follow_the_descriptor_and_stay_while_the_plugin_is_there(
    agentd: Agentd,
) -> None:
    goferd = agentd.start()
    assert goferd.origins.plugins() == ["dog"]
    kept = goferd.origins.of("dog")
    assert kept is not None
    assert str(kept.url) == agentd.url
    path = goferd.origins.directory / "dog.json"
    assert path.stat().st_mode & 0o777 == 0o600
    assert goferd.origins.directory.stat().st_mode & 0o777 == 0o700
    written = path.stat().st_ino
    agentd.stop()
    goferd = agentd.start()
    assert goferd.origins.of("dog") == kept
    assert path.stat().st_ino == written  # the same settings: not written again
