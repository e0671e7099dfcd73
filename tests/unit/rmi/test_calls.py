"""The caller's side of RMI (policy, transport, stubs, replies) against a plugin in-process.

No broker: the plugin runs in a harnessed goferd on the in-memory broker,
so these tests exercise the real call path and wait for replies, not sleeps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gofer.errors import RequestTimeoutError
from gofer.messaging.adapter.model import Queue
from gofer.messaging.connection import Connection
from gofer.proxy import Agent
from gofer.rmi.replies import ReplyConsumer
from gofer.rmi.serve import Replier
from gofer.testing import PluginHarness

DEMO = Path(__file__).resolve().parents[3] / "plugins/demo.py"


@pytest.fixture(scope="module")
def demo() -> Iterator[PluginHarness]:
    with PluginHarness(DEMO, threads=4) as harness:
        yield harness


def test_a_synchronous_call_returns_the_result(demo: PluginHarness) -> None:
    assert demo.agent().Demo().echo({"a": [1, 2]}) == {"a": [1, 2]}


def test_fire_and_forget_returns_the_serial_number(demo: PluginHarness) -> None:
    sn = demo.agent(wait=0).Demo().echo("x")
    assert isinstance(sn, str)
    assert len(sn) == 36


def test_a_trigger_sends_once_when_pulled(demo: PluginHarness) -> None:
    trigger = demo.agent(trigger=1).Demo().echo("pulled")
    assert trigger.sn
    assert trigger() == "pulled"
    assert trigger() == "pulled"  # the first outcome again, nothing sent


def test_asynchronous_replies_reach_a_reply_consumer(demo: PluginHarness) -> None:
    replies = "tasks"
    Connection(demo.url).declare_queue(Queue(replies))
    got: list[Any] = []
    done = threading.Event()

    def callback(reply: Any) -> None:
        got.append(reply)
        if getattr(reply, "retval", None) is not None:
            done.set()

    consumer = ReplyConsumer(replies, url=demo.url)
    consumer.start(callback)
    try:
        sn = demo.agent(reply=replies, data={"job": 7}).Demo().echo("later")
        assert done.wait(10)
    finally:
        consumer.shutdown()
    final = got[-1]
    assert (final.sn, final.retval, final.data) == (sn, "later", {"job": 7})


def test_an_unanswered_call_times_out_with_its_serial_number(demo: PluginHarness) -> None:
    Connection(demo.url).declare_queue(Queue("silent"))
    with pytest.raises(RequestTimeoutError) as caught:
        Agent(demo.url, "silent", wait=0.3).Demo().echo(1)
    assert caught.value.sn


def test_progress_reaches_the_callback_in_order(demo: PluginHarness) -> None:
    reports: list[dict[str, Any]] = []
    demo.agent(progress=reports.append).Dog().wag(3)
    assert [r["completed"] for r in reports][-3:] == [1, 2, 3]


def statuses_sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statuses goferd's repliers send from now on (results go another way)."""
    sent: list[str] = []
    post = Replier._post

    def recording(self: Replier, address: str, document: Any, **kwargs: Any) -> None:
        sent.append(str(document.get("status")))
        post(self, address, document, **kwargs)

    monkeypatch.setattr(Replier, "_post", recording)
    return sent


def test_a_synchronous_call_asks_for_no_status(
    demo: PluginHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = statuses_sent(monkeypatch)
    assert demo.agent().Demo().echo("x") == "x"
    assert sent == []


def test_a_call_with_a_progress_callback_gets_every_status(
    demo: PluginHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = statuses_sent(monkeypatch)
    demo.agent(progress=lambda report: None).Dog().wag(1)
    assert {"accepted", "started", "progress"} <= set(sent)


def test_many_threads_share_one_agent(demo: PluginHarness) -> None:
    agent = demo.agent()
    results: list[Any] = []

    def call(n: int) -> None:
        results.append(agent.Demo().echo(n))

    threads = [threading.Thread(target=call, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == list(range(16))
