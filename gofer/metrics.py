"""``gofer.metrics.Timer``: the stopwatch the old gofer offered plugins for timing their work.

::

    from gofer.metrics import Timer

    timer = Timer().start()
    install(packages)
    log.info("installed in %s", timer.stop())    # "1.250 (seconds)"

Its text is the old one's, which plugins put in their logs: ``not-running``,
``started: <epoch seconds> (running)``, then ``<n> (ms)``, ``<s.mmm>
(seconds)`` or ``<m.mmm> (minutes)`` (fractions cut, not rounded).
It is also a context manager. Not goferd's own figures: those are
:mod:`gofer.agent.metrics`.
"""

from __future__ import annotations

import time


class Timer:
    """A span of wall-clock time (``time.time()`` seconds; 0 for not yet).

    Args:
        started: when it started.
        stopped: when it stopped.
    """

    def __init__(self, started: float = 0, stopped: float = 0) -> None:
        self.started = started
        self.stopped = stopped

    def start(self) -> Timer:
        """Start (again) now."""
        self.started = time.time()
        self.stopped = 0
        return self

    def stop(self) -> Timer:
        """Stop now, if started."""
        if self.started > 0:
            self.stopped = time.time()
        return self

    def duration(self) -> float:
        """Seconds from start to stop."""
        return self.stopped - self.started

    def __enter__(self) -> Timer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __str__(self) -> str:
        if self.started == 0:
            return "not-running"
        if self.stopped == 0:
            return f"started: {int(self.started)} (running)"
        seconds = self.duration()
        if seconds < 1:
            return f"{int(seconds * 1000)} (ms)"
        if seconds < 60:
            return f"{_cut(seconds)} (seconds)"
        return f"{_cut(seconds / 60)} (minutes)"


def _cut(value: float) -> str:
    """``value`` with three decimals, cut rather than rounded: 2.9996 is ``2.999``."""
    whole = int(value)
    return f"{whole}.{int((value - whole) * 1000):03d}"


__all__ = ["Timer"]
