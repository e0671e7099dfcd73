"""The wait every adapter's reader does: the next delivery of its buffer, or a wake-up."""

from __future__ import annotations

import queue as queues
import time
from collections.abc import Callable
from typing import Any

#: Put into a reader's buffer to wake a blocked ``get`` (a failure, a close).
WAKE = object()


def next_item(
    buffer: Callable[[], queues.SimpleQueue[Any]],
    deadline: float | None,
    recover: Callable[[], None],
) -> Any:
    """The next item of the reader's buffer before ``deadline`` (monotonic); None once it passes.

    ``recover`` runs first and after every :data:`WAKE`: it raises when the
    reader failed for good, or subscribes again after a passing failure, which
    may give the reader a new buffer (so ``buffer`` is asked each time).
    """
    while True:
        recover()
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            item = buffer().get(timeout=remaining)
        except queues.Empty:
            return None
        if item is not WAKE:
            return item
        if deadline is not None and time.monotonic() >= deadline:
            recover()
            return None
