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

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from gofer.errors import GoferError, InvalidDocumentError, ResultTooLargeError
from gofer.messaging import auth
from gofer.messaging.adapter.model import Address
from gofer.messaging.document import Document
from gofer.rmi import wire
from gofer.rmi.context import Context, activate
from gofer.rmi.dispatcher import Dispatcher
from gofer.rmi.model import RemoteFailure
from gofer.rmi.wire import Request, RequestRejected

log = logging.getLogger(__name__)


class Send(Protocol):
    """Sends a message; with ``confirm=False`` it need not wait for the broker."""

    def __call__(self, address: str, body: bytes, *, confirm: bool = True) -> None: ...


class Refused(Exception):  # noqa: N818 - a signal carrying what the refusal reply needs
    """A request that will not run, with what is known of it to answer the caller.

    Args:
        rejected: the code and reason.
        sn: the serial number, if usable.
        replyto: where to answer; None when nobody is to be answered.
        data: the caller's data, echoed back.
        replay: the request is authentic but was seen before (a replay or a
            redelivery), or signed too long ago.
        authentic: False when the message failed authentication: what it
            says (``sn``, ``replyto``) is unverified, so the answer (if any)
            goes unsigned and echoes no data.
        request: with ``replay``, the request (its signature is good): the
            agent may still take a broker's redelivery of a message it
            checked once but never journaled.
    """

    def __init__(
        self,
        rejected: RequestRejected,
        sn: str | None,
        replyto: str | None,
        data: Any,
        *,
        replay: bool = False,
        authentic: bool = True,
        request: Request | None = None,
    ) -> None:
        super().__init__(rejected.description)
        self.rejected = rejected
        self.sn = sn
        self.replyto = replyto
        self.data = data
        self.replay = replay
        self.authentic = authentic
        self.request = request


def receive(
    body: bytes,
    authenticator: auth.Authenticator | None = None,
    address: Address | None = None,
) -> Request:
    """Check a received body and return its request.

    Args:
        body: the message body.
        authenticator: checks the signature when given.
        address: the queue the body was read from; with an authenticator, a
            request whose signed destination (``routing[1]``) names another
            queue is refused (``security.routing``), so that a request signed
            for one agent cannot be run by another.

    Raises:
        Refused: it cannot run; ``replyto`` is set when the caller can be told.
    """
    try:
        document = auth.validate(authenticator, body)
    except auth.ValidationFailed as exc:
        raise _unauthentic(body, exc) from exc
    except InvalidDocumentError as exc:
        raise Refused(RequestRejected(wire.MALFORMED, str(exc)), None, None, None) from exc
    try:
        request = wire.parse_request(document)
    except RequestRejected as rejected:
        raise Refused(rejected, *_reply_fields(document)) from rejected
    if authenticator is not None and address is not None and not _sent_to(request, address):
        raise Refused(
            RequestRejected(
                wire.ROUTING,
                "SECURITY: request signed for another destination",
                {"destination": request.address, "queue": address.routing_key},
            ),
            request.sn,
            request.replyto,
            request.data,
        )
    return request


def _unauthentic(body: bytes, exc: auth.ValidationFailed) -> Refused:
    """The refusal of a message that failed authentication.

    Nothing it says can be trusted: a replay of an authentic request is
    answered not at all (its reply would reach the real caller, who may be
    waiting for the real result), anything else at most with an unsigned
    ``rejected`` carrying no data, which callers with an authenticator ignore.
    """
    rejected = RequestRejected(
        wire.AUTHENTICATION, "SECURITY: message authentication failed", str(exc)
    )
    document = _peek(body)
    sn, replyto, _ = _reply_fields(document)
    if not isinstance(exc, auth.ReplayDetectedError):
        return Refused(rejected, sn, replyto, None, authentic=False)
    request = None
    if document is not None:
        with contextlib.suppress(RequestRejected):
            request = wire.parse_request(document)
    return Refused(rejected, sn, None, None, replay=True, authentic=False, request=request)


