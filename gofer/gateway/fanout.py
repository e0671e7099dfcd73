"""Streaming a fan-out: ``gofer.proxy.Fleet`` run in a thread, its outcomes written as they come.

NDJSON by default (one JSON object a line), Server-Sent Events when asked
(events ``outcome``, ``progress``, ``error`` and ``end``). Each agent's
outcome is ``Outcome.as_dict()``; progress items are ``{"agent", "status":
"progress", "sn", "progress"}``; the last item is ``{"status": "end",
"total", "succeeded", "other"}``. A caller that goes away cancels the
fan-out: no more requests are sent, and those out are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gofer.gateway.events import STREAM_HEADERS
from gofer.rmi.fanout import Calls

log = logging.getLogger(__name__)

#: ``fn(agent, report)``: what the fan-out calls with each progress report.
Progress = Callable[[str, dict[str, Any]], None]


async def stream(
    request: web.Request,
    start: Callable[[Progress], Calls],
    total: int,
    sse: bool,
    counted: Callable[[dict[str, Any]], None],
) -> web.StreamResponse:
    """Run the fan-out ``start(on_progress)`` gives, and stream what it yields.

    Args:
        request: the HTTP request to answer.
        start: makes the fan-out (not yet running), given its progress callback.
        total: how many agents it calls.
        sse: Server-Sent Events rather than NDJSON.
        counted: called with each item streamed (for the figures).
    """
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def put(item: dict[str, Any] | None) -> None:
        # The fan-out may outlive the loop (a caller gone at shutdown): then nobody reads.
        with contextlib.suppress(RuntimeError):  # closed between the look and the call
            if not loop.is_closed():
                loop.call_soon_threadsafe(inbox.put_nowait, item)

    def progress(agent: str, report: dict[str, Any]) -> None:
        put({"agent": agent, "status": "progress", "sn": report.get("sn"), "progress": report})

    calls = start(progress)
    totals = {"total": total, "succeeded": 0, "other": 0}

    def run() -> None:
        try:
            for outcome in calls:
                totals["succeeded" if outcome.ok else "other"] += 1
                put(outcome.as_dict())
        except Exception as exc:  # the stream says so rather than ending silently
            log.exception("fan-out of %s.%s failed", calls.classname, calls.method)
            put({"status": "error", "error": {"type": type(exc).__name__, "message": str(exc)}})
        finally:
            put(None)

    response = web.StreamResponse(headers=STREAM_HEADERS)
    response.content_type = "text/event-stream" if sse else "application/x-ndjson"
    await response.prepare(request)
    threading.Thread(target=run, name="gofer-gateway-fan-out", daemon=True).start()
    number = 0
    try:
        while True:
            item = await inbox.get()
            if item is None:
                item = {"status": "end", **totals}
            counted(item)
            number += 1
            await response.write(framed(item, number, sse))
            if item["status"] == "end":
                break
    except (ConnectionResetError, asyncio.CancelledError):
        calls.cancel()  # the caller is gone: send no more, cancel those out
        raise
    await response.write_eof()
    return response


def framed(item: dict[str, Any], number: int, sse: bool) -> bytes:
    """One streamed item: an NDJSON line, or an SSE event with ``id: number``."""
    data = json.dumps(item)
    if not sse:
        return f"{data}\n".encode()
    status = item.get("status")
    kind = status if status in ("progress", "end", "error") else "outcome"
    return f"id: {number}\nevent: {kind}\ndata: {data}\n\n".encode()


__all__ = ["Progress", "framed", "stream"]
