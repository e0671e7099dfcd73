"""Reply objects and their ReplyConsumer, as callers of the existing gofer use them."""

from __future__ import annotations

import importlib
import threading
from typing import Any

import pytest

from gofer.errors import RemoteError, RequestRejectedError
from gofer.messaging import Queue
from gofer.messaging.document import Document
from gofer.rmi import wire
from gofer.rmi.async_ import (
    Accepted,
    AsyncReply,
    Failed,
    FinalReply,
    Listener,
    Progress,
    Rejected,
    ReplyConsumer,
    Started,
    Succeeded,
)
from gofer.rmi.replies import reply_for

SN = "0a5c2b2e-8d6e-4c3b-a5a5-6b0d3e3c7d11"


def result(**fields: Any) -> Document:
    doc = wire.result_document(SN, "replies", {"task": 7}, dict(fields))
    doc["routing"] = ["agent-1", "replies"]
    return doc


def status(name: str, **fields: Any) -> Document:
    doc = wire.status_document(SN, "replies", {"task": 7}, name, **fields)
    doc["routing"] = ["agent-1", "replies"]
    return doc


def failure() -> Document:
    return result(
        exval="Traceback ...\nValueError: no such dog\n",
        xmodule="builtins",
        xclass="ValueError",
        xargs=["no such dog"],
        xstate={"trace": "Traceback ...\nValueError: no such dog\n"},
    )


def test_every_reply_carries_the_envelope_fields() -> None:
    for doc in (result(retval=1), failure(), status("accepted"), status("started")):
        reply = reply_for(doc)
        assert isinstance(reply, AsyncReply)
        assert (reply.sn, reply.origin, reply.data) == (SN, "agent-1", {"task": 7})
        assert reply.timestamp


def test_final_replies_say_whether_they_succeeded() -> None:
    succeeded, failed = reply_for(result(retval=[1, 2])), reply_for(failure())
    assert isinstance(succeeded, Succeeded)
    assert isinstance(succeeded, FinalReply)
    assert isinstance(failed, Failed)
    assert isinstance(failed, FinalReply)
    assert (succeeded.succeeded(), succeeded.failed()) == (True, False)
    assert (failed.succeeded(), failed.failed()) == (False, True)
    assert succeeded.retval == [1, 2]
    succeeded.throw()  # nothing to raise


def test_failed_carries_the_rebuilt_exception_and_what_the_agent_said() -> None:
    reply = reply_for(failure())
    assert isinstance(reply, Failed)
    assert isinstance(reply.exval, ValueError)
    assert reply.exval.args == ("no such dog",)
    assert (reply.xmodule, reply.xclass, reply.xargs) == ("builtins", "ValueError", ["no such dog"])
    assert "ValueError: no such dog" in reply.xstate["trace"]  # what Pulp reads
    with pytest.raises(ValueError, match="no such dog"):
        reply.throw()


def test_failed_with_an_unknown_class_is_a_remote_error() -> None:
    doc = result(exval="x", xmodule="zoo.errors", xclass="Escaped", xargs=["tiger"], xstate={})
    reply = reply_for(doc)
    assert isinstance(reply, Failed)
    assert isinstance(reply.exval, RemoteError)
    with pytest.raises(RemoteError, match="tiger"):
        reply.throw()


def test_status_replies() -> None:
    progress = reply_for(status("progress", total=10, completed=3, details="dug"))
    assert isinstance(progress, Progress)
    assert (progress.total, progress.completed, progress.details) == (10, 3, "dug")
    assert isinstance(reply_for(status("accepted")), Accepted)
    assert isinstance(reply_for(status("started")), Started)


def test_rejected_throws() -> None:
    reply = reply_for(status("rejected", code="model.version", description="expected 2.0"))
    assert isinstance(reply, Rejected)
    with pytest.raises(RequestRejectedError):
        reply.throw()


def test_str_names_the_kind_and_the_request() -> None:
    text = str(reply_for(result(retval="woof")))
    assert text.startswith("Succeeded ")
    assert SN in text
    assert "woof" in text
    assert "agent-1" in text


class Recorder(Listener):
    """The old base class: override what you want."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def succeeded(self, reply: Any) -> None:
        self.seen.append(("succeeded", reply.retval))

    def progress(self, reply: Any) -> None:
        self.seen.append(("progress", reply.completed))


class Partial:
    """A listener object without a method for every kind of reply."""

    def __init__(self) -> None:
        self.failed_replies: list[Any] = []

    def failed(self, reply: Any) -> None:
        self.failed_replies.append(reply)


def test_notify_calls_the_method_for_the_kind_of_reply() -> None:
    listener = Recorder()
    for doc in (status("accepted"), status("progress", completed=1), result(retval="ok")):
        reply_for(doc).notify(listener)  # type: ignore[union-attr]
    assert listener.seen == [("progress", 1), ("succeeded", "ok")]

    partial = Partial()
    reply_for(result(retval=1)).notify(partial)  # type: ignore[union-attr]
    reply_for(failure()).notify(partial)  # type: ignore[union-attr]
    assert len(partial.failed_replies) == 1


def test_notify_calls_a_callable_with_every_reply() -> None:
    got: list[Any] = []
    for doc in (status("started"), result(retval=1)):
        reply_for(doc).notify(got.append)  # type: ignore[union-attr]
    assert [type(reply) for reply in got] == [Started, Succeeded]


def consumer(queue: Any = "replies") -> ReplyConsumer:
    return ReplyConsumer(queue, url="amqp://localhost")


def test_reply_consumer_takes_a_name_or_a_queue() -> None:
    by_name = consumer("amq.direct/tasks")
    assert (by_name.queue, by_name.url) == ("tasks", "amqp://localhost")
    by_queue = ReplyConsumer(Queue("tasks", url="amqp://broker.example.com"))
    assert (by_queue.queue, by_queue.url) == ("tasks", "amqp://broker.example.com")
    by_queue.shutdown()  # never started: nothing to wait for


def test_reply_consumer_dispatches_a_final_reply_once() -> None:
    reader = consumer()
    got: list[Any] = []
    reader.listener = got.append
    reader.dispatch(status("accepted"))
    reader.dispatch(result(retval=1))
    reader.dispatch(result(retval=1))  # a redelivery
    assert [type(reply) for reply in got] == [Accepted, Succeeded]


def test_a_failing_listener_does_not_stop_the_consumer(caplog: pytest.LogCaptureFixture) -> None:
    reader = consumer()

    def broken(reply: Any) -> None:
        raise RuntimeError("listener bug")

    reader.listener = broken
    reader.dispatch(result(retval=1))
    assert "reply listener failed" in caplog.text


def test_a_listener_may_shut_its_consumer_down() -> None:
    class SelfStopping(ReplyConsumer):
        def run(self) -> None:  # no broker: just what a listener would do, in the thread
            self.shutdown()

    reader = SelfStopping("replies", url="amqp://localhost")
    threading.Thread.start(reader)  # (ReplyConsumer.start would declare the queue)
    reader.join(5)
    assert not reader.is_alive()  # and no "cannot join current thread" in the thread


def test_the_async_module_is_found_by_its_old_names() -> None:
    for name in ("gofer.rmi.async", "gofer.messaging.async"):
        module = importlib.import_module(name)
        assert module.ReplyConsumer is ReplyConsumer
        assert module.AsyncReply is AsyncReply
        assert module.Listener is Listener
