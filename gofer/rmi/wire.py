"""Building and checking the RMI envelopes of WIRE.md: requests, statuses and results."""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import datetime
import functools
import re
import time
import uuid
from typing import Any

from gofer.messaging.adapter.model import Address
from gofer.messaging.document import VERSION, Document

ACCEPTED = "accepted"
REJECTED = "rejected"
STARTED = "started"
PROGRESS = "progress"
STATUSES = frozenset({ACCEPTED, REJECTED, STARTED, PROGRESS})

# Rejection codes (WIRE.md lists the first two; the others are ours).
VERSION_MISMATCH = "model.version"
AUTHENTICATION = "security.authentication"
AUTHORIZATION = "security.authorization"
ROUTING = "security.routing"
MALFORMED = "request.malformed"
EXPIRED = "request.expired"
CANCELLED = "request.cancelled"
UNKNOWN_PLUGIN = "request.plugin"
TOO_LARGE = "request.size"

#: Largest message body gofer sends or journals (RabbitMQ's default ``max_message_size``).
MAX_MESSAGE = 128 * 2**20

#: Longest serial number accepted; real ones are 36-character uuid4 text.
MAX_SN_LENGTH = 64
_SN = re.compile(rf"[0-9a-fA-F-]{{1,{MAX_SN_LENGTH}}}")


_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"


def timestamp(now: float | None = None) -> str:
    """ISO-8601 UTC with second precision and a ``Z``, as the wire wants."""
    return _second_text(int(time.time() if now is None else now))


@functools.lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    """Formatted once: most replies of a busy second share their timestamp."""
    return time.strftime(_TIMESTAMP, time.gmtime(second))


#: The wire's own form, read without ``time.strptime`` (slow, and locale-bound).
_WIRE_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")


def parse_timestamp(text: object) -> float | None:
    """Seconds since the epoch for a wire timestamp; None when absent or unreadable."""
    if not isinstance(text, str):
        return None
    match = _WIRE_TIME.fullmatch(text)
    if match is not None:
        with contextlib.suppress(ValueError):  # e.g. a leap second: strptime takes it
            year, month, day, hour, minute, second = map(int, match.groups())
            utc = datetime.timezone.utc
            when = datetime.datetime(year, month, day, hour, minute, second, tzinfo=utc)
            return when.timestamp()
    try:  # any other form strptime reads (old peers' wording may vary)
        return float(calendar.timegm(time.strptime(text, _TIMESTAMP)))
    except (ValueError, OverflowError):
        return None


def new_sn() -> str:
    """A fresh serial number (uuid4 text)."""
    return str(uuid.uuid4())


def valid_sn(sn: object) -> bool:
    """True for a serial number that is safe to use as a key or a file name.

    Hex digits and dashes only, at most ``MAX_SN_LENGTH`` characters: every
    uuid passes, and nothing path-like or hostile does.
    """
    return isinstance(sn, str) and _SN.fullmatch(sn) is not None


@dataclasses.dataclass(frozen=True)
class Request:
    """A checked RMI request, as the agent side sees it.

    Attributes:
        sn: serial number.
        classname: class, ``Admin``, or a plugin's module name.
        method: method (or function) name.
        args: positional arguments.
        kws: keyword arguments.
        cntr: constructor arguments ``(args, kwargs)`` or None.
        replyto: where statuses and the result go; None for fire-and-forget.
        data: the caller's data, echoed back.
        address: where the request was sent (``routing[1]``).
        secret: the shared secret the caller sent, if any.
        pam: ``(user, password)`` the caller sent, if any.
        ttl: seconds the caller allowed for the request to start, if known.
        sent: when the caller sent it (epoch seconds), if known.
        quiet: the caller wants no ``accepted``, ``started`` or ``progress``
            status, only ``rejected`` and the result (``"quiet": true``, which
            our callers set when nothing of theirs would look at the others;
            agents that do not know the field send them anyway).
        envelope: the whole document, for hooks that want more.
    """

    sn: str
    classname: str
    method: str
    args: list[Any]
    kws: dict[str, Any]
    cntr: tuple[list[Any], dict[str, Any]] | None
    replyto: str | None
    data: Any
    address: str | None
    secret: str | None = None
    pam: tuple[str, str] | None = None
    ttl: float | None = None
    sent: float | None = None
    quiet: bool = False
    envelope: Document = dataclasses.field(default_factory=Document, repr=False)

    def deadline(self, received: float) -> float | None:
        """Epoch seconds after which the request must not start; None for never."""
        if self.ttl is None:
            return None
        return (self.sent if self.sent is not None else received) + self.ttl


