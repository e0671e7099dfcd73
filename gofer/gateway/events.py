"""Waiting for a call to change: the change hub, and the Server-Sent Events stream.

The collector thread tells the hub, through the event loop, which call
changed (:meth:`Hub.changed`); handlers waiting on that call (a
``?wait=``, an event stream) wake up and read the store again. The store
is the only source of events, so a stream resumed with ``Last-Event-ID``
after a gateway restart goes on where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from gofer.gateway.store import CallRecord, Event, Store

#: Seconds between comments on a quiet stream, so that proxies keep it open.
KEEPALIVE = 15.0


class Hub:
    """Wakes the handlers that wait for a call; used on the event loop's thread only."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    def changed(self, sn: str) -> None:
        """``sn`` changed: wake whoever waits for it."""
        for event in self._waiting.get(sn, ()):
            event.set()

    @contextlib.contextmanager
    def watch(self, sn: str) -> Iterator[asyncio.Event]:
        """An event set at each change of ``sn``; clear it before reading the store."""
        event = asyncio.Event()
        self._waiting.setdefault(sn, set()).add(event)
        try:
            yield event
        finally:
            waiting = self._waiting.get(sn)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[sn]

    @property
    def watchers(self) -> int:
        """How many handlers wait (open streams and waits)."""
        return sum(len(each) for each in self._waiting.values())


async def wait_final(store: Store, hub: Hub, sn: str, seconds: float) -> CallRecord | None:
    """The call once final, or as it is after ``seconds``; None if it is gone."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    with hub.watch(sn) as changed:
        while True:
            changed.clear()
            call = store.get(sn)
            left = deadline - loop.time()
            if call is None or call.final or left <= 0:
                return call
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), left)


def sse(event: Event) -> bytes:
    """One event in the Server-Sent Events format (JSON data is one line)."""
    data = json.dumps(event.data)
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n".encode()


async def stream_events(
    request: web.Request, store: Store, hub: Hub, sn: str, after: int
) -> web.StreamResponse:
    """Stream the events of ``sn`` after id ``after``; the stream ends after the final one."""
    response = web.StreamResponse(headers=STREAM_HEADERS)
    response.content_type = "text/event-stream"
    await response.prepare(request)
    with hub.watch(sn) as changed:
        while True:
            changed.clear()
            # The state before the events: a call final by then has its final
            # event among those read next (the store adds both at once).
            call = store.get(sn)
            for event in store.events(sn, after):
                await response.write(sse(event))
                after = event.id
            if call is None or call.final:  # ended, dropped meanwhile, or resumed after its end
                break
            try:
                await asyncio.wait_for(changed.wait(), KEEPALIVE)
            except asyncio.TimeoutError:
                await response.write(b": keep-alive\n\n")
    await response.write_eof()
    return response


#: Headers of streamed answers: never cached, never buffered by a reverse proxy.
STREAM_HEADERS: dict[str, Any] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


#: The largest event id taken (sqlite's integers are 64-bit).
MAX_EVENT_ID = 2**62


def last_event_id(request: web.Request) -> int:
    """The ``Last-Event-ID`` header (or ``?after=``) as a number; 0 when absent or not one."""
    text = request.headers.get("Last-Event-ID") or request.query.get("after") or "0"
    try:
        value = int(text)
    except ValueError:
        return 0
    return min(max(0, value), MAX_EVENT_ID)


__all__ = ["Hub", "last_event_id", "sse", "stream_events", "wait_final"]
