"""Call scenarios that the goferd end-to-end suites play over every adapter."""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from gofer.errors import RemoteError
from gofer.messaging.connection import Connection
from gofer.messaging.url import Url
from gofer.proxy import Agent
from gofer.rmi.async_ import ReplyConsumer
from tests.e2e.conftest import Goferd


@dataclasses.dataclass(frozen=True)
class Cancelled:
    """What happened to a call cancelled while it ran."""

    sn: str
    answer: Any  # what Admin.cancel answered
    outcome: Any  # the call's result, or the RemoteError it raised
    seconds: float  # from the call to its outcome


def cancel_while_running(goferd: Goferd, method: str, *args: Any, after: float) -> Cancelled:
    """Call ``Cow.<method>(*args)`` in a thread, cancel it through ``Admin`` ``after`` seconds."""
    trigger = getattr(Agent(goferd.url, goferd.queue, trigger=1).Cow(), method)(*args)
    admin = Agent(goferd.url, goferd.queue).Admin()
    outcome: queue.Queue[Any] = queue.Queue()

    def call() -> None:
        try:
            outcome.put(trigger())
        except RemoteError as exc:
            outcome.put(exc)

    started = time.monotonic()
    threading.Thread(target=call, daemon=True).start()
    time.sleep(after)
    answer = admin.cancel(sn=trigger.sn)
    got = outcome.get(timeout=15)
    return Cancelled(trigger.sn, answer, got, time.monotonic() - started)


@contextlib.contextmanager
def reply_consumer(goferd: Goferd) -> Iterator[tuple[str, queue.Queue[tuple[str, str]]]]:
    """A ``ReplyConsumer`` on a fresh queue: gives the queue's name and its (kind, sn) pairs.

    The queue is deleted afterwards over AMQP 0-9-1 (RabbitMQ's 1.0 plugin cannot).
    """
    replies = f"gofer-e2e-replies-{uuid.uuid4()}"
    seen: queue.Queue[tuple[str, str]] = queue.Queue()
    consumer = ReplyConsumer(replies, url=goferd.url)
    consumer.start(lambda reply: seen.put((reply.kind, reply.sn)))
    try:
        yield replies, seen
    finally:
        consumer.stop()
        consumer.join(5)
        cleanup = Connection(Url.parse(goferd.url).without_adapter())
        try:
            cleanup.delete_queue(replies)
        finally:
            cleanup.close()
