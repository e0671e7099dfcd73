"""Checking what HTTP callers send: JSON bodies, call descriptions, options, query values.

Everything wrong here is the caller's mistake, raised as :class:`ApiError`
with a 4xx status and a message saying what to fix; nothing is sent to
the broker before a request passed these checks.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gofer.errors import GoferError
from gofer.gateway.broker import Request
from gofer.gateway.config import GatewayConfig
from gofer.rmi.options import seconds

#: Longest agent queue name (AMQP's limit).
MAX_QUEUE = 255
#: Longest class or method name.
MAX_NAME = 255
#: Longest ``Idempotency-Key``.
MAX_KEY = 255
#: Most agents in one fan-out.
MAX_AGENTS = 10_000
#: Most requests a fan-out has out at a time.
MAX_CONCURRENCY = 1024
#: Levels of lists and objects a body may nest.
MAX_DEPTH = 64

_CALL_KEYS = frozenset({"class", "method", "args", "kws", "cntr", "options"})
_OPTIONS = frozenset({"ttl", "data", "secret", "user", "password"})
_FAN_OUT_OPTIONS = frozenset({"wait", "concurrency", "data", "secret", "user", "password"})


class ApiError(GoferError):
    """An answer other than success: ``status`` and a message for the caller.

    Args:
        status: the HTTP status.
        message: what went wrong, or what to fix.
        extra: more members of the error object (``call``, ``denied``, ...).
    """

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


async def json_body(request: web.Request) -> dict[str, Any]:
    """The body, a JSON object.

    Raises:
        ApiError: not ``application/json`` (415), too large (413), not JSON
            or not an object (400).
    """
    if request.content_type != "application/json":
        # Also keeps browsers from posting cross-site forms with cached Basic credentials.
        raise ApiError(415, "send the body as JSON, with Content-Type: application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        # aiohttp's text names the limit and the size: "Maximum request body size ..."
        raise ApiError(413, exc.text or "the body is too large") from exc
    try:
        body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise ApiError(400, "the body nests too deep") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "the body is a JSON object")
    if _too_deep(body, MAX_DEPTH):
        # Python 3.13's decoder takes nesting that earlier ones refused; the
        # body is then handed to code that recurses over it (signing, dumps).
        raise ApiError(400, f"the body nests too deep: at most {MAX_DEPTH} levels")
    return body


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` holds lists or objects nested more than ``limit`` deep."""
    level: list[Any] = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (dict, list))
        ]
        if not level:
            return False
    return True


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large a number")
    return number


def queue_name(value: Any, what: str = "agent queue") -> str:
    """A checked agent queue name."""
    if not isinstance(value, str) or not value or len(value.encode("utf-8")) > MAX_QUEUE:
        raise ApiError(400, f"an {what} is a string of 1 to {MAX_QUEUE} bytes")
    if any(ord(c) < 32 for c in value):
        raise ApiError(400, f"an {what} holds no control characters")
    return value


def call_request(
    body: Mapping[str, Any], queue: str, config: GatewayConfig, *, fan_out: bool = False
) -> tuple[Request, dict[str, Any]]:
    """The call the body describes, and its options (checked).

    Raises:
        ApiError: 400, naming the member that is wrong.
    """
    allowed = _CALL_KEYS | ({"agents"} if fan_out else set())
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, f"unknown member(s) {', '.join(unknown)}; known: {sorted(allowed)}")
    classname = _name(body.get("class"), "class")
    method = _name(body.get("method"), "method")
    args = body.get("args", [])
    if not isinstance(args, list):
        raise ApiError(400, "args is a JSON array")
    kws = body.get("kws", {})
    if not isinstance(kws, dict):
        raise ApiError(400, "kws is a JSON object")
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise ApiError(400, "options is a JSON object")
    known = _FAN_OUT_OPTIONS if fan_out else _OPTIONS
    unknown = sorted(set(options) - known)
    if unknown:
        raise ApiError(400, f"unknown option(s) {', '.join(unknown)}; known: {sorted(known)}")
    for key in ("secret", "user", "password"):
        if options.get(key) is not None and not isinstance(options[key], str):
            raise ApiError(400, f"options.{key} is a string")
    ttl = config.ttl
    if "ttl" in options:
        ttl = _seconds(options["ttl"], "options.ttl")
        if not 0 < ttl <= config.max_ttl:
            raise ApiError(400, f"options.ttl is above 0 and at most {config.max_ttl:g} seconds")
    request = Request(
        queue=queue,
        classname=classname,
        method=method,
        args=tuple(args),
        kws=kws,
        cntr=_constructor(body.get("cntr")),
        ttl=ttl,
        data=options.get("data"),
        secret=options.get("secret"),
        user=options.get("user"),
        password=options.get("password"),
    )
    return request, options


