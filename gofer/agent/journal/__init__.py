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
  journal's, kept for an operator (see :mod:`~gofer.agent.journal.recovery`); never read again.
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

The package's modules: :mod:`~gofer.agent.journal.core` (the :class:`Journal`
API), :mod:`~gofer.agent.journal.commit` (group commit and compaction),
:mod:`~gofer.agent.journal.recovery` (opening and replaying the log),
:mod:`~gofer.agent.journal.state` (the fold of the records),
:mod:`~gofer.agent.journal.records` (the record format),
:mod:`~gofer.agent.journal.disk` (the files) and
:mod:`~gofer.agent.journal.entry` (:class:`Entry` and the errors).
"""

from __future__ import annotations

from gofer.agent.journal.commit import COMPACT_RATIO
from gofer.agent.journal.core import Journal
from gofer.agent.journal.disk import LOCK_NAME, LOG_NAME, TEMP_NAME
from gofer.agent.journal.entry import (
    MAX_BODY,
    Entry,
    JournalConfigError,
    JournalError,
    carries_credentials,
    check_sn,
    valid_plugin_name,
)
from gofer.agent.journal.records import (
    CANCEL,
    FILE_MAGIC,
    FINISH,
    PUT,
    RECORD_MAGIC,
    RESULT,
    START,
)

__all__ = [
    "CANCEL",
    "COMPACT_RATIO",
    "FILE_MAGIC",
    "FINISH",
    "LOCK_NAME",
    "LOG_NAME",
    "MAX_BODY",
    "PUT",
    "RECORD_MAGIC",
    "RESULT",
    "START",
    "TEMP_NAME",
    "Entry",
    "Journal",
    "JournalConfigError",
    "JournalError",
    "carries_credentials",
    "check_sn",
    "valid_plugin_name",
]
