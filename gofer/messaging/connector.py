"""TLS and heartbeat settings registered for a broker URL (the existing gofer's ``Connector``).

Callers of the existing gofer set a broker's TLS files once, then name only
its URL everywhere::

    from gofer.messaging import Connector

    connector = Connector("amqps://mq.example.com")
    connector.ssl.ca_certificate = "/etc/pki/gofer/ca.pem"
    connector.ssl.client_certificate = "/etc/pki/gofer/client.pem"
    connector.heartbeat = 10
    connector.add()

    Agent("amqps://mq.example.com", "agent-1").Dog().bark()   # uses them

Settings given with the call (``Agent(url, queue, cacert=...)``) win over a
registered connector's. The registry is per process and thread-safe.
"""

from __future__ import annotations

import os
import threading

from gofer.messaging.adapter.model import TLS
from gofer.messaging.adapter.model import Broker as BrokerSettings
from gofer.messaging.url import Url

_registered: dict[str, Connector] = {}
_lock = threading.Lock()


class SSL:
    """A connector's TLS files, by the existing gofer's names."""

    def __init__(self) -> None:
        self.ca_certificate: str | None = None
        self.client_certificate: str | None = None
        self.client_key: str | None = None
        self.host_validation = True

    def validate(self) -> None:
        """Check that the files named exist and can be read.

        Raises:
            ValueError: one cannot.
        """
        for path in (self.ca_certificate, self.client_certificate, self.client_key):
            if not path:
                continue
            if not os.path.exists(path):
                raise ValueError(f'"{path}" not found')
            if not os.access(path, os.R_OK):
                raise ValueError(f'"{path}" insufficient permissions')

    def __bool__(self) -> bool:
        """True when any file is named."""
        return any((self.ca_certificate, self.client_certificate, self.client_key))

    def __repr__(self) -> str:
        return (
            f"SSL(ca_certificate={self.ca_certificate!r}, client_key={self.client_key!r}, "
            f"client_certificate={self.client_certificate!r}, "
            f"host_validation={self.host_validation!r})"
        )

    def tls(self) -> TLS:
        return TLS(
            cacert=self.ca_certificate,
            clientcert=self.client_certificate,
            clientkey=self.client_key,
            host_validation=self.host_validation,
        )


class Connector:
    """The settings for connections to one broker URL.

    Args:
        url: the broker URL (its password, if any, is kept, never shown).
    """

    def __init__(self, url: str = "amqp://localhost") -> None:
        self.url = Url.parse(url)
        self.ssl = SSL()
        self.heartbeat: float | None = None

    def add(self) -> None:
        """Register these settings for the URL (replacing earlier ones)."""
        with _lock:
            _registered[_key(self.url)] = self

    @staticmethod
    def find(url: str | Url) -> Connector:
        """The connector registered for ``url``, or a new (unregistered) one for it."""
        found = registered(url)
        if found is None:
            return Connector(url if isinstance(url, str) else url.secret())
        return found

    def broker(self, url: str | Url | None = None) -> BrokerSettings:
        """Settings for ``url`` (with its credentials; default: the connector's URL) and these."""
        parsed = self.url if url is None else url if isinstance(url, Url) else Url.parse(url)
        heartbeat = 10.0 if self.heartbeat is None else self.heartbeat
        return BrokerSettings(url=parsed, tls=self.ssl.tls(), heartbeat=heartbeat or None)

    # The parts of the URL, by the existing gofer's names.

    @property
    def adapter(self) -> str | None:
        return self.url.adapter

    @property
    def scheme(self) -> str:
        return self.url.scheme

    @property
    def host(self) -> str:
        return self.url.host

    @property
    def port(self) -> int:
        return self.url.port

    @property
    def userid(self) -> str | None:
        return self.url.userid

    @property
    def password(self) -> str | None:
        return self.url.password

    @property
    def virtual_host(self) -> str | None:
        return self.url.virtual_host

    def use_ssl(self) -> bool:
        """True when the URL's scheme asks for TLS."""
        return self.url.tls

    def __repr__(self) -> str:
        return f"Connector({str(self.url)!r})"


class Broker(Connector):
    """The existing gofer's older name of :class:`Connector`."""


def registered(url: str | Url) -> Connector | None:
    """The connector registered for ``url`` (scheme, host, port, virtual host), if any."""
    if not _registered:  # the common case costs no URL parsing
        return None
    parsed = url if isinstance(url, Url) else Url.parse(url)
    with _lock:
        return _registered.get(_key(parsed))


def settings_for(url: str | Url, tls: TLS, heartbeat: float | None) -> tuple[TLS, float | None]:
    """The TLS and heartbeat to use: those given, else a registered connector's."""
    found = registered(url)
    if found is None:
        return tls, heartbeat
    if tls == TLS():
        tls = found.ssl.tls()
    if heartbeat is None:
        heartbeat = found.heartbeat
    return tls, heartbeat


def reset() -> None:
    """Forget every registered connector."""
    with _lock:
        _registered.clear()


def _key(url: Url) -> str:
    """Connectors are found by scheme, host, port and virtual host: not by user or adapter."""
    return f"{url.scheme}://{url.host}:{url.port}/{url.virtual_host or ''}"


__all__ = ["SSL", "Broker", "Connector", "registered", "reset", "settings_for"]
