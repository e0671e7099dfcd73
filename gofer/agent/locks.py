"""Lock files a forked child must not hold: closed in every child process goferd forks.

A fork-model child that outlived a killed goferd would otherwise keep the
pid file's and the journal's ``flock`` locks, and the next goferd could not
start. Whoever takes such a lock registers its descriptor here::

    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    locks.held(fd)
    ...
    locks.released(fd)
    os.close(fd)
"""

from __future__ import annotations

import contextlib
import os

_held: set[int] = set()


def held(fd: int) -> None:
    """Close ``fd`` in every child forked from now on."""
    _held.add(fd)


def released(fd: int) -> None:
    """``fd`` is no longer a lock (call before closing it)."""
    _held.discard(fd)


def _close_in_child() -> None:
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_close_in_child)
