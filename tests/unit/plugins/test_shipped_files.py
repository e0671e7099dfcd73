"""The shipped configuration read by goferd's own readers, and plugins loaded as goferd does."""

from __future__ import annotations

import configparser
import logging
import shutil
from pathlib import Path

import pytest

from gofer.agent.config import load_agent_config, load_descriptor
from gofer.agent.paths import Paths
from gofer.agent.plugin import Plugin, PluginContainer
from tests.unit.plugins import PLUGINS

REPO = PLUGINS.parent
DESCRIPTORS = REPO / "etc/gofer/plugins"
UNIT = REPO / "usr/lib/systemd/system/goferd.service"


def no_warnings(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_agent_conf_loads_as_shipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    paths = Paths.under(tmp_path)
    shutil.copytree(REPO / "etc/gofer", paths.config.parent)
    with caplog.at_level(logging.WARNING):
        config = load_agent_config(paths)
    no_warnings(caplog)
    assert config.files == (paths.config,)  # conf.d/README is not a .conf
    assert config.main.monitor is False
    assert config.main.drain_timeout == 30
    assert config.management.enabled is False
    assert config.management.port == 5650
    assert config.management.socket == paths.socket  # stays below a relocated root
    assert config.pam.service == "passwd"


@pytest.mark.parametrize(
    ("name", "enabled"), [("demo", False), ("system", False), ("package", False), ("virt", False)]
)
def test_descriptors_load_as_shipped(
    name: str, enabled: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        descriptor = load_descriptor(DESCRIPTORS / f"{name}.conf")
    no_warnings(caplog)
    assert descriptor.name == name
    assert descriptor.enabled is enabled
    assert descriptor.model.queue == name
    assert descriptor.model.managed == 2
    assert descriptor.messaging.url is not None


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch) -> PluginContainer:
    """A plugin container over ``plugins/``, active for ``Plugin.find`` during the test."""
    monkeypatch.setattr(Plugin, "_container", None)
    found = PluginContainer((PLUGINS,))
    found.activate()
    return found


@pytest.mark.parametrize(("secret", "wanted"), [("biscuit", "biscuit"), ("", [])])
def test_system_reads_its_secret_from_its_descriptor(
    tmp_path: Path, container: PluginContainer, secret: str, wanted: object
) -> None:
    text = (DESCRIPTORS / "system.conf").read_text().replace("#secret=", f"secret={secret}")
    path = tmp_path / "system.conf"
    path.write_text(text)
    plugin = container.load(load_descriptor(path))
    try:
        assert plugin.module is not None
        assert plugin.module.configured_secret() == wanted
    finally:
        container.unload("system")


@pytest.mark.parametrize(
    ("name", "classes"),
    [
        ("demo", {"Demo", "Dog"}),
        ("system", {"System", "Service", "Shell", "Script"}),
        ("package", {"Package"}),
        ("virt", {"Virt"}),
    ],
)
def test_every_plugin_loads_as_goferd_loads_it(
    container: PluginContainer, name: str, classes: set[str]
) -> None:
    plugin = container.load(load_descriptor(DESCRIPTORS / f"{name}.conf"))
    try:
        assert set(plugin.catalog.classes) == classes
        assert Plugin.find(plugin.module.__name__ if plugin.module else "") is plugin
    finally:
        container.unload(name)


def test_the_unit_stops_after_goferd_has_drained() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read(UNIT)
    agent = configparser.ConfigParser(interpolation=None)
    agent.read(REPO / "etc/gofer/agent.conf")
    assert unit["Service"]["KillMode"] == "mixed"
    assert float(unit["Service"]["TimeoutStopSec"]) > agent.getfloat("main", "drain_timeout")
