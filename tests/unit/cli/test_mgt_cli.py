"""``gofer mgt``: what it asks goferd, where it connects, how it prints, with a fake client."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from gofer.agent.management import ManagementError
from gofer.agent.paths import ROOT_VARIABLE
from gofer.cli import main as cli
from gofer.cli import mgt

STATUS: dict[str, Any] = {
    "plugins": [
        {
            "name": "package",
            "enabled": True,
            "url": None,
            "queue": None,
            "classes": [
                {"name": "Package", "methods": ["install(name)", "remove(name)"]},
            ],
            "functions": [],
        },
        {
            "name": "demo",
            "enabled": False,
            "url": "amqp://gofer:brokerpw@localhost",
            "queue": "demo",
            "classes": [
                {"name": "Dog", "methods": ["bark(words)"]},
                {"name": "Cat", "methods": []},
            ],
            "functions": ["echo(something)"],
        },
    ],
    "actions": [
        {"name": "demo.Heartbeat.beat", "interval": 600},
        {"name": "demo.report", "interval": 90},
    ],
}

LAYOUT = """\
Plugins:

  <plugin> package
    Classes:
      <class> Package
        methods:
          install(name)
          remove(name)
    Functions:

  <plugin> demo (disabled)
    url: amqp://gofer:***@localhost:5672
    queue: demo
    Classes:
      <class> Dog
        methods:
          bark(words)
      <class> Cat
        methods:
    Functions:
      echo(something)

Actions:
  <action> demo.Heartbeat.beat (every 10m)
  <action> demo.report (every 90s)
"""


class FakeClient:
    """Records the connection asked for and the commands sent; answers ``result``."""

    def __init__(self) -> None:
        self.result: Any = {"plugins": [], "actions": []}
        self.error: Exception | None = None
        self.socket_path: Path | None = None
        self.tcp: tuple[str, int] | None = None
        self.commands: list[tuple[str, dict[str, Any]]] = []

    def factory(
        self, socket_path: Path | None = None, tcp: tuple[str, int] | None = None
    ) -> FakeClient:
        self.socket_path, self.tcp = socket_path, tcp
        return self

    def call(self, command: str, **args: Any) -> Any:
        self.commands.append((command, args))
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient()
    monkeypatch.setattr(mgt, "ManagementClient", fake.factory)
    monkeypatch.delenv(ROOT_VARIABLE, raising=False)
    return fake


def gofer(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(["mgt", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_show_prints_the_gofer_2_layout(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.result = STATUS
    assert gofer(capsys, "-s") == (0, LAYOUT, "")
    assert client.commands == [("show", {})]


def test_show_of_an_idle_goferd(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.result = {"plugins": [], "actions": []}
    assert gofer(capsys, "--show") == (0, "Plugins:\nActions:\n", "")


def test_show_as_json(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.result = {"plugins": [], "actions": []}
    status, out, _ = gofer(capsys, "-s", "--json")
    assert (status, out) == (0, '{\n  "plugins": [],\n  "actions": []\n}\n')


def test_a_status_that_is_not_one_exits_1(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.result = ["plugins"]
    status, out, err = gofer(capsys, "-s")
    assert (status, out) == (1, "")
    assert "not a status" in err


def test_load_sends_an_absolute_path(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.result = None
    assert gofer(capsys, "-l", "plugins/package.conf") == (0, "", "")
    assert client.commands == [("load", {"path": os.path.abspath("plugins/package.conf")})]


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("package", {"name": "package"}),
        ("my-plugin", {"name": "my-plugin"}),
        ("/opt/gofer/plugins/package.conf", {"path": "/opt/gofer/plugins/package.conf"}),
        ("package.conf", {"path": os.path.abspath("package.conf")}),
        ("package.json", {"path": os.path.abspath("package.json")}),
        ("./package", {"path": os.path.abspath("package")}),
    ],
)
@pytest.mark.parametrize(("flag", "command"), [("-r", "reload"), ("-u", "unload")])
def test_reload_and_unload_by_name_or_path(
    client: FakeClient,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    command: str,
    given: str,
    sent: dict[str, str],
) -> None:
    assert gofer(capsys, flag, given)[0] == 0
    assert client.commands == [(command, sent)]


def test_cancel_by_serial_number(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.result = ["sn-1"]
    status, out, _ = gofer(capsys, "-c", "sn-1")
    assert (status, out) == (0, '[\n  "sn-1"\n]\n')
    assert client.commands == [("cancel", {"sn": "sn-1"})]


def test_cancel_by_criteria(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    assert gofer(capsys, "--criteria", '{"match": {"task": 42}}')[0] == 0
    assert client.commands == [("cancel", {"criteria": {"match": {"task": 42}}})]


@pytest.mark.parametrize(
    "argv",
    [
        [],  # nothing to do
        ["-s", "-r", "package"],  # two things to do
        ["--criteria", "{match"],
        ["--criteria", "[1]"],
        ["-p", "http", "-s"],
        ["-p", "70000", "-s"],
        ["--socket", "/tmp/s", "-h", "localhost", "-s"],
    ],
)
def test_usage_errors_exit_2(
    client: FakeClient, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    status, _, err = gofer(capsys, *argv)
    assert status == 2
    assert "usage:" in err
    assert client.commands == []


def test_errors_exit_1_on_stderr(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.error = ManagementError('no plugin named "nope"')
    status, out, err = gofer(capsys, "-u", "nope")
    assert (status, out, err) == (1, "", 'gofer mgt: unload: no plugin named "nope"\n')


def test_an_unreachable_goferd_exits_1(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.error = FileNotFoundError(2, "No such file or directory")
    status, _, err = gofer(capsys, "-s")
    assert status == 1
    assert "/run/gofer/goferd.sock" in err


def test_the_local_socket_is_the_default(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    gofer(capsys, "-s")
    assert (client.socket_path, client.tcp) == (Path("/run/gofer/goferd.sock"), None)


def test_the_socket_is_under_gofer_root(
    client: FakeClient, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ROOT_VARIABLE, "/tmp/sandbox")
    gofer(capsys, "-s")
    assert client.socket_path == Path("/tmp/sandbox/run/gofer/goferd.sock")


def test_another_socket(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    gofer(capsys, "--socket", "/tmp/g.sock", "-s")
    assert client.socket_path == Path("/tmp/g.sock")


@pytest.mark.parametrize(
    ("argv", "tcp"),
    [
        (["-h", "localhost", "-p", "5650"], ("localhost", 5650)),
        (["--host", "agent1.example.com"], ("agent1.example.com", 5650)),
        (["-p", "6000"], ("localhost", 6000)),
    ],
)
def test_host_or_port_mean_tcp(
    client: FakeClient,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    tcp: tuple[str, int],
) -> None:
    assert gofer(capsys, *argv, "-s")[0] == 0
    assert (client.socket_path, client.tcp) == (None, tcp)


def test_help_is_long_only_since_h_is_the_host(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = gofer(capsys, "--help")
    assert status == 0
    # Python 3.13 shows the metavar once: "-h, --host HOST".
    assert re.search(r"-h( HOST)?, --host HOST", out), out