class RequestRejected(Exception):  # noqa: N818 - a signal between two functions, not an error class
    """A request that cannot be run, with the rejection code and reason for the caller."""

    def __init__(self, code: str, description: str, details: Any = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.details = details


def request_document(
    *,
    sn: str,
    address: str,
    classname: str,
    method: str,
    args: list[Any] | tuple[Any, ...] = (),
    kws: dict[str, Any] | None = None,
    cntr: tuple[list[Any] | tuple[Any, ...], dict[str, Any]] | None = None,
    replyto: str | None = None,
    data: Any = None,
    ttl: float | None = None,
    secret: str | None = None,
    pam: tuple[str, str] | None = None,
    quiet: bool = False,
) -> Document:
    """A request's envelope as existing agents expect it, plus optional ``ttl``, ``quiet``."""
    doc = Document(
        sn=sn,
        version=VERSION,
        routing=[None, address],
        replyto=replyto,
        data=data,
        timestamp=timestamp(),
        request={
            "classname": classname,
            "method": method,
            "args": list(args),
            "kws": dict(kws or {}),
            "cntr": None if cntr is None else [list(cntr[0]), dict(cntr[1])],
        },
    )
    if ttl is not None:
        doc["ttl"] = ttl
    if secret is not None:
        doc["secret"] = secret
    if pam is not None:
        doc["pam"] = {"user": pam[0], "password": pam[1]}
    if quiet:
        doc["quiet"] = True
    return doc


def parse_request(doc: Document) -> Request:
    """Check a received envelope and return the request in it.

    Raises:
        RequestRejected: wrong version (``model.version``) or a malformed
            request (``request.malformed``), with a reason naming the field.
    """
    version = doc.get("version")
    if version != VERSION:
        raise RequestRejected(
            VERSION_MISMATCH,
            "MODEL: document version not matched",
            f"expected:{VERSION}, found:{version}",
        )
    sn = doc.get("sn")
    if not valid_sn(sn):
        raise RequestRejected(MALFORMED, "serial number missing or not a uuid", repr(sn)[:80])
    body = doc.get("request")
    if not isinstance(body, dict):
        raise RequestRejected(MALFORMED, "no request in the envelope")
    classname, method = body.get("classname"), body.get("method")
    for field, value in (("classname", classname), ("method", method)):
        if not isinstance(value, str) or not value or len(value) > 200:
            raise RequestRejected(MALFORMED, f"request.{field} must be a non-empty name")
    args = body.get("args") if body.get("args") is not None else []
    kws = body.get("kws") if body.get("kws") is not None else {}
    if not isinstance(args, list):
        raise RequestRejected(MALFORMED, "request.args must be a list")
    if not isinstance(kws, dict):
        raise RequestRejected(MALFORMED, "request.kws must be an object")
    return Request(
        sn=str(sn),
        classname=str(classname),
        method=str(method),
        args=args,
        kws=kws,
        cntr=_constructor(body.get("cntr")),
        replyto=_optional_text(doc, "replyto"),
        data=doc.get("data"),
        address=_destination(doc.get("routing")),
        secret=doc.get("secret") if isinstance(doc.get("secret"), str) else None,
        pam=_pam(doc.get("pam")),
        ttl=_ttl(doc.get("ttl")),
        sent=parse_timestamp(doc.get("timestamp")),
        quiet=doc.get("quiet") is True,
        envelope=doc,
    )


def _constructor(cntr: object) -> tuple[list[Any], dict[str, Any]] | None:
    if cntr is None:
        return None
    if (
        isinstance(cntr, (list, tuple))
        and len(cntr) == 2
        and isinstance(cntr[0], (list, tuple))
        and isinstance(cntr[1], dict)
    ):
        return list(cntr[0]), dict(cntr[1])
    raise RequestRejected(MALFORMED, "request.cntr must be [[args...], {kwargs}]")


def _optional_text(doc: Document, field: str) -> str | None:
    value = doc.get(field)
    if value is None:
        return None
    if not Address.valid(value):
        raise RequestRejected(
            MALFORMED, f"{field} must be an address ('queue' or 'exchange/queue')"
        )
    return str(value)


def _destination(routing: object) -> str | None:
    if isinstance(routing, (list, tuple)) and len(routing) == 2 and isinstance(routing[1], str):
        return routing[1]
    return None


def _pam(pam: object) -> tuple[str, str] | None:
    if isinstance(pam, dict) and isinstance(pam.get("user"), str):
        password = pam.get("password")
        return pam["user"], password if isinstance(password, str) else ""
    return None


def _ttl(ttl: object) -> float | None:
    if isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and ttl >= 0:
        return float(ttl)
    return None


def reply_envelope(sn: str | None, replyto: str, data: Any) -> Document:
    """The fields every reply carries."""
    return Document(sn=sn, version=VERSION, routing=[None, replyto], data=data)


def status_document(
    sn: str | None, replyto: str, data: Any, status: str, **fields: Any
) -> Document:
    """A status reply (``accepted``, ``started``, ``progress``, ``rejected``)."""
    doc = reply_envelope(sn, replyto, data)
    doc.update(status=status, **fields)
    if status != PROGRESS:
        doc["timestamp"] = timestamp()
    return doc


def rejected_document(
    sn: str | None, replyto: str, data: Any, rejected: RequestRejected
) -> Document:
    """A ``rejected`` status for a request that will not run."""
    return status_document(
        sn,
        replyto,
        data,
        REJECTED,
        code=rejected.code,
        description=rejected.description,
        details=rejected.details,
    )


def result_document(sn: str, replyto: str, data: Any, result: dict[str, Any]) -> Document:
    """The final reply: ``{"retval": ...}`` or the exception fields."""
    doc = reply_envelope(sn, replyto, data)
    doc.update(result=result, timestamp=timestamp())
    return doc


def is_final(doc: Document) -> bool:
    """A reply is final when it has a result and no status."""
    return "result" in doc and not doc.get("status")
