"""The system plugin: what reaches shutdown and systemctl, the secret, Shell and Script."""

from __future__ import annotations

import os
import stat
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gofer.agent.config import Cfg
from gofer.agent.plugin import Plugin
from gofer.decorators import marks
from tests.unit.plugins import load_plugin

system = load_plugin("system")

HOSTILE = [
    "; rm -rf /",
    "$(reboot)",
    "`reboot`",
    "--help",
    "-h",
    "now; reboot",
    "now\n",
    "+1 && reboot",
    "+\u0661",  # an Arabic-Indic digit one: \d would take it
    "",
    " now",
]


class Commands:
    """Stands in for ``execute``: records each argv and answers with a fixed status."""

    def __init__(self, status: int = 0, output: str = "done\n") -> None:
        self.argvs: list[list[str]] = []
        self.status = status
        self.output = output

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        self.argvs.append(list(argv))
        return self.status, self.output


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> Commands:
    recorder = Commands()
    monkeypatch.setattr(system, "execute", recorder)
    return recorder


def descriptor(monkeypatch: pytest.MonkeyPatch, **system_section: str) -> None:
    """Pretend goferd runs the plugin with ``[system]`` set to ``system_section``."""
    cfg = Cfg({"system": system_section})
    plugin = types.SimpleNamespace(cfg=cfg)
    find = staticmethod(lambda name: plugin if name == system.__name__ else None)
    monkeypatch.setattr(Plugin, "find", find)


# when


@pytest.mark.parametrize(
    ("when", "expected"),
    [("now", "now"), ("+1", "+1"), ("+90", "+90"), ("23:59", "23:59"), ("7:05", "7:05"), (5, "+5")],
)
def test_when_accepts_now_minutes_and_a_time(when: Any, expected: str) -> None:
    assert system.checked_when(when) == expected


@pytest.mark.parametrize("when", [*HOSTILE, "24:00", "12:60", "+123456", -1, True, None, 1.5])
def test_when_refuses_everything_else(when: Any) -> None:
    with pytest.raises(ValueError, match="when must be"):
        system.checked_when(when)


def test_halt_reboot_and_cancel_run_shutdown(commands: Commands) -> None:
    assert system.System().halt() == {"status": 0, "output": "done\n"}
    system.System().reboot("now")
    system.System().cancel()
    assert commands.argvs == [
        ["shutdown", "-h", "+1"],
        ["shutdown", "-r", "now"],
        ["shutdown", "-c"],
    ]


@pytest.mark.parametrize("when", HOSTILE)
def test_a_hostile_when_runs_nothing(commands: Commands, when: str) -> None:
    with pytest.raises(ValueError, match="when must be"):
        system.System().reboot(when)
    assert commands.argvs == []


def test_a_failing_command_raises_with_its_status_and_output(commands: Commands) -> None:
    commands.status = 1
    commands.output = "".join(f"line {n}\n" for n in range(50)) + "Failed to halt\n"
    with pytest.raises(system.CommandError, match="failed with status 1") as caught:
        system.System().halt("+5")
    assert caught.value.status == 1
    assert caught.value.output.endswith("Failed to halt")
    assert "line 0\n" not in caught.value.output  # only the tail


# services


@pytest.mark.parametrize(
    "name", ["sshd", "httpd.service", "getty@tty1.service", "dev-sda1.swap", "a_b:c"]
)
def test_service_names_that_are_unit_names(name: str) -> None:
    assert system.Service(name).name == name


@pytest.mark.parametrize(
    "name",
    [*HOSTILE, "-.mount", "ssh*", "a b", "../../etc/passwd", "x" * 257, "sshd\n", 7, None],
)
def test_service_names_that_are_not(name: Any) -> None:
    with pytest.raises(ValueError, match="not a service name"):
        system.Service(name)


def test_service_verbs_run_systemctl_with_the_name_after_dashes(commands: Commands) -> None:
    service = system.Service("httpd")
    service.start()
    service.stop()
    service.restart()
    assert commands.argvs == [
        ["systemctl", "--no-pager", verb, "--", "httpd"] for verb in ("start", "stop", "restart")
    ]


def test_service_status_answers_a_stopped_service_without_raising(commands: Commands) -> None:
    commands.status = 3
    assert system.Service("httpd").status() == {"status": 3, "output": "done\n"}
    assert commands.argvs == [["systemctl", "--no-pager", "status", "--", "httpd"]]


