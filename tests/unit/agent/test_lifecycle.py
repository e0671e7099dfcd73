"""The decisions on a journaled request: run it, resend, answer interrupted, reject, or keep."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gofer.agent import lifecycle
from gofer.agent.journal import Entry, Journal
from gofer.agent.lifecycle import Handover, Step
from gofer.errors import RequestInterruptedError
from gofer.rmi import exceptions, wire


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    opened = Journal(tmp_path / "journal")
    yield opened
    opened.close()


def journaled(journal: Journal, *, ttl: float | None = None, started: bool = False) -> wire.Request:
    doc = wire.request_document(
        sn=wire.new_sn(),
        address="agent",
        classname="Dog",
        method="bark",
        replyto="replies",
        ttl=ttl,
    )
    request = wire.parse_request(doc)
    journal.write(Entry(request.sn, "dog", doc.dump(), time.time()), started=started)
    return request


def test_a_new_request_runs(journal: Journal) -> None:
    request = journaled(journal)
    assert lifecycle.before_run(request, journal, time.time(), replayed=False) == lifecycle.RUN


def test_a_replayed_request_that_had_started_is_answered_interrupted_not_run(
    journal: Journal,
) -> None:
    request = journaled(journal, started=True)
    decision = lifecycle.before_run(request, journal, time.time(), replayed=True)
    assert decision.step is Step.INTERRUPTED
    with pytest.raises(RequestInterruptedError, match=r"Dog\.bark\(\): goferd stopped"):
        raise exceptions.rebuild(lifecycle.interrupted_result(request))


def test_a_started_request_handed_on_unrun_runs(journal: Journal) -> None:
    # A runner that took it over after a reload: never ran, whatever the journal says.
    request = journaled(journal, started=True)
    assert lifecycle.before_run(request, journal, time.time(), replayed=False) == lifecycle.RUN


def test_a_kept_result_is_resent_rather_than_run_again(journal: Journal) -> None:
    request = journaled(journal, started=True)
    journal.record_result(request.sn, b'{"retval": 7}')
    decision = lifecycle.before_run(request, journal, time.time(), replayed=True)
    assert decision.step is Step.RESEND
    assert decision.kept == b'{"retval": 7}'


def test_a_cancelled_request_is_rejected(journal: Journal) -> None:
    request = journaled(journal)
    journal.cancel(request.sn)
    decision = lifecycle.before_run(request, journal, time.time(), replayed=False)
    assert decision.rejected is not None
    assert decision.rejected.code == wire.CANCELLED


def test_an_expired_request_is_rejected_with_its_ttl(journal: Journal) -> None:
    request = journaled(journal, ttl=5)
    received = time.time()
    assert (
        lifecycle.before_run(request, journal, received, replayed=False, now=received + 4).step
        is Step.RUN
    )
    decision = lifecycle.before_run(request, journal, received, replayed=False, now=received + 6)
    assert decision.rejected is not None
    assert decision.rejected.code == wire.EXPIRED
    assert decision.rejected.details == {"ttl": 5}


@pytest.mark.parametrize(
    ("enabled", "code", "words"),
    [(False, wire.UNKNOWN_PLUGIN, "is disabled"), (None, wire.UNKNOWN_PLUGIN, "was removed")],
)
def test_the_request_of_a_plugin_disabled_or_removed_is_rejected(
    journal: Journal, enabled: bool | None, code: str, words: str
) -> None:
    request = journaled(journal)
    decision = lifecycle.without_runner("dog", request, time.time(), enabled=enabled)
    assert decision.rejected is not None
    assert decision.rejected.code == code
    assert words in decision.rejected.description


def test_the_request_of_a_plugin_that_may_load_again_is_kept_until_it_expires(
    journal: Journal,
) -> None:
    request = journaled(journal, ttl=60)
    received = time.time()
    kept = lifecycle.without_runner("dog", request, received, enabled=True, now=received + 30)
    assert kept == lifecycle.KEEP
    late = lifecycle.without_runner("dog", request, received, enabled=True, now=received + 61)
    assert late.rejected is not None
    assert late.rejected.code == wire.EXPIRED


class StoppedRunner:
    """What a stopped runner tells: what still runs, what it took and never ran."""

    def __init__(self, running: list[str], unrun: list[str]) -> None:
        self._running = running
        self._unrun = unrun
        self.replier: Any = object()

    def running(self) -> list[str]:
        return list(self._running)

    def unrun(self) -> list[str]:
        return list(self._unrun)


def entry(sn: str, plugin: str = "dog") -> Entry:
    return Entry(sn, plugin, b"{}", time.time())


def test_handover_gives_the_next_runner_what_the_last_never_ran_with_its_replier() -> None:
    busy, waiting, other = wire.new_sn(), wire.new_sn(), wire.new_sn()
    handover = Handover()
    runner = StoppedRunner(running=[busy], unrun=[waiting])
    handover.retire(runner)
    pending = [entry(busy), entry(waiting), entry(other, plugin="cat")]
    assert [e.sn for e in handover.left(pending, {"dog"})] == [waiting]
    assert handover.take(waiting) == (True, runner.replier)
    assert handover.take(waiting) == (False, None)  # taken once


def test_handover_forgets_requests_no_longer_pending() -> None:
    answered = wire.new_sn()
    handover = Handover()
    handover.retire(StoppedRunner(running=[], unrun=[answered]))
    handover.left([], {"dog"})
    assert handover.take(answered) == (False, None)
