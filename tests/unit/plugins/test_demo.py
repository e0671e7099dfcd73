"""The demo plugin: the guide's exact answers, progress per wag, the fork and action marks."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

import pytest

from gofer.decorators import FORK, marks
from gofer.rmi.catalog import Catalog
from gofer.rmi.context import Context, activate
from tests.unit.plugins import load_plugin

demo = load_plugin("demo")


class Recorder:
    def __init__(self, cancel_after: int | None = None) -> None:
        self.reports: list[tuple[int, int, Any]] = []
        self.cancel_after = cancel_after

    def __call__(self, total: int, completed: int, details: Any) -> None:
        self.reports.append((total, completed, details))

    def cancelled(self) -> bool:
        return self.cancel_after is not None and len(self.reports) >= self.cancel_after

    def context(self) -> Context:
        return Context("sn-demo", None, self, self.cancelled)

    def completed(self) -> list[int]:
        """Each ``completed`` value reported, once, in order."""
        values: list[int] = []
        for _, completed, _ in self.reports:
            if not values or values[-1] != completed:
                values.append(completed)
        return values


def test_dog_barks_the_guide_answer() -> None:
    assert demo.Dog().bark("howdy") == (
        'Yes master.  I will bark because that is what dogs do. "howdy"'
    )


def test_dog_wag_reports_progress_per_wag() -> None:
    recorder = Recorder()
    with activate(recorder.context()):
        answer = demo.Dog().wag(3)
    assert answer == "Yes master.  I will wag my tail because that is what dogs do."
    assert recorder.completed() == [0, 1, 2, 3]  # 0: setting the total reports at once
    assert recorder.reports[-1] == (3, 3, "wag")


def test_dog_wag_takes_the_count_as_text_from_the_cli() -> None:
    recorder = Recorder()
    with activate(recorder.context()):
        demo.Dog().wag("2")
    assert recorder.reports[-1] == (2, 2, "wag")


def test_dog_wag_stops_when_cancelled() -> None:
    recorder = Recorder(cancel_after=1)
    with activate(recorder.context()):
        demo.Dog().wag(50)
    assert max(completed for _, completed, _ in recorder.reports) < 50


@pytest.mark.parametrize("n", [-1, demo.MOST + 1, "many", None, True, [3]])
def test_dog_wag_refuses_a_bad_count(n: Any) -> None:
    with activate(Recorder().context()), pytest.raises((TypeError, ValueError)):
        demo.Dog().wag(n)


def test_demo_reports_ten_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "PAUSE", 0)
    recorder = Recorder()
    with activate(recorder.context()):
        assert demo.Demo().demo() == "demo finished: 10 steps"
    assert recorder.reports[-1] == (10, 10, "step 10")


def test_demo_stops_early_when_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "PAUSE", 0)
    recorder = Recorder(cancel_after=2)
    with activate(recorder.context()):
        assert demo.Demo().demo().startswith("cancelled after")


def test_hello_and_the_echoes() -> None:
    assert "gofer demo plugin" in demo.Demo().hello()
    assert demo.Demo().echo({"a": [1, 2]}) == {"a": [1, 2]}
    assert demo.echo("hi") == "hi"


def test_nap_runs_with_the_fork_model() -> None:
    found = marks(demo.Demo.nap)
    assert found is not None
    assert found.remote
    assert found.model == FORK
    with activate(Recorder().context()):
        assert demo.Demo().nap(0) == {"pid": os.getpid(), "agent": os.getppid(), "slept": 0}


def test_heartbeat_is_a_ten_minute_action_that_logs(caplog: pytest.LogCaptureFixture) -> None:
    found = marks(demo.heartbeat)
    assert found is not None
    assert found.interval == timedelta(minutes=10)
    with caplog.at_level(logging.INFO):
        demo.heartbeat()
    assert "heartbeat" in caplog.text


def test_catalog_lists_what_the_guide_shows() -> None:
    catalog = Catalog.of_module(demo, "demo")
    assert set(catalog.classes) == {"Demo", "Dog"}
    assert set(catalog.classes["Demo"].methods) == {"demo", "echo", "hello", "nap"}
    assert set(catalog.classes["Dog"].methods) == {"bark", "wag"}
    assert set(catalog.functions) == {"echo"}
    assert [action.name for action in catalog.actions] == ["demo.heartbeat"]
