"""The durable request journal: goferd acknowledges a message only once its request is in here.

The life of a request in the journal::

    journal = Journal(Path("/var/lib/gofer/journal"))   # opens, locks, replays
    for entry in journal.pending():                       # left by the last run
        ...                                               # answer or run each one
    journal.write(Entry(sn, plugin, body, received))      # durable: now ack the message
    ...                                                   # run it, send the final reply
    journal.finish(sn)                                    # durable: never replayed again
    journal.close()

Guarantees (what "durable" means below: the bytes are written and
``os.fsync`` returned, so they survive a crash of goferd or of the host):

- :meth:`Journal.write` returns only when the entry is durable. An entry is
  in :meth:`Journal.pending` after a restart unless :meth:`Journal.finish`
  returned for it. A write that had not returned when the host crashed may or
  may not be there after the restart; it was never acknowledged, so the
  broker delivers the message again either way. Before writing a delivery
  goferd checks ``sn in journal`` and :meth:`Journal.is_finished`: a crash
  between the write and the broker ack leaves the request both in the journal
  and on the broker.
- :meth:`Journal.finish` returns only when the finish mark is durable: from
  then on the request is never replayed, and :meth:`Journal.is_finished` is
  true for it across restarts until ``finished_capacity`` newer finishes push
  it out (oldest first). A crash after the final reply was sent but before
  ``finish`` returned replays the request: the journal cannot make sending a
  reply and recording it one atomic step.
- :meth:`Journal.cancel` returns only when the mark is durable; marks are
  kept until their request finishes, or until ``finished_capacity`` newer
  marks push them out.
- Writes, finishes and cancels take effect in the order they were made
  (the order of the log); queries see only what is already durable.
- A record torn by a crash (a write that never returned) is found at the
  next open by its length and checksum, logged and skipped; the records
  around it are kept and the log is rewritten without it.
- If the disk fails (a write or fsync error), the journal stops: that call
  and every later one raise :class:`JournalError`, and nothing more is
  acknowledged. Reopening it (a goferd restart) recovers what was durable.

Group commit: a caller that must wait for its records and finds nobody
writing appends everything queued and covers it with one fsync itself, with
no hand-over to another thread; callers that come meanwhile queue their
records, and the first of them to find the log free commits them all in the
next batch. One fsync thus serves every concurrent caller, and a lone caller
pays one write and one fsync. Records nobody waits for (``finish(wait=False)``)
are written to the log at once when nobody is committing (so they survive
goferd being killed, though not the host crashing) and made durable by a
writer thread after up to ``commit_window`` seconds (50 ms), unless a waiting
caller's batch covers them first, as it mostly does while requests keep
coming: a finished request then costs no fsync of its own.

Files in the journal directory (mode 0700; files 0600):

- ``lock``: held with ``fcntl.flock`` while a :class:`Journal` is open.
- ``journal.log``: the log.
- ``journal.log.tmp``: a rewrite in progress; removed at open (the log it
  was replacing is still whole).
- ``journal.log.damaged-<UTC time>[.n]``: a log whose header was not a
  journal's, kept for an operator (see ``Journal._salvage``); never read again.
- ``origins/``: not the journal's but goferd's, beside it: each plugin's
  broker settings, to answer its requests once it is gone (:mod:`gofer.agent.origins`).

``journal.log`` is ``b"gofer-journal 1\\n"`` followed by records, each::

    magic   4 bytes   b"\\xa7GJr"
    crc     4 bytes   CRC-32 of length, kind and payload (big-endian, as all integers)
    length  4 bytes   payload length
    kind    1 byte    1 put, 2 finish, 3 cancel, 4 started, 5 result
    payload           put: received (8-byte IEEE double), sn length (1 byte), sn,
                           plugin length (1 byte), plugin, body (the rest)
                      finish, cancel, started: the sn (ASCII)
                      result: sn length (1 byte), sn, the result (the rest)

The state is the fold of the records in order: a put makes its entry pending
(replacing a pending entry of the same sn, which keeps its place); a started
mark says a pending entry began to run; a result record keeps a pending
entry's final result until it is known to be sent; a finish drops the
entry, its started mark, its result and its cancel mark and remembers the sn as finished; a cancel
marks an sn that is not finished. When the log is more than
``COMPACT_RATIO`` times the size of its live records and at least
``compact_bytes`` long, the writer rewrites the live records (finished
marks, cancel marks, pending puts, each in order) into ``journal.log.tmp``,
fsyncs it, renames it over ``journal.log`` and fsyncs the directory, so the
log stays within about ``max(compact_bytes, COMPACT_RATIO * live)``.

Serial numbers (:func:`gofer.rmi.wire.valid_sn`) and plugin names are
checked before they touch anything; nothing from a message ever becomes a
path.
"""

