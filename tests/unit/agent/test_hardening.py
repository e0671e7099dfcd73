"""Where goferd keeps its files: exact modes whatever the umask, owners checked, no links."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
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


def goferd_status(root: Path) -> tuple[int, str]:
    """Start goferd on ``root`` (no plugins, no broker); its status, if it stops within 20 s."""
    done = subprocess.run(
        [sys.executable, "-m", "gofer.cli.goferd", "--root", str(root), "--log", "stderr"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return done.returncode, done.stderr


@needs_root
def test_an_unsafe_directory_stops_goferd_with_status_78(tmp_path: Path) -> None:
    """Not 1: systemd would restart it every few seconds for ever, to no avail."""
    journal = tmp_path / "var/lib/gofer/journal"
    journal.mkdir(parents=True, mode=0o700)
    os.chown(journal, NOBODY, NOBODY)
    status, log = goferd_status(tmp_path)
    assert status == 78, log
    assert "refusing the journal directory" in log


def test_a_journal_of_a_later_gofer_stops_goferd_with_status_78(tmp_path: Path) -> None:
    journal = tmp_path / "var/lib/gofer/journal"
    journal.mkdir(parents=True, mode=0o700)
    (journal / "journal.log").write_bytes(b"gofer-journal 2\n")
    status, log = goferd_status(tmp_path)
    assert status == 78, log
    assert "written by another version of gofer" in log
