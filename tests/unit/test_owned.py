"""goferd's own descriptors close in every child forked from it, a plugin's ``os.fork`` too."""

from __future__ import annotations

import fcntl
import os
import warnings
from collections.abc import Callable
from pathlib import Path

from gofer import owned


def is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


def forked(check: Callable[[], bool]) -> int:
    """Fork (as a plugin might), run ``check()`` in the child; its exit status."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork() with threads
        pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if check() else 1)
        finally:
            os._exit(2)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_what_goferd_opens_closes_in_a_child_and_what_it_closes_is_forgotten(
    tmp_path: Path,
) -> None:
    fd = owned.open_file(tmp_path / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    read_fd, write_fd = owned.pipe()
    plugins = os.open(tmp_path / "plugin.log", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        assert {fd, read_fd, write_fd} <= owned.registered()
        mine = (fd, read_fd, write_fd)
        assert forked(lambda: not any(map(is_open, mine)) and is_open(plugins)) == 0
        assert all(map(is_open, mine))  # the parent's stay open
    finally:
        for each in (fd, read_fd, write_fd):
            owned.close(each)
        os.close(plugins)
    assert not {fd, read_fd, write_fd} & owned.registered()


def test_the_child_of_the_thread_that_asks_keeps_its_own_pipe() -> None:
    read_fd, write_fd = owned.pipe()
    try:
        with owned.child_keeps(write_fd):
            status = forked(lambda: is_open(write_fd) and not is_open(read_fd))
        assert status == 0
        # Outside the block, the next child keeps nothing.
        assert forked(lambda: not is_open(write_fd)) == 0
    finally:
        owned.close(read_fd)
        owned.close(write_fd)
