"""Every long-lived component starts and stops alike: ``start()``, then ``stop(timeout)``.

``stop`` stops taking work, waits up to ``timeout`` for its threads and the
work under way, and says whether all ended. It may be called twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gofer.agent.management import ManagementServer
from gofer.agent.metrics import Server
from gofer.agent.monitor import DescriptorWatch
from gofer.agent.scheduler import Scheduler
from gofer.testing import PluginHarness

DEMO = Path(__file__).resolve().parents[3] / "plugins/demo.py"


def scheduler(tmp_path: Path) -> Any:
    made = Scheduler()
    made.add("tick", lambda: None, timedelta(minutes=1))
    return made


def watch(tmp_path: Path) -> Any:
    return DescriptorWatch(tmp_path, lambda changes: None, interval=0.05)


def management(tmp_path: Path) -> Any:
    return ManagementServer(lambda command, args: None, socket_path=tmp_path / "goferd.sock")


def metrics(tmp_path: Path) -> Any:
    return Server(("127.0.0.1", 0), lambda: "")


@pytest.mark.parametrize("make", [scheduler, watch, management, metrics])
def test_a_component_stops_within_its_timeout_and_may_stop_twice(
    tmp_path: Path, make: Callable[[Path], Any]
) -> None:
    component = make(tmp_path)
    component.start()
    assert component.stop(2.0) is True
    assert component.stop(2.0) is True


def test_goferd_and_a_runner_stop_alike() -> None:
    with PluginHarness(DEMO) as harness:
        goferd = harness.goferd
        assert goferd is not None
        runner = goferd.runners["demo"]
        assert harness.agent().Demo().echo(1) == 1
        assert runner.stop(2.0) is True
        assert runner.stop(2.0) is True
        assert goferd.stop(2.0) is True
