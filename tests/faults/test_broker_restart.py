"""RabbitMQ stopped and started while callers keep calling a real goferd.

Four threads make synchronous calls (``wait`` of 10 s) and one more sends
asynchronous requests whose replies go to a durable queue, all through the
whole restart. Afterwards:

- every request the broker confirmed (the asynchronous sender knows which)
  ran exactly once and got one final answer; none ran twice, whatever the
  callers saw. A reply is sent at least once: when the broker goes down
  between taking a reply and confirming it, goferd cannot know and sends it
  again, so the same final reply may arrive twice (reply consumers drop the
  copy, see tests/integration/test_rmi.py). Two *different* final replies to
  one request are a defect;
- every synchronous call ended with its result or a gofer error, within its
  wait (plus a little for the connect and the reply's trip);
- goferd answered a call within 5 s of the broker being back (``rabbitmqctl
  await_startup`` done), the caller's own reconnection included, with
  goferd's reconnect_max at 4 s; and, since a single outage samples the
  jittered back-off only once, goferd never planned a wait between reconnect
  attempts longer than that (its log's "next attempt within ...s"), or it
  could miss the broker's return by more.

The broker stays down for ``OUTAGE`` seconds, long enough for goferd's
back-off to grow. This is the only test of the suite that restarts the
broker: it takes about 40 s, and disturbs anything else using the broker
meanwhile.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from gofer.errors import GoferError
from gofer.proxy import Agent
from gofer.rmi import transport
from tests import brokers
from tests.faults.conftest import FaultGoferd, ReplyQueue
from tests.faults.load import Load

CALLERS = 4
WAIT = 10.0
#: What a synchronous call may take beyond its wait: a connect attempt and a reply's trip.
SLACK = 3.0
RECOVERY = 5.0
OUTAGE = 15.0
RETRY_DELAY = re.compile(r"next attempt within ([0-9.]+)s")
#: goferd's reconnect pacing here: the defaults (1 s to 60 s) suit a fleet
#: of thousands; this test holds one goferd to a recovery within RECOVERY.
RECONNECT = {"reconnect_min": 0.5, "reconnect_max": 4}


@pytest.fixture
def fresh_transports() -> Iterator[None]:
    """Later tests start with new caller connections, not ones that lived through the restart."""
    yield
    transport.close_all()


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.usefixtures("fresh_transports")
def test_broker_restart_under_load(
    rabbitmq: brokers.TestBroker, fault_goferd, reply_queue: ReplyQueue, url: str
) -> None:
    goferd: FaultGoferd = fault_goferd(threads=4, messaging=RECONNECT)
    assert Agent(url, goferd.queue, wait=30).Fault().work("warm-up") == "warm-up"
    load = Load(
        url,
        goferd.queue,
        reply_queue.name,
        wait=WAIT,
        callers=CALLERS,
        work=0.05,
        send_work=0.02,
        pace=0.0,
        send_pace=0.02,
    )
    load.start()
    time.sleep(2.0)

    stopped = time.monotonic()
    rabbitmq.run("stop", timeout=120)
    time.sleep(OUTAGE)
    rabbitmq.run("start", timeout=240)  # returns once rabbitmqctl await_startup is done
    back = time.monotonic()
    problems: list[
        str
    ] = []  # every check is reported: a restart is too dear to learn one at a time
    try:
        assert Agent(url, goferd.queue, wait=30).Fault().work("probe") == "probe"
    except GoferError as exc:
        unsent = [line for line in goferd.log().splitlines() if "not sent" in line]
        problems.append(f"no answer after the broker came back: {exc}; goferd: {unsent[-3:]}")
    recovery = time.monotonic() - back
    time.sleep(3.0)
    load.stop()

    confirmed = set(load.confirmed)
    answered = reply_queue.read(lambda _: set(reply_queue.finals()) >= confirmed, timeout=60)
    time.sleep(1.0)  # a duplicate would arrive now
    reply_queue.read(lambda _: False, timeout=0.5)
    finals = reply_queue.finals()
    starts = goferd.starts()
    ran = Counter(tag for event, _, tag in goferd.executions() if event == "start")
    kinds = Counter(outcome.kind for outcome in load.outcomes)
    delays = [float(delay) for delay in RETRY_DELAY.findall(goferd.log())]
    late = [o for o in load.outcomes if o.seconds > WAIT + SLACK]
    print(
        f"\nbroker restart: outage {back - stopped:.1f}s; goferd answered {recovery:.2f}s after"
        f" the broker was back; sync calls {dict(kinds)}, longest"
        f" {max(o.seconds for o in load.outcomes):.1f}s; async: {len(confirmed)} confirmed,"
        f" {len(load.unsure)} unsure, {sum(finals.values()) - len(finals)} final replies sent"
        f" twice; goferd's longest reconnect wait {max(delays, default=0):.1f}s"
    )

    if recovery > RECOVERY:
        problems.append(f"goferd answered {recovery:.1f}s after the broker came back")
    if max(delays, default=0.0) > RECOVERY:
        problems.append(f"goferd planned reconnect waits over {RECOVERY:g}s: {sorted(delays)[-5:]}")
    if not answered:
        problems.append(f"confirmed, never answered: {sorted(confirmed - set(finals))[:5]}")
    if twice := reply_queue.contradicting():
        problems.append(f"answered differently more than once: {twice}")
    if twice := {tag: n for tag, n in ran.items() if n > 1}:
        problems.append(f"run more than once: {twice}")
    if never := sorted(sn for sn in confirmed if starts[sn] != 1):
        problems.append(f"confirmed, never run: {never[:5]}")
    if lost := reply_queue.statuses("accepted") - set(finals):
        problems.append(f"accepted, never answered: {sorted(lost)[:5]}")
    if not kinds["result"]:
        problems.append("no synchronous call succeeded")
    if strays := [
        o for o in load.outcomes if o.kind == "wrong result" or o.kind.startswith("not a")
    ]:
        problems.append(f"callers got neither a result nor a gofer error: {strays[:3]}")
    if late:
        problems.append(f"{len(late)} calls outlived their wait of {WAIT:g}s, e.g. {late[:3]}")
    if unsure := [o.tag for o in load.outcomes if o.kind == "result" and ran[o.tag] != 1]:
        problems.append(f"results of calls that did not run once: {unsure[:5]}")
    assert problems == [], "\n".join(problems)
