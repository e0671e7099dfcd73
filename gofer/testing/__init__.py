"""Testing kit for plugin authors: run a plugin in-process and call it, no broker needed.

::

    from gofer.testing import PluginHarness

    def test_bark():
        with PluginHarness("plugins/dog.py", settings={"dog": {"voice": "loud"}}) as harness:
            assert harness.agent().Dog().bark("hi") == "WOOF hi"

The harness gives the plugin a goferd of its own, in this process, with a
private root (configuration, journal, management socket) in a temporary
directory. The plugin's queue lives on an in-memory broker
(``memory://``, the ``memory`` adapter), unique to the harness, and
:meth:`PluginHarness.agent` returns an ``Agent`` bound to it: the calls go
through the whole stack (signing, journal, workers, replies) as they would
through RabbitMQ. Actions run as soon as the plugin loads.

For pytest, ``pytest_plugins = ["gofer.testing.fixtures"]`` in a
``conftest.py`` adds the ``gofer_plugin`` fixture (see
:mod:`gofer.testing.fixtures`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from gofer.agent.config.agent_conf import AgentConfig, MainConfig, load_agent_config
from gofer.agent.daemon import Goferd
from gofer.agent.paths import Paths
from gofer.messaging.adapter import memory
from gofer.proxy import Agent
from gofer.rmi import transport


class PluginHarness:
    """One plugin served by an in-process goferd over an in-memory broker.

    Args:
        plugin: the plugin's module file (``plugins/dog.py``), or a dotted
            module name importable here (``myproject.gofer_plugin``).
        name: the plugin's name; by default the module's (``dog``).
        settings: more descriptor sections, ``{section: {key: value}}``
            (the plugin reads them as ``plugin.cfg.section.key``); ``main``,
            ``messaging`` and ``model`` keys are merged into the descriptor's.
        threads: the plugin's worker threads.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        plugin: str | Path,
        *,
        name: str | None = None,
        settings: dict[str, dict[str, Any]] | None = None,
        threads: int = 2,
    ) -> None:
        self.plugin = plugin
        as_path = Path(plugin)
        is_file = as_path.suffix == ".py"
        self.name = name or (as_path.stem if is_file else str(plugin).rpartition(".")[2])
        self.url = f"memory://gofer-testing-{uuid.uuid4().hex[:12]}"
        self.queue = f"{self.name}-{uuid.uuid4().hex[:8]}"
        self.settings = settings or {}
        self.threads = threads
        self._is_file = is_file
        self._top: str | None = None
        self.goferd: Goferd | None = None

    @property
    def root(self) -> Path:
        """The private root of the harness's goferd (while started)."""
        if self._top is None:
            raise RuntimeError("the harness is not started")
        return Path(self._top)

    def start(self) -> PluginHarness:
        """Lay out the root, start goferd and load the plugin."""
        self._top = tempfile.mkdtemp(prefix="gofer-testing-")
        paths = Paths.under(self._top)
        paths.descriptors.mkdir(parents=True)
        main: dict[str, Any] = {"enabled": 1, "threads": self.threads}
        if self._is_file:
            modules = paths.plugin_dirs[0]
            modules.mkdir(parents=True)
            shutil.copy(self.plugin, modules / f"{self.name}.py")
        else:
            main["plugin"] = str(self.plugin)
        sections: dict[str, dict[str, Any]] = {
            "main": {**main, **self.settings.get("main", {})},
            "messaging": {"url": self.url, **self.settings.get("messaging", {})},
            "model": {"queue": self.queue, **self.settings.get("model", {})},
        }
        for section, values in self.settings.items():
            sections.setdefault(section, dict(values))
        descriptor = paths.descriptors / f"{self.name}.json"
        descriptor.write_text(json.dumps(sections))
        config = load_agent_config(paths)
        config = AgentConfig(
            main=MainConfig(action_splay=0.0, drain_timeout=5.0),
            management=config.management,
            logging=config.logging,
            pam=config.pam,
        )
        self.goferd = Goferd(paths, config)
        self.goferd.start()
        if self.goferd.container.find(self.name) is None:
            failed = self.goferd.failed.get(self.name, "see the log")
            self.stop()
            raise RuntimeError(f"plugin {self.name} did not load: {failed}")
        return self

    def agent(self, **options: Any) -> Agent:
        """An ``Agent`` for the plugin's queue (``options`` as for ``Agent``)."""
        options.setdefault("wait", 10)
        return Agent(self.url, self.queue, **options)

    def stop(self) -> None:
        """Stop goferd, forget the in-memory broker, remove the root."""
        if self.goferd is not None:
            self.goferd.shutdown(drain_timeout=5.0)
            self.goferd = None
        transport.close_for(self.url)
        memory.forget(self.url)
        if self._top is not None:
            shutil.rmtree(self._top, ignore_errors=True)
            self._top = None

    def __enter__(self) -> PluginHarness:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["PluginHarness"]
