"""Wire timestamps: written as WIRE.md shows them, read back whatever the sender."""

from __future__ import annotations

import calendar
import time

import pytest

from gofer.rmi import wire


def test_a_timestamp_is_iso_utc_to_the_second() -> None:
    assert wire.timestamp(1795374852.9) == "2026-11-22T19:14:12Z"


def test_timestamps_of_different_seconds_differ() -> None:
    # Consecutive seconds, then back: the text follows the time asked for.
    texts = [wire.timestamp(t) for t in (1795374852, 1795374853, 1795374852.5, 0)]
    assert texts == [
        "2026-11-22T19:14:12Z",
        "2026-11-22T19:14:13Z",
        "2026-11-22T19:14:12Z",
        "1970-01-01T00:00:00Z",
    ]


def test_now_is_the_default() -> None:
    before = int(time.time())
    read = wire.parse_timestamp(wire.timestamp())
    assert read is not None
    assert before <= read <= time.time()


@pytest.mark.parametrize(
    "text",
    ["2026-11-22T19:14:12Z", "2024-02-29T00:00:00Z", "1999-12-31T23:59:59Z", "2026-1-2T3:04:05Z"],
)
def test_timestamps_read_as_strptime_reads_them(text: str) -> None:
    expected = float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    assert wire.parse_timestamp(text) == expected


def test_a_leap_second_is_read() -> None:
    assert wire.parse_timestamp("2016-12-31T23:59:60Z") == wire.parse_timestamp(
        "2017-01-01T00:00:00Z"
    )


@pytest.mark.parametrize(
    "value",
    [
        None,
        12,
        "",
        "yesterday",
        "2026-02-30T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T19:14:12",
        "2026-11-22 19:14:12Z",
        "2026-11-22T19:14:12Z" * 1000,
    ],
)
def test_unreadable_timestamps_are_none(value: object) -> None:
    assert wire.parse_timestamp(value) is None
