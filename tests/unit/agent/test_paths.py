"""Where goferd's files live, and how the whole tree moves under another root."""

from __future__ import annotations

from pathlib import Path

import pytest

from gofer.agent.paths import ROOT_VARIABLE, Paths


def test_installed_locations() -> None:
    paths = Paths.under()
    assert paths.root == Path("/")
    assert paths.config == Path("/etc/gofer/agent.conf")
    assert paths.config_dir == Path("/etc/gofer/conf.d")
    assert paths.descriptors == Path("/etc/gofer/plugins")
    assert paths.plugin_dirs == (
        Path("/usr/share/gofer/plugins"),
        Path("/usr/lib/gofer/plugins"),
        Path("/usr/lib64/gofer/plugins"),
        Path("/opt/gofer/plugins"),
    )
    assert paths.state == Path("/var/lib/gofer")
    assert paths.journal == Path("/var/lib/gofer/journal")
    assert paths.run == Path("/run/gofer")
    assert paths.pidfile == Path("/run/gofer/goferd.pid")
    assert paths.socket == Path("/run/gofer/goferd.sock")


def test_every_path_moves_under_the_root(tmp_path: Path) -> None:
    paths = Paths.under(tmp_path)
    installed = Paths.under("/")
    for name in ("config", "config_dir", "descriptors", "state", "journal", "run", "pidfile"):
        moved = getattr(paths, name)
        assert moved == tmp_path / getattr(installed, name).relative_to("/"), name
    assert paths.socket == tmp_path / "run/gofer/goferd.sock"
    assert all(path.is_relative_to(tmp_path) for path in paths.plugin_dirs)


def test_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    paths = Paths.under("trial")
    assert paths.root == tmp_path / "trial"
    assert paths.config.is_absolute()


def test_frozen() -> None:
    paths = Paths.under()
    with pytest.raises(AttributeError):
        paths.config = Path("/elsewhere")  # type: ignore[misc]


def test_explicit_root_wins_over_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ROOT_VARIABLE, "/from/environment")
    assert Paths.from_environment(str(tmp_path)).root == tmp_path


def test_environment_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ROOT_VARIABLE, str(tmp_path))
    assert Paths.from_environment().root == tmp_path
    assert Paths.from_environment(None).config == tmp_path / "etc/gofer/agent.conf"


@pytest.mark.parametrize("value", [None, ""])
def test_default_root(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        monkeypatch.delenv(ROOT_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(ROOT_VARIABLE, value)
    assert Paths.from_environment() == Paths.under("/")
