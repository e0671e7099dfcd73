"""The per-call context as a plugin sees it: current(), progress reports, cancellation."""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import Any

import pytest

from gofer.errors import GoferError
from gofer.rmi.context import Context, NoContextError, activate


class Recorder:
    def __init__(self) -> None:
        self.reports: list[tuple[int, int, Any]] = []

    def __call__(self, total: int, completed: int, details: Any) -> None:
        self.reports.append((total, completed, details))


def make(reporter: Any = None, cancelled: Any = None) -> Context:
    return Context("sn-1", {"task": 7}, reporter or Recorder(), cancelled or (lambda: False))


def test_current_outside_a_call_raises_a_gofer_error() -> None:
    with pytest.raises(NoContextError, match="no remote call"):
        Context.current()
    assert issubclass(NoContextError, GoferError)


def test_activate_makes_the_context_current_and_restores_the_previous() -> None:
    outer, inner = make(), make()
    with activate(outer):
        assert Context.current() is outer
        with activate(inner) as active:
            assert active is inner
            assert Context.current() is inner
        assert Context.current() is outer
    with pytest.raises(NoContextError):
        Context.current()


def test_activation_is_undone_when_the_call_raises() -> None:
    with pytest.raises(ValueError, match="boom"), activate(make()):
        raise ValueError("boom")
    with pytest.raises(NoContextError):
        Context.current()


def test_sn_and_data_are_the_requests() -> None:
    context = make()
    assert context.sn == "sn-1"
    assert context.data == {"task": 7}


def test_guide_style_progress_is_sent_without_report(monkeypatch: pytest.MonkeyPatch) -> None:
    # The user guide's plugins only set fields; each change is sent, coalesced.
    now = [100.0]
    monkeypatch.setattr("gofer.rmi.context.time.monotonic", lambda: now[0])
    recorder = Recorder()
    progress = make(recorder).progress
    progress.total = 3
    for _ in range(3):
        progress.completed += 1  # too soon after the last: held back
        progress.details = "busy"
        now[0] += 1.0  # the plugin works a while
    progress.completed = 3
    progress.flush()
    assert recorder.reports == [(3, 0, None), (3, 2, "busy"), (3, 3, "busy"), (3, 3, "busy")]


def test_explicit_report_sends_exactly_what_is_asked() -> None:
    recorder = Recorder()
    with activate(make(recorder)):
        ctx = Context.current()
        ctx.progress.report()
        recorder.reports.clear()
        for n in range(3):
            ctx.progress.completed += 1
            ctx.progress.details = f"for: {n}"
            ctx.progress.report()
        ctx.progress.flush()  # nothing held back: nothing more sent
    assert recorder.reports == [(0, 1, "for: 0"), (0, 2, "for: 1"), (0, 3, "for: 2")]


def test_progress_starts_empty() -> None:
    progress = make().progress
    assert (progress.total, progress.completed, progress.details) == (0, 0, None)
    assert "total=0" in repr(progress)


def test_a_failing_reporter_is_logged_and_never_reaches_the_plugin(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(total: int, completed: int, details: Any) -> None:
        raise ConnectionError("broker gone")

    context = make(broken)
    with caplog.at_level(logging.ERROR, logger="gofer.rmi.context"):
        context.progress.report()
    assert "progress report failed" in caplog.text
    assert "broker gone" in caplog.text


def test_cancelled_reflects_the_callers_cancellation() -> None:
    flag = threading.Event()
    context = make(cancelled=flag.is_set)
    assert not context.cancelled()
    flag.set()
    assert context.cancelled()


def test_a_failing_cancellation_check_reads_as_not_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> bool:
        raise RuntimeError("journal unreadable")

    with caplog.at_level(logging.ERROR, logger="gofer.rmi.context"):
        assert make(cancelled=broken).cancelled() is False
    assert "journal unreadable" in caplog.text


def test_the_context_belongs_to_the_thread_running_the_call() -> None:
    seen: list[object] = []

    def look() -> None:
        try:
            seen.append(Context.current())
        except NoContextError as exc:
            seen.append(exc)

    context = make()
    with activate(context):
        plain = threading.Thread(target=look)
        plain.start()
        plain.join()
        copied = threading.Thread(target=contextvars.copy_context().run, args=(look,))
        copied.start()
        copied.join()
    assert isinstance(seen[0], NoContextError)
    assert seen[1] is context
