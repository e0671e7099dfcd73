"""The proton adapter's I/O thread: work handed to it from other threads, and its end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import pytest
from proton import Handler

from gofer.errors import ConnectionLostError, OperationTimeoutError
from gofer.messaging.adapter.proton.loop import Loop, wait


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop("test-loop", Handler())
    running.start()
    yield running
    running.stop()
    running.join(5)


def test_work_runs_in_the_loop_thread(loop: Loop) -> None:
    assert loop.call(lambda: threading.current_thread() is loop.thread, timeout=5)
    assert loop.call(lambda: loop.in_loop, timeout=5)
    assert not loop.in_loop


def test_errors_reach_the_caller(loop: Loop) -> None:
    def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        loop.call(boom, timeout=5)
    assert loop.call(lambda: 42, timeout=5) == 42  # the loop goes on


def test_many_threads_share_the_loop(loop: Loop) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        value = loop.call(lambda: n * 2, timeout=5)
        with lock:
            results.append(value)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [n * 2 for n in range(50)]


def test_a_future_settled_later_by_the_loop(loop: Loop) -> None:
    kept: list[Future[str]] = []
    future = loop.submit(kept.append)
    time.sleep(0.1)
    assert not future.done()
    loop.call(lambda: kept[0].set_result("later"), timeout=5)
    assert wait(future, 5, "test") == "later"


def test_waiting_too_long_is_an_operation_timeout(loop: Loop) -> None:
    never = loop.submit(lambda future: None)
    with pytest.raises(OperationTimeoutError):
        wait(never, 0.1, "test")


def test_ending_fails_pending_work_and_refuses_more(loop: Loop) -> None:
    pending = loop.submit(lambda future: None)
    reason = ConnectionLostError("gone")
    ending = loop.submit(lambda future: loop.end(reason))
    loop.join(5)
    assert ending.exception(5) is reason  # the work that ended it is pending too
    assert not loop.thread.is_alive()
    assert pending.exception(5) is reason
    assert loop.submit(lambda future: future.set_result(1)).exception(5) is reason
    assert loop.ended is reason


def test_an_idle_loop_sleeps(loop: Loop) -> None:
    started = time.process_time()
    time.sleep(1.0)
    # The loop thread selects; it does not spin (this process's CPU time stays small).
    assert time.process_time() - started < 0.2
