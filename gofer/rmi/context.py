"""The context of the remote call a plugin method is running in: progress and cancellation.

A plugin method finds its call's context with :meth:`Context.current`::

    from gofer.agent.rmi import Context

    @remote
    def install(self, names):
        ctx = Context.current()
        ctx.progress.total = len(names)
        for name in names:
            if ctx.cancelled():
                raise CancelledError(name)
            ...
            ctx.progress.completed += 1
            ctx.progress.details = name
            ctx.progress.report()

Progress is sent when ``total``, ``completed`` or ``details`` change (as the
user guide's plugins expect), coalesced to at most one status per
``Progress.MIN_INTERVAL``; :meth:`Progress.report` sends at once.

The dispatcher builds a :class:`Context` per call and makes it current with
:func:`activate` around the call. The current context is a
:class:`contextvars.ContextVar`, so it belongs to the thread (or task) running
the call: a thread the plugin starts itself does not see it unless the plugin
runs that thread's work inside :func:`contextvars.copy_context`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from gofer.errors import GoferError

log = logging.getLogger(__name__)

#: Sends one progress status: ``reporter(total, completed, details)``.
Reporter = Callable[[int, int, Any], None]

_current: contextvars.ContextVar[Context | None] = contextvars.ContextVar(
    "gofer_call_context", default=None
)


class NoContextError(GoferError):
    """:meth:`Context.current` was called outside of a remote call."""


class Progress:
    """Progress of the running call, sent to the caller as it changes.

    Setting ``total``, ``completed`` or ``details`` sends a progress status,
    as the user guide's examples expect (they never call :meth:`report`);
    changes closer together than ``MIN_INTERVAL`` are coalesced, and the last
    state is always sent before the call's result. :meth:`report` sends at
    once, so a plugin that reports by itself gets exactly the reports it asks for.

    Attributes:
        total: how many units of work the call has (0 when unknown).
        completed: how many of them are done.
        details: anything JSON can carry, e.g. the item being worked on.

    Args:
        reporter: sends one progress status; see :data:`Reporter`.
    """

    total: int
    completed: int
    details: Any
    _reporter: Reporter
    _pending: bool
    _last: float

    #: Shortest time between two progress statuses sent because of a change.
    MIN_INTERVAL = 0.05
    _FIELDS = frozenset({"total", "completed", "details"})

    def __init__(self, reporter: Reporter) -> None:
        object.__setattr__(self, "_reporter", reporter)
        object.__setattr__(self, "_pending", False)
        object.__setattr__(self, "_last", float("-inf"))
        object.__setattr__(self, "total", 0)
        object.__setattr__(self, "completed", 0)
        object.__setattr__(self, "details", None)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in self._FIELDS:
            object.__setattr__(self, "_pending", True)
            if time.monotonic() - self._last >= self.MIN_INTERVAL:
                self.report()

    def report(self) -> None:
        """Send ``total``, ``completed`` and ``details`` to the caller now.

        Never raises: a failure to send is logged, and the call goes on.
        """
        object.__setattr__(self, "_pending", False)
        object.__setattr__(self, "_last", time.monotonic())
        try:
            self._reporter(self.total, self.completed, self.details)
        except Exception:  # progress is best effort; the call must go on
            log.exception("progress report failed (%s/%s)", self.completed, self.total)

    def flush(self) -> None:
        """Send the last change if it was held back (called when the call ends)."""
        if self._pending:
            self.report()

    def relay(self, total: int, completed: int, details: Any) -> None:
        """Take over a state reported elsewhere (a fork child) and send it as it is."""
        object.__setattr__(self, "total", total)
        object.__setattr__(self, "completed", completed)
        object.__setattr__(self, "details", details)
        self.report()

    def __repr__(self) -> str:
        return (
            f"Progress(total={self.total!r}, completed={self.completed!r}, "
            f"details={self.details!r})"
        )


class Context:
    """What a running remote call knows about itself.

    Attributes:
        sn: the request's serial number.
        data: the caller's opaque data, echoed back in every reply.
        progress: the call's :class:`Progress`.

    Args:
        sn: the request's serial number.
        data: the caller's opaque data.
        reporter: sends one progress status; see :data:`Reporter`.
        cancelled: tells whether the caller has cancelled the request.
    """

    def __init__(
        self,
        sn: str,
        data: Any,
        reporter: Reporter,
        cancelled: Callable[[], bool],
    ) -> None:
        self.sn = sn
        self.data = data
        self.progress = Progress(reporter)
        self._cancelled = cancelled

    def cancelled(self) -> bool:
        """True once the caller has cancelled this request.

        Cancellation is cooperative for calls run in the agent's own threads:
        a long-running method should check this now and then and stop early.
        Never raises: a failing check is logged and read as not cancelled.
        """
        try:
            return bool(self._cancelled())
        except Exception:  # a broken check must not break the call
            log.exception("cancellation check failed for request %s", self.sn)
            return False

    @staticmethod
    def current() -> Context:
        """The context of the call running in this thread (or task).

        Raises:
            NoContextError: when no remote call is running here.
        """
        context = _current.get()
        if context is None:
            raise NoContextError("no remote call is running in this thread")
        return context

    def __repr__(self) -> str:
        return f"Context(sn={self.sn!r})"


@contextlib.contextmanager
def activate(context: Context) -> Iterator[Context]:
    """Make ``context`` current for the duration of a ``with`` block.

    Activations nest: leaving the block restores whatever was current before.

    Args:
        context: the context of the call about to run.

    Yields:
        ``context``.
    """
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
