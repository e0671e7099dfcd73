"""One call to many agents, with each agent's outcome streamed as it arrives.

::

    from gofer.proxy import Fleet

    fleet = Fleet("amqp://mq.example.com", agents, wait=300, concurrency=200)
    calls = fleet.Package().install("zsh")
    for outcome in calls:               # in the order they finish
        if outcome.ok:
            print(outcome.agent, outcome.result)
        else:
            print(outcome.agent, outcome.status, outcome.error)

How it goes:

- One connection and one reply queue serve every call, whatever the
  number of agents (those the process's ``Agent`` calls use too).
- At most ``concurrency`` requests are out at a time; as each ends,
  the next agent's is sent. With ``batch=N`` the work rolls instead: N
  requests, then the next N once all of those ended.
- ``wait`` is one deadline for the whole fan-out, from the first request.
  Each request carries what is left of it as its TTL, so that an agent
  that comes back later does not run it. An agent still silent at the
  deadline is ``timeout``, and one never sent to (the deadline came first)
  is ``timeout`` as well, with ``sn`` None.
- An agent whose queue does not exist is ``no_queue`` at once: it costs
  nothing of the deadline.
- ``on_progress(agent, report)`` is called with each agent's progress
  reports (``report`` as for a single call's ``progress``).
- ``calls.cancel()`` sends no more requests (those agents end as
  ``cancelled``) and asks each agent with a request out to cancel it
  (``Admin.cancel``); their outcomes still come, until the deadline.

Outcome statuses: ``succeeded`` (``result``), ``failed`` (the remote
exception in ``error``), ``rejected`` (``error`` is a
:class:`~gofer.errors.RequestRejectedError`), ``timeout``, ``no_queue``,
``cancelled`` and ``error`` (the request could not be sent: ``error``
says why).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue as queues
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from gofer.errors import GoferError, NotFoundError, RequestRejectedError
from gofer.messaging import auth
from gofer.rmi.options import Options
from gofer.rmi.policy import PENDING, Call
from gofer.rmi.transport import Reply, Transport, parse_reply

log = logging.getLogger(__name__)

SUCCEEDED = "succeeded"
FAILED = "failed"
REJECTED = "rejected"
TIMEOUT = "timeout"
NO_QUEUE = "no_queue"
CANCELLED = "cancelled"
ERROR = "error"

#: Requests out at a time, by default.
DEFAULT_CONCURRENCY = 256

Progress = Callable[[str, dict[str, Any]], None]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How the call ended on one agent.

    Attributes:
        agent: the agent's address, as given.
        status: see the module docstring.
        result: what the method returned (``succeeded`` only).
        error: the remote exception, rejection or local error otherwise.
        sn: the request's serial number; None when it was never sent.
        seconds: from sending the request to this outcome.
    """

    agent: str
    status: str
    result: Any = None
    error: BaseException | None = None
    sn: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the method ran and returned."""
        return self.status == SUCCEEDED

    def as_dict(self) -> dict[str, Any]:
        """The outcome as JSON-ready values (the error as its class name and text)."""
        shown: dict[str, Any] = {
            "agent": self.agent,
            "status": self.status,
            "sn": self.sn,
            "seconds": round(self.seconds, 3),
        }
        if self.ok:
            shown["result"] = self.result
        elif self.error is not None:
            shown["error"] = {"type": type(self.error).__name__, "message": str(self.error)}
            if isinstance(self.error, RequestRejectedError):
                shown["error"]["code"] = self.error.code
        return shown


class Fleet:
    """Many agents of one broker, called together.

    Args:
        url: the broker URL (several for a cluster's nodes).
        agents: the agents' queue addresses; each is called once, in order.
        concurrency: the most requests out at a time.
        batch: roll the work N agents at a time instead (each batch ends
            before the next starts).
        on_progress: ``fn(agent, report)`` for the agents' progress reports.
        **options: RMI options for every request (as for ``Agent``);
            ``wait`` is the deadline of the whole fan-out. ``reply`` and
            ``trigger`` do not apply.

    Raises:
        ValueError: no agents, a bad bound, or an option that does not apply.
    """

    def __init__(
        self,
        url: str,
        agents: Iterable[str],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        batch: int | None = None,
        on_progress: Progress | None = None,
        **options: Any,
    ) -> None:
        self.url = url
        self.agents = list(dict.fromkeys(agents))  # each once, in the order given
        if not self.agents or not all(isinstance(a, str) and a for a in self.agents):
            raise ValueError("a fleet needs at least one agent address")
        if concurrency < 1 or (batch is not None and batch < 1):
            raise ValueError("concurrency and batch are at least 1")
        if options.get("reply") or options.get("trigger"):
            raise ValueError("a fleet's calls wait for their results: no reply or trigger")
        self.concurrency = concurrency
        self.batch = batch
        self.on_progress = on_progress
        self.options = Options().merged(options)
        if self.options.wait <= 0:
            raise ValueError("a fleet's calls need a wait (the deadline) above 0")

    def call(
        self,
        classname: str,
        method: str,
        *args: Any,
        cntr: tuple[tuple[Any, ...], dict[str, Any]] | None = None,
        **kws: Any,
    ) -> Calls:
        """Call ``classname.method(*args, **kws)`` on every agent; iterate the result."""
        return Calls(self, classname=classname, method=method, args=args, kws=kws, cntr=cntr)

    def __getattr__(self, name: str) -> _Class:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Class(self, name)

    def __getitem__(self, name: str) -> _Class:
        return _Class(self, name)

    def __repr__(self) -> str:
        return f"Fleet({len(self.agents)} agents)"


class _Class:
    """``fleet.Dog``: call it (with constructor arguments) or name a method."""

    def __init__(self, fleet: Fleet, name: str) -> None:
        self._fleet = fleet
        self._name = name
        self._cntr: tuple[tuple[Any, ...], dict[str, Any]] | None = None

    def __call__(self, *args: Any, **kws: Any) -> _Class:
        self._cntr = (args, kws) if args or kws else None
        return self

    def __getattr__(self, method: str) -> Callable[..., Calls]:
        if method.startswith("_"):
            raise AttributeError(method)
        return self[method]

    def __getitem__(self, method: str) -> Callable[..., Calls]:
        def call(*args: Any, **kws: Any) -> Calls:
            fleet, cntr = self._fleet, self._cntr
            return Calls(fleet, classname=self._name, method=method, args=args, kws=kws, cntr=cntr)

        return call


class Calls:
    """One method called on a fleet: iterate it for each agent's :class:`Outcome`.

    Nothing is sent until the iteration starts; it is run by the iterating
    thread (one iteration only). Counts (``done``, ``failed``, ``pending``)
    may be read from any thread meanwhile, and :meth:`cancel` called.
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        classname: str,
        method: str,
        args: tuple[Any, ...],
        kws: dict[str, Any],
        cntr: tuple[tuple[Any, ...], dict[str, Any]] | None,
    ) -> None:
        self.fleet = fleet
        self.classname = classname
        self.method = method
        self.args = args
        self.kws = kws
        self.cntr = cntr
        self.done = 0
        self.failed = 0
        self._cancelled = threading.Event()
        self._started = False
        self._out: dict[str, tuple[str, Call, float]] = {}  # sn -> (agent, call, sent at)

    @property
    def total(self) -> int:
        return len(self.fleet.agents)

    @property
    def pending(self) -> int:
        """Agents without an outcome yet."""
        return self.total - self.done

    def cancel(self) -> None:
        """Send no more requests, and ask the agents with one out to cancel it."""
        self._cancelled.set()

    def __iter__(self) -> Iterator[Outcome]:
        if self._started:
            raise RuntimeError("a fan-out is iterated once")
        self._started = True
        for outcome in self._run():
            self.done += 1
            self.failed += 0 if outcome.ok else 1
            yield outcome

    def _run(self) -> Iterator[Outcome]:
        fleet = self.fleet
        options = fleet.options
        deadline = time.monotonic() + options.wait
        first = Call(**self._call_arguments(fleet.agents[0], options))
        transport = first.transport()
        replyto = transport.reply_address(options.exchange, limit=options.wait)
        inbox: queues.SimpleQueue[Reply] = queues.SimpleQueue()
        waiting = collections.deque(fleet.agents)
        cancel_sent = False
        try:
            while waiting or self._out:
                if self._cancelled.is_set():
                    if not cancel_sent:
                        self._send_cancels(transport)
                        cancel_sent = True
                    while waiting:
                        yield Outcome(waiting.popleft(), CANCELLED)
                yield from self._fill(transport, waiting, replyto, inbox, deadline)
                if time.monotonic() >= deadline:
                    yield from self._expired(waiting)
                    return
                if not self._out:
                    continue
                try:
                    received = inbox.get(timeout=min(0.25, max(0.0, deadline - time.monotonic())))
                except queues.Empty:
                    continue
                outcome = self._on_reply(transport, received)
                if outcome is not None:
                    yield outcome
        finally:
            for sn in self._out:
                transport.forget(sn)

    def _fill(
        self,
        transport: Transport,
        waiting: collections.deque[str],
        replyto: str,
        inbox: queues.SimpleQueue[Reply],
        deadline: float,
    ) -> Iterator[Outcome]:
        """Send requests while the window has room (a batch: only once the last one ended)."""
        fleet = self.fleet
        if fleet.batch is not None and self._out:
            return
        window = min(fleet.concurrency, fleet.batch or fleet.concurrency)
        while waiting and len(self._out) < window and time.monotonic() < deadline:
            ended = self._send(transport, waiting.popleft(), replyto, inbox, deadline)
            if ended is not None:
                yield ended

    def _call_arguments(self, agent: str, options: Options) -> dict[str, Any]:
        return {
            "url": self.fleet.url,
            "address": agent,
            "options": options,
            "classname": self.classname,
            "method": self.method,
            "args": self.args,
            "kws": self.kws,
            "cntr": self.cntr,
        }

    def _send(
        self,
        transport: Transport,
        agent: str,
        replyto: str,
        inbox: queues.SimpleQueue[Reply],
        deadline: float,
    ) -> Outcome | None:
        """Send one agent its request; an outcome if that ended it already."""
        left = max(0.001, deadline - time.monotonic())
        options = dataclasses.replace(self.fleet.options, ttl=left, progress=None)
        call = Call(**self._call_arguments(agent, options))
        began = time.monotonic()
        transport.expect(call.sn, progress=self.fleet.on_progress is not None, into=inbox)
        try:
            quiet = self.fleet.on_progress is None
            body = auth.sign(options.authenticator, call.document(replyto, quiet=quiet))
            transport.send(agent, body, left, limit=left)
        except NotFoundError as exc:
            transport.forget(call.sn)
            return Outcome(agent, NO_QUEUE, error=exc, sn=call.sn)
        except (GoferError, ValueError, TypeError) as exc:
            transport.forget(call.sn)
            return Outcome(agent, ERROR, error=exc, sn=call.sn)
        self._out[call.sn] = (agent, call, began)
        return None

    def _on_reply(self, transport: Transport, received: Reply) -> Outcome | None:
        """The outcome a reply gives, if it ends its agent's call."""
        _, document = received
        sn = document.get("sn")
        found = self._out.get(sn) if isinstance(sn, str) else None
        if found is None:
            return None  # a copy of a final reply already taken
        agent, call, began = found
        try:
            reply = parse_reply(received, self.fleet.options.authenticator)
        except Exception as exc:  # noqa: BLE001 - a bad reply must not end the wait
            log.warning("reply to %s refused: %s", sn, exc)
            return None
        if reply.get("status") == "progress":
            self._progress(agent, reply)
            return None
        seconds = time.monotonic() - began
        try:
            value = call.on_reply(reply)
        except RequestRejectedError as exc:
            outcome = Outcome(agent, REJECTED, error=exc, sn=call.sn, seconds=seconds)
        except Exception as exc:  # noqa: BLE001 - the remote exception, rebuilt
            outcome = Outcome(agent, FAILED, error=exc, sn=call.sn, seconds=seconds)
        else:
            if value is PENDING:
                return None
            outcome = Outcome(agent, SUCCEEDED, result=value, sn=call.sn, seconds=seconds)
        del self._out[call.sn]
        transport.forget(call.sn)
        return outcome

    def _progress(self, agent: str, reply: Any) -> None:
        callback = self.fleet.on_progress
        if callback is None:
            return
        report = {key: reply.get(key) for key in ("sn", "data", "total", "completed", "details")}
        try:
            callback(agent, report)
        except Exception:
            log.exception("progress callback for %s failed", agent)

    def _expired(self, waiting: collections.deque[str]) -> Iterator[Outcome]:
        now = time.monotonic()
        wait = self.fleet.options.wait
        for sn, (agent, _, began) in list(self._out.items()):
            yield Outcome(
                agent,
                TIMEOUT,
                error=TimeoutError(f"no answer within the fan-out's {wait:g}s"),
                sn=sn,
                seconds=now - began,
            )
        self._out.clear()
        while waiting:
            yield Outcome(
                waiting.popleft(),
                TIMEOUT,
                error=TimeoutError(f"not sent: the fan-out's {wait:g}s ran out first"),
            )

    def _send_cancels(self, transport: Transport) -> None:
        """Ask each agent with a request out to cancel it (no answer awaited)."""
        options = dataclasses.replace(self.fleet.options, ttl=30.0, progress=None)
        for sn, (agent, _, _) in list(self._out.items()):
            cancel = Call(
                url=self.fleet.url,
                address=agent,
                options=options,
                classname="Admin",
                method="cancel",
                args=(),
                kws={"sn": sn},
                cntr=None,
            )
            try:
                body = auth.sign(options.authenticator, cancel.document(None))
                transport.send(agent, body, 30.0, limit=5.0)
            except GoferError as exc:
                log.warning("cancel of %s on %s not sent: %s", sn, agent, exc)


__all__ = [
    "CANCELLED",
    "ERROR",
    "FAILED",
    "NO_QUEUE",
    "REJECTED",
    "SUCCEEDED",
    "TIMEOUT",
    "Calls",
    "Fleet",
    "Outcome",
]
