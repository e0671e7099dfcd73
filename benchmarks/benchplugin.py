"""The benchmarks' goferd plugin: a counter for fire-and-forget requests, and trivial methods.

:mod:`benchmarks.agent` copies this file into goferd's plugin directory of
a temporary root (under one or more plugin names). Nothing here touches the
host.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from gofer.decorators import fork, remote


class _Tally:
    """How many ``Bench.count()`` calls goferd has run, and when the first and last ran."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None


_tally = _Tally()


class Bench:
    """What the agent benchmarks call."""

    @remote
    def count(self) -> None:
        """Count one call (sent fire-and-forget), with the time it ran (``time.time()``)."""
        now = time.time()
        with _tally.lock:
            _tally.count += 1
            _tally.first = now if _tally.first is None else _tally.first
            _tally.last = now

    @remote
    def counted(self) -> dict[str, Any]:
        """The calls counted so far: ``{"count": N, "first": t, "last": t}``."""
        with _tally.lock:
            return {"count": _tally.count, "first": _tally.first, "last": _tally.last}

    @remote
    def reset(self) -> None:
        """Start counting again from zero."""
        with _tally.lock:
            _tally.count, _tally.first, _tally.last = 0, None, None

    @remote
    def nothing(self) -> None:
        """Nothing, in a worker thread of goferd (the direct model)."""

    @fork
    @remote
    def forked(self) -> None:
        """Nothing, in a child process of goferd (the fork model)."""

    @remote
    def echo(self, something: Any) -> Any:
        """``something``, sent back as it came."""
        return something
