"""Asynchronous replies: reply types and the ``ReplyConsumer`` that feeds them to a listener.

::

    class Listener:
        def succeeded(self, reply): print(reply.sn, reply.retval)
        def failed(self, reply): print(reply.sn, reply.xclass)
        def progress(self, reply): print(reply.completed, "of", reply.total)

    consumer = ReplyConsumer("tasks", url="amqp://localhost")
    consumer.start(Listener())          # or any callable taking a reply
    Agent("amqp://localhost", "agent-1", reply="tasks").Dog().bark("hi")

A listener object may define any of ``accepted``, ``rejected``, ``started``,
``progress``, ``succeeded`` and ``failed``; a missing one is skipped. A
duplicate final reply (a redelivery) is not passed on twice.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any, Union

from gofer.errors import GoferError, RequestRejectedError
from gofer.messaging import auth
from gofer.messaging.adapter.model import Address, Queue
from gofer.messaging.connection import Connection
from gofer.messaging.document import Document
from gofer.rmi import exceptions, wire

log = logging.getLogger(__name__)


class Reply:
    """A reply to an asynchronous request.

    Attributes:
        sn: the request's serial number.
        origin: the sender the envelope names (``routing[0]``), if any.
        data: the caller's data from the request.
        timestamp: when the agent sent it (text), if it said.
        document: the whole envelope.
    """

    #: The listener method this reply goes to.
    kind = "reply"

    def __init__(self, document: Document) -> None:
        self.document = document
        self.sn: str = document.get("sn") or ""
        routing = document.get("routing")
        self.origin: Any = routing[0] if isinstance(routing, list) and routing else None
        self.data: Any = document.get("data")
        self.timestamp: str | None = document.get("timestamp")

    def throw(self) -> None:
        """Raise what the reply reports, if it reports a failure; otherwise nothing."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(sn={self.sn!r})"


class Accepted(Reply):
    """The agent has the request safely queued."""

    kind = "accepted"


class Started(Reply):
    """The request began to run."""

    kind = "started"


class Progress(Reply):
    """Progress of a running request: ``total``, ``completed`` and ``details``."""

    kind = "progress"

    def __init__(self, document: Document) -> None:
        super().__init__(document)
        self.total = document.get("total")
        self.completed = document.get("completed")
        self.details = document.get("details")


class Rejected(Reply):
    """The agent will not run the request: ``code``, ``description`` and ``details``."""

    kind = "rejected"

    def __init__(self, document: Document) -> None:
        super().__init__(document)
        self.code = document.get("code")
        self.description = document.get("description")
        self.details = document.get("details")

    def throw(self) -> None:
        raise RequestRejectedError(
            self.sn, str(self.code), str(self.description or ""), self.details
        )


class Succeeded(Reply):
    """The request returned ``retval``."""

    kind = "succeeded"

    def __init__(self, document: Document) -> None:
        super().__init__(document)
        self.retval = (document.get("result") or {}).get("retval")


class Failed(Reply):
    """The request raised; ``throw()`` raises it here (rebuilt, see gofer.rmi.exceptions)."""

    kind = "failed"

    def __init__(self, document: Document) -> None:
        super().__init__(document)
        result = document.get("result") or {}
        self.exval = result.get("exval")
        self.xmodule = result.get("xmodule")
        self.xclass = result.get("xclass")
        self.xargs = result.get("xargs")
        self.xstate = result.get("xstate")
        self._result = dict(result)

    def throw(self) -> None:
        raise exceptions.rebuild(self._result)


_BY_STATUS: dict[str, type[Reply]] = {
    wire.ACCEPTED: Accepted,
    wire.STARTED: Started,
    wire.PROGRESS: Progress,
    wire.REJECTED: Rejected,
}


def reply_for(document: Document) -> Reply | None:
    """The reply object for an envelope; None for something that is no reply."""
    status = document.get("status")
    if status:
        cls = _BY_STATUS.get(status)
        return cls(document) if cls else None
    result = document.get("result")
    if not isinstance(result, dict):
        return None
    return Succeeded(document) if "retval" in result else Failed(document)


