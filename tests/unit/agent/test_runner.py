"""A plugin's runner, scripted: Admin beside busy workers, a consumer that lasts.

The connection here is a stand-in scripted by each test (what the runner
reads, what it sends); the journal is real. What a real broker does is the
business of the contract and end-to-end suites.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gofer.agent import runner as runner_module
from gofer.agent.builtin import admin_catalog
from gofer.agent.journal import Journal
from gofer.agent.runner import PluginRunner
from gofer.decorators import remote
from gofer.messaging import auth
from gofer.messaging.adapter.model import Delivery
from gofer.messaging.auth import HmacAuthenticator, ReplayGuard
from gofer.messaging.document import Document
from gofer.rmi import wire
from gofer.rmi.catalog import Catalog, remote_class
from gofer.rmi.context import Context
from gofer.rmi.dispatcher import Dispatcher

QUEUE = "agent-under-test"
KEY = "runner-test-shared-key-0123456789"
REPLIES = "caller-replies"


class ScriptedReader:
    """Hands out what the test puts in; records what the runner settles.

    As a broker does, closing it puts back what it handed out and was not
    acknowledged.
    """

    def __init__(self, connection: ScriptedConnection) -> None:
        self.connection = connection
        self.acked: list[bytes] = []
        self.unacked: list[bytes] = []
        self.closed = False

    def get(self, timeout: float | None = None) -> Delivery | None:
        failure = self.connection.failures.pop(0) if self.connection.failures else None
        if failure is not None:
            raise failure
        try:
            body = self.connection.incoming.get(timeout=timeout or 0)
        except queue.Empty:
            return None
        self.unacked.append(body)
        return Delivery(body, object(), redelivered=body in self.connection.returned)

    def ack(self, delivery: Delivery) -> None:
        self.acked.append(delivery.body)
        self.unacked.remove(delivery.body)

    def ack_many(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            self.ack(delivery)

    def close(self) -> None:
        self.closed = True
        for body in self.unacked:
            self.connection.returned.add(body)
            self.connection.incoming.put(body)
        self.unacked.clear()


class ScriptedConnection:
    """The part of a broker connection a runner uses, scripted by the test."""

    def __init__(self) -> None:
        self.incoming: queue.Queue[bytes] = queue.Queue()
        self.returned: set[bytes] = set()  # given back unacknowledged: redelivered next time
        self.failures: list[Exception] = []
        self.readers: list[ScriptedReader] = []
        self.sent: queue.Queue[Document] = queue.Queue()
        self.down_since: float | None = None

    def reader(self, name: str, prefetch: int) -> ScriptedReader:
        reader = ScriptedReader(self)
        self.readers.append(reader)
        return reader

    def send(self, address: str, body: bytes, *, confirm: bool = True) -> None:
        self.sent.put(auth.validate(None, body))  # signed replies unwrapped

    def queue_exists(self, name: str) -> bool:
        return True

    def reply(self, sn: str, final: bool = True, timeout: float = 10) -> Document:
        """The next reply for ``sn`` (the final one, or any status), skipping others."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.sent.get(timeout=max(0.0, deadline - time.monotonic()))
            if doc["sn"] == sn and (
                not final or "result" in doc or doc.get("status") == "rejected"
            ):
                return doc


class Slow:
    """A plugin class whose method runs until it is cancelled (or 10 s)."""

    @remote
    def work(self) -> str:
        context = Context.current()
        deadline = time.monotonic() + 10
        while not context.cancelled() and time.monotonic() < deadline:
            time.sleep(0.01)
        return "cancelled" if context.cancelled() else "ran out"

    @remote
    def echo(self, text: Any) -> Any:
        return text


class QueueAdmin:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def catalogs(self) -> list[tuple[str, Catalog]]:
        return []

    def cancel(self, sn: str | None, criteria: object) -> list[str]:
        return [sn] if sn is not None and self.journal.cancel(sn) else []


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal(tmp_path / "journal")
    yield opened
    opened.close()


