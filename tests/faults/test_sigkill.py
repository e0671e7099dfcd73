"""goferd killed with SIGKILL in the middle of its work, then started again on the same root."""

from __future__ import annotations

import time

from gofer.proxy import Agent
from tests.faults.conftest import ReplyQueue

REQUESTS = 10
SECONDS_EACH = 0.6


def test_sigkill_mid_run_then_restart_answers_every_request_the_same_way(
    fault_goferd, reply_queue: ReplyQueue
) -> None:
    goferd = fault_goferd(threads=2)
    agent = Agent(goferd.url, goferd.queue, reply=reply_queue.name)
    tags = {agent.Fault().work(f"kill-{n}", SECONDS_EACH): f"kill-{n}" for n in range(REQUESTS)}
    sns = list(tags)
    deadline = time.monotonic() + 20
    while len(goferd.starts()) < 3:  # one round done, the second running
        assert time.monotonic() < deadline, goferd.log()[-3000:]
        time.sleep(0.02)
    goferd.kill()
    events = goferd.executions()
    ended = {sn for event, sn, _ in events if event == "end"}
    cut_off = {sn for event, sn, _ in events if event == "start"} - ended
    assert cut_off, "the kill was meant to land while requests ran"

    goferd.start()
    assert reply_queue.read(lambda _: set(reply_queue.finals()) >= set(sns), timeout=30), (
        f"unanswered after the restart: {set(sns) - set(reply_queue.finals())}\n"
        + goferd.log()[-3000:]
    )
    time.sleep(1.0)  # a duplicate final reply would arrive now
    reply_queue.read(lambda _: False, timeout=0.5)

    answers: dict[str, list[str]] = {sn: [] for sn in sns}
    for reply in reply_queue.replies:
        if "result" in reply and not reply.get("status"):
            result = reply["result"]
            answers[reply["sn"]].append(result.get("xclass") or f"retval {result.get('retval')}")
        elif reply.get("status") == "rejected":
            answers[reply["sn"]].append(f"rejected {reply.get('code')}")
    # A kill after a final reply went out but before the journal recorded the
    # request as finished replays it (the journal's docstring owns up to the
    # window): the kept result goes again, a copy the caller drops by its
    # serial number (replies are at least once, README). Two different
    # answers to one request would be a defect.
    assert [sn for sn, got in answers.items() if not got] == [], "no final reply"
    assert reply_queue.contradicting() == {}, "answered differently more than once"
    # A request cut off by the kill may have done half its work: it is not run
    # again but answered RequestInterruptedError (README: goferd). One that had
    # returned but whose reply was not out yet is answered the same way.
    run_twice = {sn: n for sn, n in goferd.starts().items() if n > 1}
    assert run_twice == {}, f"run again after the kill (cut off: {sorted(cut_off)})"
    for sn in cut_off:
        assert set(answers[sn]) == {"RequestInterruptedError"}, (sn, answers[sn])
    for sn in set(sns) - cut_off:
        assert answers[sn][0] in ("RequestInterruptedError", f"retval {tags[sn]}"), answers[sn]
