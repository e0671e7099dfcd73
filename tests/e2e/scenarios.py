"""Call scenarios that the goferd end-to-end suites play over every adapter."""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Any

from gofer.errors import RemoteError
from gofer.proxy import Agent
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
