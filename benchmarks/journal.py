"""How fast the request journal commits on this machine's disk: writes/s and fsyncs per write.

Usage::

    .venv/bin/python benchmarks/journal.py [--dir DIR] [--writes N] [--body BYTES]

``--dir`` picks the file system to measure (a fresh temporary directory is
made inside it and removed afterwards); the default is the system's temporary
directory. Each run journals N writes per thread, then finishes them all.
The first line is the disk's own pace (one append and fsync after another),
which bounds the single-thread figures; group commit is what lifts the
multi-thread ones above it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from unittest import mock

from gofer.agent.journal import Entry, Journal


def run(directory: Path, threads: int, writes: int, body: bytes) -> None:
    """Journal ``writes`` entries from each of ``threads`` threads and print the rates."""
    sns = [[str(uuid.uuid4()) for _ in range(writes)] for _ in range(threads)]
    with Journal(directory) as journal, mock.patch("os.fsync", wraps=os.fsync) as fsync:
        put = _timed(threads, lambda i: _write_all(journal, sns[i], body))
        put_fsyncs = fsync.call_count
        done = _timed(threads, lambda i: _finish_all(journal, sns[i]))
        done_fsyncs = fsync.call_count - put_fsyncs
    total = threads * writes
    print(
        f"{threads} thread(s): {total / put:6.0f} writes/s, {put_fsyncs / total:.3f} fsyncs/write;"
        f" {total / done:6.0f} finishes/s, {done_fsyncs / total:.3f} fsyncs/finish"
    )


def raw_fsyncs(directory: Path, count: int = 500) -> float:
    """Appends of one small record each followed by an fsync, per second: the disk's pace."""
    fd = os.open(directory / "raw", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        started = time.perf_counter()
        for _ in range(count):
            os.write(fd, b"x" * 600)
            os.fsync(fd)
        return count / (time.perf_counter() - started)
    finally:
        os.close(fd)


def _timed(threads: int, work: Callable[[int], None]) -> float:
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started


def _write_all(journal: Journal, sns: list[str], body: bytes) -> None:
    for sn in sns:
        journal.write(Entry(sn=sn, plugin="bench", body=body, received=time.time()))


def _finish_all(journal: Journal, sns: list[str]) -> None:
    for sn in sns:
        journal.finish(sn)


def main() -> None:
    """Parse the arguments and measure with 1 and with 8 threads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="file system to measure")
    parser.add_argument("--writes", type=int, default=2000, help="writes per thread")
    parser.add_argument("--body", type=int, default=600, help="message body size in bytes")
    options = parser.parse_args()
    body = b"x" * options.body
    with tempfile.TemporaryDirectory(dir=options.dir) as top:
        print(f"raw append+fsync: {raw_fsyncs(Path(top)):6.0f}/s")
    for threads in (1, 8):
        with tempfile.TemporaryDirectory(dir=options.dir) as top:
            run(Path(top) / "journal", threads, options.writes, body)


if __name__ == "__main__":
    main()
