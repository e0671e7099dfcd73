"""The plugin runtime API of gofer 3.0, under an in-process goferd over the in-memory broker.

``plugin.scheduler.pending``, ``plugin.authenticator = obj``, ``plugin +=``
a class or a function, ``plugin[name]``, and a move to another broker with
a call waiting: what tests/e2e/test_plugin_api.py shows against RabbitMQ,
here without one.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gofer.agent.plugin import Plugin
from gofer.errors import RequestRejectedError
from gofer.messaging.adapter import memory
from gofer.messaging.auth import HmacAuthenticator
from gofer.proxy import Agent
from gofer.rmi import transport
from gofer.testing import PluginHarness

KEY = "a key both ends of the test know"

PLUGIN = """
import os
import time

from gofer.agent.plugin import Plugin
from gofer.decorators import load, remote
from gofer.messaging.auth import HmacAuthenticator

from tests.unit.agent.pets import Cat, purr

plugin = Plugin.find(__name__)
plugin += Cat
plugin += purr


@load
def sign():
    key = plugin.cfg.signing.key
    if key:
        plugin.authenticator = HmacAuthenticator(key)


class Gate:
    @remote
    def hold(self, path, tag):
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)
        return tag

    @remote
    def where(self):
        return plugin.cfg.model.queue
"""


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., tuple[PluginHarness, Plugin]]]:
    """Start the plugin above (one worker unless told) and give its harness and Plugin."""
    module = tmp_path / "kennel.py"
    module.write_text(PLUGIN)
    started: list[PluginHarness] = []

    def make(threads: int = 1, **settings: dict[str, Any]) -> tuple[PluginHarness, Plugin]:
        harness = PluginHarness(module, threads=threads, settings=settings).start()
        started.append(harness)
        assert harness.goferd is not None
        plugin = harness.goferd.container.find("kennel")
        assert plugin is not None
        return harness, plugin

    yield make
    for harness in started:
        harness.stop()


def soon(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def call_in_thread(agent: Agent, *args: Any) -> tuple[threading.Thread, list[Any]]:
    """``agent.Gate().hold(*args)`` on a thread of its own; the list gets its result."""
    got: list[Any] = []
    thread = threading.Thread(target=lambda: got.append(agent.Gate().hold(*args)), daemon=True)
    thread.start()
    return thread, got


def test_scheduler_pending_lists_the_requests_accepted_and_not_answered(
    start: Callable[..., tuple[PluginHarness, Plugin]], tmp_path: Path
) -> None:
    harness, plugin = start()
    gate = tmp_path / "open"
    assert plugin.scheduler.pending == []
    running = harness.agent(wait=0).Gate().hold(str(gate), "running")
    waiting = harness.agent(wait=0).Gate().hold(str(gate), "waiting")
    soon(lambda: sorted(plugin.scheduler.pending) == sorted([running, waiting]), "not pending")
    gate.touch()
    soon(lambda: plugin.scheduler.pending == [], "still pending once answered")


def test_an_authenticator_set_at_run_time_takes_effect_at_the_next_attach(
    start: Callable[..., tuple[PluginHarness, Plugin]],
) -> None:
    harness, plugin = start()
    signed = harness.agent(authenticator=HmacAuthenticator(KEY))
    plugin.authenticator = HmacAuthenticator(KEY)
    # The runner serving the queue checks with what it was made with...
    assert harness.agent().Gate().where() == harness.queue
    plugin.detach(False)
    plugin.attach()
    # ...the one attach() makes with the plugin's authenticator.
    with pytest.raises(RequestRejectedError) as refused:
        harness.agent().Gate().where()
    assert refused.value.code == "security.authentication"
    assert signed.Gate().where() == harness.queue  # its reply signed, or this would fail


def test_an_authenticator_set_in_a_load_hook_takes_effect_from_the_start(
    start: Callable[..., tuple[PluginHarness, Plugin]],
) -> None:
    harness, plugin = start(signing={"key": KEY})
    assert isinstance(plugin.authenticator, HmacAuthenticator)
    with pytest.raises(RequestRejectedError):
        harness.agent().Gate().where()
    assert harness.agent(authenticator=HmacAuthenticator(KEY)).Gate().where() == harness.queue


def test_a_plugin_extended_with_a_class_and_a_function_serves_them(
    start: Callable[..., tuple[PluginHarness, Plugin]],
) -> None:
    harness, plugin = start()
    agent = harness.agent()
    assert agent.Cat().meow() == "meow"
    assert agent.kennel.purr(2) == "purr purr "
    assert {"Cat", "Gate"} <= set(plugin.merged_catalog().classes)
    with pytest.raises(TypeError):
        plugin += 42


def test_a_plugin_gives_its_module_names_by_key_and_key_error_for_others(
    start: Callable[..., tuple[PluginHarness, Plugin]],
) -> None:
    _, plugin = start()
    assert plugin["Gate"].__name__ == "Gate"
    with pytest.raises(KeyError, match="Dog"):
        plugin["Dog"]


def test_a_call_waiting_when_the_plugin_moves_to_another_broker_is_answered_on_the_old_one(
    start: Callable[..., tuple[PluginHarness, Plugin]], tmp_path: Path
) -> None:
    harness, plugin = start()
    assert harness.goferd is not None
    gate = tmp_path / "open"
    elsewhere = f"memory://gofer-moved-{uuid.uuid4().hex[:12]}"
    try:
        first, first_got = call_in_thread(harness.agent(), str(gate), "running")
        soon(lambda: len(plugin.scheduler.pending) == 1, "first call not accepted")
        second, second_got = call_in_thread(harness.agent(), str(gate), "waiting")
        soon(lambda: len(plugin.scheduler.pending) == 2, "second call not accepted")

        def move() -> None:
            plugin.cfg.messaging.url = elsewhere
            plugin.cfg.model.queue = "moved"
            plugin.detach(False)
            plugin.attach()

        mover = threading.Thread(target=move, daemon=True)
        mover.start()
        soon(lambda: "kennel" not in harness.goferd.runners, "not detached")  # type: ignore[union-attr]
        gate.touch()  # the running call ends while detach() waits for it
        mover.join(10)
        assert Agent(elsewhere, "moved", wait=10).Gate().where() == "moved"
        first.join(10)
        second.join(10)
        assert (first_got, second_got) == (["running"], ["waiting"])
    finally:
        transport.close_for(elsewhere)
        memory.forget(elsewhere)
