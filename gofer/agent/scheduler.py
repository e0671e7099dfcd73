"""Runs plugins' recurring actions on their intervals, off the RMI worker threads.

::

    scheduler = Scheduler()
    scheduler.add("demo.report", report, timedelta(minutes=10))
    scheduler.start()          # report runs now, then every ten minutes
    ...
    scheduler.remove_prefix("demo.")   # the plugin is unloaded
    scheduler.stop(timeout=5)

Rules:

- An action runs as soon as the scheduler starts (or as soon as it is added
  to a started scheduler), then every interval, measured from the start of
  one run to the start of the next. With a ``splay``, its first run comes
  at a random moment within the splay (or its interval, if shorter) instead.
- An action never overlaps itself: a run that outlasts its interval delays
  the next one until it ends; missed runs are not made up.
- An action that raises is logged with its name and keeps its schedule.
- Actions run on a small pool of daemon threads owned by the scheduler, or
  on whatever ``executor_submit`` hands them to; never on the thread that
  calls :meth:`Scheduler.add`.

One scheduler thread waits on a condition until the next action is due, or
until an action is added, ends or the scheduler stops: an idle scheduler uses
no CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta

log = logging.getLogger(__name__)

Submit = Callable[[Callable[[], None]], object]


@dataclasses.dataclass(eq=False)
class _Action:
    """One recurring action and where it stands."""

    name: str
    run: Callable[[], object]
    interval: float
    due: float


class Scheduler:
    """Recurring actions on a timer, each run on a worker thread.

    Args:
        executor_submit: hands a callable to the threads that run actions
            (``ThreadPoolExecutor.submit`` will do); None to use the
            scheduler's own pool of ``workers`` daemon threads.
        clock: monotonic seconds; the scheduler sleeps by it, so a clock
            that does not follow real time only suits tests that wait.
        workers: threads in the scheduler's own pool.
        splay: seconds within which an action's first run is drawn at
            random (bounded by its interval), so that agents started
            together do not act together; 0 runs it at once.
    """

    def __init__(
        self,
        executor_submit: Submit | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        workers: int = 2,
        splay: float = 0.0,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._clock = clock
        self.splay = splay
        self._pool: _Pool | None = None
        if executor_submit is None:
            self._pool = _Pool(workers)
            executor_submit = self._pool.submit
        self._submit = executor_submit
        self._actions: dict[str, _Action] = {}
        self._busy: set[_Action] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def add(
        self, name: str, run: Callable[[], object], interval: timedelta, *, splay: bool = True
    ) -> None:
        """Schedule ``run`` every ``interval``, first as soon as the scheduler runs.

        Args:
            name: unique; a plugin's actions are named ``"<plugin>.<action>"``
                so that ``remove_prefix("<plugin>.")`` finds them all.
            run: called with no arguments; what it returns is ignored.
            interval: between the starts of two runs; more than zero.
            splay: False runs it at once even when the scheduler has a splay
                (goferd's own housekeeping, which no fleet does in step).

        Raises:
            ValueError: the name is taken or the interval is not positive.
        """
        seconds = interval.total_seconds()
        if seconds <= 0:
            raise ValueError(f"action {name!r} needs a positive interval, not {interval}")
        with self._changed:
            if name in self._actions:
                raise ValueError(f"an action named {name!r} is already scheduled")
            spread = min(self.splay, seconds) if splay else 0.0
            first = random.uniform(0, spread) if spread > 0 else 0.0  # noqa: S311
            self._actions[name] = _Action(name, run, seconds, due=self._clock() + first)
            self._changed.notify_all()
        log.debug("scheduled action %s every %s", name, interval)

    def remove_prefix(self, prefix: str) -> int:
        """Unschedule every action whose name starts with ``prefix``.

        A run already under way finishes; none follows.

        Returns:
            How many actions were removed.
        """
        with self._changed:
            names = [name for name in self._actions if name.startswith(prefix)]
            for name in names:
                del self._actions[name]
            self._changed.notify_all()
        if names:
            log.debug("unscheduled actions %s", ", ".join(names))
        return len(names)

    def names(self) -> list[str]:
        """The names of the scheduled actions."""
        with self._changed:
            return list(self._actions)

    def start(self) -> None:
        """Start the scheduler thread; actions already added run at once.

        Raises:
            RuntimeError: it was started before (a scheduler runs once).
        """
        with self._changed:
            if self._thread is not None or self._stopping:
                raise RuntimeError("a scheduler can be started only once")
            self._thread = threading.Thread(target=self._loop, name="gofer-scheduler")
            self._thread.daemon = True
        if self._pool is not None:
            self._pool.start()
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop scheduling and wait up to ``timeout`` seconds for runs under way.

        Returns:
            True if no action is still running.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
        if self._pool is not None:
            self._pool.stop()
        with self._changed:
            idle = self._changed.wait_for(
                lambda: not self._busy, max(0.0, deadline - time.monotonic())
            )
            running = sorted(action.name for action in self._busy)
        if running:
            log.warning("actions still running after stop: %s", ", ".join(running))
        return idle

    def _loop(self) -> None:
        while (due := self._next_due()) is not None:
            for action in due:
                self._hand_over(action)

    def _next_due(self) -> list[_Action] | None:
        """Wait for actions to come due and mark them running; None once stopping."""
        with self._changed:
            while not self._stopping:
                now = self._clock()
                waiting = [action for action in self._actions.values() if action not in self._busy]
                due = [action for action in waiting if action.due <= now]
                if due:
                    self._busy.update(due)
                    return due
                soonest = min((action.due for action in waiting), default=None)
                self._changed.wait(None if soonest is None else soonest - now)
            return None

    def _hand_over(self, action: _Action) -> None:
        try:
            self._submit(lambda: self._run(action))
        except Exception:
            log.exception("cannot hand action %s to a worker; it waits an interval", action.name)
            self._finished(action, self._clock())

    def _run(self, action: _Action) -> None:
        started = self._clock()
        if self._stopping:
            self._finished(action, started)  # handed over just before stop(): skip it
            return
        try:
            action.run()
        except Exception:
            log.exception("action %s failed", action.name)
        finally:
            self._finished(action, started)

    def _finished(self, action: _Action, started: float) -> None:
        """Set the next run an interval after ``started``, or now if that has passed."""
        with self._changed:
            self._busy.discard(action)
            action.due = max(started + action.interval, self._clock())
            self._changed.notify_all()


class _Pool:
    """A few daemon threads running what they are handed, so a hung action cannot block exit."""

    def __init__(self, size: int) -> None:
        self._work: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._serve, name=f"gofer-action-{n}", daemon=True)
            for n in range(size)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, work: Callable[[], None]) -> None:
        self._work.put(work)

    def stop(self) -> None:
        """Let each thread end after the work it is doing."""
        for _ in self._threads:
            self._work.put(None)

    def _serve(self) -> None:
        while (work := self._work.get()) is not None:
            work()
