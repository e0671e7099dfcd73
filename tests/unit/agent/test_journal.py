"""The request journal: durable across reopen, group commit, torn records, compaction, bad input."""

from __future__ import annotations

import errno
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gofer.agent import journal as journal_module
from gofer.agent.journal import LOG_NAME, Entry, Journal, JournalConfigError, JournalError, records
from gofer.errors import ConfigError, GoferError


def entry(sn: str | None = None, body: bytes = b'{"sn": "..."}', plugin: str = "demo") -> Entry:
    return Entry(sn=sn or str(uuid.uuid4()), plugin=plugin, body=body, received=1700000000.5)


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "journal"


@pytest.fixture
def opened(directory: Path) -> Iterator[Callable[..., Journal]]:
    """Opens journals on ``directory`` and closes whatever a test leaves open."""
    journals: list[Journal] = []

    def open_journal(**options: object) -> Journal:
        journal = Journal(directory, **options)  # type: ignore[arg-type]
        journals.append(journal)
        return journal

    yield open_journal
    for journal in journals:
        journal.close()


def reopen(journal: Journal, opened: Callable[..., Journal]) -> Journal:
    journal.close()
    return opened()


def test_written_entries_are_pending_in_order_across_reopen(
    opened: Callable[..., Journal],
) -> None:
    journal = opened()
    entries = [entry(body=bytes([n]) * n) for n in range(5)]
    for each in entries:
        journal.write(each)
    assert journal.pending() == entries
    assert len(journal) == 5
    assert entries[2].sn in journal

    journal = reopen(journal, opened)

    assert journal.pending() == entries
    assert len(journal) == 5


def test_finished_entries_are_not_replayed_and_stay_finished(
    opened: Callable[..., Journal],
) -> None:
    journal = opened()
    first, second = entry(), entry()
    journal.write(first)
    journal.write(second)
    journal.finish(first.sn)
    assert journal.pending() == [second]
    assert journal.is_finished(first.sn)
    assert not journal.is_finished(second.sn)

    journal = reopen(journal, opened)

    assert journal.pending() == [second]
    assert journal.is_finished(first.sn)
    assert first.sn not in journal


def test_finish_of_an_unjournaled_sn_is_remembered(opened: Callable[..., Journal]) -> None:
    journal = opened()
    sn = str(uuid.uuid4())
    journal.finish(sn)

    assert reopen(journal, opened).is_finished(sn)


def test_rewriting_a_pending_sn_replaces_it_in_place(opened: Callable[..., Journal]) -> None:
    journal = opened()
    first, second = entry(), entry()
    journal.write(first)
    journal.write(second)
    again = entry(first.sn, body=b"again")
    journal.write(again)

    assert journal.pending() == [again, second]
    assert reopen(journal, opened).pending() == [again, second]


def test_finished_sns_are_forgotten_beyond_capacity(opened: Callable[..., Journal]) -> None:
    journal = opened(finished_capacity=3)
    sns = [str(uuid.uuid4()) for _ in range(5)]
    for sn in sns:
        journal.finish(sn)

    assert [journal.is_finished(sn) for sn in sns] == [False, False, True, True, True]
    journal.close()
    journal = opened(finished_capacity=3)
    assert [journal.is_finished(sn) for sn in sns] == [False, False, True, True, True]


def test_cancel_before_the_request_arrives_is_kept(opened: Callable[..., Journal]) -> None:
    journal = opened()
    early = entry()
    assert journal.cancel(early.sn)
    assert journal.is_cancelled(early.sn)
    journal = reopen(journal, opened)
    assert journal.is_cancelled(early.sn)

    journal.write(early)

    journal = reopen(journal, opened)
    assert journal.pending() == [early]
    assert journal.is_cancelled(early.sn)