from __future__ import annotations

import collections
import dataclasses
import fcntl
import logging
import os
import re
import struct
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from gofer import owned
from gofer.agent.paths import fsync_directory, make_directory, unsafe_directory
from gofer.errors import ConfigError, GoferError
from gofer.messaging import auth
from gofer.rmi.wire import valid_sn

log = logging.getLogger(__name__)

FILE_MAGIC = b"gofer-journal 1\n"
RECORD_MAGIC = b"\xa7GJr"
# The header of a journal format, this one's or another's (a later gofer's).
_CREDENTIAL_HINTS = (b"secret", b"pam", b"\\u")
_OTHER_FORMAT = re.compile(rb"gofer-journal ([0-9]{1,9})\n")
LOG_NAME = "journal.log"
TEMP_NAME = "journal.log.tmp"
LOCK_NAME = "lock"

#: The log is rewritten when it is this many times the size of its live records.
COMPACT_RATIO = 4
#: Largest message body the journal takes (RabbitMQ's default maximum message size).
MAX_BODY = 128 * 2**20

PUT, FINISH, CANCEL, START, RESULT = 1, 2, 3, 4, 5

_HEADER = struct.Struct(">4sIIB")  # magic, crc, length, kind
_CHECKED = struct.Struct(">IB")  # length, kind: the part of the header the crc covers
_PUT_HEAD = struct.Struct(">dB")  # received, sn length
_MAX_PAYLOAD = MAX_BODY + _PUT_HEAD.size + 256
_PLUGIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_REWRITE_CHUNK = 2**20


class JournalError(GoferError):
    """The journal cannot do what was asked: bad input, in use, closed, or the disk failed."""


class JournalConfigError(JournalError, ConfigError):
    """The journal cannot be used as it is, and restarting goferd does not change that.

    Its directory belongs to another user, or others may write to it; or its
    log was written by a later gofer, in a journal format this one cannot read.
    """


@dataclasses.dataclass(frozen=True)
class Entry:
    """One journaled request.

    Attributes:
        sn: the request's serial number (checked with ``valid_sn``).
        plugin: the plugin whose queue delivered it (``[A-Za-z0-9_.-]{1,100}``).
        body: the raw message, as received.
        received: when it was received (epoch seconds); expiry is judged from it.

    Raises:
        JournalError: a field is of the wrong type or not a safe value.
    """

    sn: str
    plugin: str
    body: bytes = dataclasses.field(repr=False)
    received: float

    def __post_init__(self) -> None:
        check_sn(self.sn)
        if not isinstance(self.plugin, str) or not valid_plugin_name(self.plugin):
            raise JournalError(f"not a plugin name: {_shown(self.plugin)}")
        if not isinstance(self.body, bytes) or len(self.body) > MAX_BODY:
            raise JournalError(f"body of {self.sn} must be bytes of at most {MAX_BODY}")
        if isinstance(self.received, bool) or not isinstance(self.received, (int, float)):
            raise JournalError(f"received time of {self.sn} must be a number")


def carries_credentials(body: bytes) -> bool:
    """True if a request body holds a shared secret or a PAM login.

    The body is parsed only when its bytes could hold one: JSON spells those
    names without their letters only with ``\\u`` escapes.
    """
    if not any(hint in body for hint in _CREDENTIAL_HINTS):
        return False
    try:
        document = auth.validate(None, body)  # unwrapped unchecked: it was checked when journaled
    except GoferError:
        return False  # nothing goferd could read was journaled, nor holds a readable secret
    return document.get("secret") is not None or document.get("pam") is not None