Listener = Union[Callable[[Reply], Any], object]


class ListenerBase:
    """A listener doing nothing for every kind of reply; subclass it and override some.

    The existing gofer's ``gofer.rmi.async.Listener``.
    """

    def accepted(self, reply: Reply) -> None:
        """The agent has the request."""

    def rejected(self, reply: Reply) -> None:
        """The agent refused it."""

    def started(self, reply: Reply) -> None:
        """It began to run."""

    def progress(self, reply: Reply) -> None:
        """It reported progress."""

    def succeeded(self, reply: Reply) -> None:
        """It returned."""

    def failed(self, reply: Reply) -> None:
        """It raised."""


class ReplyConsumer:
    """Reads a reply queue and passes each reply to a listener, in its own thread.

    Args:
        queue: the reply address given to callers as ``reply=`` (``queue`` or
            ``exchange/queue``), or a :class:`gofer.messaging.Queue` (whose
            ``url`` is used when ``url`` is not given); a queue given by name is
            declared (durable) if missing, a ``Queue`` is its owner's to declare.
        url: the broker URL.
        authenticator: checks the replies' signatures when given.
    """

    def __init__(self, queue: object, url: str | None = None, authenticator: object = None) -> None:
        name = getattr(queue, "name", queue)
        self.queue = Address.parse(name).routing_key  # type: ignore[arg-type]
        self._declare = isinstance(queue, str)
        url = url or getattr(queue, "url", None) or "amqp://localhost"
        self.url = url
        self.authenticator = authenticator
        self._connection = Connection(url)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished: collections.OrderedDict[str, None] = collections.OrderedDict()

    def start(self, listener: Listener) -> None:
        """Declare the queue if needed and start passing replies to ``listener``."""
        if self._declare:
            self._connection.declare_queue(Queue(self.queue, durable=True))
        self._thread = threading.Thread(
            target=self._run,
            args=(listener,),
            name=f"gofer-reply-consumer {self.queue}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop after the reply being handled (if any)."""
        self._stopping.set()

    def shutdown(self, timeout: float | None = 10.0) -> None:
        """Stop, and wait for the consumer to end (the existing gofer's name for both)."""
        self.stop()
        self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the consumer thread to end, then close the connection."""
        if self._thread is not None:
            self._thread.join(timeout)
        self._connection.close()

    def _run(self, listener: Listener) -> None:
        reader = self._connection.reader(self.queue, prefetch=16)
        while not self._stopping.is_set():
            try:
                delivery = reader.get(timeout=0.5)
            except GoferError as exc:
                log.error("reading replies from %s: %s", self.queue, exc)
                self._stopping.wait(1.0)
                continue
            if delivery is None:
                continue
            try:
                document = auth.validate(self.authenticator, delivery.body)  # type: ignore[arg-type]
            except GoferError as exc:
                log.warning("reply on %s refused: %s", self.queue, exc)
            else:
                self._dispatch(listener, document)
            reader.ack(delivery)
        reader.close()

    def _dispatch(self, listener: Listener, document: Document) -> None:
        reply = reply_for(document)
        if reply is None:
            log.warning("message on %s is no reply; dropped", self.queue)
            return
        if isinstance(reply, (Succeeded, Failed)) and self._seen_final(reply.sn):
            log.debug("duplicate final reply for %s suppressed", reply.sn)
            return
        target = listener if not hasattr(listener, reply.kind) else getattr(listener, reply.kind)
        if not callable(target) or (target is listener and _is_listener_object(listener)):
            return
        try:
            target(reply)
        except Exception:
            log.exception("reply listener failed on %r", reply)

    def _seen_final(self, sn: str) -> bool:
        if sn in self._finished:
            return True
        self._finished[sn] = None
        while len(self._finished) > 10_000:
            self._finished.popitem(last=False)
        return False


def _is_listener_object(listener: object) -> bool:
    """True for an object with listener methods (it is not called as a whole)."""
    return any(
        hasattr(listener, name)
        for name in ("accepted", "rejected", "started", "progress", "succeeded", "failed")
    )
