"""What the log means: the fold of its records into pending, started, finished and cancelled."""

from __future__ import annotations

import collections
from collections import OrderedDict
from collections.abc import Iterator

from gofer.agent.journal.entry import Entry
from gofer.agent.journal.records import (
    CANCEL,
    FILE_MAGIC,
    FINISH,
    HEADER,
    RESULT,
    START,
    Result,
    encode,
    encode_mark,
    encode_put,
    mark_size,
    put_size,
)


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


class State:
    """What the log means: the fold of its records (see the package docstring)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.pending: dict[str, Entry] = {}
        self.finished = _Finished(capacity)
        self.cancelled: OrderedDict[str, None] = OrderedDict()
        self.started: set[str] = set()
        self.results: dict[str, bytes] = {}
        self.live_bytes = len(FILE_MAGIC)

    def apply(self, kind: int, value: Entry | str | Result) -> None:
        """Change the state as one record says."""
        if isinstance(value, Entry):
            self._put(value)
        elif isinstance(value, Result):
            if value.sn in self.pending and value.sn not in self.results:
                self.results[value.sn] = value.result
                self.live_bytes += HEADER.size + 1 + len(value.sn) + len(value.result)
        elif kind == FINISH:
            self._finish(value)
        elif kind == START:
            if value in self.pending and value not in self.started:
                self.started.add(value)
                self.live_bytes += mark_size(value)
        elif value not in self.finished:
            self._mark(self.cancelled, value)

    def _put(self, entry: Entry) -> None:
        old = self.pending.get(entry.sn)
        if old is not None:
            self.live_bytes -= put_size(old)
        self.pending[entry.sn] = entry
        self.live_bytes += put_size(entry)

    def _finish(self, sn: str) -> None:
        entry = self.pending.pop(sn, None)
        if entry is not None:
            self.live_bytes -= put_size(entry)
        if sn in self.started:
            self.started.discard(sn)
            self.live_bytes -= mark_size(sn)
        result = self.results.pop(sn, None)
        if result is not None:
            self.live_bytes -= HEADER.size + 1 + len(sn) + len(result)
        if sn in self.cancelled:
            del self.cancelled[sn]
            self.live_bytes -= mark_size(sn)
        if self.finished.add(sn):
            self.live_bytes += mark_size(sn)
        for oldest in self.finished.evicted():
            self.live_bytes -= mark_size(oldest)

    def _mark(self, marks: OrderedDict[str, None], sn: str) -> None:
        if sn in marks:
            return
        marks[sn] = None
        self.live_bytes += mark_size(sn)
        if len(marks) > self.capacity:
            oldest, _ = marks.popitem(last=False)
            self.live_bytes -= mark_size(oldest)

    def records(self) -> Iterator[bytes]:
        """The records whose fold is this state: finished, cancelled, then pending puts."""
        yield FILE_MAGIC
        for sn in self.finished:
            yield encode_mark(FINISH, sn)
        for sn in self.cancelled:
            yield encode_mark(CANCEL, sn)
        for entry in self.pending.values():
            yield encode_put(entry)
        for sn in self.started:
            yield encode_mark(START, sn)
        for sn, result in self.results.items():
            yield encode(RESULT, bytes([len(sn)]) + sn.encode("ascii") + result)
