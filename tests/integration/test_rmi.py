"""Remote calls written as the user guide shows them, answered by an agent loop over RabbitMQ."""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid

import pytest

from gofer.errors import (
    MemberNotFound,
    NamespaceNotFound,
    NotAuthorized,
    NotFoundError,
    RemoteError,
    RequestRejectedError,
    RequestTimeout,
)
from gofer.messaging.adapter.model import Queue
from gofer.messaging.auth import HmacAuthenticator
from gofer.messaging.connection import Connection
from gofer.proxy import Agent
from gofer.rmi import exceptions, transport, wire
from gofer.rmi.async_ import ReplyConsumer
from tests.integration import zoo

# -- synchronous calls ------------------------------------------------------


def test_synchronous_call(url: str, mini_agent) -> None:
    agent = Agent(url, mini_agent.address)
    dog = agent.Dog()
    assert dog.bark("hello") == 'Yes master.  I will bark because that is what dogs do. "hello"'


def test_keyword_arguments_reach_the_method(url: str, mini_agent) -> None:
    dog = Agent(url, mini_agent.address).Dog()
    assert dog.bark("hi", loud=True).startswith("YES MASTER")


def test_constructor_arguments(url: str, mini_agent) -> None:
    dog = Agent(url, mini_agent.address).Dog()
    dog("rover", age=3)
    assert dog.whoami() == ["rover", 3]
    dog("max", age=5)
    assert dog.whoami() == ["max", 5]


def test_inherited_remote_method(url: str, mini_agent) -> None:
    assert Agent(url, mini_agent.address).Dog().breathe() == "in, out"


def test_module_function_and_item_access(url: str, mini_agent) -> None:
    agent = Agent(url, mini_agent.address)
    assert agent.zoo.echo({"a": [1, 2]}) == {"a": [1, 2]}
    assert agent["Dog"]().bark("x").endswith('"x"')


def test_none_is_a_result(url: str, mini_agent) -> None:
    assert Agent(url, mini_agent.address).Dog().nothing() is None


def test_progress_reaches_the_callback(url: str, mini_agent) -> None:
    reports: list[dict] = []
    dog = Agent(url, mini_agent.address).Dog(progress=reports.append)
    assert dog.wag(3).startswith("Yes master")
    assert [(r["completed"], r["total"]) for r in reports] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert reports[-1]["details"] == "wag 3"


def test_data_is_round_tripped_in_progress(url: str, mini_agent) -> None:
    reports: list[dict] = []
    dog = Agent(url, mini_agent.address, data={"task": 7}).Dog(progress=reports.append)
    dog.wag(1)
    assert reports[0]["data"] == {"task": 7}


# -- exceptions -------------------------------------------------------------


def test_builtin_exception_is_rebuilt(url: str, mini_agent) -> None:
    dog = Agent(url, mini_agent.address).Dog()
    with pytest.raises(ZeroDivisionError) as caught:
        dog.divide(1, 0)
    assert "ZeroDivisionError" in caught.value.remote_traceback  # type: ignore[attr-defined]


def test_unregistered_exception_is_a_remote_error(url: str, mini_agent) -> None:
    dog = Agent(url, mini_agent.address).Dog()
    with pytest.raises(RemoteError) as caught:
        dog.sit()
    error = caught.value
    assert (error.xclass, error.xargs) == ("BadDog", ["rex", "will not sit"])
    assert error.xmodule.endswith("zoo")
    assert "will not sit" in error.remote_traceback


def test_registered_exception_is_rebuilt_as_itself(url: str, mini_agent) -> None:
    exceptions.register(zoo.BadDog)
    try:
        dog = Agent(url, mini_agent.address).Dog()
        dog("fido")
        with pytest.raises(zoo.BadDog) as caught:
            dog.sit()
        assert caught.value.name == "fido"
        assert caught.value.reason == "will not sit"
    finally:
        exceptions.unregister(zoo.BadDog)


def test_unknown_class_and_method(url: str, mini_agent) -> None:
    agent = Agent(url, mini_agent.address)
    with pytest.raises(NamespaceNotFound, match=r'"Cat" not provided by plugin\.'):
        agent.Cat().meow()
    for name in ("nosuch", "not_remote", "_private"):
        with pytest.raises(MemberNotFound, match=f'"Dog.{name}\\(\\)" not provided by plugin.'):
            agent.Dog()[name]()


