"""The gateway's calls and their events, in sqlite: they outlive a gateway restart.

A call is added (``pending``) before its request is sent, marked
``accepted`` once the broker confirmed it, and moved on by the replies the
collector reads (``started``, ``progress``, then one of the final states).
Each change is also an event, numbered per call from 1: the ids of the
Server-Sent Events. Calls are kept ``keep`` seconds after their last change
and at most ``max_kept`` of them (the oldest go first).

Thread-safe: the HTTP handlers (event loop) and the collector (its own
thread) share one connection under a lock; each operation is one short
transaction.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from gofer.errors import GoferError

PENDING = "pending"  # added, the broker has not confirmed the request yet (never shown)
ACCEPTED = "accepted"
STARTED = "started"
PROGRESS = "progress"
SUCCEEDED = "succeeded"
FAILED = "failed"
REJECTED = "rejected"
EXPIRED = "expired"
FINAL = frozenset({SUCCEEDED, FAILED, REJECTED, EXPIRED})
STATES = (ACCEPTED, STARTED, PROGRESS, SUCCEEDED, FAILED, REJECTED, EXPIRED)

#: Events kept per call: a plugin reporting progress in a tight loop must
#: not fill the disk. Past it, progress still updates the call, but only
#: the final event is added.
MAX_EVENTS = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    sn TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    classname TEXT NOT NULL,
    method TEXT NOT NULL,
    caller TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    deadline REAL,
    progress TEXT,
    result TEXT,
    error TEXT,
    idempotency_key TEXT,
    digest TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS calls_key ON calls (caller, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS calls_updated ON calls (updated);
CREATE INDEX IF NOT EXISTS calls_caller ON calls (caller, created);
CREATE TABLE IF NOT EXISTS events (
    sn TEXT NOT NULL REFERENCES calls (sn) ON DELETE CASCADE,
    id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (sn, id)
);
"""


@dataclasses.dataclass(frozen=True)
class CallRecord:
    """One call as the gateway knows it.

    Attributes:
        sn: the request's serial number.
        queue: the agent's queue.
        classname, method: what was called.
        caller: the name of the credentials that made it.
        state: one of ``STATES`` (or ``pending`` while being sent).
        created, updated: epoch seconds.
        deadline: when a call the agent has not started expires.
        progress: the last progress report (``total``, ``completed``, ``details``).
        result: what the method returned (``succeeded``).
        error: the exception (``failed``) or the reason (``rejected``, ``expired``).
        idempotency_key, digest: the caller's key and the request's digest.
    """

    sn: str
    queue: str
    classname: str
    method: str
    caller: str
    state: str = PENDING
    created: float = 0.0
    updated: float = 0.0
    deadline: float | None = None
    progress: Any = None
    result: Any = None
    error: Any = None
    idempotency_key: str | None = None
    digest: str | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def as_dict(self) -> dict[str, Any]:
        """The call as the API shows it."""
        shown: dict[str, Any] = {
            "sn": self.sn,
            "agent": self.queue,
            "class": self.classname,
            "method": self.method,
            "state": self.state,
            "created": _iso(self.created),
            "updated": _iso(self.updated),
        }
        if self.progress is not None:
            shown["progress"] = self.progress
        if self.state == SUCCEEDED:
            shown["result"] = self.result
        if self.error is not None:
            shown["error"] = self.error
        return shown


@dataclasses.dataclass(frozen=True)
class Event:
    """A change of a call: ``id`` (from 1 per call), ``kind`` (a state) and its data."""

    id: int
    kind: str
    data: Any


class StoreError(GoferError):
    """The database cannot be opened or read (a path, permission or disk problem)."""


class KeyReusedError(GoferError):
    """An idempotency key came again with a different request."""


