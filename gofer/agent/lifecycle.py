"""The life of a request at the agent: its states, and every decision taken on it.

A request read from a plugin's queue goes through these states; the
journal (:mod:`gofer.agent.journal`) stores the durable ones, and this
module decides what happens next from them::

    received ──check──▶ journaled ──▶ accepted ──▶ started ──▶ finished
        │                               │    │         │
        ▼                               │    │         └─(goferd stopped)─▶ interrupted
     rejected (malformed, not           │    └─(result kept, goferd stopped)─▶ resent
     authentic, too large)              └──▶ rejected (cancelled, expired,
                                                       plugin disabled or removed)

- **received**: read from the broker, not yet checked.
- **journaled**: checked and written to the journal (fsync); only then is
  the message acknowledged, and the caller told ``accepted``.
- **started**: the journal marks it started before the plugin's method runs.
- **finished**: answered (or answered for good); the journal forgets it.
- **interrupted**: goferd stopped while it ran. It is never run twice: the
  caller is answered ``RequestInterruptedError``.
- **resent**: its result was kept in the journal before goferd stopped,
  but perhaps not sent: it is sent again (a caller drops a copy).
- **rejected**: it will not run; the caller is told why (a ``rejected``
  status with a code of :mod:`gofer.rmi.wire`).

Two decisions, asked by two owners:

- :func:`before_run`: a worker is about to run a journaled request
  (:class:`~gofer.agent.runner.PluginRunner`).
- :func:`without_runner`: goferd's sweep looks at a journaled request whose
  plugin serves no queue now (:class:`~gofer.agent.daemon.Goferd`).

:class:`Handover` keeps, between runners of one plugin, what the journal
does not: which requests a runner took but never ran, where their callers
wait, and which are still running in a retired runner.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gofer.errors import RequestInterruptedError
from gofer.rmi import wire
from gofer.rmi.model import RemoteFailure
from gofer.rmi.wire import Request, RequestRejected

if TYPE_CHECKING:
    from gofer.agent.journal import Entry, Journal
    from gofer.rmi.serve import Replier


class Step(enum.Enum):
    """What to do with a journaled request now."""

    RUN = "run"
    RESEND = "resend"  # the result kept before goferd stopped
    INTERRUPTED = "interrupted"  # it was running when goferd stopped
    REJECT = "reject"
    KEEP = "keep"  # its plugin may load again: wait


@dataclasses.dataclass(frozen=True)
class Decision:
    step: Step
    rejected: RequestRejected | None = None
    kept: bytes | None = None  # the result to resend


RUN = Decision(Step.RUN)
KEEP = Decision(Step.KEEP)
INTERRUPTED = Decision(Step.INTERRUPTED)


def before_run(
    request: Request,
    journal: Journal,
    received: float,
    *,
    replayed: bool,
    now: float | None = None,
) -> Decision:
    """What a worker does with a request it is handed.

    Args:
        request: the request.
        journal: where its state is.
        received: when it was received (its TTL counts from then).
        replayed: it comes back from the journal after goferd stopped.
        now: the time (tests).
    """
    if replayed:
        kept = journal.result(request.sn)
        if kept is not None:
            return Decision(Step.RESEND, kept=kept)
        if journal.is_started(request.sn):
            return INTERRUPTED
    if journal.is_cancelled(request.sn):
        return Decision(
            Step.REJECT, RequestRejected(wire.CANCELLED, "request cancelled before it started")
        )
    deadline = request.deadline(received)
    if deadline is not None and (time.time() if now is None else now) > deadline:
        return Decision(
            Step.REJECT,
            RequestRejected(
                wire.EXPIRED, "request expired before it started", {"ttl": request.ttl}
            ),
        )
    return RUN


def without_runner(
    plugin: str,
    request: Request,
    received: float,
    *,
    enabled: bool | None,
    now: float | None = None,
) -> Decision:
    """What becomes of a journaled request whose plugin serves no queue now.

    Args:
        plugin: the plugin that took it.
        request: the request.
        received: when it was received.
        enabled: the plugin's descriptor says ``enabled`` (True or False),
            or None when no descriptor names the plugin any more.
        now: the time (tests).
    """
    if enabled is False:
        return Decision(
            Step.REJECT,
            RequestRejected(
                wire.UNKNOWN_PLUGIN, f"plugin {plugin} is disabled; the request was not run"
            ),
        )
    if enabled is None:
        return Decision(
            Step.REJECT,
            RequestRejected(
                wire.UNKNOWN_PLUGIN, f"plugin {plugin} was removed; the request was not run"
            ),
        )
    deadline = request.deadline(received)
    if deadline is not None and (time.time() if now is None else now) > deadline:
        return Decision(
            Step.REJECT,
            RequestRejected(
                wire.EXPIRED,
                f"request expired while plugin {plugin} was not loaded",
                {"ttl": request.ttl},
            ),
        )
    return KEEP


def interrupted_result(request: Request) -> dict[str, Any]:
    """The answer to a request that was running when goferd stopped."""
    error = RequestInterruptedError(
        f"{request.classname}.{request.method}(): goferd stopped while it ran; it was not run again"
    )
    return RemoteFailure.from_exception(error).result()


def carries_secrets(request: Request) -> bool:
    """True for a request whose body holds a shared secret or a PAM password.

    The journal scrubs such a body from its log when the request finishes.
    """
    return request.secret is not None or request.pam is not None


class Handover:
    """What passes from a plugin's runner to the next, beside the journal.

    A runner stopped (unload, reload, a plugin moving itself) leaves:

    - requests it took but never ran: the next runner runs them, even
      where the journal marks them started (they never ran);
    - where their callers wait: the stopped runner's replier, so that a
      plugin that moved to another broker answers them on the old one;
    - requests still running past the drain bound: they are its own, and
      never run again.

    None of this survives a restart: the journal alone does, and a replay
    then answers what had started as interrupted.
    """

    def __init__(self) -> None:
        self._unrun: set[str] = set()
        self._origins: dict[str, Replier] = {}
        self._retired: list[Any] = []  # runners with requests still running

    def retire(self, runner: Any) -> None:
        """Take over what a stopped (and drained) runner leaves."""
        if runner.running():
            self._retired.append(runner)
        unrun = runner.unrun()
        self._unrun.update(unrun)
        self._origins.update(dict.fromkeys(unrun, runner.replier))

    def left(self, pending: Iterable[Entry], plugins: set[str]) -> list[Entry]:
        """Of the journal's pending requests, those of ``plugins`` that no runner holds.

        Also forgets what concerns requests no longer pending.
        """
        entries = list(pending)
        self._retired = [runner for runner in self._retired if runner.running()]
        busy = {sn for runner in self._retired for sn in runner.running()}
        sns = {entry.sn for entry in entries}
        self._unrun &= sns
        self._origins = {sn: replier for sn, replier in self._origins.items() if sn in sns}
        return [entry for entry in entries if entry.plugin in plugins and entry.sn not in busy]

    def take(self, sn: str) -> tuple[bool, Replier | None]:
        """For a request a runner takes over: (was it never run, its caller's replier)."""
        unrun = sn in self._unrun
        self._unrun.discard(sn)
        return unrun, self._origins.pop(sn, None)

    def replier(self, sn: str) -> Replier | None:
        """The replier a request is to be answered with, if a runner left one."""
        return self._origins.pop(sn, None)

    def finished(self, sn: str) -> None:
        self._unrun.discard(sn)
        self._origins.pop(sn, None)
