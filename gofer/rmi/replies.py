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

from gofer.errors import RequestRejectedError
from gofer.messaging.adapter.model import Queue as QueueSettings
from gofer.messaging.consumer import Consumer
from gofer.messaging.document import Document
from gofer.rmi import exceptions, wire

log = logging.getLogger(__name__)


class Reply:
    """A reply to an asynchronous request (the existing gofer's ``AsyncReply``).

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

    def notify(self, listener: Listener) -> None:
        """Pass this reply to ``listener``: to its method named for the reply, else to it.

        A listener object without that method is skipped (it wants none of
        these); a plain callable gets every reply.
        """
        method = getattr(listener, self.kind, None)
        if callable(method):
            method(self)
        elif callable(listener) and not _is_listener_object(listener):
            listener(self)

    def throw(self) -> None:
        """Raise what the reply reports, if it reports a failure; otherwise nothing."""

    def _details(self) -> dict[str, Any]:
        return {}

    def __str__(self) -> str:
        fields = {"sn": self.sn, "origin": self.origin, "timestamp": self.timestamp}
        fields.update(data=self.data, **self._details())
        return f"{type(self).__name__} " + " ".join(f"{k}={v!r}" for k, v in fields.items())

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

    def _details(self) -> dict[str, Any]:
        return {"total": self.total, "completed": self.completed, "details": self.details}


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

    def _details(self) -> dict[str, Any]:
        return {"code": self.code, "description": self.description, "details": self.details}


class FinalReply(Reply):
    """The last reply to a request: it either returned or raised."""

    def succeeded(self) -> bool:
        """True when the request returned."""
        return False

    def failed(self) -> bool:
        """True when the request raised."""
        return not self.succeeded()


class Succeeded(FinalReply):
    """The request returned ``retval``."""

    kind = "succeeded"

    def __init__(self, document: Document) -> None:
        super().__init__(document)
        self.retval = (document.get("result") or {}).get("retval")

    def succeeded(self) -> bool:
        return True

    def _details(self) -> dict[str, Any]:
        return {"retval": self.retval}


class Failed(FinalReply):
    """The request raised.

    Attributes:
        exval: the exception, rebuilt here (see gofer.rmi.exceptions); its
            ``remote_traceback`` is the agent's traceback text.
        xmodule, xclass, xargs, xstate: what the agent said about it
            (``xstate["trace"]`` is the traceback text too).
    """

    kind = "failed"

    def __init__(self, document: Document) -> None:
        super().__init__(document)
        result = document.get("result") or {}
        self.xmodule = result.get("xmodule")
        self.xclass = result.get("xclass")
        self.xargs = result.get("xargs")
        self.xstate = result.get("xstate")
        self.exval = exceptions.rebuild(dict(result))

    def throw(self) -> None:
        raise self.exval

    def _details(self) -> dict[str, Any]:
        return {"exval": self.exval}


#: The existing gofer's name of the reply base class.
AsyncReply = Reply


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


class ReplyConsumer(Consumer):
    """Reads a reply queue and passes each reply to a listener, in its own thread.

    Args:
        queue: the reply address given to callers as ``reply=`` (``queue`` or
            ``exchange/queue``), or a :class:`gofer.messaging.Queue` (whose
            ``url`` is used when ``url`` is not given); a queue given by name is
            declared (durable) if missing, a ``Queue`` is its owner's to declare.
        url: the broker URL.
        authenticator: checks the replies' signatures when given.

    Attributes:
        listener: what :meth:`start` was given.
    """

    #: Replies are small and many: let the broker hand over several at once.
    prefetch = 16

    def __init__(self, queue: Any, url: str | None = None, authenticator: Any = None) -> None:
        super().__init__(queue, url)
        self.authenticator = authenticator
        self.listener: Listener = None
        self._declare = isinstance(queue, str)
        self._finished: collections.OrderedDict[str, None] = collections.OrderedDict()

    def start(self, listener: Listener = None) -> None:
        """Declare the queue if needed and start passing replies to ``listener``."""
        self.listener = listener
        if self._declare:
            self._connection.declare_queue(QueueSettings(self.queue, durable=True))
        super().start()

    def stop(self) -> None:
        """Stop after the reply being handled (if any)."""
        super().shutdown()

    def shutdown(self, timeout: float | None = 10.0) -> None:
        """Stop, and wait up to ``timeout`` seconds for the consumer to end."""
        self.stop()
        self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the consumer thread to end (at once for one never started, or from itself).

        A listener may shut its own consumer down: the thread ends after it returns.
        """
        if self.ident is not None and threading.current_thread() is not self:
            super().join(timeout)

    def dispatch(self, document: Document) -> None:
        """Pass the reply in ``document`` to the listener (a final reply once only)."""
        reply = reply_for(document)
        if reply is None:
            log.warning("message on %s is no reply; dropped", self.queue)
            return
        if isinstance(reply, FinalReply) and self._seen_final(reply.sn):
            log.debug("duplicate final reply for %s suppressed", reply.sn)
            return
        try:
            reply.notify(self.listener)
        except Exception:
            log.exception("reply listener failed on %r", reply)

    def rejected(self, code: str, description: str, document: Any, details: Any) -> None:
        log.warning("reply on %s refused: %s", self.queue, description)

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
