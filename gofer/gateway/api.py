"""The routes of the gateway's HTTP API, version 1 (described in :mod:`gofer.gateway.openapi`).

Errors are JSON: ``{"error": {"status": 404, "message": "..."}}``, for
routes that do not exist, bodies too large and methods not allowed too;
a client's mistake is always a 4xx.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gofer.gateway import checks, events, fanout, openapi, page
from gofer.gateway.broker import Request, Sender, SendError
from gofer.gateway.checks import ApiError
from gofer.gateway.config import GatewayConfig
from gofer.gateway.events import Hub
from gofer.gateway.figures import CONTENT_TYPE, Figures
from gofer.gateway.security import Caller, Gatekeeper, UnauthorizedError
from gofer.gateway.store import PENDING, CallRecord, KeyReusedError, Store
from gofer.rmi import wire
from gofer.rmi.fanout import Calls
from gofer.rmi.policy import Call

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Fan-outs running at a time; more get 429 (each holds a thread until its deadline).
MAX_FAN_OUTS = 16


class Api:
    """The handlers, bound to the gateway's parts.

    Args:
        config: the settings.
        store: the calls.
        sender: sends requests and cancels.
        hub: wakes waiting handlers.
        figures: the counters.
        gatekeeper: identifies callers.
        broker_state: ``fn()`` giving the broker connection's state
            (``connected`` among its keys).
        executor: where blocking broker work runs.
    """

    def __init__(
        self,
        *,
        config: GatewayConfig,
        store: Store,
        sender: Sender,
        hub: Hub,
        figures: Figures,
        gatekeeper: Gatekeeper,
        broker_state: Callable[[], dict[str, Any]],
        executor: concurrent.futures.Executor,
    ) -> None:
        self.config = config
        self.store = store
        self.sender = sender
        self.hub = hub
        self.figures = figures
        self.gatekeeper = gatekeeper
        self.broker_state = broker_state
        self.executor = executor
        self._sending: dict[str, asyncio.Future[None]] = {}
        self._fan_outs = 0

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/agents/{queue}/calls", self.post_call),
            web.get("/v1/calls/{sn}", self.get_call),
            web.get("/v1/calls/{sn}/events", self.get_events),
            web.delete("/v1/calls/{sn}", self.delete_call),
            web.get("/v1/calls", self.list_calls),
            web.post("/v1/calls", self.post_fan_out),
            web.get("/v1/openapi.json", self.get_openapi),
            web.get("/", self.get_page),
            web.get("/stats", self.get_stats),
            web.get("/metrics", self.get_metrics),
            web.get("/healthz", self.get_healthz),
            web.get("/readyz", self.get_readyz),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """JSON errors for every failure, and the request counters."""
        began = time.monotonic()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except ApiError as exc:
            status = exc.status
            return error(exc.status, exc.message, **exc.extra)
        except web.HTTPException as exc:
            status = exc.status
            if exc.status < 400:
                raise
            reason = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else None
            return error(exc.status, reason or exc.reason, headers=exc.headers)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return error(500, "the gateway failed; see its log")
        finally:
            self.figures.request(request.method, status, time.monotonic() - began)

    # -- who is calling -----------------------------------------------------

    async def caller(self, request: web.Request) -> Caller:
        header = request.headers.get("Authorization")
        try:
            if self.gatekeeper.needs_broker(header):
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self.executor, self.gatekeeper.identify, header)
            return self.gatekeeper.identify(header)
        except SendError as exc:
            raise ApiError(exc.status, str(exc)) from None
        except UnauthorizedError as exc:
            schemes = ['Bearer realm="gofer"']
            if self.config.basic is not None:
                schemes.append('Basic realm="gofer"')
            raise ApiError(
                401, str(exc), headers={"WWW-Authenticate": ", ".join(schemes)}
            ) from None

    def own_call(self, request: web.Request, caller: Caller) -> CallRecord:
        """The call the path names, if this caller made it (404 otherwise: no hint it exists)."""
        sn = request.match_info["sn"]
        call = self.store.get(sn) if wire.valid_sn(sn) else None
        if call is None or call.caller != caller.name or call.state == PENDING:
            raise ApiError(404, f"no call {sn!r}")
        return call

    # -- one call -----------------------------------------------------------

    async def post_call(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        queue = checks.queue_name(request.match_info["queue"])
        body = await checks.json_body(request)
        call_request, _ = checks.call_request(body, queue, self.config)
        if not caller.grant.allows(queue, call_request.classname):
            raise ApiError(403, f"{caller.name} may not call {call_request.classname} on {queue}")
        wait = checks.wait_query(request, self.config)
        key = checks.idempotency_key(request)
        digest = checks.digest(queue, body) if key is not None else None
        record = await self.accepted(caller, call_request, key, digest)
        if wait > 0:
            record = await events.wait_final(self.store, self.hub, record.sn, wait) or record
        return self.call_response(record, 200 if record.final else 202)

    async def accepted(
        self, caller: Caller, request: Request, key: str | None, digest: str | None
    ) -> CallRecord:
        """The call, once the broker took its request (or the earlier call of the same key)."""
        for _ in range(3):
            call = self.sender.prepare(request, caller.credentials)
            record = CallRecord(
                sn=call.sn,
                queue=request.queue,
                classname=request.classname,
                method=request.method,
                caller=caller.name,
                deadline=time.time() + request.ttl,
                idempotency_key=key,
                digest=digest,
            )
            try:
                stored = self.store.add(record)
            except KeyReusedError:
                raise ApiError(
                    422, "this Idempotency-Key was used for a different request"
                ) from None
            if stored.sn == call.sn:
                await self.send(call, stored, caller)
                return self.store.get(stored.sn) or stored
            # A retry: the earlier request, once it is sent (or failed, then try again).
            sending = self._sending.get(stored.sn)
            if sending is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(sending)
            found = self.store.get(stored.sn)
            if found is not None and found.state != PENDING:
                return found
        raise ApiError(409, "an earlier request with this Idempotency-Key is still being sent")

    async def send(self, call: Call, record: CallRecord, caller: Caller) -> None:
        """Send the call's request; the store says ``accepted`` once the broker has it.

        The send and its bookkeeping run as a task of their own, shielded:
        a caller that hangs up meanwhile does not leave a request sent but
        forgotten (its retry, with the same key, finds the call).

        Raises:
            ApiError: the broker did not take it (the call is forgotten).
        """
        sending = asyncio.ensure_future(self._send(call, record, caller))
        self._sending[record.sn] = sending
        sending.add_done_callback(lambda task: self._sent(record.sn, task))
        try:
            await asyncio.shield(sending)
        except SendError as exc:
            raise ApiError(exc.status, str(exc)) from None

    def _sent(self, sn: str, task: asyncio.Future[None]) -> None:
        del self._sending[sn]
        if not task.cancelled():
            task.exception()  # retrieved here: whoever waited may have gone

    async def _send(self, call: Call, record: CallRecord, caller: Caller) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.executor, self.sender.send, call, caller.credentials)
        except BaseException:
            self.store.discard(record.sn)
            self.figures.call(record.queue, "not_sent")
            raise
        self.store.confirmed(record.sn)
        self.figures.call(record.queue, "accepted")

    def call_response(self, record: CallRecord, status: int) -> web.Response:
        shown = self.shown(record)
        return json_response(shown, status, headers={"Location": shown["links"]["self"]})

    def shown(self, record: CallRecord) -> dict[str, Any]:
        """The call as the API shows it, with its links."""
        location = f"/v1/calls/{record.sn}"
        shown = record.as_dict()
        shown["links"] = {"self": location, "events": f"{location}/events"}
        return shown

    async def get_call(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        record = self.own_call(request, caller)
        wait = checks.wait_query(request, self.config)
        if wait > 0 and not record.final:
            record = await events.wait_final(self.store, self.hub, record.sn, wait) or record
        return self.call_response(record, 200)

    async def list_calls(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        limit = checks.limit_query(request)
        calls = [self.shown(record) for record in self.store.recent(caller.name, limit)]
        return json_response({"calls": calls}, 200)

    async def get_events(self, request: web.Request) -> web.StreamResponse:
        caller = await self.caller(request)
        record = self.own_call(request, caller)
        after = events.last_event_id(request)
        return await events.stream_events(request, self.store, self.hub, record.sn, after)

    async def delete_call(self, request: web.Request) -> web.Response:
        caller = await self.caller(request)
        record = self.own_call(request, caller)
        if record.final:
            raise ApiError(409, f"the call has ended ({record.state})", call=record.as_dict())
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(
                self.executor, self.sender.cancel, record.queue, record.sn, caller.credentials
            )
        except SendError as exc:
            raise ApiError(exc.status, str(exc)) from None
        shown = record.as_dict()
        shown["cancel"] = "requested"
        return json_response(shown, 202)

    # -- fan-out ------------------------------------------------------------

    async def post_fan_out(self, request: web.Request) -> web.StreamResponse:
        caller = await self.caller(request)
        body = await checks.json_body(request)
        queues = checks.agents(body)
        call_request, options = checks.call_request(body, "", self.config, fan_out=True)
        denied = [q for q in queues if not caller.grant.allows(q, call_request.classname)]
        if denied:
            raise ApiError(
                403,
                f"{caller.name} may not call {call_request.classname} on {len(denied)} agent(s)",
                denied=denied[:100],
            )
        wait, concurrency = checks.fan_out_limits(options, self.config)
        if self._fan_outs >= MAX_FAN_OUTS:
            raise ApiError(429, f"{MAX_FAN_OUTS} fan-outs are running; try again later")
        sse = "text/event-stream" in request.headers.get("Accept", "")
        self._fan_outs += 1
        self.figures.fanouts += 1
        try:

            def start(on_progress: fanout.Progress) -> Calls:
                return self.sender.fan_out(
                    queues,
                    call_request,
                    wait=wait,
                    concurrency=concurrency,
                    credentials=caller.credentials,
                    on_progress=on_progress,
                )

            return await fanout.stream(request, start, len(queues), sse, self.count_outcome)
        finally:
            self._fan_outs -= 1

    def count_outcome(self, item: dict[str, Any]) -> None:
        agent, status = item.get("agent"), item.get("status")
        if isinstance(agent, str) and status not in (None, "progress"):
            self.figures.call(agent, str(status))

    # -- the rest -----------------------------------------------------------

    async def get_openapi(self, request: web.Request) -> web.Response:
        return json_response(openapi.document(), 200)

    async def get_page(self, request: web.Request) -> web.Response:
        # No credentials needed: the page holds no data; its script asks the API with a token.
        return web.Response(body=page.HTML, content_type="text/html", headers=page.HEADERS)

    async def get_stats(self, request: web.Request) -> web.Response:
        await self.caller(request)  # names agent queues: not for anybody
        stats = self.figures.stats(self.broker_state(), self.store.counts())
        stats["event_watchers"] = self.hub.watchers
        return json_response(stats, 200)

    async def get_metrics(self, request: web.Request) -> web.Response:
        text = self.figures.metrics(self.broker_state(), self.store.counts(), self.hub.watchers)
        response = web.Response(text=text)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def get_healthz(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok"}, 200)

    async def get_readyz(self, request: web.Request) -> web.Response:
        state = self.broker_state()
        ready = bool(state.get("connected"))
        shown = {"status": "ready" if ready else "not ready", "broker": state}
        return json_response(shown, 200 if ready else 503)


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body), status=status, content_type="application/json", headers=headers
    )


def error(status: int, message: str, headers: Any = None, **extra: Any) -> web.Response:
    """The JSON error answer."""
    shown = {"status": status, "message": message, **extra}
    passed = {k: v for k, v in dict(headers or {}).items() if k.lower() in _KEPT_HEADERS}
    return json_response({"error": shown}, status, headers=passed)


#: Headers of an aiohttp HTTP error that the JSON error keeps.
_KEPT_HEADERS = frozenset({"allow", "www-authenticate", "retry-after"})


__all__ = ["Api", "error", "json_response"]