def test_wrong_arguments_are_a_clear_type_error(url: str, mini_agent) -> None:
    with pytest.raises(TypeError, match=r"Dog\.bark\(\)"):
        Agent(url, mini_agent.address).Dog().bark()


def test_value_json_cannot_carry_is_an_error(url: str, mini_agent) -> None:
    with pytest.raises(TypeError, match="JSON"):
        Agent(url, mini_agent.address).Dog().unserializable()


def test_secret(url: str, mini_agent) -> None:
    assert Agent(url, mini_agent.address, secret="mycathas9lives").Dog().secret_trick() == "trick"
    with pytest.raises(NotAuthorized):
        Agent(url, mini_agent.address).Dog().secret_trick()
    with pytest.raises(NotAuthorized):
        Agent(url, mini_agent.address).Dog(secret="wrong").secret_trick()


# -- other call modes -------------------------------------------------------


def test_fire_and_forget_returns_the_serial_number(url: str, mini_agent) -> None:
    sn = Agent(url, mini_agent.address, wait=0).Dog().bark("hello")
    uuid.UUID(sn)
    deadline = time.monotonic() + 10
    while sn not in mini_agent.served and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sn in mini_agent.served


def test_asynchronous_replies_reach_a_listener_object(url: str, mini_agent) -> None:
    reply_queue = f"gofer-test-replies-{uuid.uuid4()}"
    seen: queue.Queue = queue.Queue()

    class Listener:
        def accepted(self, reply) -> None:
            seen.put(("accepted", reply.sn, reply.data))

        def started(self, reply) -> None:
            seen.put(("started", reply.sn, reply.data))

        def succeeded(self, reply) -> None:
            seen.put(("succeeded", reply.sn, reply.retval))

        def failed(self, reply) -> None:
            seen.put(("failed", reply.sn, reply.xclass))

    consumer = ReplyConsumer(reply_queue, url=url)
    consumer.start(Listener())
    try:
        agent = Agent(url, mini_agent.address, reply=reply_queue, data={"task": 1})
        sn = agent.Dog().bark("async")
        events = [seen.get(timeout=10) for _ in range(3)]
        assert [e[0] for e in events] == ["accepted", "started", "succeeded"]
        assert {e[1] for e in events} == {sn}
        assert events[0][2] == {"task": 1}
        assert events[2][2].endswith('"async"')
        failed_sn = agent.Dog().sit()
        assert [seen.get(timeout=10) for _ in range(3)][-1] == ("failed", failed_sn, "BadDog")
    finally:
        consumer.stop()
        consumer.join(5)
        _delete_queue(url, reply_queue)


def test_a_final_reply_sent_twice_reaches_the_listener_once(url: str) -> None:
    # A reply whose publish confirm a broker outage swallowed is sent again:
    # the consumer passes on the first copy only, progress and all.
    reply_queue = f"gofer-test-replies-{uuid.uuid4()}"
    seen: queue.Queue = queue.Queue()
    consumer = ReplyConsumer(reply_queue, url=url)
    consumer.start(lambda reply: seen.put((reply.kind, reply.sn)))
    connection = Connection(url)
    try:
        sn = wire.new_sn()
        result = wire.result_document(sn, reply_queue, None, {"retval": 42})
        status = wire.status_document(sn, reply_queue, None, wire.PROGRESS, total=2, completed=1)
        for document in (status, status, result, result):
            connection.send(reply_queue, document.dump())
        other = wire.new_sn()
        connection.send(
            reply_queue, wire.result_document(other, reply_queue, None, {"retval": None}).dump()
        )
        got = [seen.get(timeout=10) for _ in range(4)]
        assert got == [("progress", sn), ("progress", sn), ("succeeded", sn), ("succeeded", other)]
        assert seen.empty()
    finally:
        connection.close()
        consumer.stop()
        consumer.join(5)
        _delete_queue(url, reply_queue)


def test_asynchronous_replies_reach_a_callable(url: str, mini_agent) -> None:
    reply_queue = f"gofer-test-replies-{uuid.uuid4()}"
    finals: queue.Queue = queue.Queue()

    def callback(reply) -> None:
        if reply.kind in ("succeeded", "failed"):
            try:
                reply.throw()
                finals.put(reply.retval)
            except ZeroDivisionError as exc:
                finals.put(type(exc).__name__)

    consumer = ReplyConsumer(reply_queue, url=url)
    consumer.start(callback)
    try:
        dog = Agent(url, mini_agent.address, reply=reply_queue).Dog()
        dog.divide(6, 3)
        assert finals.get(timeout=10) == 2
        dog.divide(1, 0)
        assert finals.get(timeout=10) == "ZeroDivisionError"
    finally:
        consumer.stop()
        consumer.join(5)
        _delete_queue(url, reply_queue)


