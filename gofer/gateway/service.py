"""The gateway put together: its parts, the aiohttp application, and running it.

::

    gateway = Gateway(config)
    web.run_app(gateway.application(), ...)   # what run(config) does

On start the collector begins reading the reply queue (replies that came
while the gateway was down included) and a housekeeping task expires and
drops old calls; on stop both end, and the executor's sends finish.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from gofer.errors import ConfigError
from gofer.gateway.api import Api
from gofer.gateway.broker import Sender
from gofer.gateway.collector import Collector
from gofer.gateway.config import GatewayConfig
from gofer.gateway.events import Hub
from gofer.gateway.figures import Figures
from gofer.gateway.security import Gatekeeper
from gofer.gateway.store import EXPIRED, FINAL, Store
from gofer.rmi import transport

log = logging.getLogger(__name__)

#: Seconds between housekeeping rounds (expiring calls, dropping old ones).
HOUSEKEEPING = 10.0
#: Threads that wait for the broker's confirms (and Basic credential checks).
SENDERS = 32


class Gateway:
    """The gateway's parts, shared by its handlers.

    Args:
        config: the settings.
        store: the calls (by default the database under ``config.state_dir``).
    """

    def __init__(self, config: GatewayConfig, store: Store | None = None) -> None:
        self.config = config
        self.store = store or Store(config.database, keep=config.keep, max_kept=config.max_kept)
        self.sender = Sender(config)
        self.hub = Hub()
        self.figures = Figures()
        self.gatekeeper = Gatekeeper(config, check_basic=self.sender.check)
        self.executor = concurrent.futures.ThreadPoolExecutor(
            SENDERS, thread_name_prefix="gofer-gateway-send"
        )
        self.collector: Collector | None = None
        self.api = Api(
            config=config,
            store=self.store,
            sender=self.sender,
            hub=self.hub,
            figures=self.figures,
            gatekeeper=self.gatekeeper,
            broker_state=self.broker_state,
            executor=self.executor,
        )

    def application(self) -> web.Application:
        """The aiohttp application, with the gateway's start and stop attached."""
        app = web.Application(
            client_max_size=self.config.max_body, middlewares=[self.api.middleware]
        )
        app.add_routes(self.api.routes())
        app.cleanup_ctx.append(self._running)
        return app

    def broker_state(self) -> dict[str, Any]:
        """The reply queue's broker connection, as ``/stats`` and ``/readyz`` show it."""
        collector = self.collector
        down = collector.connection.down_since if collector is not None else None
        return {
            "url": str(self.sender.url),  # its password masked
            "reply_queue": self.config.reply_queue,
            "connected": collector is not None and collector.connected,
            "down_since": down,
            "replies": collector.received if collector is not None else 0,
        }

    async def _running(self, app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        dropped = self.store.drop_pending()
        if dropped:
            log.warning("%d call(s) were being sent when the gateway stopped; dropped", dropped)
        self.collector = Collector(
            self.sender.broker,
            self.config.reply_queue,
            self.store,
            lambda sn, kind: self._changed_threadsafe(loop, sn, kind),
            self.sender.authenticator,
        )
        self.collector.start()
        housekeeping = asyncio.ensure_future(self._housekeeping())
        log.info("gateway serving; replies through %s", self.config.reply_queue)
        try:
            yield
        finally:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
            await loop.run_in_executor(None, self.collector.stop)
            self.executor.shutdown(wait=True)
            transport.close_all()
            self.store.close()

    def _changed_threadsafe(self, loop: asyncio.AbstractEventLoop, sn: str, kind: str) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(self.changed, sn, kind)

    def changed(self, sn: str, kind: str) -> None:
        """A call changed (on the event loop): wake its waiters, count it if it ended.

        A final change happens once per call (the store takes no other), so
        each ending is counted once.
        """
        self.hub.changed(sn)
        if kind in FINAL:
            call = self.store.get(sn)
            if call is not None:
                self.figures.call(call.queue, kind)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING)
            try:
                for sn in self.store.expire():
                    self.changed(sn, EXPIRED)
                self.store.sweep()
            except Exception:
                log.exception("housekeeping failed")


def tls_context(config: GatewayConfig) -> ssl.SSLContext | None:
    """The server's TLS context from ``[tls]``; None for plain HTTP.

    Raises:
        ConfigError: the certificate or key cannot be loaded.
    """
    if not config.certificate:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.certificate, config.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the certificate: {exc}", section="tls") from exc
    return context


def run(config: GatewayConfig) -> None:
    """Serve until SIGINT or SIGTERM.

    Raises:
        ConfigError: the settings cannot be used.
    """
    context = tls_context(config)
    gateway = Gateway(config)
    scheme = "https" if context else "http"
    log.info("listening on %s://%s:%d", scheme, config.host, config.port)
    web.run_app(
        gateway.application(),
        host=config.host,
        port=config.port,
        ssl_context=context,
        print=None,
        shutdown_timeout=10.0,
    )


__all__ = ["Gateway", "run", "tls_context"]
