"""goferd as operators run it: a real process, real plugins, real RabbitMQ, the documented CLI."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gofer.errors import (
    MemberNotFound,
    NamespaceNotFound,
    NotFoundError,
    RemoteError,
    RequestRejectedError,
    RequestTimeout,
)
from gofer.messaging.adapter.model import Queue
from gofer.messaging.connection import Connection
from gofer.proxy import Agent
from gofer.rmi.async_ import ReplyConsumer
from tests.e2e.conftest import REPO, Goferd
from tests.e2e.scenarios import cancel_while_running, reply_consumer

GOFER = [sys.executable, str(REPO / "bin/gofer")]


def gofer(*args: str, root: Goferd | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if root is not None:
        env["GOFER_ROOT"] = str(root.root)
    return subprocess.run(
        [*GOFER, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


# -- calls through the proxy --------------------------------------------------


def test_calls_exceptions_and_constructor_args(shared_goferd: Goferd) -> None:
    agent = Agent(shared_goferd.url, shared_goferd.queue)
    assert agent.Cow().moo() == "moo from daisy"
    cow = agent.Cow()
    cow("bella")
    assert cow.moo(times=2) == "moo moo from bella"
    with pytest.raises(ValueError, match="bella kicks"):
        cow.kick()
    assert agent.farm.whoami() == shared_goferd.process.pid  # type: ignore[union-attr]
    assert agent.Cow().config_value() == "hello from the farm"
    with pytest.raises(NamespaceNotFound):
        agent.Horse().neigh()
    with pytest.raises(MemberNotFound):
        agent.Cow().fly()


def test_forwarding_reaches_a_plugin_without_a_queue(shared_goferd: Goferd) -> None:
    assert Agent(shared_goferd.url, shared_goferd.queue).Barn().doors() == "open"


def test_admin(shared_goferd: Goferd) -> None:
    admin = Agent(shared_goferd.url, shared_goferd.queue).Admin()
    assert admin.hello().startswith("Hello, I am gofer agent")
    assert admin.echo({"x": [1]}) == {"x": [1]}
    text = admin.help()
    assert "  farm" in text
    assert "farm.Cow.moo(times=1)" in text
    assert "barn.Barn.doors()" in text
    assert "farm.tick 0:00:01" in text


def test_progress_and_async_replies(shared_goferd: Goferd) -> None:
    reports: list[dict] = []
    agent = Agent(shared_goferd.url, shared_goferd.queue)
    assert agent.Cow(progress=reports.append).graze(3) == "grazed"
    assert [r["completed"] for r in reports][-3:] == [1, 2, 3]
    with reply_consumer(shared_goferd) as (replies, seen):
        sn = Agent(shared_goferd.url, shared_goferd.queue, reply=replies).Cow().moo()
        kinds = [seen.get(timeout=10) for _ in range(3)]
        assert kinds == [("accepted", sn), ("started", sn), ("succeeded", sn)]


def test_actions_run_at_their_interval(shared_goferd: Goferd) -> None:
    ticks = shared_goferd.marks / "ticks"
    first = len(ticks.read_text().splitlines())
    time.sleep(2.6)
    assert len(ticks.read_text().splitlines()) - first >= 2
    assert (shared_goferd.marks / "loaded").exists()


# -- the CLI --------------------------------------------------------------------


def test_gofer_rmi_cli(shared_goferd: Goferd) -> None:
    base = ["rmi", "-u", shared_goferd.url, "-a", shared_goferd.queue]
    done = gofer(*base, "-t", "Cow.moo", "times=2")
    assert (done.returncode, done.stdout.strip()) == (0, "moo moo from daisy")
    failed = gofer(*base, "-t", "Cow.kick")
    assert failed.returncode == 1
    assert "ValueError" in failed.stderr
    sn = gofer(*base, "-w", "0", "-t", "Cow.moo")
    assert sn.returncode == 0
    uuid.UUID(sn.stdout.strip())


def test_gofer_mgt_show(shared_goferd: Goferd) -> None:
    shown = gofer("mgt", "-s", root=shared_goferd)
    assert shown.returncode == 0, shown.stderr
    assert "<plugin> farm" in shown.stdout
    assert "moo(times=1)" in shown.stdout


# -- cancellation ---------------------------------------------------------------


def test_cancel_running_direct_request(shared_goferd: Goferd) -> None:
    cancelled = cancel_while_running(shared_goferd, "chew", 20, after=0.5)
    assert cancelled.answer == [cancelled.sn]
    assert cancelled.outcome == "stopped chewing"
    assert cancelled.seconds < 10


def test_cancel_running_fork_request_kills_the_child(shared_goferd: Goferd) -> None:
    error = cancel_while_running(shared_goferd, "sleep_in_child", 30, after=0.7).outcome
    assert isinstance(error, RemoteError)
    assert error.xclass == "CancelledError"


def test_cancel_queued_request_by_criteria(make_goferd) -> None:
    goferd = make_goferd(main={"threads": 1})
    busy = Agent(goferd.url, goferd.queue, trigger=1).Cow()
    first = busy.chew(3)
    waiting = Agent(goferd.url, goferd.queue, trigger=1, data={"task": 42}).Cow().moo()
    results: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: results.put(first()), daemon=True).start()
    time.sleep(0.5)

    def second() -> None:
        try:
            results.put(waiting())
        except RequestRejectedError as exc:
            results.put(exc)

    threading.Thread(target=second, daemon=True).start()
    time.sleep(0.5)
    cancelled = goferd.mgt("cancel", criteria={"match": {"task": 42}})
    outcome = [results.get(timeout=15), results.get(timeout=15)]
    rejected = [o for o in outcome if isinstance(o, RequestRejectedError)]
    assert "chewed" in outcome
    assert len(rejected) == 1
    assert rejected[0].code == "request.cancelled"
    assert cancelled == {"cancelled": [waiting.sn]}


# -- plugin management ------------------------------------------------------------


def test_load_reload_unload_through_gofer_mgt(make_goferd) -> None:
    goferd = make_goferd()
    agent = Agent(goferd.url, goferd.queue, wait=10)
    descriptor = goferd.root / "etc/gofer/plugins/farm.conf"
    assert gofer("mgt", "-u", "farm", root=goferd).returncode == 0
    assert (goferd.marks / "unloaded").exists()
    with pytest.raises((NotFoundError, RequestTimeout)):
        agent.Cow().moo()  # managed=2: the queue went with the plugin
    loaded = gofer("mgt", "-l", str(descriptor), root=goferd)
    assert loaded.returncode == 0, loaded.stderr
    assert agent.Cow().moo() == "moo from daisy"
    reloaded = gofer("mgt", "-r", "farm", root=goferd)
    assert reloaded.returncode == 0, reloaded.stderr
    assert agent.Cow().moo() == "moo from daisy"


def test_requests_taken_when_their_plugin_reloads_are_run_after_it(make_goferd) -> None:
    # latency=2 holds each accepted request back before it starts: a reload
    # then stops the runner under it. The runner that takes over must run
    # it, not leave it in the journal until goferd restarts.
    goferd = make_goferd(main={"latency": 2, "threads": 2})
    replies = f"gofer-e2e-replies-{uuid.uuid4()}"
    accepted: set[str] = set()
    finals: queue.Queue = queue.Queue()
    consumer = ReplyConsumer(replies, url=goferd.url)

    def listen(reply) -> None:  # type: ignore[no-untyped-def]
        if reply.kind == "accepted":
            accepted.add(reply.sn)
        elif reply.kind in ("succeeded", "failed", "rejected"):
            finals.put((reply.sn, getattr(reply, "retval", reply.kind)))

    consumer.start(listen)
    try:
        agent = Agent(goferd.url, goferd.queue, reply=replies)
        sns = {agent.Cow().moo(times=n): n for n in (1, 2, 3)}
        deadline = time.monotonic() + 10
        while accepted != set(sns):
            assert time.monotonic() < deadline, goferd.log()[-3000:]
            time.sleep(0.02)
        reloaded = gofer("mgt", "-r", "farm", root=goferd)
        assert reloaded.returncode == 0, reloaded.stderr
        answers = dict(finals.get(timeout=30) for _ in sns)
        assert answers == {sn: " ".join(["moo"] * n) + " from daisy" for sn, n in sns.items()}
    finally:
        consumer.stop()
        consumer.join(5)


def test_monitor_follows_descriptors_added_changed_and_removed(make_goferd) -> None:
    goferd = make_goferd(start=False)
    conf = goferd.root / "etc/gofer/agent.conf"
    conf.write_text(conf.read_text().replace("monitor=0", "monitor=1"))
    goferd.start()
    agent = Agent(goferd.url, goferd.queue, wait=10)
    farm = goferd.root / "etc/gofer/plugins/farm.conf"
    assert agent.Cow().config_value() == "hello from the farm"

    def plugins() -> set[str]:
        return {plugin["name"] for plugin in goferd.mgt("show")["plugins"]}

    def soon(done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 20
        while not done():
            assert time.monotonic() < deadline, f"{what}:\n{goferd.log()[-3000:]}"
            time.sleep(0.1)

    farm.write_text(farm.read_text().replace("hello from the farm", "howdy"))
    soon(lambda: "reloading plugin farm" in goferd.log(), "an edit did not reload")
    assert agent.Cow().config_value() == "howdy"

    (goferd.root / "etc/gofer/plugins/barn.conf").unlink()
    soon(lambda: plugins() == {"farm"}, "a removed descriptor did not unload")
    (goferd.root / "etc/gofer/plugins/broken.conf").write_text("[main\nenabled=1\n")
    soon(lambda: "broken.conf" in goferd.log(), "a broken descriptor was not reported")

    farm.write_text(farm.read_text().replace("enabled=1", "enabled=0"))
    soon(lambda: plugins() == set(), "disabling did not unload")
    assert (goferd.marks / "unloaded").exists()
    farm.write_text(farm.read_text().replace("enabled=0", "enabled=1"))
    soon(lambda: plugins() == {"farm"}, "enabling did not load")
    assert agent.Cow().moo() == "moo from daisy"  # the queue was kept throughout


# -- request life ---------------------------------------------------------------------


def test_expired_request_is_answered_expired(make_goferd) -> None:
    goferd = make_goferd(main={"latency": 2})
    with pytest.raises(RequestRejectedError) as caught:
        Agent(goferd.url, goferd.queue, ttl=1, wait=10).Cow().moo()
    assert caught.value.code == "request.expired"


def test_sigterm_drains_running_requests(make_goferd) -> None:
    goferd = make_goferd()
    trigger = Agent(goferd.url, goferd.queue, trigger=1).Cow().chew(2)
    results: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: results.put(trigger()), daemon=True).start()
    time.sleep(0.7)
    goferd.signal(signal.SIGTERM)
    assert results.get(timeout=20) == "chewed"
    assert goferd.wait(30) == 0


def test_sigkill_then_restart_answers_every_accepted_request(make_goferd) -> None:
    goferd = make_goferd(main={"threads": 1})
    replies = f"gofer-e2e-replies-{uuid.uuid4()}"
    finals: queue.Queue = queue.Queue()
    accepted: set[str] = set()
    consumer = ReplyConsumer(replies, url=goferd.url)

    def listen(reply) -> None:  # type: ignore[no-untyped-def]
        if reply.kind == "accepted":
            accepted.add(reply.sn)
        elif reply.kind in ("succeeded", "failed", "rejected"):
            finals.put((reply.kind, reply.sn))

    consumer.start(listen)
    try:
        agent = Agent(goferd.url, goferd.queue, reply=replies)
        sns = [agent.Cow().chew(0.5) for _ in range(6)]
        time.sleep(1.0)
        goferd.kill()
        goferd.start()
        got: dict[str, list[str]] = {}
        deadline = time.monotonic() + 30
        while len(got) < len(sns) and time.monotonic() < deadline:
            try:
                kind, sn = finals.get(timeout=1)
            except queue.Empty:
                continue
            got.setdefault(sn, []).append(kind)
        assert sorted(got) == sorted(sns)
        assert all(len(kinds) == 1 for kinds in got.values()), got
        # The one running at the kill is answered, not run again.
        assert [kinds[0] for kinds in got.values()].count("failed") <= 1
        assert "not run again" in goferd.log() or "failed" not in str(got)
    finally:
        consumer.stop()
        consumer.join(5)


# -- hostile input ----------------------------------------------------------------------

HOSTILE_SNS = ["../../etc/passwd", "x" * 5000, "", None, 7, {"a": 1}, "\x00", "../journal"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda children: (
                st.lists(children, max_size=4)
                | st.dictionaries(st.text(max_size=8), children, max_size=4)
            ),
            max_leaves=20,
        ).map(lambda value: json.dumps(value).encode()),
        st.fixed_dictionaries(
            {
                "sn": st.sampled_from(HOSTILE_SNS) | st.text(max_size=40),
                "version": st.sampled_from(["2.0", "1.0", 2, None]),
                "replyto": st.just(None),
                "request": st.one_of(
                    st.none(),
                    st.text(max_size=10),
                    st.fixed_dictionaries(
                        {
                            "classname": st.sampled_from(["Cow", "Admin", "Nope", "", 5, None]),
                            "method": st.sampled_from(["moo", "_x", "__init__", "", None]),
                            "args": st.one_of(
                                st.none(), st.lists(st.integers(), max_size=3), st.text(max_size=5)
                            ),
                            "kws": st.one_of(
                                st.none(),
                                st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
                                st.integers(),
                            ),
                        }
                    ),
                ),
            }
        ).map(lambda value: json.dumps(value).encode()),
    )
)
def test_hostile_messages_are_answered_or_logged(hostile_goferd, body: bytes) -> None:
    goferd, connection, replies = hostile_goferd
    envelope = _with_reply(body, replies)
    connection.send(goferd.queue, envelope)


def _with_reply(body: bytes, replies: str) -> bytes:
    """Give JSON objects a reply address so that refusals can be answered."""
    try:
        value = json.loads(body)
    except ValueError:
        return body
    if isinstance(value, dict):
        value["replyto"] = replies
        return json.dumps(value).encode()
    return body


@pytest.fixture(scope="module")
def hostile_goferd(url: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    goferd = Goferd(tmp_path_factory.mktemp("goferd-hostile"), url, f"gofer-e2e-{uuid.uuid4()}")
    goferd.start()
    connection = Connection(url)
    replies = f"gofer-e2e-hostile-replies-{uuid.uuid4()}"
    connection.declare_queue(Queue(replies, durable=False))
    yield goferd, connection, replies
    try:
        # goferd survived, still answers, and touched nothing outside its journal.
        assert Agent(url, goferd.queue, wait=30).Admin().hello().startswith("Hello")
        assert goferd.process is not None
        assert goferd.process.poll() is None
        files = {p.relative_to(goferd.root).parts[0] for p in goferd.root.rglob("*")}
        assert files <= {"etc", "usr", "var", "run", "marks", "goferd.log"}
        reader = connection.reader(replies, prefetch=50)
        answered = 0
        accepted, finished = set(), set()
        while (delivery := reader.get(timeout=1)) is not None:
            reply = json.loads(delivery.body)
            # Refused, or (drawn well-formed by chance, e.g. Cow.moo with sn "F")
            # served: accepted, started, then its result.
            assert reply.get("status") in ("rejected", "accepted", "started") or "result" in reply
            if reply.get("status") == "accepted":
                accepted.add(reply["sn"])
            elif reply.get("status") != "started":
                finished.add(reply["sn"])
            answered += 1
            reader.ack(delivery)
        reader.close()
        assert answered > 0
        assert accepted <= finished, "accepted but never answered"
    finally:
        connection.delete_queue(replies)
        connection.close()
        goferd.stop()


def test_systemd_notify_and_sighup_reload(make_goferd, tmp_path) -> None:  # type: ignore[no-untyped-def]
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(30)
    try:
        goferd = make_goferd(start=False)
        goferd.extra_env = {"NOTIFY_SOCKET": str(notify_path)}
        goferd.start()
        assert listener.recv(4096) == b"READY=1"
        goferd.signal(signal.SIGHUP)
        assert listener.recv(4096) == b"RELOADING=1"
        assert listener.recv(4096) == b"READY=1"
        assert Agent(goferd.url, goferd.queue).Cow().moo() == "moo from daisy"
        goferd.signal(signal.SIGTERM)
        assert listener.recv(4096) == b"STOPPING=1"
        assert goferd.wait(30) == 0
    finally:
        listener.close()


def test_deleted_queue_is_repaired(make_goferd, url: str) -> None:  # type: ignore[no-untyped-def]
    goferd = make_goferd()
    connection = Connection(url)
    try:
        connection.delete_queue(goferd.queue)
    finally:
        connection.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            assert Agent(goferd.url, goferd.queue, wait=5).Cow().moo() == "moo from daisy"
            break
        except NotFoundError:
            time.sleep(0.5)
    else:
        pytest.fail(f"queue not repaired:\n{goferd.log()}")


def test_request_cut_off_by_sigkill_is_answered_not_rerun(make_goferd) -> None:  # type: ignore[no-untyped-def]
    goferd = make_goferd()
    replies = f"gofer-e2e-replies-{uuid.uuid4()}"
    seen: queue.Queue = queue.Queue()
    consumer = ReplyConsumer(replies, url=goferd.url)
    consumer.start(seen.put)
    try:
        sn = Agent(goferd.url, goferd.queue, reply=replies).Cow().milk("once", 10)
        while seen.get(timeout=10).kind != "started":
            pass
        time.sleep(0.5)  # well into its 10 s
        goferd.kill()
        goferd.start()
        final = seen.get(timeout=20)
        while final.kind not in ("succeeded", "failed"):
            final = seen.get(timeout=20)
        assert (final.sn, final.kind, final.xclass) == (sn, "failed", "RequestInterruptedError")
        assert (goferd.marks / "milked").read_text().splitlines() == ["once"]
    finally:
        consumer.stop()
        consumer.join(5)
