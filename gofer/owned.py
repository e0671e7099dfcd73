"""The descriptors goferd owns: closed in every child process forked from it.

A fork-model child (:mod:`gofer.rmi.model`) runs one plugin method, and may
outlive a goferd that was killed. Whatever of goferd's it still held would
keep the next goferd from starting (the pid file's and the journal's
``flock``), keep another child's result pipe from reaching end-of-file, or
let it write where only goferd writes (the journal's log). So every
descriptor goferd opens for itself and keeps open is opened here, and
every child forked from goferd (by the fork model, or by a plugin's own
``os.fork``) closes them all first thing (``os.register_at_fork``)::

    fd = owned.open_file(path, os.O_RDWR | os.O_CREAT, 0o600)   # or owned.pipe()
    ...
    owned.close(fd)

    with owned.child_keeps(write_fd):   # the fork model: the child's own result pipe
        pid = os.fork()

Why a list of what goferd owns, rather than closing in the child everything
but stdio and its pipe: the child runs a plugin's method, which may rely on
descriptors the plugin opened itself (a log file, a database, a device),
and nothing in a descriptor tells the plugin's from goferd's; goferd
knows which it opened. Sockets and event descriptors (the drivers' broker
connections, the management listener, ``selectors``' epoll sets), many of
them opened inside libraries where goferd cannot register them, the fork
model closes by kind instead: no method can use an inherited one without
disturbing goferd (see ``gofer.rmi.model._close_inherited``).

Opening and registering is one step as far as ``fork`` is concerned: a
fork waits while a descriptor is being opened here, so no child inherits
one between its opening and its registration. Descriptors goferd holds
only for a moment (reading a file) are not registered; a child forked in
that moment keeps one, holding nothing the next goferd needs.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

_owned: set[int] = set()
# Per forking thread: descriptors its child keeps. In the child, the forking
# thread is the only one, with the same ident.
_kept: dict[int, frozenset[int]] = {}
# Held while opening and registering, and by a fork (before it, until after it
# in the parent), so that a fork never falls between the two.
_lock = threading.RLock()


def open_file(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
    """``os.open``, the descriptor closed in every child forked from now on.

    Raises:
        OSError: as ``os.open``.
    """
    with _lock:
        fd = os.open(path, flags, mode)
        _owned.add(fd)
    return fd


def pipe() -> tuple[int, int]:
    """``os.pipe``, both ends closed in every child forked from now on."""
    with _lock:
        read_fd, write_fd = os.pipe()
        _owned.update((read_fd, write_fd))
    return read_fd, write_fd


def close(fd: int) -> None:
    """Close a descriptor opened here (it is no longer goferd's).

    Raises:
        OSError: as ``os.close``.
    """
    with _lock:
        _owned.discard(fd)
        os.close(fd)


def registered() -> frozenset[int]:
    """The descriptors closed in a child forked now."""
    with _lock:
        return frozenset(_owned)


@contextlib.contextmanager
def child_keeps(*fds: int) -> Iterator[None]:
    """A child forked by this thread within keeps ``fds`` open (and owns them)."""
    ident = threading.get_ident()
    with _lock:
        _kept[ident] = frozenset(fds)
    try:
        yield
    finally:
        with _lock:
            _kept.pop(ident, None)


def _after_fork_in_child() -> None:
    _lock.release()  # taken before the fork by this thread, the child's only one
    keep = _kept.get(threading.get_ident(), frozenset())
    for fd in _owned - keep:
        with contextlib.suppress(OSError):
            os.close(fd)
    _owned.clear()
    _kept.clear()


os.register_at_fork(
    before=_lock.acquire, after_in_parent=_lock.release, after_in_child=_after_fork_in_child
)

__all__ = ["child_keeps", "close", "open_file", "pipe", "registered"]
