"""The log's records: encoding, decoding and scanning them (their layout: the package docstring)."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from typing import NamedTuple

from gofer.agent.journal.entry import MAX_BODY, Entry, JournalError, check_sn

FILE_MAGIC = b"gofer-journal 1\n"
RECORD_MAGIC = b"\xa7GJr"
# The header of a journal format, this one's or another's (a later gofer's).
OTHER_FORMAT = re.compile(rb"gofer-journal ([0-9]{1,9})\n")

PUT, FINISH, CANCEL, START, RESULT = 1, 2, 3, 4, 5

HEADER = struct.Struct(">4sIIB")  # magic, crc, length, kind
_CHECKED = struct.Struct(">IB")  # length, kind: the part of the header the crc covers
_PUT_HEAD = struct.Struct(">dB")  # received, sn length
_MAX_PAYLOAD = MAX_BODY + _PUT_HEAD.size + 256


class Result(NamedTuple):
    """A recorded final result (see :meth:`Journal.record_result`)."""

    sn: str
    result: bytes


def encode(kind: int, payload: bytes) -> bytes:
    checked = _CHECKED.pack(len(payload), kind)
    crc = zlib.crc32(payload, zlib.crc32(checked))
    return b"".join((HEADER.pack(RECORD_MAGIC, crc, len(payload), kind), payload))


def encode_put(entry: Entry) -> bytes:
    sn, plugin = entry.sn.encode("ascii"), entry.plugin.encode("ascii")
    head = _PUT_HEAD.pack(entry.received, len(sn))
    return encode(PUT, b"".join((head, sn, bytes((len(plugin),)), plugin, entry.body)))


def encode_mark(kind: int, sn: str) -> bytes:
    return encode(kind, sn.encode("ascii"))


def put_size(entry: Entry) -> int:
    return HEADER.size + _PUT_HEAD.size + len(entry.sn) + 1 + len(entry.plugin) + len(entry.body)


def mark_size(sn: str) -> int:
    return HEADER.size + len(sn)


def scan(data: bytes) -> Iterator[tuple[int, tuple[int, Entry | str | Result] | int]]:
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


def _record_at(data: bytes, offset: int) -> tuple[tuple[int, Entry | str | Result], int] | None:
    """The decoded record at ``offset`` and the offset after it; None if there is none."""
    start = offset + HEADER.size
    if start > len(data):
        return None
    magic, crc, length, kind = HEADER.unpack_from(data, offset)
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


def _decode(kind: int, payload: bytes) -> Entry | str | Result:
    if kind in (FINISH, CANCEL, START):
        return check_sn(payload.decode("ascii"))
    if kind == RESULT:
        end = 1 + payload[0]
        return Result(check_sn(payload[1:end].decode("ascii")), payload[end:])
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
