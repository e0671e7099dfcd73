"""The one retry loop: back-off growth, jitter, bounds and what is retried."""

from __future__ import annotations

import random

import pytest

from gofer.errors import ConnectError, NotFoundError
from gofer.messaging.retry import Backoff, retry


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_delays_grow_exponentially_within_jitter_and_cap() -> None:
    backoff = Backoff(initial=1, maximum=8, factor=2, attempts=6)
    delays = list(backoff.delays(random.Random(7)))
    bounds = [1, 2, 4, 8, 8, 8]
    assert len(delays) == 6
    for delay, bound in zip(delays, bounds):
        assert bound / 2 <= delay <= bound


def test_delays_are_jittered() -> None:
    backoff = Backoff(initial=10, attempts=1)
    assert len({next(backoff.delays(random.Random(seed))) for seed in range(20)}) > 10


def test_retries_recoverable_errors_until_success() -> None:
    time = FakeTime()
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectError("down")
        return "up"

    assert retry(flaky, (ConnectError,), Backoff(), sleep=time.sleep, clock=time.clock) == "up"
    assert len(calls) == 4
    assert len(time.sleeps) == 3


def test_other_errors_pass_straight_through() -> None:
    time = FakeTime()

    def missing() -> None:
        raise NotFoundError("gone")

    with pytest.raises(NotFoundError):
        retry(missing, (ConnectError,), Backoff(), sleep=time.sleep, clock=time.clock)
    assert time.sleeps == []


def test_gives_up_after_the_time_limit() -> None:
    time = FakeTime()

    def down() -> None:
        raise ConnectError("down")

    with pytest.raises(ConnectError):
        retry(down, (ConnectError,), Backoff(limit=10), sleep=time.sleep, clock=time.clock)
    assert sum(time.sleeps) <= 10 + 1e-9  # the last wait is what was left: float sums
    assert len(time.sleeps) >= 3


def test_gives_up_after_the_attempt_count() -> None:
    time = FakeTime()
    calls = []

    def down() -> None:
        calls.append(1)
        raise ConnectError("down")

    with pytest.raises(ConnectError):
        retry(down, (ConnectError,), Backoff(attempts=2), sleep=time.sleep, clock=time.clock)
    assert len(calls) == 3


def test_before_retry_runs_between_attempts() -> None:
    time = FakeTime()
    events: list[str] = []

    def flaky() -> None:
        events.append("try")
        if events.count("try") < 3:
            raise ConnectError("down")

    retry(
        flaky,
        (ConnectError,),
        Backoff(),
        before_retry=lambda: events.append("reconnect"),
        sleep=time.sleep,
        clock=time.clock,
    )
    assert events == ["try", "reconnect", "try", "reconnect", "try"]
