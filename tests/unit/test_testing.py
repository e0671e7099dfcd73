"""The testing kit shipped to plugin authors, used as they would: a plugin called in-process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gofer.errors import MemberNotFound
from gofer.messaging.adapter.model import Queue
from gofer.messaging.connection import Connection
from gofer.proxy import Fleet
from gofer.testing import PluginHarness

pytest_plugins = ["gofer.testing.fixtures"]

REPO = Path(__file__).resolve().parent.parent.parent
DEMO = REPO / "plugins/demo.py"

SETTINGS_PLUGIN = """
from gofer.agent.plugin import Plugin
from gofer.decorators import remote

plugin = Plugin.find(__name__)


class Settings:
    @remote
    def voice(self):
        return plugin.cfg.dog.voice

    @remote
    def fail(self):
        raise ValueError("on purpose")
"""


def test_a_plugin_file_answers_through_the_whole_stack(
    gofer_plugin: Callable[..., PluginHarness],
) -> None:
    harness = gofer_plugin(DEMO)
    agent = harness.agent()
    reports: list[Any] = []

    assert "bark" in agent.Dog().bark("hi")
    assert agent.demo.echo([1, {"a": 2}]) == [1, {"a": 2}]
    assert agent.Dog(progress=reports.append).wag(2).startswith("Yes master")
    assert [r["completed"] for r in reports][-2:] == [1, 2]
    with pytest.raises(MemberNotFound):
        agent.Dog().fly()


def test_settings_reach_the_plugin_and_its_exceptions_come_back(
    gofer_plugin: Callable[..., PluginHarness], tmp_path: Path
) -> None:
    module = tmp_path / "dog.py"
    module.write_text(SETTINGS_PLUGIN)
    harness = gofer_plugin(module, settings={"dog": {"voice": "loud"}})

    assert harness.agent().Settings().voice() == "loud"
    with pytest.raises(ValueError, match="on purpose"):
        harness.agent().Settings().fail()


def test_fan_out_works_against_harnessed_plugins(
    gofer_plugin: Callable[..., PluginHarness],
) -> None:
    harness = gofer_plugin(DEMO)
    offline = "nobody-home"
    Connection(harness.url).declare_queue(Queue(offline))

    outcomes = {
        o.agent: o for o in Fleet(harness.url, [harness.queue, offline], wait=5).Demo().echo(7)
    }

    assert outcomes[harness.queue].result == 7
    assert outcomes[offline].status == "timeout"


def test_a_plugin_that_does_not_load_says_why(tmp_path: Path) -> None:
    module = tmp_path / "broken.py"
    module.write_text("raise ImportError('broken on purpose')\n")
    with pytest.raises(RuntimeError, match="broken on purpose"):
        PluginHarness(module).start()


def test_each_harness_has_a_broker_of_its_own(
    gofer_plugin: Callable[..., PluginHarness],
) -> None:
    first, second = gofer_plugin(DEMO), gofer_plugin(DEMO)
    assert first.url != second.url
    assert first.agent().Demo().echo(1) == second.agent().Demo().echo(1) == 1
