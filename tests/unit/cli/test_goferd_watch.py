"""goferd's main loop between signals: the watchdog is pinged only while goferd is going."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.agent.config import AgentConfig
from gofer.cli.goferd import _Watch


class Agent:
    """What the loop asks of goferd: its health and its configuration."""

    def __init__(self) -> None:
        self.config = AgentConfig()
        self.alive = True
        self.status = "1 plugin serving"

    def health(self) -> tuple[bool, str]:
        return self.alive, self.status

    def metrics_text(self) -> str:
        return ""


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(0.5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "4000000")
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        yield sock


def received(sock: socket.socket) -> list[str]:
    got = []
    while True:
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            return got


def test_the_watchdog_is_pinged_only_while_goferd_is_going(systemd: socket.socket) -> None:
    agent = Agent()
    watch = _Watch(agent)  # type: ignore[arg-type]
    assert watch.tick == 2.0  # half the watchdog interval

    watch.look()
    watch.look()
    assert received(systemd) == ["WATCHDOG=1", "STATUS=1 plugin serving", "WATCHDOG=1"]

    agent.alive = False
    agent.status = "1 plugin serving, plugin demo: its consumer thread has ended"
    watch.look()
    assert received(systemd) == [f"STATUS={agent.status}"]  # said, and no ping: systemd acts