def test_cancel_of_a_pending_request_survives_restart(opened: Callable[..., Journal]) -> None:
    journal = opened()
    pending, other = entry(), entry()
    journal.write(pending)
    journal.write(other)

    assert journal.cancel(pending.sn)

    journal = reopen(journal, opened)
    assert journal.is_cancelled(pending.sn)
    assert not journal.is_cancelled(other.sn)
    assert journal.pending() == [pending, other]


def test_cancel_after_finish_is_refused_and_finish_drops_the_mark(
    opened: Callable[..., Journal],
) -> None:
    journal = opened()
    done, cancelled = entry(), entry()
    journal.write(done)
    journal.finish(done.sn)
    assert not journal.cancel(done.sn)
    assert not journal.is_cancelled(done.sn)

    journal.write(cancelled)
    journal.cancel(cancelled.sn)
    journal.finish(cancelled.sn)
    assert not journal.is_cancelled(cancelled.sn)
    assert not reopen(journal, opened).is_cancelled(cancelled.sn)


def test_concurrent_writers_are_all_durable(opened: Callable[..., Journal]) -> None:
    journal = opened()
    written: list[list[Entry]] = [[entry() for _ in range(500)] for _ in range(8)]
    failures: list[JournalError] = []

    def write_all(entries: list[Entry]) -> None:
        try:
            for each in entries:
                journal.write(each)
        except JournalError as exc:
            failures.append(exc)

    run_threads(write_all, written)

    assert not failures
    journal = reopen(journal, opened)
    pending = journal.pending()
    assert len(pending) == 4000
    assert {each.sn for each in pending} == {each.sn for part in written for each in part}
    for part in written:  # each thread's own writes replay in the order it made them
        position = {each.sn: n for n, each in enumerate(pending)}
        assert [position[each.sn] for each in part] == sorted(position[each.sn] for each in part)