class Store:
    """Calls and events in one sqlite file (or ``:memory:``).

    Args:
        path: the database file; its directory is made if missing (mode 0700).
        keep: seconds a call is kept after its last change.
        max_kept: the most calls kept.
    """

    def __init__(self, path: Path | str, *, keep: float = 86400.0, max_kept: int = 100_000):
        if str(path) != ":memory:":
            Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keep = keep
        self.max_kept = max_kept
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the call database {path}: {exc}") from exc
        try:
            self._db.row_factory = sqlite3.Row
            # WAL with synchronous=NORMAL: a commit survives a gateway crash;
            # only a power cut may take the last ones (the broker redelivers
            # the replies not yet acknowledged, which covers most of those).
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self._db.close()  # not left for the garbage collector to find open
            raise StoreError(f"cannot open the call database {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- adding and finding -------------------------------------------------

    def add(self, call: CallRecord) -> CallRecord:
        """Add a call (``pending``); a call of the same caller and key is returned instead.

        Raises:
            KeyReusedError: that caller's key names a call with another digest.
        """
        now = time.time()
        call = dataclasses.replace(call, created=now, updated=now)
        with self._lock, self._db:
            if call.idempotency_key is not None:
                found = self._by_key(call.caller, call.idempotency_key)
                if found is not None:
                    if found.digest != call.digest:
                        raise KeyReusedError(call.idempotency_key)
                    return found
            self._db.execute(
                "INSERT INTO calls (sn, queue, classname, method, caller, state, created,"
                " updated, deadline, idempotency_key, digest) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    call.sn,
                    call.queue,
                    call.classname,
                    call.method,
                    call.caller,
                    PENDING,
                    now,
                    now,
                    call.deadline,
                    call.idempotency_key,
                    call.digest,
                ),
            )
        return call

    def get(self, sn: str) -> CallRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM calls WHERE sn = ?", (sn,)).fetchone()
        return None if row is None else _record(row)

    def recent(self, caller: str, limit: int) -> list[CallRecord]:
        """The last ``limit`` calls ``caller`` made, newest first (those being sent left out)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM calls WHERE caller = ? AND state != ?"
                " ORDER BY created DESC, rowid DESC LIMIT ?",
                (caller, PENDING, limit),
            ).fetchall()
        return [_record(row) for row in rows]

    def _by_key(self, caller: str, key: str) -> CallRecord | None:
        row = self._db.execute(
            "SELECT * FROM calls WHERE caller = ? AND idempotency_key = ?", (caller, key)
        ).fetchone()
        return None if row is None else _record(row)

    def discard(self, sn: str) -> None:
        """Forget a pending call whose request could not be sent."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM calls WHERE sn = ? AND state = ?", (sn, PENDING))

    def drop_pending(self) -> int:
        """Forget calls left pending by a gateway that stopped while sending them.

        Their callers never got an answer (nor the sn); a retry with the
        same Idempotency-Key sends the request again.
        """
        with self._lock, self._db:
            return int(self._db.execute("DELETE FROM calls WHERE state = ?", (PENDING,)).rowcount)

    # -- changes ------------------------------------------------------------

    def confirmed(self, sn: str) -> None:
        """The broker has the request: a pending call becomes ``accepted``."""
        with self._lock, self._db:
            cursor = self._db.execute(
                "UPDATE calls SET state = ?, updated = ? WHERE sn = ? AND state = ?",
                (ACCEPTED, time.time(), sn, PENDING),
            )
            if cursor.rowcount:
                self._event(sn, ACCEPTED, {"by": "broker"})

    def record(self, sn: str, kind: str, data: Any = None, **values: Any) -> bool:
        """A reply for ``sn``: add its event and apply the state and ``values`` it brings.

        ``kind`` ``accepted`` (the agent has it) adds an event only.
        Nothing changes for a call already final or unknown.

        Args:
            kind: a state.
            data: the event's data.
            values: ``progress``, ``result`` or ``error`` to set.

        Returns:
            True when the call changed.
        """
        with self._lock, self._db:
            row = self._db.execute("SELECT state FROM calls WHERE sn = ?", (sn,)).fetchone()
            if row is None or row["state"] in FINAL:
                return False
            state = row["state"] if kind == ACCEPTED else kind
            if state == PENDING and kind == ACCEPTED:
                state = ACCEPTED  # the agent answered before the broker's confirm came back
            sets = ["state = ?", "updated = ?"]
            params: list[Any] = [state, time.time()]
            for name in ("progress", "result", "error"):
                if name in values:
                    sets.append(f"{name} = ?")
                    params.append(json.dumps(values[name]))
            self._db.execute(f"UPDATE calls SET {', '.join(sets)} WHERE sn = ?", (*params, sn))  # noqa: S608 - the names are ours
            self._event(sn, kind, data)
        return True

    def _event(self, sn: str, kind: str, data: Any) -> None:
        count, last = self._db.execute(
            "SELECT COUNT(*), COALESCE(MAX(id), 0) FROM events WHERE sn = ?", (sn,)
        ).fetchone()
        if count >= MAX_EVENTS and kind not in FINAL:
            return
        self._db.execute(
            "INSERT INTO events (sn, id, kind, data, at) VALUES (?,?,?,?,?)",
            (sn, last + 1, kind, json.dumps(data), time.time()),
        )

    def events(self, sn: str, after: int = 0) -> list[Event]:
        """The events of ``sn`` with an id above ``after``, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, data FROM events WHERE sn = ? AND id > ? ORDER BY id",
                (sn, after),
            ).fetchall()
        return [Event(row["id"], row["kind"], json.loads(row["data"])) for row in rows]

    # -- housekeeping -------------------------------------------------------

    def expire(self, now: float | None = None) -> list[str]:
        """Calls past their deadline that no agent started: ``expired``; their sns."""
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT sn FROM calls WHERE state = ? AND deadline IS NOT NULL AND deadline < ?",
                (ACCEPTED, now),
            ).fetchall()
        expired = []
        for row in rows:
            reason = {"code": "request.expired", "description": "no agent started it in time"}
            if self.record(row["sn"], EXPIRED, reason, error=reason):
                expired.append(row["sn"])
        return expired

    def sweep(self, now: float | None = None) -> int:
        """Drop calls unchanged for ``keep`` seconds, then the oldest above ``max_kept``."""
        now = time.time() if now is None else now
        with self._lock, self._db:
            dropped = self._db.execute(
                "DELETE FROM calls WHERE updated < ?", (now - self.keep,)
            ).rowcount
            (count,) = self._db.execute("SELECT COUNT(*) FROM calls").fetchone()
            if count > self.max_kept:
                dropped += self._db.execute(
                    "DELETE FROM calls WHERE sn IN"
                    " (SELECT sn FROM calls ORDER BY updated, rowid LIMIT ?)",
                    (count - self.max_kept,),
                ).rowcount
        return int(dropped)

    def counts(self) -> dict[str, int]:
        """How many calls are kept, by state."""
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM calls GROUP BY state").fetchall()
        return {str(state): int(count) for state, count in rows}


def _record(row: sqlite3.Row) -> CallRecord:
    def loaded(name: str) -> Any:
        text = row[name]
        return None if text is None else json.loads(text)

    return CallRecord(
        sn=row["sn"],
        queue=row["queue"],
        classname=row["classname"],
        method=row["method"],
        caller=row["caller"],
        state=row["state"],
        created=row["created"],
        updated=row["updated"],
        deadline=row["deadline"],
        progress=loaded("progress"),
        result=loaded("result"),
        error=loaded("error"),
        idempotency_key=row["idempotency_key"],
        digest=row["digest"],
    )


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


__all__ = ["STATES", "CallRecord", "Event", "KeyReusedError", "Store", "StoreError"]
