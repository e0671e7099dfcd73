"""The log's group commit: batches under one fsync, the writer thread, compaction."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import NamedTuple

from gofer import owned
from gofer.agent.journal.disk import TempWriteError, release_lock, rewrite, take_lock, write_all
from gofer.agent.journal.entry import Entry, JournalError
from gofer.agent.journal.records import FINISH, Result
from gofer.agent.journal.recovery import open_log
from gofer.agent.journal.state import State

log = logging.getLogger(__name__)

#: The log is rewritten when it is this many times the size of its live records.
COMPACT_RATIO = 4


class Op(NamedTuple):
    """One change on its way to the log: its kind, what it is about, its encoded record."""

    kind: int
    value: Entry | str | Result
    record: bytes


class CommitLog:
    """The log file and its group commit (see the package docstring); :class:`Journal` is its API.

    Its constructor and :meth:`close` are :class:`Journal`'s.
    """

    def __init__(
        self,
        directory: Path,
        *,
        commit_window: float = 0.05,
        finished_capacity: int = 10_000,
        compact_bytes: int = 8 * 2**20,
    ) -> None:
        if commit_window < 0 or finished_capacity < 1 or compact_bytes < 1:
            raise ValueError("commit_window must be >= 0, the others >= 1")
        self.directory = Path(directory)
        self._window = commit_window
        self._compact_bytes = compact_bytes
        self._compact_retry_at = 0
        self._lock = threading.Lock()
        self._queued = threading.Condition(self._lock)
        self._durable = threading.Condition(self._lock)
        self._queue: list[Op] = []
        self._unsynced: list[Op] = []  # written ahead of the queue, not yet fsynced
        self._enqueued = self._committed = 0
        self._closing = self._stopped = self._committing = False
        self._failure: BaseException | None = None
        self._scrub: set[str] = set()  # finishing requests whose bodies must leave the log
        self._state = State(finished_capacity)
        self._lock_fd = take_lock(self.directory)
        try:
            self._fd, self._size = open_log(self.directory, self._state)
        except OSError as exc:
            release_lock(self._lock_fd)
            raise JournalError(f"cannot open the journal in {self.directory}: {exc}") from exc
        except BaseException:
            release_lock(self._lock_fd)
            raise
        self._writer = threading.Thread(target=self._commit_loop, name="gofer-journal")
        self._writer.daemon = True
        self._writer.start()

    def close(self) -> None:
        """Commit what callers are waiting for, stop the writer and release the lock.

        Idempotent. Calls made after (or racing with) ``close`` raise
        :class:`JournalError`.
        """
        with self._lock:
            already = self._closing
            self._closing = True
            self._queued.notify()
        self._writer.join()
        if not already:
            owned.close(self._fd)
            release_lock(self._lock_fd)

    def _commit(self, *ops: Op, wait: bool = True) -> None:
        """Queue ``ops``; with ``wait``, return once they are durable.

        A waiting caller that finds nobody committing commits the whole queue
        itself (no hand-over to another thread on the way); the ones that come
        while it syncs wait, and the next of them commits all of theirs in one
        batch. Ops nobody waits for are committed by the writer thread.
        """
        with self._lock:
            self._check_usable()
            self._queue.extend(ops)
            self._enqueued += len(ops)
            ticket = self._enqueued
            if not wait:
                if not self._committing:
                    self._write_ahead()
                    self._queued.notify()
                return
            while self._committed < ticket:
                if self._stopped:
                    raise JournalError(f"{self!r} stopped before it could commit") from (
                        self._failure
                    )
                if self._committing or not (self._queue or self._unsynced):
                    self._durable.wait()
                    continue
                try:
                    self._lead(self._take_batch())
                except Exception as exc:
                    raise JournalError(f"{self!r} cannot write; restart to recover") from exc

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise JournalError(f"{self!r} failed; restart to recover") from self._failure
        if self._closing:
            raise JournalError(f"{self!r} is closed")

    def _write_ahead(self) -> None:
        """Write the queue to the log now, without fsync (called with the lock held, log free).

        The bytes are then in the kernel: they survive goferd being killed,
        not the host crashing, so a finish mark closes the window in which a
        killed goferd would send a reply again. They become durable (and
        visible to queries) with the next commit, as before.
        """
        batch, self._queue = self._queue, []
        self._committing = True
        try:
            self._lock.release()
            try:
                data = b"".join(op.record for op in batch)
                write_all(self._fd, data)
            finally:
                self._lock.acquire()
            self._size += len(data)
            self._unsynced.extend(batch)
        except Exception as exc:
            self._fail(exc)
            raise JournalError(f"{self!r} cannot write; restart to recover") from exc
        finally:
            self._committing = False
            self._durable.notify_all()

    def _take_batch(self) -> tuple[list[Op], int, int]:
        """Everything not durable, for the caller to commit (called with the lock held).

        Returns the ops in log order, how many of them are already written,
        and the ticket they bring the journal to.
        """
        written = len(self._unsynced)
        batch, self._unsynced, self._queue = self._unsynced + self._queue, [], []
        self._committing = True
        return batch, written, self._enqueued

    def _lead(self, taken: tuple[list[Op], int, int]) -> None:
        """Commit a batch taken with the lock held; called with the lock held, syncs without it.

        A failure stops the journal for good: every waiter and later call
        gets :class:`JournalError`.
        """
        batch, written, ticket = taken
        try:
            self._lock.release()
            try:
                data = b"".join(op.record for op in batch[written:])
                write_all(self._fd, data)
                os.fsync(self._fd)
                self._size += len(data)
            finally:
                self._lock.acquire()
            scrubbed = False
            for op in batch:
                self._state.apply(op.kind, op.value)
                if op.kind == FINISH and op.value in self._scrub:
                    self._scrub.discard(op.value)
                    scrubbed = True
            self._committed = ticket
            big = self._size > max(self._compact_bytes, self._compact_retry_at, self._live_limit())
            if big or scrubbed:
                self._lock.release()
                try:
                    self._compact(quiet=not big)
                finally:
                    self._lock.acquire()
        except Exception as exc:
            self._fail(exc)
            raise
        finally:
            self._committing = False
            self._durable.notify_all()
            self._queued.notify()  # the writer: what is left is its, unless a waiter takes it

    def _fail(self, exc: Exception) -> None:
        """The disk failed: stop for good (called with the lock held)."""
        log.exception("journal %s cannot write; it stops taking requests", self.directory)
        self._failure = exc
        self._stopped = True

    def _commit_loop(self) -> None:
        """The writer thread: commits what nobody waits for (and what is left at close)."""
        with self._lock:
            while not self._stopped:
                if self._committing or not (self._queue or self._unsynced or self._closing):
                    self._queued.wait()
                    continue
                if not (self._queue or self._unsynced):
                    break  # closing, and nothing left
                self._gather()
                if self._committing or not (self._queue or self._unsynced):
                    continue  # a waiter took them while we gathered
                try:
                    self._lead(self._take_batch())
                except Exception:  # noqa: BLE001 - recorded as the journal's failure by _lead
                    break
            self._stopped = True
            self._durable.notify_all()

    def _gather(self) -> None:
        """With a commit window: wait up to it for more ops to join the batch."""
        deadline = time.monotonic() + self._window
        while self._window > 0 and not self._closing and not self._committing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._queued.wait(remaining)

    def _live_limit(self) -> int:
        return COMPACT_RATIO * self._state.live_bytes

    def _compact(self, quiet: bool = False) -> None:
        before = self._size
        try:
            self._fd_swap(*rewrite(self.directory, self._state.records()))
        except TempWriteError as exc:
            # The log is untouched: carry on with it and retry when it has grown again.
            self._compact_retry_at = self._size + self._compact_bytes
            log.warning("journal %s: cannot compact the log, will retry: %s", self.directory, exc)
            return
        self._compact_retry_at = 0
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "journal %s: compacted the log from %d to %d bytes",
            self.directory,
            before,
            self._size,
        )

    def _fd_swap(self, fd: int, size: int) -> None:
        old, self._fd, self._size = self._fd, fd, size
        owned.close(old)