def test_manual_trigger_sends_once(url: str, mini_agent) -> None:
    dog = Agent(url, mini_agent.address, trigger=1).Dog()
    trigger = dog.bark("later")
    uuid.UUID(trigger.sn)
    assert trigger.sn not in mini_agent.served
    assert trigger().endswith('"later"')
    assert trigger().endswith('"later"')
    assert mini_agent.served.count(trigger.sn) == 1


def test_timeout_carries_the_serial_number(url: str) -> None:
    address = f"gofer-test-nobody-{uuid.uuid4()}"
    _declare_queue(url, address)
    try:
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as caught:
            Agent(url, address, wait=1).Dog().bark("anyone?")
        assert 0.9 < time.monotonic() - started < 5
        uuid.UUID(caught.value.sn)
    finally:
        _delete_queue(url, address)


def test_call_to_missing_agent_queue_fails_at_once(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(NotFoundError):
        Agent(url, f"gofer-test-missing-{uuid.uuid4()}").Dog().bark("hello?")
    assert time.monotonic() - started < 5


def test_cancelled_request_sees_cancellation(url: str, mini_agent) -> None:
    dog = Agent(url, mini_agent.address, trigger=1).Dog()
    trigger = dog.wait_for_cancel(10)
    mini_agent.cancelled.add(trigger.sn)
    assert trigger() == "cancelled"


def test_agent_is_shared_by_threads_over_one_connection(url: str, mini_agent) -> None:
    transport.close_all()  # forget other tests' brokers
    agent = Agent(url, mini_agent.address)
    results: dict[tuple[int, int], str] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        dog = agent.Dog()
        try:
            for n in range(10):
                results[(worker, n)] = dog.bark(f"{worker}-{n}")
        except BaseException as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(results[(w, n)].endswith(f'"{w}-{n}"') for w in range(8) for n in range(10))
    assert len(transport._transports) == 1


# -- the fork model ---------------------------------------------------------


def test_fork_model_runs_in_a_child(url: str, mini_agent) -> None:
    pid = Agent(url, mini_agent.address).Dog().forked_pid()
    assert pid != os.getpid()


def test_fork_model_progress(url: str, mini_agent) -> None:
    reports: list[dict] = []
    dog = Agent(url, mini_agent.address).Dog(progress=reports.append)
    assert dog.forked_wag(2) == "wagged in a child"
    assert [r["completed"] for r in reports] == [0, 1, 2]


def test_fork_model_crash_is_a_failure(url: str, mini_agent) -> None:
    with pytest.raises(RemoteError) as caught:
        Agent(url, mini_agent.address).Dog().forked_crash()
    assert "3" in str(caught.value)


def test_fork_model_large_result(url: str, mini_agent) -> None:
    assert len(Agent(url, mini_agent.address, wait=60).Dog().forked_big(32)) == 32 * 1024 * 1024


# -- signing ----------------------------------------------------------------


def test_signed_calls(url: str, make_agent) -> None:
    key = os.urandom(32)
    agent_side = make_agent(HmacAuthenticator(key))
    signed = Agent(url, agent_side.address, authenticator=HmacAuthenticator(key))
    assert signed.Dog().bark("signed").endswith('"signed"')
    with pytest.raises(RequestRejectedError) as caught:
        Agent(url, agent_side.address).Dog().bark("unsigned")
    assert caught.value.code == "security.authentication"
    # A forger is refused too, but cannot check the agent's signed rejection:
    # to it the call simply times out.
    forged = Agent(url, agent_side.address, authenticator=HmacAuthenticator(os.urandom(32)), wait=2)
    with pytest.raises(RequestTimeout):
        forged.Dog().bark("forged")


# -- helpers ----------------------------------------------------------------


def _declare_queue(url: str, name: str) -> None:
    connection = Connection(url)
    try:
        connection.declare_queue(Queue(name, durable=False))
    finally:
        connection.close()


def _delete_queue(url: str, name: str) -> None:
    connection = Connection(url)
    try:
        connection.delete_queue(name)
    finally:
        connection.close()
