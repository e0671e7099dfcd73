"""The agent side of one request: check it, answer with statuses, run it, send the result.

goferd puts its journal and worker pools between these steps; a minimal
agent (tests, embedding) can use :func:`serve` for the whole life at once::

    dispatcher = Dispatcher([Catalog.of_module(my_plugin)])
    replier = Replier(connection.send)
    reader = connection.reader("agent-1")
    while (delivery := reader.get(timeout=1)) is not None:
        serve(delivery.body, dispatcher, replier)
        reader.ack(delivery)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from gofer.errors import GoferError, InvalidDocumentError
from gofer.messaging import auth
from gofer.messaging.adapter.model import Address
from gofer.messaging.document import Document
from gofer.rmi import wire
from gofer.rmi.context import Context, activate
from gofer.rmi.dispatcher import Dispatcher
from gofer.rmi.wire import Request, RequestRejected

log = logging.getLogger(__name__)


class Send(Protocol):
    """Sends a message; with ``confirm=False`` it need not wait for the broker."""

    def __call__(self, address: str, body: bytes, *, confirm: bool = True) -> None: ...


class Refused(Exception):  # noqa: N818 - a signal carrying what the refusal reply needs
    """A request that will not run, with what is known of it to answer the caller."""

    def __init__(
        self,
        rejected: RequestRejected,
        sn: str | None,
        replyto: str | None,
        data: Any,
        *,
        replay: bool = False,
    ) -> None:
        super().__init__(rejected.description)
        self.rejected = rejected
        self.sn = sn
        self.replyto = replyto
        self.data = data
        #: The request is authentic but was seen before (a replay or a redelivery).
        self.replay = replay


def receive(body: bytes, authenticator: auth.Authenticator | None = None) -> Request:
    """Check a received body and return its request.

    Raises:
        Refused: it cannot run; ``replyto`` is set when the caller can be told.
    """
    try:
        document = auth.validate(authenticator, body)
    except auth.ValidationFailed as exc:
        peeked = _peek(body)
        raise Refused(
            RequestRejected(
                wire.AUTHENTICATION, "SECURITY: message authentication failed", str(exc)
            ),
            *_reply_fields(peeked),
            replay=isinstance(exc, auth.ReplayDetectedError),
        ) from exc
    except InvalidDocumentError as exc:
        raise Refused(RequestRejected(wire.MALFORMED, str(exc)), None, None, None) from exc
    try:
        return wire.parse_request(document)
    except RequestRejected as rejected:
        raise Refused(rejected, *_reply_fields(document)) from rejected


def _peek(body: bytes) -> Document | None:
    try:
        return auth.validate(None, body)
    except GoferError:
        return None


def _reply_fields(document: Document | None) -> tuple[str | None, str | None, Any]:
    """The serial number, reply address and data of a refused envelope, if usable."""
    if document is None:
        return None, None, None
    sn = document.get("sn")
    replyto = document.get("replyto")
    # Even a bad serial number is echoed (it is only text in a JSON reply) so
    # that the sender can tell which message was refused; never a huge one.
    usable_sn = sn if isinstance(sn, str) and len(sn) <= 4 * wire.MAX_SN_LENGTH else None
    usable_replyto = replyto if Address.valid(replyto) else None
    return usable_sn, usable_replyto, document.get("data")


class Replier:
    """Sends the statuses and the result of requests to their reply addresses.

    A request without a reply address gets nothing; a failure to send is
    logged (the request's outcome does not depend on its caller listening).

    Args:
        send: sends one message to an address.
        authenticator: signs the replies when given.
    """

    def __init__(self, send: Send, authenticator: auth.Authenticator | None = None) -> None:
        self._send = send
        self._authenticator = authenticator

    def accepted(self, request: Request) -> None:
        self._status(request, wire.ACCEPTED)

    def started(self, request: Request) -> None:
        self._status(request, wire.STARTED)

    def progress(self, request: Request, total: int, completed: int, details: Any) -> None:
        self._status(request, wire.PROGRESS, total=total, completed=completed, details=details)

    def result(self, request: Request, result: dict[str, Any]) -> None:
        if request.replyto:
            self._post(
                request.replyto,
                wire.result_document(request.sn, request.replyto, request.data, result),
            )

    def refused(self, refused: Refused) -> None:
        """Answer a refused request with ``rejected``, when it can be answered."""
        if refused.replyto:
            document = wire.rejected_document(
                refused.sn, refused.replyto, refused.data, refused.rejected
            )
            self._post(refused.replyto, document)

    def reject(self, request: Request, rejected: RequestRejected) -> None:
        """Answer a request that passed the checks but will not run (expired, cancelled...)."""
        self.refused(Refused(rejected, request.sn, request.replyto, request.data))

    def _status(self, request: Request, status: str, **fields: Any) -> None:
        if request.replyto:
            document = wire.status_document(
                request.sn, request.replyto, request.data, status, **fields
            )
            # A lost status does no harm (the result still comes): not waited for.
            self._post(request.replyto, document, confirm=False)

    def _post(self, address: str, document: Document, *, confirm: bool = True) -> None:
        try:
            self._send(address, auth.sign(self._authenticator, document), confirm=confirm)
        except GoferError as exc:
            log.warning("reply %s to %s not sent: %s", document.get("sn"), address, exc)


def run(
    request: Request,
    dispatcher: Dispatcher,
    replier: Replier,
    cancelled: Callable[[], bool] = lambda: False,
    keep: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Send ``started``, run the request with its context, send and return the result.

    Args:
        request: the request.
        dispatcher: finds and runs its method.
        replier: sends the statuses and the result.
        cancelled: tells whether the caller cancelled it.
        keep: called with the result before it is sent (goferd's journal
            keeps it, so that a crash cannot lead to a different answer).
    """
    replier.started(request)

    def report(total: int, completed: int, details: Any) -> None:
        replier.progress(request, total, completed, details)

    context = Context(request.sn, request.data, report, cancelled)
    started = time.monotonic()
    with activate(context):
        result = dispatcher.dispatch(request, context)
    log.info(
        "request %s %s.%s() done in %.3fs (%s)",
        request.sn,
        request.classname,
        request.method,
        time.monotonic() - started,
        "failed" if "retval" not in result else "ok",
    )
    if keep is not None:
        keep(result)
    replier.result(request, result)
    return result


def serve(
    body: bytes,
    dispatcher: Dispatcher,
    replier: Replier,
    authenticator: auth.Authenticator | None = None,
) -> None:
    """The whole life of one request, for agents without a journal."""
    try:
        request = receive(body, authenticator)
    except Refused as refused:
        log.warning("request %s refused: %s", refused.sn, refused)
        replier.refused(refused)
        return
    replier.accepted(request)
    run(request, dispatcher, replier)
