"""Watches the plugin descriptor directory for ``[main] monitor=1``.

::

    watch = DescriptorWatch(Path("/etc/gofer/plugins"), on_change)
    watch.start()       # remembers what is there now; reports only later changes
    ...                 # on_change(Changes(added=[...], changed=[...], removed=[...]))
    watch.stop()

The directory is looked at every ``interval`` seconds (a listing and a stat
of each descriptor: no inotify, so it works on any file system, and an idle
goferd stays idle). A file counts as changed when its size, modification time
or inode differ (an editor that writes a new file and renames it over the old
one changes the inode). A change is reported only once the file has looked
the same on two looks in a row, so a descriptor still being written is not
loaded half-written. ``on_change`` runs on the watch's thread; an exception
from it is logged and the watch goes on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)

#: Seconds between two looks at the directory.
INTERVAL = 2.0

_Stamp = tuple[int, int, int]  # size, mtime_ns, inode


@dataclasses.dataclass(frozen=True)
class Changes:
    """Descriptor files that appeared, changed or went since the last report, each sorted."""

    added: list[Path]
    changed: list[Path]
    removed: list[Path]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


class DescriptorWatch:
    """Reports descriptor files added, changed or removed in one directory.

    Args:
        directory: the descriptor directory (it may not exist yet).
        on_change: called with the :class:`Changes` of each look that found some.
        suffixes: the file name endings of descriptors.
        interval: seconds between looks.
    """

    def __init__(
        self,
        directory: Path,
        on_change: Callable[[Changes], None],
        suffixes: Iterable[str] = (".conf", ".ini", ".json"),
        interval: float = INTERVAL,
    ) -> None:
        self.directory = Path(directory)
        self.interval = interval
        self._suffixes = tuple(suffixes)
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._known: dict[Path, _Stamp] = {}
        self._last: dict[Path, _Stamp] = {}

    def start(self) -> None:
        """Take the directory as it is now as known, and start looking."""
        self._known = self._last = self._look()
        self._thread = threading.Thread(target=self._run, name="gofer-monitor", daemon=True)
        self._thread.start()
        log.info("watching %s for plugin descriptors every %gs", self.directory, self.interval)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop looking; True once the thread has ended (within ``timeout``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                changes = self.poll()
                if changes:
                    self._on_change(changes)
            except Exception:
                log.exception("watching %s", self.directory)

    def poll(self) -> Changes:
        """Look once; the settled changes since the last report (what the thread does)."""
        now = self._look()
        settled = {path: stamp for path, stamp in now.items() if self._last.get(path) == stamp}
        self._last = now
        added = sorted(p for p in settled if p not in self._known)
        changed = sorted(p for p in settled if p in self._known and self._known[p] != settled[p])
        removed = sorted(p for p in self._known if p not in now)
        for path in added + changed:
            self._known[path] = settled[path]
        for path in removed:
            del self._known[path]
        return Changes(added, changed, removed)

    def _look(self) -> dict[Path, _Stamp]:
        found: dict[Path, _Stamp] = {}
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return found
        except OSError as exc:
            log.warning("cannot list %s: %s", self.directory, exc)
            return dict(self._last)  # nothing is taken as removed on an error
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(self._suffixes):
                continue
            try:
                status = entry.stat()
            except OSError:
                continue  # gone between the listing and the stat
            if not entry.is_dir():
                found[Path(entry.path)] = (status.st_size, status.st_mtime_ns, status.st_ino)
        return found