def valid_plugin_name(name: str) -> bool:
    """True if ``name`` is a plugin name the journal takes (and a safe file name)."""
    return _PLUGIN_NAME.fullmatch(name) is not None


def check_sn(sn: object) -> str:
    """Return ``sn`` if it is a valid serial number.

    Raises:
        JournalError: it is not (the message shows a clipped ``repr``).
    """
    if not isinstance(sn, str) or not valid_sn(sn):
        raise JournalError(f"not a serial number: {_shown(sn)}")
    return sn


def _shown(value: object) -> str:
    return repr(value)[:80]


class _Result(NamedTuple):
    """A recorded final result (see :meth:`Journal.record_result`)."""

    sn: str
    result: bytes


class _Op(NamedTuple):
    """One change on its way to the log: its kind, what it is about, its encoded record."""

    kind: int
    value: Entry | str | _Result
    record: bytes


class Journal:
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
        self._queue: list[_Op] = []
        self._unsynced: list[_Op] = []  # written ahead of the queue, not yet fsynced
        self._enqueued = self._committed = 0
        self._closing = self._stopped = self._committing = False
        self._failure: BaseException | None = None
        self._scrub: set[str] = set()  # finishing requests whose bodies must leave the log
        self._carried: list[Entry] = []  # replayed puts with credentials (_credentials_left)
        self._state = _State(finished_capacity)
        self._lock_fd = _take_lock(self.directory)
        try:
            self._fd, self._size = self._open_log()
        except OSError as exc:
            _release_lock(self._lock_fd)
            raise JournalError(f"cannot open the journal in {self.directory}: {exc}") from exc
        except BaseException:
            _release_lock(self._lock_fd)
            raise
        self._writer = threading.Thread(target=self._commit_loop, name="gofer-journal")
        self._writer.daemon = True
        self._writer.start()

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
        ops: list[_Op] = []
        for entry, started in entries:
            if not isinstance(entry, Entry):
                raise JournalError(f"not a journal entry: {_shown(entry)}")
            ops.append(_Op(PUT, entry, _encode_put(entry)))
            if started:
                ops.append(_Op(START, entry.sn, _encode_mark(START, entry.sn)))
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
        self._commit(_Op(FINISH, sn, _encode_mark(FINISH, sn)), wait=wait)

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
        self._commit(_Op(CANCEL, sn, _encode_mark(CANCEL, sn)))
        return True

    def start(self, sn: str) -> None:
        """Mark a pending request as started; returns once that is durable.

        A request found started at replay began to run before goferd
        stopped: it is not run again (it could have done half its work),
        it is answered as interrupted.

        Raises:
            JournalError: an invalid sn, the journal is closed, or the disk failed.
        """
        self._commit(_Op(START, check_sn(sn), _encode_mark(START, sn)))

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
        self._commit(_Op(RESULT, _Result(sn, result), _encode(RESULT, payload)))

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
            _release_lock(self._lock_fd)

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

    def _commit(self, *ops: _Op, wait: bool = True) -> None:
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
                _write_all(self._fd, data)
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

    def _take_batch(self) -> tuple[list[_Op], int, int]:
        """Everything not durable, for the caller to commit (called with the lock held).

        Returns the ops in log order, how many of them are already written,
        and the ticket they bring the journal to.
        """
        written = len(self._unsynced)
        batch, self._unsynced, self._queue = self._unsynced + self._queue, [], []
        self._committing = True
        return batch, written, self._enqueued

    def _lead(self, taken: tuple[list[_Op], int, int]) -> None:
        """Commit a batch taken with the lock held; called with the lock held, syncs without it.

        A failure stops the journal for good: every waiter and later call
        gets :class:`JournalError`.
        """
        batch, written, ticket = taken
        try:
            self._lock.release()
            try:
                data = b"".join(op.record for op in batch[written:])
                _write_all(self._fd, data)
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

    def _open_log(self) -> tuple[int, int]:
        """Replay the log into the state; returns the descriptor to append to and its size."""
        path = self.directory / LOG_NAME
        _unlink(self.directory / TEMP_NAME)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            raise JournalError(f"cannot read {path}: {exc}") from exc
        if len(data) < len(FILE_MAGIC) and FILE_MAGIC.startswith(data):
            return self._rewrite()  # new, or its creation was interrupted
        if not data.startswith(FILE_MAGIC):
            return self._salvage(path, data)
        if self._replay(data, path):
            log.warning("journal %s: rewriting the log without its damaged parts", path)
            return self._rewrite()
        if self._credentials_left():
            log.info("journal %s: rewriting the log without finished requests' secrets", path)
            return self._rewrite()
        try:
            fd = owned.open_file(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except OSError as exc:
            raise JournalError(f"cannot open {path}: {exc}") from exc
        return fd, len(data)

    def _salvage(self, path: Path, data: bytes) -> tuple[int, int]:
        """Keep a log whose header is not ours aside, and start anew with what records it holds.

        Refusing to open would stop goferd at every start (systemd restarting
        it for ever) over a file an operator has to look at anyway: it is
        kept under a second name, and the records found in it are taken over.
        The second name is a hard link: the log keeps its own name until the
        rewrite replaces it, so a crash in between finds it again, whole.

        A header of another journal format is not damage but a later
        gofer's log (after a downgrade), whose records this one cannot read:
        that is refused, and the file left as it is.

        Raises:
            JournalConfigError: the log is of another journal format.
        """
        later = _OTHER_FORMAT.match(data)
        if later is not None:
            raise JournalConfigError(
                f"{path} was written by another version of gofer (journal format "
                f"{later.group(1).decode()}; this one reads {FILE_MAGIC.decode().strip()!r}): "
                "start that version to answer its requests, or move the file aside "
                "(they are then never answered)"
            )
        aside = _second_name(path)
        start = data.find(RECORD_MAGIC)
        if start >= 0:
            self._replay(FILE_MAGIC + data[start:], aside)
        log.error(
            "journal %s: not a gofer journal (damaged header); kept as %s, %d request(s) taken"
            " over from it",
            path,
            aside,
            len(self._state.pending),
        )
        return self._rewrite()

    def _credentials_left(self) -> bool:
        """True if the log replayed holds the secret or PAM login of a request that is gone.

        Finishing such a request rewrites the log at once (``finish(scrub=True)``);
        goferd killed between the two left them in the file.
        """
        carried, self._carried = self._carried, []
        return any(self._state.pending.get(put.sn) is not put for put in carried)

    def _replay(self, data: bytes, path: Path) -> bool:
        """Fold the log's records into the state; True if any part was damaged."""
        damaged = False
        for offset, item in _scan(data):
            if isinstance(item, int):
                damaged = True
                log.warning(
                    "journal %s: skipped %d damaged bytes at offset %d "
                    "(a write torn by a crash, or a bad disk)",
                    path,
                    item,
                    offset,
                )
            else:
                kind, value = item
                if isinstance(value, Entry) and carries_credentials(value.body):
                    self._carried.append(value)
                self._state.apply(kind, value)
        log.info("journal %s: %d pending entries", path, len(self._state.pending))
        return damaged

    def _compact(self, quiet: bool = False) -> None:
        before = self._size
        try:
            self._fd_swap(*self._rewrite())
        except _TempWriteError as exc:
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

    def _rewrite(self) -> tuple[int, int]:
        """Atomically replace the log with the live records; returns its descriptor and size.

        Raises:
            _TempWriteError: the new log could not be written; the old one is untouched.
            OSError: the rename happened but may not be durable.
        """
        temp = self.directory / TEMP_NAME
        fd, size = _write_temp(temp, self._state.records())
        try:
            os.rename(temp, self.directory / LOG_NAME)
        except OSError as exc:
            owned.close(fd)
            _unlink(temp)
            raise _TempWriteError(str(exc)) from exc
        fsync_directory(self.directory)
        return fd, size


class _TempWriteError(JournalError):
    """A rewrite failed before replacing the log, which is therefore whole."""


class _Finished:
    """The last ``capacity`` finished serial numbers, in the order they finished.

    A set and a queue rather than an ordered dict: about half the memory per
    serial number (the strings are shared), which is most of what a busy
    goferd's journal holds.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._members: set[str] = set()
        self._order: collections.deque[str] = collections.deque()

    def __contains__(self, sn: object) -> bool:
        return sn in self._members

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def add(self, sn: str) -> bool:
        """Remember ``sn``; False if it was already."""
        if sn in self._members:
            return False
        self._members.add(sn)
        self._order.append(sn)
        return True

    def evicted(self) -> Iterator[str]:
        """Forget (and give) the oldest beyond the capacity."""
        while len(self._order) > self.capacity:
            oldest = self._order.popleft()
            self._members.discard(oldest)
            yield oldest


class _State:
    """What the log means: the fold of its records (see the module docstring)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.pending: dict[str, Entry] = {}
        self.finished = _Finished(capacity)
        self.cancelled: OrderedDict[str, None] = OrderedDict()
        self.started: set[str] = set()
        self.results: dict[str, bytes] = {}
        self.live_bytes = len(FILE_MAGIC)

    def apply(self, kind: int, value: Entry | str | _Result) -> None:
        """Change the state as one record says."""
        if isinstance(value, Entry):
            self._put(value)
        elif isinstance(value, _Result):
            if value.sn in self.pending and value.sn not in self.results:
                self.results[value.sn] = value.result
                self.live_bytes += _HEADER.size + 1 + len(value.sn) + len(value.result)
        elif kind == FINISH:
            self._finish(value)
        elif kind == START:
            if value in self.pending and value not in self.started:
                self.started.add(value)
                self.live_bytes += _mark_size(value)
        elif value not in self.finished:
            self._mark(self.cancelled, value)

    def _put(self, entry: Entry) -> None:
        old = self.pending.get(entry.sn)
        if old is not None:
            self.live_bytes -= _put_size(old)
        self.pending[entry.sn] = entry
        self.live_bytes += _put_size(entry)

    def _finish(self, sn: str) -> None:
        entry = self.pending.pop(sn, None)
        if entry is not None:
            self.live_bytes -= _put_size(entry)
        if sn in self.started:
            self.started.discard(sn)
            self.live_bytes -= _mark_size(sn)
        result = self.results.pop(sn, None)
        if result is not None:
            self.live_bytes -= _HEADER.size + 1 + len(sn) + len(result)
        if sn in self.cancelled:
            del self.cancelled[sn]
            self.live_bytes -= _mark_size(sn)
        if self.finished.add(sn):
            self.live_bytes += _mark_size(sn)
        for oldest in self.finished.evicted():
            self.live_bytes -= _mark_size(oldest)

    def _mark(self, marks: OrderedDict[str, None], sn: str) -> None:
        if sn in marks:
            return
        marks[sn] = None
        self.live_bytes += _mark_size(sn)
        if len(marks) > self.capacity:
            oldest, _ = marks.popitem(last=False)
            self.live_bytes -= _mark_size(oldest)

    def records(self) -> Iterator[bytes]:
        """The records whose fold is this state: finished, cancelled, then pending puts."""
        yield FILE_MAGIC
        for sn in self.finished:
            yield _encode_mark(FINISH, sn)
        for sn in self.cancelled:
            yield _encode_mark(CANCEL, sn)
        for entry in self.pending.values():
            yield _encode_put(entry)
        for sn in self.started:
            yield _encode_mark(START, sn)
        for sn, result in self.results.items():
            yield _encode(RESULT, bytes([len(sn)]) + sn.encode("ascii") + result)


def _encode(kind: int, payload: bytes) -> bytes:
    checked = _CHECKED.pack(len(payload), kind)
    crc = zlib.crc32(payload, zlib.crc32(checked))
    return b"".join((_HEADER.pack(RECORD_MAGIC, crc, len(payload), kind), payload))


def _encode_put(entry: Entry) -> bytes:
    sn, plugin = entry.sn.encode("ascii"), entry.plugin.encode("ascii")
    head = _PUT_HEAD.pack(entry.received, len(sn))
    return _encode(PUT, b"".join((head, sn, bytes((len(plugin),)), plugin, entry.body)))


def _encode_mark(kind: int, sn: str) -> bytes:
    return _encode(kind, sn.encode("ascii"))


def _put_size(entry: Entry) -> int:
    return _HEADER.size + _PUT_HEAD.size + len(entry.sn) + 1 + len(entry.plugin) + len(entry.body)


def _mark_size(sn: str) -> int:
    return _HEADER.size + len(sn)


def _scan(data: bytes) -> Iterator[tuple[int, tuple[int, Entry | str | _Result] | int]]:
    """The log's records after the file magic, as ``(offset, (kind, value))``.

    A stretch that is not a valid record comes as ``(offset, length)``; the
    scan resumes at the next valid record after it.
    """
    offset = len(FILE_MAGIC)
    while offset < len(data):
        found = _record_at(data, offset)
        if found is None:
            end = _next_record(data, offset + 1)
            yield offset, end - offset
            offset = end
        else:
            yield offset, found[0]
            offset = found[1]


def _next_record(data: bytes, start: int) -> int:
    while (start := data.find(RECORD_MAGIC, start)) != -1:
        if _record_at(data, start) is not None:
            return start
        start += 1
    return len(data)


def _record_at(data: bytes, offset: int) -> tuple[tuple[int, Entry | str | _Result], int] | None:
    """The decoded record at ``offset`` and the offset after it; None if there is none."""
    start = offset + _HEADER.size
    if start > len(data):
        return None
    magic, crc, length, kind = _HEADER.unpack_from(data, offset)
    end = start + length
    if magic != RECORD_MAGIC or length > _MAX_PAYLOAD or end > len(data):
        return None
    payload = data[start:end]
    if zlib.crc32(payload, zlib.crc32(data[offset + 8 : start])) != crc:
        return None
    try:
        return (kind, _decode(kind, payload)), end
    except (JournalError, ValueError, IndexError, struct.error):
        return None  # a whole record we did not write: treat it as damage


def _decode(kind: int, payload: bytes) -> Entry | str | _Result:
    if kind in (FINISH, CANCEL, START):
        return check_sn(payload.decode("ascii"))
    if kind == RESULT:
        end = 1 + payload[0]
        return _Result(check_sn(payload[1:end].decode("ascii")), payload[end:])
    if kind != PUT:
        raise JournalError(f"unknown record kind {kind}")
    received, sn_length = _PUT_HEAD.unpack_from(payload)
    at = _PUT_HEAD.size + sn_length
    plugin_length = payload[at]
    plugin_end = at + 1 + plugin_length
    return Entry(
        sn=payload[_PUT_HEAD.size : at].decode("ascii"),
        plugin=payload[at + 1 : plugin_end].decode("ascii"),
        body=payload[plugin_end:],
        received=received,
    )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_temp(path: Path, chunks: Iterator[bytes]) -> tuple[int, int]:
    """Write a new file from chunks and fsync it; returns its open descriptor and size."""
    try:
        # It becomes the log: a forked child must not inherit it.
        fd = owned.open_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise _TempWriteError(f"cannot create {path}: {exc}") from exc
    try:
        size = buffered = 0
        buffer: list[bytes] = []
        for chunk in chunks:
            buffer.append(chunk)
            buffered += len(chunk)
            if buffered >= _REWRITE_CHUNK:
                _write_all(fd, b"".join(buffer))
                size, buffered = size + buffered, 0
                buffer.clear()
        _write_all(fd, b"".join(buffer))
        size += buffered
        os.fsync(fd)
    except OSError as exc:
        owned.close(fd)
        _unlink(path)
        raise _TempWriteError(f"cannot write {path}: {exc}") from exc
    return fd, size


def _second_name(path: Path) -> Path:
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


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise JournalError(f"cannot remove {path}: {exc}") from exc


def _take_lock(directory: Path) -> int:
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


def _release_lock(fd: int) -> None:
    owned.close(fd)  # closing the only descriptor releases the flock