def _sent_to(request: Request, address: Address) -> bool:
    """True when the request's destination is the queue it was read from.

    The exchange part does not matter: ``exchange/queue`` and ``queue``
    reach the same queue when the exchange is bound to it by that key.
    """
    destination = request.address
    if destination is None or not Address.valid(destination):
        return False
    return Address.parse(destination).routing_key == address.routing_key


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
        limit: the largest body sent; a larger result is replaced by a
            failure saying so (a broker would refuse it, and the caller
            would wait for nothing).
    """

    def __init__(
        self,
        send: Send,
        authenticator: auth.Authenticator | None = None,
        limit: int = wire.MAX_MESSAGE,
    ) -> None:
        self._send = send
        self._authenticator = authenticator
        self.limit = limit

    def accepted(self, request: Request) -> None:
        self._status(request, wire.ACCEPTED)

    def started(self, request: Request) -> None:
        self._status(request, wire.STARTED)

    def progress(self, request: Request, total: int, completed: int, details: Any) -> None:
        self._status(request, wire.PROGRESS, total=total, completed=completed, details=details)

    def result(self, request: Request, result: dict[str, Any]) -> None:
        """Send the final reply (see :meth:`result_body`)."""
        _, body = self.result_body(request, result)
        self.send_result(request, body)

    def result_body(
        self, request: Request, result: dict[str, Any]
    ) -> tuple[dict[str, Any], bytes | None]:
        """The result as it will be sent, and its body (None without a reply address).

        A result whose body is over :attr:`limit` becomes a failure that says so.
        """
        if not request.replyto:
            return result, None
        body = self._body(request, result)
        if len(body) > self.limit:
            log.error(
                "request %s: result of %d bytes is over the %d-byte limit; a failure is sent",
                request.sn,
                len(body),
                self.limit,
            )
            result = _too_large(request, len(body), self.limit)
            body = self._body(request, result)
        return result, body

    def send_result(self, request: Request, body: bytes | None) -> None:
        """Send a body made by :meth:`result_body`."""
        if request.replyto and body is not None:
            self._deliver(request.replyto, body, request.sn)

    def _body(self, request: Request, result: dict[str, Any]) -> bytes:
        assert request.replyto is not None
        document = wire.result_document(request.sn, request.replyto, request.data, result)
        return auth.sign(self._authenticator, document)

    def refused(self, refused: Refused) -> None:
        """Answer a refused request with ``rejected``, when it can be answered.

        A message that failed authentication is answered unsigned and
        without its data: whatever it says is unverified, and the agent
        must not sign it.
        """
        if not refused.replyto:
            return
        data = refused.data if refused.authentic else None
        document = wire.rejected_document(refused.sn, refused.replyto, data, refused.rejected)
        self._post(refused.replyto, document, sign=refused.authentic)

    def reject(self, request: Request, rejected: RequestRejected) -> None:
        """Answer a request that passed the checks but will not run (expired, cancelled...)."""
        self.refused(Refused(rejected, request.sn, request.replyto, request.data))

    def _status(self, request: Request, status: str, **fields: Any) -> None:
        if request.replyto and not request.quiet:
            document = wire.status_document(
                request.sn, request.replyto, request.data, status, **fields
            )
            # A lost status does no harm (the result still comes): not waited for.
            self._post(request.replyto, document, confirm=False)

    def _post(
        self, address: str, document: Document, *, confirm: bool = True, sign: bool = True
    ) -> None:
        try:
            body = auth.sign(self._authenticator if sign else None, document)
        except GoferError as exc:
            log.warning("reply %s to %s not sent: %s", document.get("sn"), address, exc)
            return
        self._deliver(address, body, document.get("sn"), confirm=confirm)

    def _deliver(self, address: str, body: bytes, sn: object, *, confirm: bool = True) -> None:
        try:
            self._send(address, body, confirm=confirm)
        except GoferError as exc:
            log.warning("reply %s to %s not sent: %s", sn, address, exc)


def _too_large(request: Request, size: int, limit: int) -> dict[str, Any]:
    """The failure sent in place of a result too large to send."""
    error = ResultTooLargeError(
        f"{request.classname}.{request.method}() returned a result of {size} bytes;"
        f" the most a reply can carry is {limit}"
    )
    return RemoteFailure.from_exception(error).result()


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

    Returns:
        The result as sent: a result too large to send is replaced by a
        :class:`~gofer.errors.ResultTooLargeError` failure.
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
    result, body = replier.result_body(request, result)
    if keep is not None:
        keep(result)
    replier.send_result(request, body)
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
