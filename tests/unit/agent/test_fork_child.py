"""A fork-model child of a running goferd holds none of goferd's descriptors, only the plugin's.

goferd runs here in-process, on the in-memory broker, with its pid file
locked, its journal and its management socket open, one fork-model call
running (its child's pipe and its supervisor's epoll set open in goferd) and
an inotify descriptor open, as a driver's or a plugin's watch would be.
A second fork-model call lists its child's ``/proc/self/fd``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.agent.config import AgentConfig, MainConfig, load_agent_config
from gofer.agent.daemon import Goferd
from gofer.agent.paths import Paths
from gofer.cli.goferd import pid_lock
from gofer.messaging.adapter import memory
from gofer.proxy import Agent
from gofer.rmi import transport

PLUGIN = """
import os
import time
from pathlib import Path

from gofer.decorators import fork, remote, unload

# The plugin's own file, opened when it loads: its methods may write to it.
OWN = open(Path(__file__).with_name("own.log"), "a")


@unload
def close():
    OWN.close()


class Dog:
    @remote
    @fork
    def descriptors(self):
        OWN.write("written from the child\\n")
        OWN.flush()
        found = []
        for name in os.listdir("/proc/self/fd"):
            try:
                found.append((int(name), os.readlink(f"/proc/self/fd/{name}")))
            except OSError:
                pass  # the listing's own descriptor
        return found

    @remote
    @fork
    def hold(self, started, until):
        Path(started).write_text(str(os.getpid()))
        deadline = time.monotonic() + 20
        while not Path(until).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        return "held"
"""


def targets() -> dict[int, str]:
    """This process's descriptors and what they are (``/proc/self/fd`` link targets)."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return found


@pytest.fixture
def inotify() -> Iterator[int]:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    if fd < 0:
        pytest.skip(f"no inotify here: {os.strerror(ctypes.get_errno())}")
    yield fd
    os.close(fd)


@pytest.fixture
def root() -> Iterator[Path]:
    # Short: the management socket's path must fit in a sockaddr_un.
    made = Path(tempfile.mkdtemp(prefix="gofer-fork-"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


@pytest.mark.timeout(60)
def test_the_child_holds_its_pipe_stdio_and_the_plugins_files_only(
    root: Path, inotify: int
) -> None:
    paths = Paths.under(root)
    paths.descriptors.mkdir(parents=True)
    paths.plugin_dirs[0].mkdir(parents=True)
    (paths.plugin_dirs[0] / "dog.py").write_text(PLUGIN)
    url, queue = f"memory://fork-{uuid.uuid4().hex[:12]}", "dog"
    descriptor = {
        "main": {"enabled": 1, "threads": 2},
        "messaging": {"url": url},
        "model": {"queue": queue},
    }
    (paths.descriptors / "dog.json").write_text(json.dumps(descriptor))
    defaults = load_agent_config(paths)
    config = AgentConfig(
        main=MainConfig(action_splay=0.0, drain_timeout=5.0),
        management=defaults.management,
        logging=defaults.logging,
        pam=defaults.pam,
    )
    started, release = root / "started", root / "release"
    before = set(targets().values())  # the test process's own, not goferd's
    with pid_lock(paths.pidfile):
        goferd = Goferd(paths, config)
        goferd.start()
        try:
            assert goferd.management is not None
            Agent(url, queue, wait=0).Dog().hold(str(started), str(release))
            deadline = time.monotonic() + 20
            while not started.exists():
                assert time.monotonic() < deadline, "the first fork-model child never ran"
                time.sleep(0.02)
            parent = targets()
            child = dict(Agent(url, queue, wait=20).Dog().descriptors())
        finally:
            release.touch()
            goferd.shutdown(drain_timeout=10)
            transport.close_for(url)
            memory.forget(url)
    own = str(paths.plugin_dirs[0] / "own.log")  # the plugin's, opened as it loaded
    goferds = set(parent.values()) - before - {own}
    # What this test counts on being goferd's, open in goferd while the child ran.
    files = {str(paths.pidfile), str(paths.journal / "journal.log"), str(paths.journal / "lock")}
    assert files <= goferds
    assert any(t.startswith("socket:") for t in goferds)  # the management socket
    assert "anon_inode:[eventpoll]" in goferds  # the first call's supervisor
    assert any(t.startswith("pipe:") for t in goferds)  # the first call's result pipe
    assert parent[inotify] == "anon_inode:inotify"
    # The child: what the process had before goferd, stdio, the plugin's file
    # and its own result pipe; nothing of goferd's, no socket, no event descriptor.
    held = {fd: t for fd, t in child.items() if fd > 2}
    assert not goferds & set(held.values()), held
    assert not [t for t in held.values() if t.startswith(("socket:", "anon_inode:"))], held
    new = [t for t in held.values() if t not in before and t != own]
    assert len(new) == 1, held  # its result pipe
    assert new[0].startswith("pipe:"), held
    assert own in held.values(), held
    assert Path(own).read_text() == "written from the child\n"
