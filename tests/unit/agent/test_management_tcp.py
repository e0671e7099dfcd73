"""The management TCP port: anyone local reaches it, so what it may load is checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gofer.agent import daemon as daemon_module
from gofer.agent.management import ManagementError
from gofer.testing import PluginHarness

DEMO = Path(__file__).resolve().parents[3] / "plugins/demo.py"


def test_a_link_swapped_after_the_check_does_not_change_what_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PluginHarness(DEMO) as harness:
        goferd = harness.goferd
        assert goferd is not None
        goferd.manage("unload", {"name": "demo"})
        # A local user's own descriptor for the installed plugin, on a queue of theirs...
        own = tmp_path / "own"
        own.mkdir()
        (own / "demo.json").write_text(
            json.dumps(
                {
                    "main": {"enabled": 1},
                    "messaging": {"url": harness.url},
                    "model": {"queue": "theirs"},
                }
            )
        )
        # ...and a link to the descriptor directory, repointed at theirs once checked.
        link = tmp_path / "d"
        link.symlink_to(goferd.paths.descriptors)
        read = daemon_module.load_descriptor

        def swapping(path: Any) -> Any:
            loaded = read(path)
            link.unlink()
            link.symlink_to(own)
            return loaded

        monkeypatch.setattr(daemon_module, "load_descriptor", swapping)
        goferd.manage_untrusted("load", {"path": str(link / "demo.json")})
        plugin = goferd.container.find("demo")
        assert plugin is not None
        assert plugin.queue == harness.queue


def test_a_descriptor_outside_the_directory_is_refused(tmp_path: Path) -> None:
    with PluginHarness(DEMO) as harness:
        goferd = harness.goferd
        assert goferd is not None
        goferd.manage("unload", {"name": "demo"})
        own = tmp_path / "demo.json"
        own.write_text((goferd.paths.descriptors / "demo.json").read_text())
        with pytest.raises(ManagementError, match="only descriptors in"):
            goferd.manage_untrusted("load", {"path": str(own)})
        assert goferd.container.find("demo") is None
