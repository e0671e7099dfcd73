"""A fork-model child outliving a SIGKILLed goferd does not keep the next one from starting."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gofer.proxy import Agent
from tests.faults.conftest import FaultGoferd


@pytest.fixture
def children() -> Iterator[list[int]]:
    """Pids of fork-model children to kill when the test ends."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def child_pid(marks: Path, timeout: float = 15) -> int:
    deadline = time.monotonic() + timeout
    path = marks / "children"
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, "the fork-model child never started"
        time.sleep(0.05)
    return int(path.read_text().split()[0])


def test_restart_beside_an_orphaned_fork_child(
    fault_goferd: Callable[..., FaultGoferd], children: list[int]
) -> None:
    goferd = fault_goferd()
    Agent(goferd.url, goferd.queue, wait=0).Fault().forked("orphan", seconds=60)
    pid = child_pid(goferd.marks)
    children.append(pid)
    goferd.kill()
    os.kill(pid, 0)  # the child lives on, in its own process group
    goferd.start()  # raises if the pid file, journal or socket is still held
    assert Agent(goferd.url, goferd.queue, wait=30).Fault().work("after") == "after"
    # And it holds nothing of the dead goferd's (no connection, lock, journal
    # or other child's pipe): only stdio and its own result pipe.
    held = {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    beyond_stdio = [target for fd, target in held.items() if fd > 2]
    assert len(beyond_stdio) == 1, held
    assert beyond_stdio[0].startswith("pipe:"), held
