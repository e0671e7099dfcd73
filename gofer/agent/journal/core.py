"""The :class:`Journal`: what goferd calls to journal, mark, finish and look up requests."""

from __future__ import annotations

from types import TracebackType

from gofer.agent.journal.commit import CommitLog, Op
from gofer.agent.journal.entry import Entry, JournalError, check_sn, shown
from gofer.agent.journal.records import (
    CANCEL,
    FINISH,
    PUT,
    RESULT,
    START,
    Result,
    encode,
    encode_mark,
    encode_put,
)


class Journal(CommitLog):
    """A durable, ordered journal of requests, safe to use from many threads.

    The constructor opens the journal: it creates the directory (mode 0700),
    takes the lock, replays the log and starts the writer thread. Call
    :meth:`close` (or use it as a context manager) to stop it.

    Only the thread committing a batch (one at a time; and the constructor,
    before anyone else) changes the state or touches the log. A
    forked child must not use its parent's journal; it drops its copy of the
    lock at fork, so a child that outlives goferd does not hold the directory.

    Args:
        directory: where the journal lives; one journal per directory.
        commit_window: at most how long a record nobody waits for stays
            unwritten (it joins the next waiting caller's batch meanwhile).
        finished_capacity: how many finished serial numbers (and cancel
            marks) are remembered; older ones are forgotten.
        compact_bytes: the log is never rewritten while it is shorter.

    Raises:
        JournalError: another journal holds the directory, the log is not a
            journal, or the directory or log cannot be used.
    """

    def write(self, entry: Entry, *, started: bool = False) -> None:
        """Journal a request; returns once it is durable.

        Writing the sn of a pending entry replaces that entry (it keeps its
        place in replay order).

        Args:
            entry: the request.
            started: also mark it started, in the same commit (for a request
                that runs at once: one fsync instead of two).

        Raises:
            JournalError: not an :class:`Entry`, the journal is closed, or the disk failed.
        """
        self.write_many([(entry, started)])

    def write_many(self, entries: list[tuple[Entry, bool]]) -> None:
        """Journal several requests in one commit; returns once all are durable.

        Args:
            entries: each request, and whether to mark it started (as
                :meth:`write`'s ``started``).

        Raises:
            JournalError: not :class:`Entry` objects, the journal is closed, or the disk failed.
        """
        ops: list[Op] = []
        for entry, started in entries:
            if not isinstance(entry, Entry):
                raise JournalError(f"not a journal entry: {shown(entry)}")
            ops.append(Op(PUT, entry, encode_put(entry)))
            if started:
                ops.append(Op(START, entry.sn, encode_mark(START, entry.sn)))
        if ops:
            self._commit(*ops)

    def finish(self, sn: str, *, wait: bool = True, scrub: bool = False) -> None:
        """Forget a request that has its final reply; returns once that is durable.

        The sn is remembered as finished whether or not it was pending, so a
        request answered without being journaled (rejected, expired) is also
        recognised when the broker delivers it again.

        Args:
            sn: the request's serial number.
            wait: return only once the finish is durable.
            scrub: the request carried secrets (a shared secret, a PAM
                password): once the finish is durable the log is rewritten
                at once, so that its body does not stay in the file until a
                compaction would come by itself.

        Raises:
            JournalError: an invalid sn, the journal is closed, or the disk failed.
        """
        check_sn(sn)
        if scrub:
            with self._lock:
                self._scrub.add(sn)
        self._commit(Op(FINISH, sn, encode_mark(FINISH, sn)), wait=wait)

    def cancel(self, sn: str) -> bool:
        """Mark a pending or future request as cancelled; returns once that is durable.

        Returns:
            True when the mark is in force; False when the sn already
            finished (too late: nothing is written).

        Raises:
            JournalError: an invalid sn, the journal is closed, or the disk failed.
        """
        if self.is_finished(sn):
            return False
        self._commit(Op(CANCEL, sn, encode_mark(CANCEL, sn)))
        return True

    def start(self, sn: str) -> None:
        """Mark a pending request as started; returns once that is durable.

        A request found started at replay began to run before goferd
        stopped: it is not run again (it could have done half its work),
        it is answered as interrupted.

        Raises:
            JournalError: an invalid sn, the journal is closed, or the disk failed.
        """
        self._commit(Op(START, check_sn(sn), encode_mark(START, sn)))

    def flush(self) -> None:
        """Make every record made so far durable (and seen by queries); returns once it is.

        Raises:
            JournalError: the journal is closed, or the disk failed.
        """
        self._commit()

    def record_result(self, sn: str, result: bytes) -> None:
        """Keep a pending request's final result; returns once that is durable.

        Written before the result is sent, so that a crash between sending
        and :meth:`finish` replays the same result instead of running the
        request or answering it differently.

        Raises:
            JournalError: an invalid sn, the journal is closed, or the disk failed.
        """
        check_sn(sn)
        payload = bytes([len(sn)]) + sn.encode("ascii") + result
        self._commit(Op(RESULT, Result(sn, result), encode(RESULT, payload)))

    def result(self, sn: str) -> bytes | None:
        """The recorded result of a pending request, if any."""
        check_sn(sn)
        with self._lock:
            return self._state.results.get(sn)

    def is_started(self, sn: str) -> bool:
        """True if ``sn`` is pending and was marked started.

        Raises:
            JournalError: an invalid sn.
        """
        check_sn(sn)
        with self._lock:
            return sn in self._state.started

    def is_finished(self, sn: str) -> bool:
        """True if ``sn`` finished (among the last ``finished_capacity`` to).

        Raises:
            JournalError: an invalid sn.
        """
        check_sn(sn)
        with self._lock:
            return sn in self._state.finished

    def is_cancelled(self, sn: str) -> bool:
        """True if ``sn`` carries a cancel mark.

        Raises:
            JournalError: an invalid sn.
        """
        check_sn(sn)
        with self._lock:
            return sn in self._state.cancelled

    def pending(self) -> list[Entry]:
        """The entries written and not finished, in write order (what to replay)."""
        with self._lock:
            return list(self._state.pending.values())

    @property
    def failed(self) -> bool:
        """True once a write or fsync failed: the journal takes nothing more until reopened."""
        with self._lock:
            return self._failure is not None

    def __contains__(self, sn: object) -> bool:
        """True if ``sn`` is pending (a broker redelivery of a journaled request)."""
        with self._lock:
            return isinstance(sn, str) and sn in self._state.pending

    def __len__(self) -> int:
        """The number of pending entries."""
        with self._lock:
            return len(self._state.pending)

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.directory)!r})"