def agents(body: Mapping[str, Any]) -> list[str]:
    """The fan-out's agent queues, each once, in order."""
    given = body.get("agents")
    if not isinstance(given, list) or not given:
        raise ApiError(400, "agents is a non-empty JSON array of agent queues")
    if len(given) > MAX_AGENTS:
        raise ApiError(400, f"at most {MAX_AGENTS} agents in one fan-out")
    return list(dict.fromkeys(queue_name(each, "agent") for each in given))


def fan_out_limits(options: Mapping[str, Any], config: GatewayConfig) -> tuple[float, int]:
    """The fan-out's ``wait`` (default 60 s, at most ``max_wait``) and ``concurrency``."""
    wait = _seconds(options.get("wait", min(60.0, config.max_wait)), "options.wait")
    if not 0 < wait <= config.max_wait:
        raise ApiError(400, f"options.wait is above 0 and at most {config.max_wait:g} seconds")
    concurrency = options.get("concurrency", 256)
    if (
        isinstance(concurrency, bool)
        or not isinstance(concurrency, int)
        or not 0 < concurrency <= MAX_CONCURRENCY
    ):
        raise ApiError(400, f"options.concurrency is an integer from 1 to {MAX_CONCURRENCY}")
    return wait, concurrency


def wait_query(request: web.Request, config: GatewayConfig) -> float:
    """``?wait=SECONDS``: 0 when absent; at most ``max_wait``."""
    text = request.query.get("wait")
    if text is None:
        return 0.0
    wait = _seconds(text, "wait")
    if wait > config.max_wait:
        raise ApiError(400, f"wait is at most {config.max_wait:g} seconds")
    return wait


#: The most calls one listing shows.
MAX_LIMIT = 500


def limit_query(request: web.Request, default: int = 50) -> int:
    """``?limit=N``: how many calls to list, 1 to ``MAX_LIMIT``; ``default`` when absent."""
    text = request.query.get("limit")
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise ApiError(400, f"limit is a whole number from 1 to {MAX_LIMIT}")
    limit = int(text)
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit is from 1 to {MAX_LIMIT}")
    return limit


def idempotency_key(request: web.Request) -> str | None:
    """The ``Idempotency-Key`` header, checked; None when absent."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key or len(key) > MAX_KEY or not key.isprintable():
        raise ApiError(400, f"Idempotency-Key is 1 to {MAX_KEY} printable characters")
    return key


def digest(queue: str, body: Mapping[str, Any]) -> str:
    """What makes two requests the same request: the agent and the body, canonically."""
    canonical = json.dumps([queue, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_NAME:
        raise ApiError(400, f"{what} is a string of 1 to {MAX_NAME} characters")
    return value


def _constructor(value: Any) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"args", "kws"}:
        raise ApiError(400, 'cntr is {"args": [...], "kws": {...}}')
    args, kws = value.get("args", []), value.get("kws", {})
    if not isinstance(args, list) or not isinstance(kws, dict):
        raise ApiError(400, "cntr.args is a JSON array, cntr.kws a JSON object")
    return tuple(args), kws


def _seconds(value: Any, what: str) -> float:
    try:
        number = seconds(value, what)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from exc
    if not math.isfinite(number):
        raise ApiError(400, f"{what} is a finite number of seconds")
    return number


__all__ = [
    "ApiError",
    "agents",
    "call_request",
    "digest",
    "fan_out_limits",
    "idempotency_key",
    "json_body",
    "limit_query",
    "queue_name",
    "wait_query",
]
