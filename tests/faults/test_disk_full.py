"""A full disk under the journal: goferd exits for systemd to restart it, and loses nothing.

The journal directory is a small tmpfs (mounting it needs root, which CI
has), filled up while goferd runs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gofer.rmi import wire
from tests import brokers
from tests.faults.conftest import FaultGoferd, ReplyQueue
from tests.faults.test_signing import send

TEMPFAIL = 75


@pytest.fixture
def small_disk() -> Iterator[Callable[[Path], None]]:
    """Mounts a 512 KiB tmpfs on a directory; unmounted afterwards."""
    mounted: list[Path] = []

    def mount(path: Path) -> None:
        path.mkdir(mode=0o700, parents=True)
        _mount(path)
        mounted.append(path)

    yield mount
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _mount(mount: Path) -> None:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        message = f"cannot mount a tmpfs (root needed): {done.stderr.strip()}"
        if brokers.required():
            pytest.fail(message)
        pytest.skip(message)


def fill(directory: Path) -> Path:
    """Take every free byte of the file system under ``directory``."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    return filler


def test_goferd_exits_when_its_journal_cannot_write_and_answers_after_restart(
    fault_goferd: Callable[..., FaultGoferd],
    reply_queue: ReplyQueue,
    small_disk: Callable[[Path], None],
) -> None:
    goferd = fault_goferd(start=False)
    journal = goferd.root / "var/lib/gofer/journal"
    small_disk(journal)
    goferd.start()
    filler = fill(journal)
    doc = wire.request_document(
        sn=wire.new_sn(),
        address=goferd.queue,
        classname="Fault",
        method="work",
        args=["x" * 64 * 1024],
        replyto=reply_queue.name,
    )
    send(goferd.url, goferd.queue, doc.dump())
    assert goferd.wait(30) == TEMPFAIL, goferd.log()[-3000:]
    assert "journal" in goferd.log()
    assert errno.errorcode[errno.ENOSPC] in goferd.log() or "No space" in goferd.log()
    filler.unlink()
    goferd.start()  # as systemd would (Restart=on-failure)
    assert reply_queue.read(lambda _: reply_queue.finals()[doc["sn"]] >= 1, timeout=20)
    assert goferd.starts()[doc["sn"]] == 1
