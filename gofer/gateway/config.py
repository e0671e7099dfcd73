"""The gateway's settings: ``/etc/gofer/gateway.conf`` parsed once into frozen dataclasses.

::

    [main]
    listen = 127.0.0.1:8080

    [messaging]
    url = amqp://mq.example.com
    reply_queue = gofer.gateway.web1

    [token:ci]
    token = 9c1d...            # at least 16 characters
    agents = web-*, db-1       # fnmatch patterns of agent queues
    classes = Package, Admin   # ... and of classes

Every section and key is described in the shipped ``etc/gofer/gateway.conf``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gofer.config import Config, get_bool, get_integer
from gofer.errors import ConfigError
from gofer.messaging.adapter.model import TLS
from gofer.rmi.options import seconds

#: Where the gateway reads its settings by default.
DEFAULT_PATH = Path("/etc/gofer/gateway.conf")
#: Shortest bearer token accepted: anything shorter can be guessed.
MIN_TOKEN = 16


@dataclasses.dataclass(frozen=True)
class Grant:
    """Who may call what: fnmatch patterns of agent queues and of class names.

    Attributes:
        name: the token's name (``ci`` for ``[token:ci]``), ``basic`` or
            ``anonymous``; it names the caller in logs and in stored calls.
        agents: patterns of agent queues this caller may call.
        classes: patterns of the classes it may call (``Admin`` included:
            cancelling a call needs no grant, it is the caller's own).
    """

    name: str
    agents: tuple[str, ...] = ("*",)
    classes: tuple[str, ...] = ("*",)

    def allows(self, queue: str, classname: str) -> bool:
        """True when ``queue`` and ``classname`` both match one of their patterns."""
        return _matches(queue, self.agents) and _matches(classname, self.classes)

    def allows_agent(self, queue: str) -> bool:
        """True when ``queue`` matches one of the agent patterns."""
        return _matches(queue, self.agents)


def _matches(value: str, patterns: tuple[str, ...]) -> bool:
    # fnmatchcase: the same answer on every platform (queues are case-sensitive).
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in patterns)


@dataclasses.dataclass(frozen=True)
class Token:
    """A bearer token and what it grants."""

    secret: str = dataclasses.field(repr=False)
    grant: Grant


@dataclasses.dataclass(frozen=True)
class Signing:
    """How requests are signed and replies checked (``[signing]``); all None: not at all.

    Attributes:
        hmac_key: path of the file holding the shared key (HmacAuthenticator).
        private_key: path of the gateway's PEM private key (KeyPairAuthenticator).
        public_keys: paths of the agents' PEM public keys.
    """

    hmac_key: str | None = None
    private_key: str | None = None
    public_keys: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.hmac_key or self.private_key)


def default_reply_queue() -> str:
    """``gofer.gateway.<host name>``: stable across restarts of one instance."""
    return f"gofer.gateway.{socket.gethostname()}"


@dataclasses.dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway reads from its configuration file.

    Attributes:
        host: the address to listen on.
        port: the port to listen on.
        url: the broker URL (several, comma-separated, for a cluster).
        reply_queue: the gateway's own durable reply queue; one per gateway
            instance, kept across restarts so that no reply is lost.
        broker_tls: TLS settings for the broker connection.
        heartbeat: seconds between AMQP heartbeats; None for the default.
        certificate: PEM certificate to serve HTTPS with; None for plain HTTP.
        key: its PEM private key (None when the certificate file holds it).
        state_dir: where the call database lives.
        max_body: the largest request body accepted, in bytes.
        ttl: seconds an agent has to start a call that names no ``ttl``.
        max_ttl: the largest ``ttl`` a caller may ask for.
        max_wait: the longest ``?wait=`` (and fan-out ``wait``) honoured.
        keep: seconds a call is kept after its last change.
        max_kept: the most calls kept; the oldest go first.
        tokens: the configured bearer tokens.
        basic: what HTTP Basic callers may call; None when Basic is off.
        anonymous: what callers without credentials may call; None (the
            default) when they are refused.
        signing: request signing.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    url: str = "amqp://localhost"
    reply_queue: str = dataclasses.field(default_factory=default_reply_queue)
    broker_tls: TLS = TLS()  # noqa: RUF009 - frozen: one shared default is safe
    heartbeat: float | None = None
    certificate: str | None = None
    key: str | None = None
    state_dir: Path = Path("/var/lib/gofer/gateway")
    max_body: int = 1024 * 1024
    ttl: float = 3600.0
    max_ttl: float = 86400.0
    max_wait: float = 300.0
    keep: float = 86400.0
    max_kept: int = 100_000
    tokens: tuple[Token, ...] = ()
    basic: Grant | None = None
    anonymous: Grant | None = None
    signing: Signing = Signing()

    @property
    def database(self) -> Path:
        return self.state_dir / "calls.sqlite"


def load(path: Path = DEFAULT_PATH) -> GatewayConfig:
    """Read and check the configuration file.

    Raises:
        ConfigError: the file cannot be read, or a value is wrong (naming
            the file, section and key).
    """
    return parse(Config(path), str(path))


def parse(sections: Mapping[str, Mapping[str, Any]], path: str | None = None) -> GatewayConfig:
    """The configuration from its sections (``{section: {key: text}}``).

    Raises:
        ConfigError: a value is wrong.
    """
    reader = _Reader(sections, path)
    host, port = reader.listen()
    tokens = tuple(reader.token(name) for name in sections if name.startswith("token:"))
    secrets = [token.secret for token in tokens]
    if len(set(secrets)) != len(secrets):
        raise ConfigError("two tokens have the same secret", path=path)
    return GatewayConfig(
        host=host,
        port=port,
        url=reader.text("messaging", "url") or "amqp://localhost",
        reply_queue=reader.text("messaging", "reply_queue") or default_reply_queue(),
        broker_tls=TLS(
            cacert=reader.text("messaging", "cacert"),
            clientcert=reader.text("messaging", "clientcert"),
            clientkey=reader.text("messaging", "clientkey"),
            host_validation=reader.boolean("messaging", "host_validation", True),
        ),
        heartbeat=reader.duration("messaging", "heartbeat", None),
        certificate=reader.text("tls", "certificate"),
        key=reader.text("tls", "key"),
        state_dir=Path(reader.text("main", "state_dir") or "/var/lib/gofer/gateway"),
        max_body=reader.integer("main", "max_body", 1024 * 1024),
        ttl=reader.duration("calls", "ttl", 3600.0) or 3600.0,
        max_ttl=reader.duration("calls", "max_ttl", 86400.0) or 86400.0,
        max_wait=reader.duration("calls", "max_wait", 300.0) or 0.0,
        keep=reader.duration("calls", "keep", 86400.0) or 86400.0,
        max_kept=reader.integer("calls", "max_kept", 100_000),
        tokens=tokens,
        basic=reader.grant("basic"),
        anonymous=reader.grant("anonymous"),
        signing=Signing(
            hmac_key=reader.text("signing", "hmac_key"),
            private_key=reader.text("signing", "private_key"),
            public_keys=reader.patterns("signing", "public_keys", ()),
        ),
    )


class _Reader:
    """Typed reads of one key, each error naming the file, section and key."""

    def __init__(self, sections: Mapping[str, Mapping[str, Any]], path: str | None) -> None:
        self.sections = sections
        self.path = path

    def raw(self, section: str, key: str) -> str | None:
        value = self.sections.get(section, {}).get(key)
        if value is None:
            return None
        text = str(value).strip()
        return text or None

    def fail(self, message: str, section: str, key: str) -> ConfigError:
        return ConfigError(message, path=self.path, section=section, key=key)

    def text(self, section: str, key: str) -> str | None:
        return self.raw(section, key)

    def boolean(self, section: str, key: str, default: bool) -> bool:
        value = self.raw(section, key)
        if value is None:
            return default
        try:
            return get_bool(value)
        except ValueError as exc:
            raise self.fail(str(exc), section, key) from exc

    def integer(self, section: str, key: str, default: int) -> int:
        value = self.raw(section, key)
        if value is None:
            return default
        try:
            number = get_integer(value)
        except ValueError as exc:
            raise self.fail(f"not an integer: {value!r}", section, key) from exc
        if number < 1:
            raise self.fail(f"must be at least 1: {number}", section, key)
        return number

    def duration(self, section: str, key: str, default: float | None) -> float | None:
        value = self.raw(section, key)
        if value is None:
            return default
        try:
            return seconds(value, key)
        except ValueError as exc:
            raise self.fail(str(exc), section, key) from exc

    def patterns(self, section: str, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.raw(section, key)
        if value is None:
            return default
        return tuple(part.strip() for part in value.split(",") if part.strip())

    def listen(self) -> tuple[str, int]:
        value = self.raw("main", "listen") or "127.0.0.1:8080"
        host, _, port = value.rpartition(":")
        try:
            number = int(port)
        except ValueError:
            number = -1
        if not host or not 0 < number < 65536:
            raise self.fail(f"not host:port: {value!r}", "main", "listen")
        return host.strip("[]"), number

    def grant(self, section: str) -> Grant | None:
        if not self.boolean(section, "enabled", False):
            return None
        return Grant(
            section,
            self.patterns(section, "agents", ("*",)),
            self.patterns(section, "classes", ("*",)),
        )

    def token(self, section: str) -> Token:
        name = section.partition(":")[2].strip()
        if not name:
            raise self.fail("a token section is named [token:NAME]", section, "")
        secret = self.raw(section, "token")
        if secret is None or len(secret) < MIN_TOKEN:
            raise self.fail(f"a token has at least {MIN_TOKEN} characters", section, "token")
        agents = self.patterns(section, "agents", ())
        classes = self.patterns(section, "classes", ("*",))
        if not agents:
            # No default here: a token that forgot its allow-list must not reach every host.
            raise self.fail("say which agents the token may call (* for all)", section, "agents")
        return Token(secret, Grant(name, agents, classes))


__all__ = ["DEFAULT_PATH", "GatewayConfig", "Grant", "Signing", "Token", "load", "parse"]
