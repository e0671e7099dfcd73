"""One retry loop for the whole project: jittered exponential back-off on recoverable errors."""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Backoff:
    """How long to wait between attempts, and when to give up.

    The n-th delay is drawn from ``[b/2, b]`` where ``b = min(initial * factor**n,
    maximum)``: exponential, capped, and jittered so that ten thousand agents
    that lost the same broker do not come back in step. With ``full_jitter``
    it is drawn from ``[0, b]`` instead: the spread that makes a fleet's
    reconnects least bunched (and least work for the broker in all).

    Attributes:
        initial: the first delay's upper bound, in seconds.
        maximum: the cap on any delay.
        factor: growth per attempt.
        limit: give up once this many seconds have passed since the first
            failure; None retries for ever.
        attempts: give up after this many retries; None for no count.
        full_jitter: draw each delay from ``[0, b]`` rather than ``[b/2, b]``.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    limit: float | None = None
    attempts: int | None = None
    full_jitter: bool = False

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The delays, in order, as long as ``attempts`` allows."""
        draw = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        count = 0
        while self.attempts is None or count < self.attempts:
            yield self.delay(count, draw)
            count += 1

    def bound(self, failures: int) -> float:
        """The most the delay after ``failures`` earlier failures can be."""
        return min(self.initial * self.factor ** min(failures, 64), self.maximum)

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """The delay after ``failures`` earlier failures (0 for the first retry)."""
        bound = self.bound(failures)
        draw = rng or _rng
        return draw.uniform(0.0 if self.full_jitter else bound / 2, bound)


_rng = random.Random()  # noqa: S311 - jitter, not cryptography


class Throttled:
    """Logs a repeated warning once per ``interval`` seconds, with a count of the rest.

    A broker that stays away makes every retry fail alike; ten thousand
    agents logging each failure fill disks and hide the first, telling one.
    Messages are told apart by their text once formatted.

    Example::

        warn = Throttled(log, interval=60)
        warn.warning("cannot connect to %s: %s", url, exc)
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[float, int]] = {}  # text -> (logged at, suppressed since)

    def warning(self, message: str, *args: object) -> None:
        text = message % args if args else message
        now = self._clock()
        with self._lock:
            logged, suppressed = self._seen.get(text, (None, 0))
            if logged is not None and now - logged < self.interval:
                self._seen[text] = (logged, suppressed + 1)
                return
            if len(self._seen) > 100:  # texts that vary (delays, addresses) must not pile up
                self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.interval}
            self._seen[text] = (now, 0)
        if suppressed:
            text += f" (and {suppressed} more like it in the last {now - logged:.0f}s)"  # type: ignore[operator]
        self.logger.warning("%s", text)


def retry(
    operation: Callable[[], T],
    recoverable: tuple[type[BaseException], ...],
    backoff: Backoff,
    *,
    what: str = "operation",
    before_retry: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``operation`` until it succeeds, retrying on ``recoverable`` errors.

    Args:
        operation: what to run.
        recoverable: the exceptions worth another try; anything else goes
            straight through.
        backoff: delays and bounds.
        what: named in the log lines.
        before_retry: called after each wait, before the next attempt (for
            example to reconnect); its recoverable errors count as failures.
        sleep: waits (tests pass a fake).
        clock: monotonic seconds (tests pass a fake).

    Returns:
        The operation's result.

    Raises:
        The last recoverable error once the back-off's bounds are reached.
    """
    delays = backoff.delays()
    started: float | None = None
    step = operation
    while True:
        try:
            return step()
        except recoverable as exc:
            now = clock()
            started = now if started is None else started
            delay = next(delays, None)
            left = None if backoff.limit is None else backoff.limit - (now - started)
            if delay is None or (left is not None and left <= 0):
                log.error("%s failed, giving up: %s", what, exc)
                raise
            if left is not None:
                delay = min(delay, left)  # one last try at the limit, not before it
            log.warning("%s failed (%s); retrying in %.1fs", what, exc, delay)
            sleep(delay)
            step = operation if before_retry is None else _chain(before_retry, operation)


def _chain(first: Callable[[], None], then: Callable[[], T]) -> Callable[[], T]:
    def run() -> T:
        first()
        return then()

    return run