@pytest.fixture
def make_runner(
    journal: Journal,
) -> Iterator[Callable[..., tuple[PluginRunner, ScriptedConnection]]]:
    made: list[PluginRunner] = []

    def make(**options: Any) -> tuple[PluginRunner, ScriptedConnection]:
        connection = ScriptedConnection()
        catalogs = [
            Catalog("slow", {"Slow": remote_class(Slow)}, {}, [], [], []),
            admin_catalog(QueueAdmin(journal)),
        ]
        runner = PluginRunner(
            name="slow",
            queue=QUEUE,
            connection=connection,  # type: ignore[arg-type]
            dispatcher=Dispatcher(catalogs),
            journal=journal,
            managed=0,
            **options,
        )
        made.append(runner)
        runner.start()
        return runner, connection

    yield make
    for runner in made:
        runner.stop_consuming()
        runner.drain(5)


def request(classname: str, method: str, *args: Any, **fields: Any) -> Document:
    """A request for the runner's queue, replies to ``REPLIES``; ``fields``: secret, pam..."""
    return wire.request_document(
        sn=wire.new_sn(),
        address=QUEUE,
        classname=classname,
        method=method,
        args=args,
        replyto=REPLIES,
        **fields,
    )


def call(connection: ScriptedConnection, classname: str, method: str, *args: Any) -> str:
    doc = request(classname, method, *args)
    connection.incoming.put(doc.dump())
    return str(doc["sn"])


def test_admin_cancel_reaches_the_request_the_only_worker_runs(
    make_runner: Callable[..., tuple[PluginRunner, ScriptedConnection]],
) -> None:
    _, connection = make_runner(threads=1)
    running = call(connection, "Slow", "work")
    connection.reply(running, final=False)  # accepted
    started = time.monotonic()
    cancel = call(connection, "Admin", "cancel", running)
    # Admin answers while the one worker is still busy, and its cancel lands.
    assert connection.reply(cancel)["result"] == {"retval": [running]}
    assert connection.reply(running)["result"] == {"retval": "cancelled"}
    assert time.monotonic() - started < 5


def test_admin_cancel_is_read_past_a_full_backlog(
    make_runner: Callable[..., tuple[PluginRunner, ScriptedConnection]],
) -> None:
    runner, connection = make_runner(threads=1)
    # One running, the backlog full, and more waiting in the broker ahead of the cancel.
    work = [call(connection, "Slow", "work") for _ in range(runner.held + 3)]
    for sn in work[: runner.held]:
        connection.reply(sn, final=False)  # accepted
    started = time.monotonic()
    cancel = call(connection, "Admin", "cancel", work[0])
    assert connection.reply(cancel)["result"] == {"retval": [work[0]]}
    assert connection.reply(work[0])["result"] == {"retval": "cancelled"}
    assert time.monotonic() - started < 5
    for sn in work[1:]:  # the rest, so that the workers end at once
        call(connection, "Admin", "cancel", sn)
    # What was read past the cancel is not lost: each is answered, cancelled
    # while it ran or waited for a worker, or refused as cancelled before it was taken.
    answers = [connection.reply(sn) for sn in work[1:]]
    outcomes = {str(doc.get("result") or doc.get("code")) for doc in answers}
    assert outcomes <= {str({"retval": "cancelled"}), wire.CANCELLED}


def test_consumer_outlives_an_unexpected_failure(
    make_runner: Callable[..., tuple[PluginRunner, ScriptedConnection]],
) -> None:
    runner, connection = make_runner()
    connection.failures.append(RuntimeError("a driver bug"))
    sn = call(connection, "Slow", "echo", "still here")
    assert connection.reply(sn)["result"] == {"retval": "still here"}
    assert connection.readers[0].closed  # unacknowledged messages went back
    assert runner._consumer is not None
    assert runner._consumer.is_alive()


