"""gofer.pmon.PathMonitor as plugins of the existing gofer use it: a callback per changed file."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.pmon import PathMonitor


@pytest.fixture
def monitor() -> Iterator[PathMonitor]:
    started = PathMonitor(precision=0.02)
    started.start()
    yield started
    started.shutdown()
    started.join(2)
    assert not started.is_alive()


def changes(monitor: PathMonitor, path: Path) -> queue.Queue[str]:
    seen: queue.Queue[str] = queue.Queue()
    monitor.add(str(path), seen.put)
    return seen


def bump(path: Path, text: str) -> None:
    """Write, and move the modification time on (file systems keep coarse times)."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_a_changed_file_is_reported_with_its_path(monitor: PathMonitor, tmp_path: Path) -> None:
    path = tmp_path / "cert.pem"
    path.write_text("one")
    seen = changes(monitor, path)
    bump(path, "two")
    assert seen.get(timeout=5) == str(path)
    assert monitor.paths() == [str(path)]


def test_same_content_is_no_change(monitor: PathMonitor, tmp_path: Path) -> None:
    path = tmp_path / "id"
    path.write_text("same")
    seen = changes(monitor, path)
    bump(path, "same")
    bump(path, "other")
    assert seen.get(timeout=5) == str(path)
    assert seen.empty()  # only the real change


def test_a_file_appearing_and_disappearing_are_changes(
    monitor: PathMonitor, tmp_path: Path
) -> None:
    path = tmp_path / "later"
    seen = changes(monitor, path)
    bump(path, "here")
    assert seen.get(timeout=5) == str(path)
    path.unlink()
    assert seen.get(timeout=5) == str(path)


def test_a_failing_callback_does_not_stop_the_monitor(monitor: PathMonitor, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("a")

    def broken(_: str) -> None:
        raise RuntimeError("plugin bug")

    monitor.add(str(path), broken)
    seen = changes(monitor, path)
    bump(path, "b")
    assert seen.get(timeout=5) == str(path)
    assert monitor.is_alive()


def test_deleted_paths_are_no_longer_watched(monitor: PathMonitor, tmp_path: Path) -> None:
    path = tmp_path / "g"
    path.write_text("a")
    seen: queue.Queue[str] = queue.Queue()
    monitor.add(str(path), seen.put)
    monitor.delete(str(path), seen.put)
    assert monitor.paths() == []


def test_abort_ends_the_thread_and_no_callback_follows(tmp_path: Path) -> None:
    path = tmp_path / "h"
    path.write_text("a")
    monitor = PathMonitor(precision=0.02)
    seen = changes(monitor, path)
    monitor.start()
    assert not monitor.aborted()
    monitor.abort()
    monitor.join(2)
    assert not monitor.is_alive()
    assert monitor.aborted()
    bump(path, "b")
    time.sleep(0.1)  # several looks' worth, had it gone on
    assert seen.empty()
