"""Calls kept up against a goferd while a broker fails under it: the fault suites' load."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from gofer.errors import GoferError
from gofer.proxy import Agent


@dataclass(frozen=True)
class Outcome:
    """How one synchronous call ended."""

    tag: str
    kind: str  # "result", the gofer error's class name, "wrong result" or "not a gofer error: ..."
    began: float
    ended: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "result"

    @property
    def seconds(self) -> float:
        return self.ended - self.began


class Load:
    """Synchronous callers and an asynchronous sender of ``Fault.work``, until stopped.

    Args:
        url, queue: the agent's.
        replies: the queue the asynchronous sender's replies go to.
        wait: each synchronous call's wait.
        callers: synchronous callers (threads).
        work, send_work: the seconds each synchronous or asynchronous request works.
        pace, send_pace: the pause after each synchronous call that succeeded,
            and after each send (a failed call or send pauses 0.2 s).
    """

    def __init__(
        self,
        url: str,
        queue: str,
        replies: str,
        *,
        wait: float,
        callers: int,
        work: float,
        send_work: float,
        pace: float,
        send_pace: float,
    ) -> None:
        self.url = url
        self.queue = queue
        self.replies = replies
        self.wait = wait
        self.work, self.send_work = work, send_work
        self.pace, self.send_pace = pace, send_pace
        self.stopping = threading.Event()
        self.outcomes: list[Outcome] = []
        self.confirmed: list[str] = []  # asynchronous requests the broker took
        self.unsure: list[str] = []  # asynchronous sends that failed: maybe taken, maybe not
        self.threads = [
            threading.Thread(target=self._call, args=(n,), daemon=True) for n in range(callers)
        ]
        self.threads.append(threading.Thread(target=self._send, daemon=True))

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(self.wait * 3 + 35)
            assert not thread.is_alive(), f"{thread.name} hangs"

    def recovered(self, since: float, timeout: float) -> float | None:
        """Seconds from ``since`` to the end of the first call made after it that succeeded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [o.ended for o in list(self.outcomes) if o.ok and o.began >= since]
            if done:
                return min(done) - since
            time.sleep(0.05)
        return None

    def _call(self, caller: int) -> None:
        agent = Agent(self.url, self.queue, wait=self.wait)
        number = 0
        while not self.stopping.is_set():
            tag = f"sync-{caller}-{number}"
            number += 1
            began = time.monotonic()
            try:
                retval = agent.Fault().work(tag, self.work)
            except GoferError as exc:
                kind, detail = type(exc).__name__, str(exc)
            except Exception as exc:  # noqa: BLE001 - counted as a failure
                kind, detail = f"not a gofer error: {type(exc).__name__}", str(exc)
            else:
                kind, detail = ("result", "") if retval == tag else ("wrong result", repr(retval))
            self.outcomes.append(Outcome(tag, kind, began, time.monotonic(), detail))
            self.stopping.wait(self.pace if kind == "result" else 0.2)

    def _send(self) -> None:
        agent = Agent(self.url, self.queue, reply=self.replies, trigger=1, wait=self.wait)
        number = 0
        while not self.stopping.is_set():
            trigger = agent.Fault().work(f"async-{number}", self.send_work)
            number += 1
            try:
                trigger()
            except GoferError:
                self.unsure.append(trigger.sn)
                self.stopping.wait(0.2)
            else:
                self.confirmed.append(trigger.sn)
            self.stopping.wait(self.send_pace)