def test_a_message_the_agent_cannot_read_is_dropped_and_the_queue_goes_on(
    make_runner: Callable[..., tuple[PluginRunner, ScriptedConnection]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = runner_module.receive

    def failing(body: bytes, *args: Any) -> wire.Request:
        if b"poison" in body:
            raise TypeError("a bug reading this message")
        return real(body, *args)

    monkeypatch.setattr(runner_module, "receive", failing)
    _, connection = make_runner()
    call(connection, "Slow", "echo", "poison")
    sn = call(connection, "Slow", "echo", "next")
    assert connection.reply(sn)["result"] == {"retval": "next"}
    assert any(b"poison" in body for body in connection.readers[0].acked)
    assert len(connection.readers) == 1  # never put back to fail again


def test_request_over_the_journal_limit_is_rejected_and_the_next_runs(
    make_runner: Callable[..., tuple[PluginRunner, ScriptedConnection]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner_module, "MAX_BODY", 2_000)
    runner, connection = make_runner()
    big = call(connection, "Slow", "echo", "x" * 3_000)
    small = call(connection, "Slow", "echo", "small")
    rejected = connection.reply(big)
    assert rejected["status"] == "rejected"
    assert rejected["code"] == wire.TOO_LARGE
    assert connection.reply(small)["result"] == {"retval": "small"}
    assert big not in runner.journal


def test_failed_journal_stops_the_consumer_and_tells_goferd(
    make_runner: Callable[..., tuple[PluginRunner, ScriptedConnection]],
    journal: Journal,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reasons: list[str] = []
    told = threading.Event()

    def on_fatal(reason: str) -> None:
        reasons.append(reason)
        told.set()

    runner, connection = make_runner(on_fatal=on_fatal)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("gofer.agent.journal.commit.os.fsync", full)
    body_sn = call(connection, "Slow", "echo", "lost?")
    assert told.wait(10), "goferd was never told its journal failed"
    assert "journal" in reasons[0]
    assert runner._consumer is not None
    runner._consumer.join(5)
    assert not runner._consumer.is_alive()
    # Not acknowledged: the broker gets it back when the reader closes.
    [reader] = connection.readers
    assert reader.closed
    assert all(json.loads(body)["sn"] != body_sn for body in reader.acked)


def test_redelivery_of_a_message_checked_but_never_journaled_runs_once(
    make_runner: Callable[..., tuple[PluginRunner, ScriptedConnection]],
    journal: Journal,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The replay guard saw it before the batch failed; the broker's redelivery
    # must still run, or an acknowledged-by-nobody request would be lost.
    authenticator = HmacAuthenticator(KEY, replay=ReplayGuard())
    _, connection = make_runner(authenticator=authenticator)
    write_many = journal.write_many
    failures = [RuntimeError("a bug between check and journal")]

    def flaky(entries: Any) -> None:
        if failures:
            raise failures.pop()
        write_many(entries)

    monkeypatch.setattr(journal, "write_many", flaky)
    doc = request("Slow", "echo", "once")
    connection.incoming.put(auth.sign(HmacAuthenticator(KEY), doc))
    assert connection.reply(str(doc["sn"]))["result"] == {"retval": "once"}


def test_a_finished_request_leaves_its_secret_and_pam_password_out_of_the_journal(
    make_runner: Callable[..., tuple[PluginRunner, ScriptedConnection]],
    journal: Journal,
) -> None:
    _, connection = make_runner()
    doc = request(
        "Slow", "echo", "done", secret="shared-secret-0001", pam=("someone", "pam-password-0002")
    )
    connection.incoming.put(doc.dump())
    assert connection.reply(str(doc["sn"]))["result"] == {"retval": "done"}
    deadline = time.monotonic() + 10
    log_file = journal.directory / "journal.log"
    while b"pam-password-0002" in log_file.read_bytes():
        assert time.monotonic() < deadline, "the password stayed in the journal"
        time.sleep(0.05)
    assert b"shared-secret-0001" not in log_file.read_bytes()


def test_a_consumer_that_stopped_turning_while_its_broker_is_up_is_stuck(
    make_runner: Callable[..., tuple[PluginRunner, ScriptedConnection]],
) -> None:
    runner, connection = make_runner()
    assert runner.stuck(after=60) is None  # turning

    runner.last_turn -= 120  # as if its thread hung for two minutes
    assert "has not turned for" in str(runner.stuck(after=60))

    connection.down_since = time.time()  # but waiting for a broker that is down is its work
    assert runner.stuck(after=60) is None


def test_requests_are_counted_by_outcome(
    make_runner: Callable[..., tuple[PluginRunner, ScriptedConnection]],
) -> None:
    runner, connection = make_runner()
    ok = call(connection, "Slow", "echo", "x")
    missing = call(connection, "Slow", "nothing")
    connection.reply(ok)
    connection.reply(missing)

    def counted() -> dict[Any, float]:
        families = {f.name: f for f in runner.metrics.families()}
        return {labels: value for _, labels, value in families["gofer_requests_total"].samples}

    deadline = time.monotonic() + 5  # counted just after the reply goes
    while len(counted()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counted()[(("plugin", "slow"), ("method", "Slow.echo"), ("outcome", "succeeded"))] == 1
    assert counted()[(("plugin", "slow"), ("method", "Slow.nothing"), ("outcome", "failed"))] == 1