def test_goferd_restarts_itself_without_waiting(commands: Commands) -> None:
    system.Service("goferd").restart()
    system.Service("goferd.service").stop()
    system.Service("goferd").start()
    assert commands.argvs == [
        ["systemctl", "--no-pager", "--no-block", "restart", "--", "goferd"],
        ["systemctl", "--no-pager", "--no-block", "stop", "--", "goferd.service"],
        ["systemctl", "--no-pager", "start", "--", "goferd"],
    ]


# the secret of Shell and Script


def test_shell_and_script_want_the_configured_secret() -> None:
    for method in (system.Shell.run, system.Script.run):
        found = marks(method)
        assert found is not None
        assert found.remote
        assert found.secret is system.configured_secret


def test_system_and_service_take_no_secret() -> None:
    for method in (system.System.halt, system.Service.restart):
        found = marks(method)
        assert found is not None
        assert found.secret is None


def test_without_an_agent_the_secret_matches_nothing() -> None:
    assert system.configured_secret() == []


def test_without_a_configured_secret_the_secret_matches_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    descriptor(monkeypatch)
    assert system.configured_secret() == []
    descriptor(monkeypatch, secret="   ")
    assert system.configured_secret() == []


def test_the_configured_secret_is_read_at_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor(monkeypatch, secret="biscuit")
    assert system.configured_secret() == "biscuit"
    descriptor(monkeypatch, secret="bone")
    assert system.configured_secret() == "bone"


# Shell


def test_shell_splits_a_string_like_a_shell_but_runs_no_shell(commands: Commands) -> None:
    system.Shell().run("ls -l '/tmp/a b' $(reboot) ;")
    system.Shell().run(["echo", "a b", 3])
    assert commands.argvs == [["ls", "-l", "/tmp/a b", "$(reboot)", ";"], ["echo", "a b", "3"]]


@pytest.mark.parametrize("cmd", ["", "   ", [], "unbalanced 'quote", None, {"cmd": "ls"}, [None]])
def test_shell_refuses_what_is_no_command(commands: Commands, cmd: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        system.Shell().run(cmd)
    assert commands.argvs == []


def test_shell_runs_for_real() -> None:
    assert system.Shell().run(["sh", "-c", "echo $0", "hi"]) == (0, "hi\n")


# Script

PROBE = """#!/bin/sh
echo hi
stat -c '%a' "$0" "$(dirname "$0")"
echo "$0"
echo "$@"
"""


def test_script_runs_from_a_private_file_that_is_removed_after() -> None:
    status, output = system.Script().run(PROBE, "one", "two words")
    assert status == 0
    hi, file_mode, dir_mode, path, args = output.splitlines()
    assert hi == "hi"
    assert (file_mode, dir_mode) == ("700", "700")
    assert Path(path).name.startswith("tmp")
    assert Path(path).parent.name.startswith("gofer-script-")
    assert args == "one two words"
    assert not Path(path).exists()
    assert not Path(path).parent.exists()


def test_script_is_removed_when_it_fails() -> None:
    status, output = system.Script().run('#!/bin/sh\necho "$0"\nexit 7\n')
    assert status == 7
    assert not Path(output.strip()).parent.exists()


def test_script_is_removed_when_it_cannot_run(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def boom(argv: Sequence[str]) -> tuple[int, str]:
        seen.append(argv[-1])
        assert stat.S_IMODE(os.stat(argv[-1]).st_mode) == 0o700
        raise OSError("cannot run")

    monkeypatch.setattr(system, "execute", boom)
    with pytest.raises(OSError, match="cannot run"):
        system.Script().run("#!/bin/sh\ntrue\n")
    assert not Path(seen[0]).parent.exists()


@pytest.mark.parametrize(
    ("content", "interpreter"),
    [
        ("#!/bin/sh\n", ["/bin/sh"]),
        ("#! /usr/bin/env python3 -u\nprint(1)\n", ["/usr/bin/env", "python3 -u"]),
        ("#!/bin/bash -e\r\n", ["/bin/bash", "-e"]),
        ("echo no shebang\n", ["/bin/sh"]),
    ],
)
def test_script_interpreter_is_read_as_linux_reads_it(content: str, interpreter: list[str]) -> None:
    assert system.script_interpreter(content) == interpreter


@pytest.mark.parametrize("content", ["#!sh\n", "#!\n", "", None])
def test_script_refuses_what_cannot_run(commands: Commands, content: Any) -> None:
    with pytest.raises(ValueError, match="script"):
        system.Script().run(content)
    assert commands.argvs == []
