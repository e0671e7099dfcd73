"""The thread that reads the gateway's durable reply queue into the store.

The queue is named in the configuration and durable, with no expiry: while
the gateway is down (restart, upgrade) the agents' replies wait in it, and
the gateway reads them when it is back. A reply is acknowledged only once
the store has it, so a crash in between makes the broker deliver it again
(the store ignores what it already applied to a final call).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from gofer.errors import GoferError, InvalidDocumentError, NotFoundError, UnsupportedError
from gofer.gateway import store as states
from gofer.gateway.store import Store
from gofer.messaging import auth
from gofer.messaging.adapter.model import Broker, Queue, QueueType
from gofer.messaging.connection import Connection, Reader
from gofer.messaging.retry import Backoff
from gofer.rmi import exceptions, wire

log = logging.getLogger(__name__)

#: Replies the broker may hand over before the first is acknowledged.
PREFETCH = 64


class Collector(threading.Thread):
    """Reads ``queue`` and applies each reply to the store; ``changed(sn)`` after each.

    Args:
        broker: the broker settings.
        queue: the reply queue's name (declared durable here).
        store: where the calls are.
        changed: called (in this thread) with the serial number and the new
            state of each call a reply changed.
        authenticator: checks the replies' signatures when given.
    """

    def __init__(
        self,
        broker: Broker,
        queue: str,
        store: Store,
        changed: Callable[[str, str], None],
        authenticator: auth.Authenticator | None = None,
    ) -> None:
        super().__init__(name=f"gofer-gateway-replies {queue}", daemon=True)
        self.queue = queue
        self.store = store
        self.changed = changed
        self.authenticator = authenticator
        self.connection = Connection(broker, backoff=Backoff(initial=0.5, maximum=5.0, limit=10.0))
        self.received = 0
        self._stopping = threading.Event()
        self._ready = threading.Event()

    @property
    def connected(self) -> bool:
        """True while the broker connection is open and the queue is read."""
        return self._ready.is_set() and self.connection.connected_to is not None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the reply being handled, and wait for the thread to end."""
        self._stopping.set()
        if self.ident is not None:
            self.join(timeout)

    def run(self) -> None:
        reader = self._open()
        if reader is None:
            return
        try:
            while not self._stopping.is_set():
                self._read(reader)
        finally:
            reader.close()
            self.connection.close()

    def _declare(self) -> None:
        """Declare the reply queue: durable; a quorum queue on a cluster.

        On a cluster (a URL naming several nodes) a quorum queue, as the
        callers' reply queues are (gofer.rmi.transport): the replies in it
        outlive the node it was on. A broker without quorum queues gets a
        classic one.
        """
        kind: QueueType = "quorum" if self.connection.broker.url.alternates else "classic"
        try:
            self.connection.declare_queue(Queue(self.queue, durable=True, queue_type=kind))
        except UnsupportedError:
            self.connection.declare_queue(Queue(self.queue, durable=True))

    def _open(self) -> Reader | None:
        """Declare the queue (retrying while the broker is away) and subscribe."""
        while not self._stopping.is_set():
            try:
                self._declare()
                reader = self.connection.reader(self.queue, prefetch=PREFETCH)
                reader.open()
            except GoferError as exc:
                log.error("reply queue %s: %s", self.queue, exc)
                self._stopping.wait(2.0)
                continue
            self._ready.set()
            log.info("reading replies from %s", self.queue)
            return reader
        return None

    def _read(self, reader: Reader) -> None:
        try:
            delivery = reader.get(timeout=0.5)
        except NotFoundError:
            log.warning("reply queue %s vanished; declaring it again", self.queue)
            self._ready.clear()
            self._redeclare()
            return
        except GoferError as exc:
            log.error("reading replies from %s: %s", self.queue, exc)
            self._stopping.wait(1.0)
            return
        if delivery is None:
            return
        self.received += 1
        try:
            document = auth.validate(self.authenticator, delivery.body)
        except (InvalidDocumentError, auth.ValidationFailed) as exc:
            log.warning("reply on %s refused: %s", self.queue, exc)
        else:
            change = apply(self.store, document)
            if change is not None:
                try:
                    self.changed(*change)
                except Exception:
                    log.exception("notifying the change of %s failed", change[0])
        reader.ack(delivery)

    def _redeclare(self) -> None:
        try:
            self._declare()
            self._ready.set()
        except GoferError as exc:
            log.error("cannot declare reply queue %s: %s", self.queue, exc)
            self._stopping.wait(1.0)


def apply(store: Store, document: Any) -> tuple[str, str] | None:
    """Apply one reply document to its call: (sn, the event's kind) when the call changed."""
    sn = document.get("sn")
    if not isinstance(sn, str):
        log.warning("reply without a serial number dropped")
        return None
    status = document.get("status")
    if status == wire.ACCEPTED:
        kind, changed = states.ACCEPTED, store.record(sn, states.ACCEPTED, {"by": "agent"})
    elif status == wire.STARTED:
        kind, changed = states.STARTED, store.record(sn, states.STARTED)
    elif status == wire.PROGRESS:
        report = {key: document.get(key) for key in ("total", "completed", "details")}
        kind, changed = states.PROGRESS, store.record(sn, states.PROGRESS, report, progress=report)
    elif status == wire.REJECTED:
        reason = {
            "code": document.get("code"),
            "description": document.get("description"),
            "details": document.get("details"),
        }
        kind = states.EXPIRED if reason["code"] == wire.EXPIRED else states.REJECTED
        changed = store.record(sn, kind, reason, error=reason)
    else:
        result = document.get("result")
        if not isinstance(result, dict):
            log.warning("reply to %s without status or result dropped", sn)
            return None
        if "retval" in result:
            value = result["retval"]
            kind = states.SUCCEEDED
            changed = store.record(sn, kind, {"result": value}, result=value)
        else:
            error = remote_error(result)
            kind, changed = states.FAILED, store.record(sn, states.FAILED, error, error=error)
    return (sn, kind) if changed else None


def remote_error(result: dict[str, Any]) -> dict[str, Any]:
    """A remote exception as the API shows it: its class, module, text, arguments, trace."""
    rebuilt = exceptions.rebuild(dict(result))
    xstate = result.get("xstate")
    state: dict[str, Any] = xstate if isinstance(xstate, dict) else {}
    return {
        "type": result.get("xclass") or type(rebuilt).__name__,
        "module": result.get("xmodule"),
        "message": str(rebuilt),
        "args": result.get("xargs"),
        "traceback": state.get("trace"),
    }


__all__ = ["Collector", "apply", "remote_error"]
