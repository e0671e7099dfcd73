"""Where goferd keeps its files: exact modes whatever the umask, owners checked, no links."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gofer.agent.journal import Journal, JournalError
from gofer.agent.paths import make_directory, unsafe_directory
from gofer.cli.goferd import pid_lock
from gofer.errors import GoferError

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give files away")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o077, 0o000], ids=["umask-077", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_directories_get_their_modes_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    leaf = tmp_path / "var/lib/gofer/journal"
    make_directory(leaf, 0o700)
    assert mode(leaf) == 0o700
    assert mode(tmp_path / "var/lib/gofer") == 0o755
    assert mode(tmp_path / "var") == 0o755


def test_an_existing_directory_is_left_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "kept").mkdir(mode=0o750)
    make_directory(tmp_path / "kept", 0o700)
    assert mode(tmp_path / "kept") == 0o750


def test_a_directory_others_can_write_to_is_unsafe(tmp_path: Path) -> None:
    (tmp_path / "open").mkdir()
    os.chmod(tmp_path / "open", 0o777)
    assert "other users could replace" in str(unsafe_directory(tmp_path / "open", {os.geteuid()}))
    assert unsafe_directory(tmp_path, {os.geteuid()}) is None


@needs_root
def test_journal_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    directory.mkdir(mode=0o700)
    os.chown(directory, NOBODY, NOBODY)
    with pytest.raises(JournalError, match="owned by uid 65534"):
        Journal(directory)


def test_journal_directory_is_made_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    journal = Journal(tmp_path / "state/journal")
    journal.close()
    assert mode(tmp_path / "state/journal") == 0o700


def test_pid_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("not goferd's\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run/goferd.pid").symlink_to(target)
    with (
        pytest.raises(GoferError, match="cannot use the pid file"),
        pid_lock(tmp_path / "run/goferd.pid"),
    ):
        pass
    assert target.read_text() == "not goferd's\n"


def test_pid_file_in_a_directory_others_can_write_to_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    os.chmod(tmp_path / "run", 0o1777)
    with (
        pytest.raises(GoferError, match="other users could replace"),
        pid_lock(tmp_path / "run/goferd.pid"),
    ):
        pass


def test_pid_file_is_held_and_removed(tmp_path: Path) -> None:
    path = tmp_path / "run/gofer/goferd.pid"
    with pid_lock(path):
        assert path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(GoferError, match="already running"), pid_lock(path):
            pass
    assert not path.exists()
