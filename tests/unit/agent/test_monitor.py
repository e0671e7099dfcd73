"""The descriptor watch of ``[main] monitor=1``: what it reports, and when."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.agent.monitor import Changes, DescriptorWatch


def nothing(_: Changes) -> None:
    raise AssertionError("poll() is called directly in these tests")


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "old.conf").write_text("[main]\nenabled=1\n")
    return directory


@pytest.fixture
def watch(plugins: Path) -> Iterator[DescriptorWatch]:
    watch = DescriptorWatch(plugins, nothing, interval=3600)
    watch.start()
    yield watch
    watch.stop()


def settled(watch: DescriptorWatch) -> Changes:
    """What two looks in a row report (a change is reported once it looks the same twice)."""
    first = watch.poll()
    second = watch.poll()
    return Changes(
        first.added + second.added, first.changed + second.changed, first.removed + second.removed
    )


def test_what_is_there_at_the_start_is_not_a_change(watch: DescriptorWatch) -> None:
    assert not settled(watch)


def test_a_new_descriptor_is_reported_once_it_stays_the_same(
    watch: DescriptorWatch, plugins: Path
) -> None:
    (plugins / "new.conf").write_text("[main]\nenabled=1\n")
    assert not watch.poll()  # just seen: it may still be being written
    assert watch.poll() == Changes([plugins / "new.conf"], [], [])
    assert not watch.poll()


def test_a_descriptor_written_on_every_look_is_not_reported_until_it_settles(
    watch: DescriptorWatch, plugins: Path
) -> None:
    growing = plugins / "growing.ini"
    for n in range(4):
        growing.write_text("x" * (n + 1))
        assert not watch.poll()
    assert watch.poll().added == [growing]


def test_an_edit_and_a_replacement_by_rename_are_changes(
    watch: DescriptorWatch, plugins: Path
) -> None:
    old = plugins / "old.conf"
    old.write_text("[main]\nenabled=0\n")
    assert settled(watch) == Changes([], [old], [])
    same_size = plugins / ".old.conf.swp"
    same_size.write_text(old.read_text())
    os.replace(same_size, old)  # what editors and config management do
    assert settled(watch) == Changes([], [old], [])


def test_a_removed_descriptor_is_reported_at_once(watch: DescriptorWatch, plugins: Path) -> None:
    (plugins / "old.conf").unlink()
    assert watch.poll() == Changes([], [], [plugins / "old.conf"])
    assert not watch.poll()


def test_other_files_are_ignored(watch: DescriptorWatch, plugins: Path) -> None:
    (plugins / "README").write_text("x")
    (plugins / ".hidden.conf").write_text("x")
    (plugins / "old.conf.rpmnew").write_text("x")
    (plugins / "dir.conf").mkdir()
    assert not settled(watch)


def test_a_directory_made_later_is_watched(tmp_path: Path) -> None:
    directory = tmp_path / "later"
    watch = DescriptorWatch(directory, nothing, interval=3600)
    watch.start()
    try:
        assert not settled(watch)
        directory.mkdir()
        (directory / "a.json").write_text("{}")
        assert settled(watch).added == [directory / "a.json"]
    finally:
        watch.stop()


def test_the_thread_reports_and_survives_a_failing_callback(
    plugins: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reports: list[Changes] = []
    reported = threading.Event()

    def on_change(changes: Changes) -> None:
        reports.append(changes)
        if len(reports) == 1:
            raise RuntimeError("plugin failed to load")
        reported.set()

    watch = DescriptorWatch(plugins, on_change, interval=0.01)
    with caplog.at_level(logging.ERROR):
        watch.start()
        try:
            (plugins / "one.conf").write_text("1")
            while not reports:
                threading.Event().wait(0.01)
            (plugins / "two.conf").write_text("2")
            assert reported.wait(10)
        finally:
            watch.stop()
    assert [c.added for c in reports] == [[plugins / "one.conf"], [plugins / "two.conf"]]
    assert "plugin failed to load" in caplog.text
