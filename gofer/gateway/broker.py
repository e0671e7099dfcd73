"""What the gateway sends: requests (confirmed by the broker), cancels, and fan-outs.

Every function here blocks on the broker; the HTTP handlers run them in
the event loop's executor. Broker errors come out as :class:`SendError`,
whose ``status`` is the HTTP status the caller gets.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from gofer.errors import (
    AccessDeniedError,
    AuthenticationError,
    BrokerUnavailableError,
    ConfigError,
    GoferError,
    NotFoundError,
)
from gofer.gateway.config import GatewayConfig, Signing
from gofer.gateway.security import UnauthorizedError
from gofer.messaging import auth
from gofer.messaging.adapter.model import Broker
from gofer.messaging.retry import Backoff
from gofer.messaging.url import Url
from gofer.proxy import Fleet
from gofer.rmi import transport
from gofer.rmi.fanout import Calls
from gofer.rmi.options import Options
from gofer.rmi.policy import Call

log = logging.getLogger(__name__)

#: Seconds a request waits for an unreachable broker before the caller gets 503.
SEND_LIMIT = 10.0
#: Seconds an agent has to start a cancel.
CANCEL_TTL = 30.0


class SendError(GoferError):
    """A request the broker did not take; ``status`` is the HTTP status for it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Request:
    """A call as the HTTP caller described it (checked already).

    Attributes:
        queue: the agent's queue.
        classname, method, args, kws: what to call.
        cntr: constructor arguments ``(args, kws)``, or None.
        ttl: seconds the agent has to start it.
        data: the caller's data, echoed in every reply.
        secret, user, password: for methods that want a shared secret or PAM.
    """

    queue: str
    classname: str
    method: str
    args: tuple[Any, ...] = ()
    kws: dict[str, Any] = dataclasses.field(default_factory=dict)
    cntr: tuple[tuple[Any, ...], dict[str, Any]] | None = None
    ttl: float = 3600.0
    data: Any = None
    secret: str | None = None
    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)