def test_one_fsync_covers_concurrent_writes(
    opened: Callable[..., Journal], monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = opened()
    # A disk whose fsync takes 3 ms: the other writers are surely queued behind
    # each one, however busy the machine (a fast fsync on a loaded host let
    # the scheduler run the writers one by one).
    fsyncs = count_fsyncs(monkeypatch, slow=0.003)

    def write_100(_: int) -> None:
        for _ in range(100):
            journal.write(entry())

    run_threads(write_100, range(8))

    assert len(journal) == 800
    assert fsyncs() < 800 / 2, "group commit should batch concurrent writers"


def test_a_lone_writer_gets_one_fsync_per_write(
    opened: Callable[..., Journal], monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = opened()
    fsyncs = count_fsyncs(monkeypatch)

    for _ in range(20):
        journal.write(entry())

    assert fsyncs() == 20


def test_a_torn_last_record_is_skipped_and_logged(
    opened: Callable[..., Journal], directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = opened()
    entries = [entry() for _ in range(3)]
    for each in entries:
        journal.write(each)
    journal.close()
    log_file = directory / LOG_NAME
    os.truncate(log_file, log_file.stat().st_size - 10)

    with caplog.at_level(logging.WARNING, logger="gofer.agent.journal"):
        journal = opened()

    assert journal.pending() == entries[:2]
    assert "damaged bytes" in caplog.text
    journal.write(entries[2])  # appends after the repaired log, not after the torn bytes
    caplog.clear()
    assert reopen(journal, opened).pending() == entries
    assert "damaged" not in caplog.text


def test_garbage_after_the_last_record_is_skipped_and_logged(
    opened: Callable[..., Journal], directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = opened()
    entries = [entry() for _ in range(3)]
    for each in entries:
        journal.write(each)
    journal.close()
    with (directory / LOG_NAME).open("ab") as log_file:
        log_file.write(journal_module.RECORD_MAGIC + b"\x00\x01garbage" * 20)

    with caplog.at_level(logging.WARNING, logger="gofer.agent.journal"):
        journal = opened()

    assert journal.pending() == entries
    assert "damaged bytes" in caplog.text


def test_a_damaged_record_in_the_middle_loses_only_itself(
    opened: Callable[..., Journal], directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = opened()
    entries = [entry(body=b"body-%d" % n) for n in range(3)]
    for each in entries:
        journal.write(each)
    journal.close()
    log_file = directory / LOG_NAME
    data = bytearray(log_file.read_bytes())
    data[data.index(b"body-1")] ^= 0xFF
    log_file.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="gofer.agent.journal"):
        journal = opened()

    assert journal.pending() == [entries[0], entries[2]]
    assert "damaged bytes" in caplog.text


def test_a_file_that_is_not_a_journal_is_moved_aside_and_a_new_one_starts(
    opened: Callable[..., Journal], directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Refusing it would stop goferd at every start, restarted for ever.
    directory.mkdir()
    (directory / LOG_NAME).write_bytes(b"something else entirely\n")

    journal = opened()

    assert journal.pending() == []
    [aside] = directory.glob(f"{LOG_NAME}.damaged-*")
    assert aside.read_bytes() == b"something else entirely\n"
    assert "not a gofer journal" in caplog.text
    assert str(aside) in caplog.text
    journal.write(entry())  # and the new one works


def test_a_damaged_header_keeps_the_records_behind_it(
    opened: Callable[..., Journal], directory: Path
) -> None:
    journal = opened()
    entries = [entry(), entry()]
    for each in entries:
        journal.write(each)
    journal.close()
    log_file = directory / LOG_NAME
    data = log_file.read_bytes()
    log_file.write_bytes(b"\xff" * 8 + data[8:])

    assert opened().pending() == entries
    assert len(list(directory.glob(f"{LOG_NAME}.damaged-*"))) == 1


def test_a_crash_before_the_rewrite_loses_no_record_of_a_damaged_log(
    opened: Callable[..., Journal], directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = opened()
    kept = entry()
    journal.write(kept)
    journal.close()
    log_file = directory / LOG_NAME
    damaged = b"\xff" * 8 + log_file.read_bytes()[8:]
    log_file.write_bytes(damaged)

    def crash(directory: Path, chunks: Iterable[bytes]) -> tuple[int, int]:
        raise OSError("killed here")

    with monkeypatch.context() as patch:
        patch.setattr("gofer.agent.journal.recovery.rewrite", crash)
        with pytest.raises(JournalError, match="killed here"):
            opened()
    assert log_file.read_bytes() == damaged  # still where the next start looks

    assert opened().pending() == [kept]
    asides = sorted(directory.glob(f"{LOG_NAME}.damaged-*"))
    assert len(asides) == 2  # the second never replaced the first, in the same second
    assert all(aside.read_bytes() == damaged for aside in asides)


def test_a_journal_of_a_later_format_is_refused_and_left_alone(
    opened: Callable[..., Journal], directory: Path
) -> None:
    """After a downgrade: its requests are a later gofer's to answer, not damage to salvage."""
    directory.mkdir()
    later = b"gofer-journal 2\nrecords this gofer cannot read"
    (directory / LOG_NAME).write_bytes(later)

    with pytest.raises(JournalConfigError, match=r"another version of gofer \(journal format 2"):
        opened()

    assert (directory / LOG_NAME).read_bytes() == later
    assert list(directory.glob(f"{LOG_NAME}.damaged-*")) == []
    assert issubclass(JournalConfigError, ConfigError)


def test_compaction_keeps_the_log_bounded(
    opened: Callable[..., Journal], directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Durability is not what this test is about: skip the real fsyncs so it runs fast.
    monkeypatch.setattr(os, "fsync", lambda fd: None)
    limit = 64 * 1024
    journal = opened(compact_bytes=limit, finished_capacity=200, commit_window=0)
    keep = entry()
    journal.write(keep)
    body = b"x" * 200
    sizes: list[int] = []

    def cycles(_: int) -> None:
        for n in range(5000):
            each = entry(body=body)
            journal.write(each)
            journal.finish(each.sn)
            if n % 250 == 0:
                sizes.append((directory / LOG_NAME).stat().st_size)

    run_threads(cycles, range(4))  # 20,000 write + finish cycles

    assert max(sizes) < 2 * limit
    journal = reopen(journal, opened)
    assert journal.pending() == [keep]
    assert (directory / LOG_NAME).stat().st_size < 2 * limit


def test_a_failed_compaction_keeps_the_log_and_is_retried(
    opened: Callable[..., Journal], directory: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limit = 4096
    journal = opened(compact_bytes=limit, finished_capacity=10, commit_window=0)
    blocker = directory / journal_module.TEMP_NAME
    blocker.mkdir()  # the rewrite cannot create its temporary file

    with caplog.at_level(logging.WARNING, logger="gofer.agent.journal"):
        for _ in range(40):
            each = entry(body=b"x" * 200)
            journal.write(each)
            journal.finish(each.sn)
    assert "cannot compact" in caplog.text
    assert (directory / LOG_NAME).stat().st_size > 2 * limit

    blocker.rmdir()
    last = entry(body=b"x" * 200)
    for _ in range(20):
        journal.write(last)
        journal.finish(last.sn)
    assert (directory / LOG_NAME).stat().st_size < 2 * limit
    assert reopen(journal, opened).is_finished(last.sn)


@pytest.mark.parametrize(
    "sn",
    ["../../etc/passwd", "a" * 65, "", 42, None, b"0123abcd", "abc\n", "/tmp/x", "ab cd"],
)
def test_hostile_serial_numbers_are_refused(
    opened: Callable[..., Journal], directory: Path, sn: object
) -> None:
    journal = opened()
    before = sorted(directory.iterdir())

    for call in (journal.finish, journal.cancel, journal.is_finished, journal.is_cancelled):
        with pytest.raises(JournalError):
            call(sn)  # type: ignore[arg-type]
    with pytest.raises(JournalError):
        Entry(sn=sn, plugin="demo", body=b"", received=0.0)  # type: ignore[arg-type]

    assert sn not in journal
    assert sorted(directory.iterdir()) == before
    assert not (directory.parent / "etc").exists()
    assert reopen(journal, opened).pending() == []


@pytest.mark.parametrize("plugin", ["", "../x", "a/b", "x" * 101, "ok\n", 7])
def test_hostile_plugin_names_are_refused(plugin: object) -> None:
    with pytest.raises(JournalError, match="plugin"):
        Entry(sn=str(uuid.uuid4()), plugin=plugin, body=b"", received=0.0)  # type: ignore[arg-type]


def test_write_takes_only_entries(opened: Callable[..., Journal]) -> None:
    with pytest.raises(JournalError):
        opened().write({"sn": str(uuid.uuid4())})  # type: ignore[arg-type]
    with pytest.raises(JournalError):
        Entry(sn=str(uuid.uuid4()), plugin="demo", body="text", received=0.0)  # type: ignore[arg-type]


def test_a_second_journal_on_the_directory_is_refused(
    opened: Callable[..., Journal],
) -> None:
    journal = opened()

    with pytest.raises(JournalError, match="in use"):
        Journal(journal.directory)

    journal.close()
    opened().close()  # the lock went with close()


def test_a_forked_child_does_not_keep_the_directory_locked(
    opened: Callable[..., Journal],
) -> None:
    journal = opened()
    release, hold = os.pipe()
    ready_read, ready_write = os.pipe()
    child = os.fork()
    if child == 0:  # the fork model's child: it outlives the journal that forked it
        os.close(hold)
        os.write(ready_write, b"!")  # the at-fork hooks have run by now
        os.read(release, 1)
        os._exit(0)
    os.close(release)
    os.close(ready_write)
    os.read(ready_read, 1)
    os.close(ready_read)
    try:
        journal.close()
        opened().close()  # the child's copy of the lock file did not keep the lock
    finally:
        os.close(hold)
        os.waitpid(child, 0)


def test_the_directory_is_private(opened: Callable[..., Journal], directory: Path) -> None:
    opened()

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_closed_journal_refuses_writes(opened: Callable[..., Journal]) -> None:
    journal = opened()
    journal.close()
    journal.close()

    with pytest.raises(JournalError, match="closed"):
        journal.write(entry())


def test_a_disk_error_stops_the_journal_and_reopening_recovers(
    opened: Callable[..., Journal],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    journal = opened()
    kept = entry()
    journal.write(kept)

    def disk_full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", disk_full)
    with caplog.at_level(logging.ERROR), pytest.raises(JournalError):
        journal.write(entry())
    with pytest.raises(JournalError, match="failed"):
        journal.write(entry())
    assert "cannot write" in caplog.text
    monkeypatch.undo()

    assert reopen(journal, opened).pending() == [kept]


def test_journal_error_is_a_gofer_error() -> None:
    assert issubclass(JournalError, GoferError)


def count_fsyncs(monkeypatch: pytest.MonkeyPatch, slow: float = 0.0) -> Callable[[], int]:
    """Count fsyncs; ``slow`` adds seconds to each, as a slow disk would."""
    calls: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)
        if slow:
            time.sleep(slow)

    monkeypatch.setattr(os, "fsync", fsync)
    return lambda: len(calls)


def run_threads(work: Callable[[Any], object], arguments: Iterable[Any]) -> None:
    threads = [threading.Thread(target=work, args=(each,)) for each in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_a_recorded_result_survives_a_restart_until_finished(
    opened: Callable[..., Journal],
) -> None:
    journal = opened()
    first, second = entry(), entry()
    journal.write(first, started=True)
    journal.write(second, started=True)
    journal.record_result(first.sn, b'{"retval": 7}')
    journal = reopen(journal, opened)
    assert journal.result(first.sn) == b'{"retval": 7}'
    assert journal.result(second.sn) is None
    assert journal.is_started(second.sn)
    journal.finish(first.sn, wait=False)
    journal = reopen(journal, opened)  # close makes what was queued durable
    assert journal.result(first.sn) is None
    assert journal.is_finished(first.sn)
    assert [e.sn for e in journal.pending()] == [second.sn]


def test_a_finish_nobody_waits_for_is_committed_all_the_same(
    opened: Callable[..., Journal], monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = opened()
    kept = entry()
    journal.write(kept)
    fsyncs = count_fsyncs(monkeypatch)

    journal.finish(kept.sn, wait=False)  # returns at once; the writer thread commits it

    deadline = time.monotonic() + 5
    while not journal.is_finished(kept.sn):  # the state changes once it is durable
        assert time.monotonic() < deadline, "a finish nobody waited for was never committed"
        time.sleep(0.01)
    assert fsyncs() == 1
    assert journal.pending() == []


KILLED_AFTER_A_FINISH = """
import os, signal, sys
from pathlib import Path
from gofer.agent.journal import Entry, Journal
journal = Journal(Path(sys.argv[1]), commit_window=600)
journal.write(Entry(sn=sys.argv[2], plugin="demo", body=b"{}", received=1.0), started=True)
journal.finish(sys.argv[2], wait=False)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_finish_nobody_waits_for_survives_goferd_being_killed(directory: Path) -> None:
    # Killed long before the commit window ends: had the finish mark waited in
    # memory, the restart would replay a request whose reply had gone out.
    sn = str(uuid.uuid4())
    child = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_A_FINISH, str(directory), sn],
        check=False,
        capture_output=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    with Journal(directory) as journal:
        assert journal.is_finished(sn)
        assert journal.pending() == []


def test_writers_never_wait_out_the_window_behind_finishes_written_ahead(
    opened: Callable[..., Journal],
) -> None:
    # A finish nobody waits for writes the whole queue ahead, waiters' records
    # included; those waiters must still be committed at once, not after the
    # writer thread's window (an hour here: the test's timeout would hit first).
    journal = opened(commit_window=3600)

    def cycles(_: object) -> None:
        for _ in range(300):
            each = entry()
            journal.write(each, started=True)
            journal.finish(each.sn, wait=False)

    run_threads(cycles, range(6))
    last = entry()
    journal.write(last)
    assert journal.pending() == [last]


def test_flush_makes_what_nobody_waited_for_durable_at_once(
    opened: Callable[..., Journal],
) -> None:
    journal = opened(commit_window=3600)
    kept = entry()
    journal.write(kept)
    journal.finish(kept.sn, wait=False)
    assert not journal.is_finished(kept.sn)  # queries see only what is durable
    journal.flush()
    assert journal.is_finished(kept.sn)
    assert journal.pending() == []


def test_a_batch_of_requests_is_one_commit(
    opened: Callable[..., Journal], monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = opened()
    batch = [entry() for _ in range(5)]
    fsyncs = count_fsyncs(monkeypatch)

    journal.write_many([(each, n < 2) for n, each in enumerate(batch)])

    assert fsyncs() == 1
    journal = reopen(journal, opened)
    assert journal.pending() == batch
    assert [journal.is_started(each.sn) for each in batch] == [True, True, False, False, False]


def test_a_batch_with_a_stranger_writes_nothing(opened: Callable[..., Journal]) -> None:
    journal = opened()
    with pytest.raises(JournalError, match="not a journal entry"):
        journal.write_many([(entry(), False), ("not an entry", False)])  # type: ignore[list-item]
    assert journal.pending() == []


def test_finish_with_scrub_leaves_no_trace_of_the_body_in_the_log(
    opened: Callable[..., Journal], directory: Path
) -> None:
    journal = opened()
    kept = entry(body=b'{"pam": {"user": "root", "password": "kept-until-it-runs"}}')
    secret = entry(body=b'{"secret": "hunter2-must-not-stay"}')
    journal.write(kept)
    journal.write(secret)
    journal.finish(secret.sn, scrub=True)

    data = (directory / LOG_NAME).read_bytes()
    assert b"hunter2-must-not-stay" not in data
    assert b"kept-until-it-runs" in data  # still pending: needed to run it
    assert journal.is_finished(secret.sn)
    assert reopen(journal, opened).pending() == [kept]


def test_finish_without_scrub_leaves_the_log_to_compact_later(
    opened: Callable[..., Journal], directory: Path
) -> None:
    journal = opened()
    plain = entry(body=b'{"plain": "stays-until-compaction"}')
    journal.write(plain)
    journal.finish(plain.sn)
    assert b"stays-until-compaction" in (directory / LOG_NAME).read_bytes()


def test_secrets_a_kill_left_before_the_scrub_leave_at_the_next_open(
    opened: Callable[..., Journal], directory: Path
) -> None:
    """goferd killed between a finish and its scrub: the put stayed in the file."""
    gone = entry(body=b'{"secret": "left-by-a-kill"}')
    kept = entry(body=b'{"pam": {"user": "root", "password": "still-needed"}}')
    directory.mkdir(mode=0o700)
    (directory / LOG_NAME).write_bytes(
        journal_module.FILE_MAGIC
        + records.encode_put(gone)
        + records.encode_put(kept)
        + records.encode_mark(journal_module.FINISH, gone.sn)
    )

    journal = opened()

    data = (directory / LOG_NAME).read_bytes()
    assert b"left-by-a-kill" not in data
    assert b"still-needed" in data
    assert journal.is_finished(gone.sn)
    assert journal.pending() == [kept]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"sn": "1", "secret": "x"}', True),
        (b'{"sn": "1", "secret": null}', False),
        (b'{"sn": "1", "\\u0073ecret": "x"}', True),  # spelled with an escape
        (b'{"sn": "1", "pam": {"user": "u", "password": "p"}}', True),
        (b'{"sn": "1", "request": {"args": ["secret", "pam"]}}', False),
        (b"not json, but secret", False),
    ],
)
def test_which_bodies_carry_credentials(body: bytes, expected: bool) -> None:
    assert journal_module.carries_credentials(body) is expected
