"""The old gofer's small helper modules plugins import: ``gofer.metrics`` and ``gofer.compat``."""

from __future__ import annotations

import json
import time

from gofer.compat import json as compat_json
from gofer.metrics import Timer


def test_compat_json_is_the_standard_json() -> None:
    assert compat_json is json


def test_timer_text_is_the_old_one() -> None:
    assert str(Timer()) == "not-running"
    assert str(Timer(1700000000.5)) == "started: 1700000000 (running)"
    assert str(Timer(100, 100.25)) == "250 (ms)"
    assert str(Timer(100, 102.5)) == "2.500 (seconds)"
    assert str(Timer(100, 102.9996)) == "2.999 (seconds)"
    assert str(Timer(100, 190)) == "1.500 (minutes)"


def test_timer_starts_stops_and_serves_as_a_context_manager() -> None:
    assert Timer().stop().stopped == 0  # never started: nothing to stop
    with Timer() as timer:
        time.sleep(0.01)
    assert 0.01 <= timer.duration() < 5
    assert str(timer).endswith("(ms)")
    assert timer.start().stopped == 0
