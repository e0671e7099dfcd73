"""gofer.config as plugins of the existing gofer use it to read their own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gofer.config import Config, get_bool, get_integer
from gofer.errors import ConfigError


def test_files_and_mappings_merge_in_order(tmp_path: Path) -> None:
    ini = tmp_path / "plugin.conf"
    ini.write_text("[server]\nhost = mq.example.com\nport = 5671\nPath = /a%b\n")
    cfg = Config(ini, {"server": {"port": "443"}, "extra": {"on": "yes"}})
    assert cfg["server"] == {"host": "mq.example.com", "port": "443", "Path": "/a%b"}
    assert get_bool(cfg["extra"]["on"]) is True
    assert cfg.graph().server.host == "mq.example.com"
    assert cfg.graph().server.missing is None


def test_json_files(tmp_path: Path) -> None:
    path = tmp_path / "plugin.json"
    path.write_text('{"main": {"enabled": 1}}')
    assert Config(str(path))["main"]["enabled"] == 1


def test_bad_files_say_which(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("no section header\n")
    with pytest.raises(ConfigError, match=r"bad\.conf"):
        Config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        Config(tmp_path / "missing.conf")


@pytest.mark.parametrize(
    ("text", "value"), [("1", True), ("On", True), ("no", False), ("0", False)]
)
def test_get_bool(text: str, value: bool) -> None:
    assert get_bool(text) is value


def test_get_bool_and_integer_refuse_what_they_are_not() -> None:
    with pytest.raises(ValueError, match="not a boolean"):
        get_bool("maybe")
    assert get_integer(" 12 ") == 12
    with pytest.raises(ValueError, match="twelve"):
        get_integer("twelve")
