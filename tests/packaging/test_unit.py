"""goferd.service as the RPM installs it: systemd-analyze verify finds nothing to say."""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

from tests.packaging.conftest import ensure_command

UNIT = "usr/lib/systemd/system/goferd.service"


def test_unit_verifies_clean(installed: Path, tmp_path: Path) -> None:
    """Clean means no word at all: verify exits 0 even on the settings it ignores.

    verify wants ExecStart's program to exist, so a copy of the unit runs the
    scratch root's goferd; a Documentation=man: page is looked up there too.
    """
    analyze = ensure_command("systemd-analyze", "systemd")
    unit = (installed / UNIT).read_text()
    assert "\nExecStart=/usr/bin/goferd " in unit
    copy = tmp_path / "goferd.service"
    copy.write_text(unit.replace("/usr/bin/goferd", str(installed / "usr/bin/goferd")))
    result = subprocess.run(
        [analyze, "verify", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "MANPATH": str(installed / "usr/share/man")},
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_unit_settings(installed: Path) -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # keys as written: "Type", not "type"
    unit.read(installed / UNIT)
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"] == "-/etc/sysconfig/goferd"
    assert service["ExecStart"] == "/usr/bin/goferd --foreground $GOFERD_OPTIONS"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_stop_timeout_outlasts_the_drain(installed: Path) -> None:
    """systemd must not SIGKILL goferd while it lets running requests finish."""
    unit = (installed / UNIT).read_text()
    match = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.MULTILINE)
    assert match, "goferd.service sets no TimeoutStopSec="
    agent = configparser.ConfigParser(interpolation=None)
    agent.read(installed / "etc/gofer/agent.conf")
    assert agent.getint("main", "drain_timeout") < int(match.group(1))
