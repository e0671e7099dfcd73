"""The action scheduler: first run, interval, no overlap, failures, removal, prompt stop."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from gofer.agent.scheduler import Scheduler

FAST = timedelta(seconds=0.2)


class Recorder:
    """An action that records when (and on which thread) it ran."""

    def __init__(self, duration: float = 0.0, fail: bool = False) -> None:
        self.starts: list[float] = []
        self.threads: list[str] = []
        self.duration = duration
        self.fail = fail
        self.active = self.most_active = 0
        self.ran = threading.Event()
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            self.starts.append(time.monotonic())
            self.threads.append(threading.current_thread().name)
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        self.ran.set()
        time.sleep(self.duration)
        with self._lock:
            self.active -= 1
        if self.fail:
            raise RuntimeError("action failed on purpose")

    def gaps(self) -> list[float]:
        return [later - earlier for earlier, later in zip(self.starts, self.starts[1:])]


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    scheduler = Scheduler()
    yield scheduler
    scheduler.stop(timeout=1)


def test_an_action_runs_at_start_then_every_interval(scheduler: Scheduler) -> None:
    action = Recorder()
    scheduler.add("demo.tick", action, FAST)
    started = time.monotonic()

    scheduler.start()
    time.sleep(0.9)

    assert action.starts[0] - started < 0.1
    assert 4 <= len(action.starts) <= 6
    assert all(0.18 <= gap <= 0.4 for gap in action.gaps())


def test_an_action_added_to_a_running_scheduler_runs_at_once(scheduler: Scheduler) -> None:
    scheduler.start()
    time.sleep(0.05)
    action = Recorder()
    added = time.monotonic()

    scheduler.add("demo.late", action, timedelta(hours=1))

    assert action.ran.wait(1)
    assert action.starts[0] - added < 0.1


def test_a_slow_action_never_overlaps_itself(scheduler: Scheduler) -> None:
    action = Recorder(duration=0.3)
    scheduler.add("demo.slow", action, timedelta(seconds=0.1))

    scheduler.start()
    time.sleep(1.0)

    assert action.most_active == 1
    assert 3 <= len(action.starts) <= 4  # back to back, not piled up
    assert all(0.29 <= gap <= 0.5 for gap in action.gaps())


def test_a_failing_action_is_logged_and_keeps_its_schedule(
    scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    action = Recorder(fail=True)
    scheduler.add("demo.broken", action, FAST)

    with caplog.at_level(logging.ERROR, logger="gofer.agent.scheduler"):
        scheduler.start()
        time.sleep(0.7)

    assert len(action.starts) >= 3
    assert "action demo.broken failed" in caplog.text
    assert "failed on purpose" in caplog.text


def test_remove_prefix_stops_a_plugins_actions(scheduler: Scheduler) -> None:
    gone, also_gone, kept = Recorder(), Recorder(), Recorder()
    scheduler.add("demo.one", gone, FAST)
    scheduler.add("demo.two", also_gone, FAST)
    scheduler.add("other.one", kept, FAST)
    scheduler.start()
    assert gone.ran.wait(1)
    assert also_gone.ran.wait(1)

    assert scheduler.remove_prefix("demo.") == 2
    ran = len(gone.starts), len(also_gone.starts)
    time.sleep(0.5)

    assert (len(gone.starts), len(also_gone.starts)) == ran
    assert len(kept.starts) >= 3
    assert scheduler.names() == ["other.one"]


def test_actions_run_off_the_callers_thread(scheduler: Scheduler) -> None:
    action = Recorder()
    scheduler.add("demo.where", action, FAST)
    scheduler.start()

    assert action.ran.wait(1)
    assert action.threads[0].startswith("gofer-action")


def test_actions_run_on_the_executor_given() -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="given") as executor:
        scheduler = Scheduler(executor.submit)
        action = Recorder()
        scheduler.add("demo.where", action, FAST)
        scheduler.start()
        assert action.ran.wait(1)
        assert scheduler.stop(timeout=1)
    assert action.threads[0].startswith("given")


def test_stop_is_prompt_when_idle() -> None:
    scheduler = Scheduler()
    scheduler.add("demo.hourly", Recorder(), timedelta(hours=1))
    scheduler.start()
    time.sleep(0.05)

    assert elapsed(lambda: scheduler.stop(timeout=5)) < 0.5


def test_stop_waits_at_most_its_timeout_for_a_running_action(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = Scheduler()
    action = Recorder(duration=1.0)
    scheduler.add("demo.stuck", action, FAST)
    scheduler.start()
    assert action.ran.wait(1)

    results: list[bool] = []
    with caplog.at_level(logging.WARNING, logger="gofer.agent.scheduler"):
        took = elapsed(lambda: results.append(scheduler.stop(timeout=0.2)))

    assert results == [False]
    assert took < 0.6
    assert "demo.stuck" in caplog.text


def test_bad_arguments_are_refused(scheduler: Scheduler) -> None:
    scheduler.add("demo.once", Recorder(), FAST)
    with pytest.raises(ValueError, match="already"):
        scheduler.add("demo.once", Recorder(), FAST)
    with pytest.raises(ValueError, match="positive"):
        scheduler.add("demo.never", Recorder(), timedelta(0))
    scheduler.start()
    with pytest.raises(RuntimeError):
        scheduler.start()


def elapsed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def test_a_splay_spreads_first_runs_within_it() -> None:
    scheduler = Scheduler(splay=0.5, workers=4)
    actions = [Recorder() for _ in range(20)]
    for n, action in enumerate(actions):
        scheduler.add(f"fleet.report{n}", action, timedelta(hours=1))
    started = time.monotonic()
    try:
        scheduler.start()
        time.sleep(0.8)
    finally:
        scheduler.stop(timeout=1)

    firsts = sorted(action.starts[0] - started for action in actions)
    assert len(firsts) == 20
    assert firsts[-1] < 0.65
    assert firsts[0] < 0.25 < firsts[-1]  # spread over the splay, not all at once


def test_a_splay_longer_than_the_interval_is_cut_to_it() -> None:
    scheduler = Scheduler(splay=3600)
    action = Recorder()
    scheduler.add("fleet.tick", action, timedelta(seconds=0.2))
    started = time.monotonic()
    try:
        scheduler.start()
        time.sleep(0.5)
    finally:
        scheduler.stop(timeout=1)

    assert action.starts
    assert action.starts[0] - started < 0.3


def test_housekeeping_added_without_splay_runs_at_once() -> None:
    scheduler = Scheduler(splay=3600)
    action = Recorder()
    scheduler.add("goferd.sweep", action, timedelta(hours=1), splay=False)
    started = time.monotonic()
    try:
        scheduler.start()
        time.sleep(0.3)
    finally:
        scheduler.stop(timeout=1)

    assert action.starts
    assert action.starts[0] - started < 0.2
