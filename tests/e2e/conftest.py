"""goferd as a real process, from a private root, against the real RabbitMQ."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gofer.agent.management import ManagementClient, ManagementError
from gofer.messaging.connection import Connection
from tests.conftest import mark_broker_tests

REPO = Path(__file__).resolve().parents[2]
PLUGINS = Path(__file__).resolve().parent / "plugins"
GOFERD = [sys.executable, "-m", "gofer.cli.goferd"]


def write_agent_conf(path: Path) -> None:
    """The shipped agent.conf, with actions run as soon as plugins load (no splay).

    Tests time actions from a plugin's load.
    """
    text = (REPO / "etc/gofer/agent.conf").read_text()
    shipped = re.search(r"^action_splay=.*$", text, re.MULTILINE)
    assert shipped is not None, "agent.conf no longer sets action_splay"
    path.write_text(text.replace(shipped.group(0), "action_splay=0"))


class Goferd:
    """One goferd process with its own root, plugins and queue."""

    def __init__(self, root: Path, url: str, queue: str, **farm: Any) -> None:
        self.root = root
        self.url = url
        self.queue = queue
        self.marks = root / "marks"
        self.log_path = root / "goferd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.extra_env: dict[str, str] = {}
        #: The interpreter goferd runs under (another Python's venv, say).
        self.python = sys.executable
        self._layout(farm)

    def _root(self) -> Path:
        """Lay out an empty root: agent.conf, the descriptor and module directories; the latter."""
        etc = self.root / "etc/gofer"
        (etc / "plugins").mkdir(parents=True)
        modules = self.root / "usr/lib/gofer/plugins"
        modules.mkdir(parents=True)
        self.marks.mkdir()
        write_agent_conf(etc / "agent.conf")
        return modules

    def _layout(self, farm: dict[str, Any]) -> None:
        modules = self._root()
        for name in ("farm", "barn"):
            shutil.copy(PLUGINS / f"{name}.py", modules / f"{name}.py")
        main = {"enabled": 1, "threads": 2, "forward": "barn", **farm.pop("main", {})}
        self.write_descriptor(
            "farm",
            {
                "main": main,
                "messaging": {"url": self.url},
                "model": {"queue": self.queue, "managed": 2, **farm.pop("model", {})},
                "farm": {"marks": str(self.marks), "greeting": "hello from the farm"},
            },
        )
        self.write_descriptor("barn", {"main": {"enabled": 1, "accept": "farm"}})

    def write_descriptor(self, name: str, sections: dict[str, dict[str, Any]]) -> Path:
        path = self.root / "etc/gofer/plugins" / f"{name}.conf"
        text = "".join(
            f"[{section}]\n" + "".join(f"{key}={value}\n" for key, value in values.items())
            for section, values in sections.items()
        )
        path.write_text(text)
        return path

    @property
    def socket(self) -> Path:
        return self.root / "run/gofer/goferd.sock"

    def start(self, timeout: float = 30, *, consuming: bool = True) -> None:
        """Start goferd; wait until it answers management commands (and consumes, if asked)."""
        env = {**os.environ, "GOFER_ROOT": str(self.root), "PYTHONPATH": str(REPO)}
        env.pop("NOTIFY_SOCKET", None)
        env.update(self.extra_env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.python, *GOFERD[1:], "--foreground", "--log", "stderr"],
                stdout=log,
                stderr=log,
                env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"goferd exited at start:\n{self.log()}")
            if (not consuming or "consuming" in self.log()) and self._answers():
                return
            time.sleep(0.1)
        raise RuntimeError(f"goferd not ready in {timeout}s:\n{self.log()}")

    def _answers(self) -> bool:
        try:
            ManagementClient(self.socket, timeout=2).call("show")
        except ManagementError:
            return False
        return True

    def mgt(self, command: str, **args: Any) -> Any:
        return ManagementClient(self.socket, timeout=30).call(command, **args)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)

    def discard(self) -> None:
        """Stop goferd and delete its queue."""
        self.stop()
        connection = Connection(self.url)
        try:
            connection.delete_queue(self.queue)
        finally:
            connection.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@pytest.fixture
def make_goferd(url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Start goferd processes (each with its own root and queue); all stopped afterwards."""
    started: list[Goferd] = []

    def make(start: bool = True, **farm: Any) -> Goferd:
        root = tmp_path_factory.mktemp("goferd-root")
        goferd = Goferd(root, url, f"gofer-e2e-{uuid.uuid4()}", **farm)
        started.append(goferd)
        if start:
            goferd.start()
        return goferd

    yield make
    for goferd in started:
        goferd.discard()


@pytest.fixture(scope="module")
def shared_goferd(url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Goferd]:
    """One goferd for the tests that do not stop or reconfigure it."""
    goferd = Goferd(tmp_path_factory.mktemp("goferd-shared"), url, f"gofer-e2e-{uuid.uuid4()}")
    goferd.start()
    yield goferd
    goferd.discard()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_broker_tests(items, "e2e")
