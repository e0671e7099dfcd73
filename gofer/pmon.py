"""Watching files for a plugin: a callback when a file's content changes (gofer's ``PathMonitor``).

Plugins of the existing gofer use it to follow a file they depend on (a
certificate, a consumer id, a configuration file) and act when it changes::

    from gofer.pmon import PathMonitor

    def changed(path):
        ...  # reconnect, reload, re-register

    monitor = PathMonitor()
    monitor.add("/etc/pki/consumer/cert.pem", changed)
    monitor.start()
    ...
    monitor.shutdown()
    monitor.join()

The monitor looks every ``precision`` seconds. A change is a new content,
not a new modification time alone: a file touched or rewritten with the
same bytes is no change. A file that appears or disappears is a change. A
callback that raises is logged and the monitor goes on.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

#: Called with the path whose content changed.
Target = Callable[[str], object]

_CHUNK = 2**16


def last_modified(path: str) -> float:
    """The file's modification time; 0 when it does not exist or cannot be read."""
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0


def digest(path: str) -> str | None:
    """SHA-256 hex digest of the file's content; None when it cannot be read."""
    hasher = hashlib.sha256()
    try:
        with open(path, "rb") as content:
            for chunk in iter(lambda: content.read(_CHUNK), b""):
                hasher.update(chunk)
    except OSError:
        return None
    return hasher.hexdigest()


class _Tracker:
    """One path, one target, and what the path held when last looked at."""

    def __init__(self, path: str, target: Target) -> None:
        self.path = path
        self.target = target
        self.last_modified = last_modified(path)
        self.digest = digest(path)

    def look(self) -> None:
        """Call the target if the content changed since the last look."""
        modified = last_modified(self.path)
        if modified == self.last_modified:
            return
        self.last_modified = modified
        now = digest(self.path)
        if now == self.digest:
            return
        self.digest = now
        try:
            self.target(self.path)
        except Exception:
            log.exception("path monitor: the callback for %s failed", self.path)


class PathMonitor(threading.Thread):
    """A thread calling back when watched files change.

    Args:
        precision: seconds between looks at the files.
    """

    def __init__(self, precision: float = 1.0) -> None:
        super().__init__(name="gofer-path-monitor", daemon=True)
        self.precision = precision
        self._trackers: list[_Tracker] = []
        self._lock = threading.Lock()
        self._aborted = threading.Event()

    def add(self, path: str, target: Target) -> None:
        """Watch ``path`` (absolute); ``target(path)`` is called when its content changes."""
        tracker = _Tracker(path, target)
        with self._lock:
            self._trackers.append(tracker)

    def delete(self, path: str, target: Target) -> None:
        """Stop calling ``target`` for ``path``."""
        with self._lock:
            self._trackers = [
                t for t in self._trackers if not (t.path == path and t.target == target)
            ]

    def paths(self) -> list[str]:
        """The paths watched."""
        with self._lock:
            return [t.path for t in self._trackers]

    def abort(self) -> None:
        """Stop looking; the thread ends within ``precision`` seconds."""
        self._aborted.set()

    def aborted(self) -> bool:
        """True once :meth:`abort` (or :meth:`shutdown`) was called."""
        return self._aborted.is_set()

    def shutdown(self) -> None:
        """Stop the monitor (as :meth:`abort`)."""
        self.abort()

    def run(self) -> None:
        while not self._aborted.wait(self.precision):
            with self._lock:
                trackers = list(self._trackers)
            for tracker in trackers:
                tracker.look()


__all__ = ["PathMonitor", "digest", "last_modified"]
