"""pytest fixtures for plugin authors: ``pytest_plugins = ["gofer.testing.fixtures"]``.

``gofer_plugin(plugin, **options)`` starts a :class:`~gofer.testing.PluginHarness`
(stopped after the test) and returns it::

    def test_bark(gofer_plugin):
        harness = gofer_plugin("plugins/dog.py", settings={"dog": {"voice": "loud"}})
        assert harness.agent().Dog().bark("hi") == "WOOF hi"

``gofer_memory`` forgets every in-memory broker after the test, for tests
that use ``memory://`` URLs directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gofer.messaging.adapter import memory
from gofer.testing import PluginHarness


@pytest.fixture
def gofer_plugin() -> Iterator[Callable[..., PluginHarness]]:
    """Start plugins in-process, each with its goferd and in-memory broker; stopped after."""
    started: list[PluginHarness] = []

    def start(plugin: str | Path, **options: Any) -> PluginHarness:
        harness = PluginHarness(plugin, **options).start()
        started.append(harness)
        return harness

    yield start
    for harness in reversed(started):
        harness.stop()


@pytest.fixture
def gofer_memory() -> Iterator[None]:
    """In-memory brokers start empty, and are forgotten after the test."""
    memory.reset()
    yield
    memory.reset()
