"""How a call is made: synchronous, asynchronous, fire-and-forget, or held by a manual trigger."""

from __future__ import annotations

import logging
import queue as queues
import threading
import time
from collections.abc import Callable
from typing import Any

from gofer.errors import RequestRejectedError, RequestTimeoutError, RmiError
from gofer.errors import RequestTimeoutError as RequestTimeout
from gofer.messaging import auth
from gofer.messaging.adapter.model import TLS
from gofer.messaging.document import Document
from gofer.rmi import exceptions, wire
from gofer.rmi.options import Options
from gofer.rmi.transport import Reply, Transport, parse_reply, transport_for

log = logging.getLogger(__name__)


class Trigger:
    """A prepared call: ``.sn`` is known now; calling the trigger sends it (once).

    Calling it again returns the first outcome again (or raises it again)
    without sending anything.
    """

    def __init__(self, sn: str, fire: Callable[[], Any]) -> None:
        self.sn = sn
        self._fire = fire
        self._lock = threading.Lock()
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None

    def __call__(self) -> Any:
        with self._lock:
            if not self._done:
                try:
                    self._value = self._fire()
                except BaseException as exc:  # noqa: BLE001 - kept and raised again below
                    self._error = exc
                self._done = True
        if self._error is not None:
            raise self._error
        return self._value

    def __repr__(self) -> str:
        return f"Trigger(sn={self.sn!r}, pulled={self._done})"


class Call:
    """One remote call: what to invoke, where, and with which options."""

    def __init__(
        self,
        *,
        url: str,
        address: str,
        options: Options,
        classname: str,
        method: str,
        args: tuple[Any, ...],
        kws: dict[str, Any],
        cntr: tuple[tuple[Any, ...], dict[str, Any]] | None,
    ) -> None:
        self.url = url
        self.address = address
        self.options = options
        self.classname = classname
        self.method = method
        self.args = args
        self.kws = kws
        self.cntr = cntr
        self.sn = wire.new_sn()

    def __call__(self) -> Any:
        """Make the call (or return a trigger for it)."""
        if self.options.trigger:
            return Trigger(self.sn, self._send)
        return self._send()

    def transport(self) -> Transport:
        """The shared transport for this call's broker and connection settings."""
        options = self.options
        tls = TLS(
            cacert=options.cacert,
            clientcert=options.clientcert,
            clientkey=options.clientkey,
            host_validation=options.host_validation,
        )
        return transport_for(self.url, tls, options.heartbeat)

    def document(self, replyto: str | None, *, quiet: bool = False) -> Document:
        """The request document, its replies to go to ``replyto``.

        With ``quiet``, the agent is asked for no ``accepted``, ``started``
        or ``progress`` status: for a caller that would only drop them.
        """
        options = self.options
        pam = (options.user, options.password or "") if options.user else None
        return wire.request_document(
            sn=self.sn,
            address=self.address,
            classname=self.classname,
            method=self.method,
            args=self.args,
            kws=self.kws,
            cntr=self.cntr,
            replyto=replyto,
            data=options.data,
            ttl=options.effective_ttl(),
            secret=options.secret,
            pam=pam,
            quiet=quiet,
        )

    def _send(self) -> Any:
        transport = self.transport()
        options = self.options
        if not options.synchronous:
            document = self.document(options.reply)
            body = auth.sign(options.authenticator, document)
            transport.send(self.address, body, options.effective_ttl())
            return self.sn
        # One deadline for the whole call: preparing, sending and waiting.
        deadline = time.monotonic() + options.wait
        replyto = transport.reply_address(options.exchange, limit=options.wait)
        waiter = transport.expect(self.sn, progress=options.progress is not None)
        try:
            quiet = options.progress is None
            body = auth.sign(options.authenticator, self.document(replyto, quiet=quiet))
            limit = deadline - time.monotonic()
            transport.send(self.address, body, options.effective_ttl(), limit=limit)
            return self._wait(waiter.get, deadline)
        finally:
            transport.forget(self.sn)

    def _wait(self, next_reply: Callable[..., Reply], deadline: float) -> Any:
        """Wait for the final reply until ``deadline``; statuses in between are not results."""
        wait = self.options.wait
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RequestTimeoutError(self.sn, wait)
            try:
                received = next_reply(timeout=remaining)
            except queues.Empty:
                raise RequestTimeoutError(self.sn, wait) from None
            try:
                reply = parse_reply(received, self.options.authenticator)
            except Exception as exc:  # noqa: BLE001 - a bad reply must not end the wait
                log.warning("reply to %s refused: %s", self.sn, exc)
                continue
            outcome = self.on_reply(reply)
            if outcome is not PENDING:
                return outcome

    def on_reply(self, reply: Document) -> Any:
        """What a checked reply means: the result, ``PENDING``, or the call's error (raised)."""
        status = reply.get("status")
        if status == wire.PROGRESS:
            self._progress(reply)
            return PENDING
        if status == wire.REJECTED:
            raise RequestRejectedError(
                self.sn,
                str(reply.get("code") or "rejected"),
                str(reply.get("description") or ""),
                reply.get("details"),
            )
        if status in wire.STATUSES:
            return PENDING  # accepted, started
        result = reply.get("result")
        if not isinstance(result, dict):
            log.warning("reply to %s without status or result ignored", self.sn)
            return PENDING
        if "retval" in result:
            return result["retval"]
        raise exceptions.rebuild(result)

    def _progress(self, reply: Document) -> None:
        callback = self.options.progress
        if callback is None:
            return
        report = {
            "sn": reply.get("sn"),
            "data": reply.get("data"),
            "total": reply.get("total"),
            "completed": reply.get("completed"),
            "details": reply.get("details"),
        }
        try:
            callback(report)
        except Exception:
            log.exception("progress callback of %s failed", self.sn)


#: What :meth:`Call.on_reply` returns for a reply that does not end the call.
PENDING = object()

# RequestTimeout: the existing gofer's name, imported from here by its callers.
__all__ = ["Call", "RequestTimeout", "RmiError", "Trigger"]