class Sender:
    """Sends for the gateway, over the process's shared transports (one per credentials).

    Args:
        config: the gateway's settings.
    """

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.url = Url.parse(config.url)
        self.authenticator = authenticator(config.signing)

    @property
    def broker(self) -> Broker:
        """The broker settings of the gateway's own connections."""
        heartbeat = self.config.heartbeat
        return Broker(url=self.url, tls=self.config.broker_tls, heartbeat=heartbeat or 10.0)

    def url_for(self, credentials: tuple[str, str] | None) -> Url:
        """The broker URL, with the caller's credentials (HTTP Basic) when given."""
        if credentials is None:
            return self.url
        user, password = credentials

        def keyed(each: Url) -> Url:
            return dataclasses.replace(each, userid=user, password=password, alternates=())

        return dataclasses.replace(
            keyed(self.url), alternates=tuple(keyed(each) for each in self.url.alternates)
        )

    def options(self, **values: Any) -> Options:
        tls = self.config.broker_tls
        return Options(
            wait=0,
            authenticator=self.authenticator,
            cacert=tls.cacert,
            clientcert=tls.clientcert,
            clientkey=tls.clientkey,
            host_validation=tls.host_validation,
            heartbeat=self.config.heartbeat,
        ).merged(values)

    def prepare(self, request: Request, credentials: tuple[str, str] | None = None) -> Call:
        """The call for ``request`` (its ``sn`` is known from now on); nothing is sent."""
        options = self.options(
            ttl=request.ttl,
            data=request.data,
            secret=request.secret,
            user=request.user,
            password=request.password,
        )
        return Call(
            url=self.url_for(credentials).secret(),
            address=request.queue,
            options=options,
            classname=request.classname,
            method=request.method,
            args=request.args,
            kws=request.kws,
            cntr=request.cntr,
        )

    def send(self, call: Call, credentials: tuple[str, str] | None = None) -> None:
        """Send a prepared call with the gateway's reply queue; returns once the broker has it.

        Raises:
            SendError: the broker did not take it.
        """
        document = call.document(self.config.reply_queue)
        body = auth.sign(self.authenticator, document)
        self._send(call.address, body, call.options.effective_ttl(), credentials)

    def cancel(self, queue: str, sn: str, credentials: tuple[str, str] | None = None) -> None:
        """Ask the agent on ``queue`` to cancel ``sn`` (``Admin.cancel``; no reply wanted).

        Raises:
            SendError: the broker did not take it.
        """
        cancel = Call(
            url=self.url_for(credentials).secret(),
            address=queue,
            options=self.options(ttl=CANCEL_TTL),
            classname="Admin",
            method="cancel",
            args=(),
            kws={"sn": sn},
            cntr=None,
        )
        body = auth.sign(self.authenticator, cancel.document(None))
        self._send(queue, body, CANCEL_TTL, credentials)

    def check(self, credentials: tuple[str, str]) -> None:
        """Connect with the caller's broker credentials (HTTP Basic) to see the broker takes them.

        Raises:
            UnauthorizedError: the broker refused them.
            SendError: the broker is unavailable (503).
        """
        url = self.url_for(credentials)
        shared = transport.transport_for(url, self.config.broker_tls, self.config.heartbeat)
        try:
            shared.connection.ensure(lambda c: None, "check credentials", Backoff(limit=SEND_LIMIT))
        except AuthenticationError as exc:
            transport.close_for(url)
            raise UnauthorizedError("the broker refused these credentials") from exc
        except GoferError as exc:
            raise SendError(503, f"the broker is unavailable: {exc}") from exc

    def _send(
        self, queue: str, body: bytes, ttl: float | None, credentials: tuple[str, str] | None
    ) -> None:
        url = self.url_for(credentials)
        shared = transport.transport_for(url, self.config.broker_tls, self.config.heartbeat)
        try:
            shared.send(queue, body, ttl, limit=SEND_LIMIT)
        except NotFoundError as exc:
            raise SendError(404, f"no agent queue {queue!r}") from exc
        except AuthenticationError as exc:
            # Do not keep a transport per wrong password someone tried.
            transport.close_for(url)
            raise SendError(401, "the broker refused these credentials") from exc
        except AccessDeniedError as exc:
            raise SendError(403, f"the broker refused the request: {exc}") from exc
        except BrokerUnavailableError as exc:
            raise SendError(503, f"the broker is unavailable: {exc}") from exc
        except GoferError as exc:
            log.warning("sending to %s: %s", queue, exc)
            raise SendError(502, f"the broker did not take the request: {exc}") from exc

    def fan_out(
        self,
        agents: list[str],
        request: Request,
        *,
        wait: float,
        concurrency: int,
        credentials: tuple[str, str] | None,
        on_progress: Callable[[str, dict[str, Any]], None] | None,
    ) -> Calls:
        """The fan-out of ``request`` to ``agents`` (iterate it, in a thread, to run it)."""
        # No ttl: each request gets what is left of ``wait`` as its own.
        options = self.options(
            data=request.data, secret=request.secret, user=request.user, password=request.password
        )
        fleet = Fleet(
            self.url_for(credentials).secret(),
            agents,
            concurrency=concurrency,
            on_progress=on_progress,
            **{
                field.name: getattr(options, field.name)
                for field in dataclasses.fields(options)
                if field.name != "wait" and getattr(options, field.name) is not None
            },
            wait=wait,
        )
        return Calls(
            fleet,
            classname=request.classname,
            method=request.method,
            args=request.args,
            kws=request.kws,
            cntr=request.cntr,
        )


def authenticator(signing: Signing) -> auth.Authenticator | None:
    """The authenticator ``[signing]`` describes; None when signing is off.

    Raises:
        ConfigError: a key cannot be read or is unfit.
    """
    if signing.hmac_key:
        try:
            with open(signing.hmac_key, "rb") as key:
                return auth.HmacAuthenticator(key.read().strip())
        except OSError as exc:
            raise ConfigError(
                f"cannot read the HMAC key: {exc.strerror}", signing.hmac_key, "signing", "hmac_key"
            ) from exc
    if signing.private_key:
        return auth.KeyPairAuthenticator(
            private_key=signing.private_key, public_keys=list(signing.public_keys)
        )
    return None


__all__ = ["Request", "SendError", "Sender", "authenticator"]
