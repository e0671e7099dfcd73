"""The journal's files on disk: the directory lock, appends, the atomic rewrite, a log set aside."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from gofer import owned
from gofer.agent.journal.entry import JournalConfigError, JournalError
from gofer.agent.paths import fsync_directory, make_directory, unsafe_directory

log = logging.getLogger(__name__)

LOG_NAME = "journal.log"
TEMP_NAME = "journal.log.tmp"
LOCK_NAME = "lock"
_REWRITE_CHUNK = 2**20


class TempWriteError(JournalError):
    """A rewrite failed before replacing the log, which is therefore whole."""


def rewrite(directory: Path, records: Iterator[bytes]) -> tuple[int, int]:
    """Atomically replace the log with ``records``; returns its descriptor and size.

    Raises:
        TempWriteError: the new log could not be written; the old one is untouched.
        OSError: the rename happened but may not be durable.
    """
    temp = directory / TEMP_NAME
    fd, size = _write_temp(temp, records)
    try:
        os.rename(temp, directory / LOG_NAME)
    except OSError as exc:
        owned.close(fd)
        unlink(temp)
        raise TempWriteError(str(exc)) from exc
    fsync_directory(directory)
    return fd, size


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_temp(path: Path, chunks: Iterator[bytes]) -> tuple[int, int]:
    """Write a new file from chunks and fsync it; returns its open descriptor and size."""
    try:
        # It becomes the log: a forked child must not inherit it.
        fd = owned.open_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise TempWriteError(f"cannot create {path}: {exc}") from exc
    try:
        size = buffered = 0
        buffer: list[bytes] = []
        for chunk in chunks:
            buffer.append(chunk)
            buffered += len(chunk)
            if buffered >= _REWRITE_CHUNK:
                write_all(fd, b"".join(buffer))
                size, buffered = size + buffered, 0
                buffer.clear()
        write_all(fd, b"".join(buffer))
        size += buffered
        os.fsync(fd)
    except OSError as exc:
        owned.close(fd)
        unlink(path)
        raise TempWriteError(f"cannot write {path}: {exc}") from exc
    return fd, size


def second_name(path: Path) -> Path:
    """Link ``path`` as ``<name>.damaged-<UTC time>[.n]``, never over an earlier one; that name.

    Raises:
        JournalError: the link cannot be made.
    """
    stem = f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    for attempt in range(100):
        aside = path.with_name(stem if attempt == 0 else f"{stem}.{attempt}")
        try:
            os.link(path, aside)
        except FileExistsError:
            continue
        except OSError as exc:
            raise JournalError(f"{path} is not a gofer journal, and cannot be kept: {exc}") from exc
        return aside
    raise JournalError(f"{path} is not a gofer journal, and {stem}.* are too many to add one")


def unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise JournalError(f"cannot remove {path}: {exc}") from exc


def take_lock(directory: Path) -> int:
    """Create the directory if needed and lock it; returns the lock file's descriptor."""
    path = directory / LOCK_NAME
    try:
        if not directory.exists():
            make_directory(directory, 0o700)
            fsync_directory(directory.parent)  # so the journal's own entry survives a crash
        # Whoever owns it can read every request and plant new ones: goferd's user only.
        unsafe = unsafe_directory(directory, {os.geteuid()})
        if unsafe is not None:
            raise JournalConfigError(f"refusing the journal directory: {unsafe}")
        # A forked child must not keep the journal locked.
        fd = owned.open_file(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise JournalError(f"cannot use the journal directory {directory}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        owned.close(fd)
        raise JournalError(f"the journal {directory} is in use ({path} is locked)") from exc
    _warn_if_open_to_others(directory)
    return fd


def _warn_if_open_to_others(directory: Path) -> None:
    mode = directory.stat().st_mode
    if mode & 0o077:
        log.warning(
            "journal directory %s has mode %o: other users may read request bodies; use 0700",
            directory,
            mode & 0o777,
        )


def release_lock(fd: int) -> None:
    owned.close(fd)  # closing the only descriptor releases the flock
