"""Plugin descriptors: the checked ``[main]``, ``[messaging]`` and ``[model]``, and loading them."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from pathlib import Path

from gofer.agent.config import values
from gofer.agent.config.cfg import Cfg, CfgSection
from gofer.agent.config.files import READERS, RawSections, Section, empty, listed, merge
from gofer.agent.paths import Paths
from gofer.errors import ConfigError, MessagingError
from gofer.messaging.adapter.model import QUEUE_TYPES, TLS, Address, Broker, QueueType
from gofer.messaging.retry import Backoff
from gofer.messaging.url import Url

log = logging.getLogger(__name__)

#: File name endings of plugin descriptors.
DESCRIPTOR_SUFFIXES = (".conf", ".ini", ".json")

#: The descriptor sections gofer reads itself; every other one belongs to the plugin.
RESERVED_SECTIONS = frozenset({"main", "messaging", "model"})

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})*")
_OBJECT = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})*(:{_IDENTIFIER}(\.{_IDENTIFIER})*)?")


@dataclasses.dataclass(frozen=True)
class MainSection:
    """A descriptor's ``[main]``.

    Attributes:
        enabled: load the plugin (default: no).
        name: the plugin name; the descriptor's file name without extension by default.
        plugin: the dotted module to import; None searches the plugin
            directories for a module named like the plugin.
        threads: worker threads for its requests.
        latency: seconds to wait before running each request (a window to cancel it).
        accept: plugins allowed to forward to this one (``*`` is every plugin).
        forward: plugins this one forwards to (``*`` is every plugin).
        extends: plugins whose remote API this one adds to its own.
    """

    enabled: bool = False
    name: str = ""
    plugin: str | None = None
    threads: int = 1
    latency: float = 0.0
    accept: tuple[str, ...] = ()
    forward: tuple[str, ...] = ()
    extends: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class MessagingSection:
    """A descriptor's ``[messaging]``.

    Attributes:
        url: the broker; None means the plugin does not connect to one.
        uuid: the old name of the queue (deprecated; use ``[model] queue``).
        cacert: PEM file of the CA(s) that signed the broker's certificate.
        clientcert: PEM file of our certificate (it may hold the key too).
        clientkey: PEM file of our private key.
        host_validation: check that the broker's certificate names its host.
        authenticator: dotted path of the message authenticator to load.
        heartbeat: seconds between AMQP heartbeats; 0 turns them off.
        reconnect_min: the bound of the first wait before reconnecting
            after a loss; each failed attempt doubles it.
        reconnect_max: the cap on that bound. Each wait is drawn at random
            below its bound, so that a fleet does not come back in step.
        shuffle: start at a random broker of a URL that names several
            (spreading agents over a cluster's nodes); off keeps the order.
    """

    url: Url | None = None
    uuid: str | None = None
    cacert: str | None = None
    clientcert: str | None = None
    clientkey: str | None = None
    host_validation: bool = True
    authenticator: str | None = None
    heartbeat: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    shuffle: bool = True

    def broker(self) -> Broker | None:
        """The broker connection settings, or None when there is no ``url``."""
        if self.url is None:
            return None
        tls = TLS(self.cacert, self.clientcert, self.clientkey, self.host_validation)
        return Broker(url=self.url, tls=tls, heartbeat=self.heartbeat or None, shuffle=self.shuffle)

    def reconnect(self) -> Backoff:
        """The pacing of connection attempts these settings ask for."""
        return Backoff(initial=self.reconnect_min, maximum=self.reconnect_max, full_jitter=True)


@dataclasses.dataclass(frozen=True)
class ModelSection:
    """A descriptor's ``[model]``: what goferd declares on the broker.

    Attributes:
        managed: 0 declares nothing; 1 declares (and binds) the queue;
            2 also drains and deletes it on an explicit detach.
        queue: ``queue`` or ``exchange/queue``; ``[messaging] uuid`` when not
            given; None when neither is.
        expiration: seconds the queue may stay unused before the broker
            deletes it; None keeps it.
        queue_type: ``classic``, or ``quorum`` for a queue replicated over
            the nodes of a RabbitMQ cluster.
    """

    managed: int = 2
    queue: str | None = None
    expiration: float | None = None
    queue_type: QueueType = "classic"

    @property
    def address(self) -> Address | None:
        """The queue as an :class:`~gofer.messaging.adapter.model.Address`."""
        return Address.parse(self.queue) if self.queue else None


@dataclasses.dataclass(frozen=True)
class Descriptor:
    """A checked plugin descriptor.

    Attributes:
        path: the file it was read from.
        main: ``[main]``, typed.
        messaging: ``[messaging]``, typed.
        model: ``[model]``, typed.
        cfg: every section as written, for the plugin (not shown by ``repr``:
            user sections may hold secrets).
    """

    path: Path
    main: MainSection
    messaging: MessagingSection
    model: ModelSection
    cfg: Cfg = dataclasses.field(repr=False, compare=False)

    @property
    def name(self) -> str:
        """The plugin name."""
        return self.main.name

    @property
    def enabled(self) -> bool:
        """The plugin is to be loaded."""
        return self.main.enabled

    @property
    def user_sections(self) -> Mapping[str, CfgSection]:
        """The sections that belong to the plugin (all but main, messaging and model)."""
        return {name: section for name, section in self.cfg if name not in RESERVED_SECTIONS}


_DESCRIPTOR_KEYS: Mapping[str, frozenset[str]] = {
    "main": frozenset(
        {"enabled", "name", "plugin", "threads", "latency", "accept", "forward", "extends"}
    ),
    "messaging": frozenset(
        {
            "url",
            "uuid",
            "cacert",
            "clientcert",
            "clientkey",
            "host_validation",
            "authenticator",
            "heartbeat",
            "reconnect_min",
            "reconnect_max",
            "shuffle",
        }
    ),
    "model": frozenset({"managed", "queue", "exchange", "expiration", "queue_type"}),
}


def load_descriptor(path: str | Path) -> Descriptor:
    """Read and check one plugin descriptor.

    Args:
        path: a ``.conf``, ``.ini`` or ``.json`` file.

    Returns:
        The descriptor.

    Raises:
        ConfigError: the file cannot be read or parsed, or a value is wrong;
            the error names the file, section and key.
    """
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(
            f"not a plugin descriptor: expected a name ending in {', '.join(DESCRIPTOR_SUFFIXES)}",
            str(path),
        )
    return descriptor_from(path, reader(path))


def descriptor_from(path: Path, raw: RawSections, cfg: Cfg | None = None) -> Descriptor:
    """A descriptor from its sections (as read from ``path``, or changed since by the plugin).

    ``cfg``, when given, is kept as the new descriptor's (the plugin holds it).

    Raises:
        ConfigError: a value is wrong; the error names the file, section and key.
    """
    sections = merge([(str(path), raw)])

    def known(name: str) -> Section:
        section = (sections.get(name) or empty(name, str(path))).folded()
        section.warn_unknown(_DESCRIPTOR_KEYS[name])
        return section

    messaging = _messaging_section(known("messaging"))
    descriptor = Descriptor(
        path=path,
        main=_main_section(known("main"), path.stem),
        messaging=messaging,
        model=_model_section(known("model"), messaging.uuid),
        cfg=cfg if cfg is not None else Cfg(raw),
    )
    log.debug("%s: plugin %r (enabled: %s)", path, descriptor.name, descriptor.enabled)
    return descriptor


def load_descriptors(paths: Paths) -> tuple[list[Descriptor], list[ConfigError]]:
    """Read every descriptor in the descriptor directory, in name order.

    A broken descriptor does not stop the others: its error is collected
    and returned for the caller to report. A second descriptor giving a
    plugin name already taken is such an error.

    Args:
        paths: where the descriptors are.

    Returns:
        The descriptors read, and the errors of those that could not be.
    """
    descriptors: list[Descriptor] = []
    errors: list[ConfigError] = []
    taken: dict[str, Path] = {}
    try:
        files = listed(paths.descriptors, DESCRIPTOR_SUFFIXES)
    except ConfigError as exc:
        return descriptors, [exc]
    for path in files:
        try:
            descriptor = load_descriptor(path)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if descriptor.name in taken:
            message = f"plugin name {descriptor.name!r} already used by {taken[descriptor.name]}"
            errors.append(ConfigError(message, str(path), "main", "name"))
            continue
        taken[descriptor.name] = path
        descriptors.append(descriptor)
    return descriptors, errors


def _main_section(section: Section, default_name: str) -> MainSection:
    name = values.text(section, "name") or default_name
    return MainSection(
        enabled=values.boolean(section, "enabled", False),
        name=name,
        plugin=values.dotted(section, "plugin", _MODULE, "package.module"),
        threads=values.integer(section, "threads", 1, 1, 1000),
        latency=values.seconds(section, "latency", 0.0),
        accept=values.names(section, "accept"),
        forward=values.names(section, "forward"),
        extends=values.names(section, "extends"),
    )


def _messaging_section(section: Section) -> MessagingSection:
    return MessagingSection(
        url=values.url(section, "url"),
        uuid=values.text(section, "uuid"),
        cacert=values.text(section, "cacert"),
        clientcert=values.text(section, "clientcert"),
        clientkey=values.text(section, "clientkey"),
        host_validation=values.boolean(section, "host_validation", True),
        authenticator=values.dotted(section, "authenticator", _OBJECT, "package.module.Class"),
        heartbeat=values.seconds(section, "heartbeat", 10.0),
        **_reconnect(section),
        shuffle=values.boolean(section, "shuffle", True),
    )


def _reconnect(section: Section) -> dict[str, float]:
    low = values.seconds(section, "reconnect_min", MessagingSection.reconnect_min)
    high = values.seconds(section, "reconnect_max", MessagingSection.reconnect_max)
    if low <= 0:
        raise section.error("reconnect_min", f"expected a positive number of seconds, got {low:g}")
    if high < low:
        raise section.error(
            "reconnect_max", f"expected at least reconnect_min ({low:g}s), got {high:g}"
        )
    return {"reconnect_min": low, "reconnect_max": high}


def _model_section(section: Section, uuid: str | None) -> ModelSection:
    queue = _queue(section, uuid)
    expiration = values.duration(section, "expiration", None)
    if expiration is not None and expiration <= 0:
        raise section.error(
            "expiration", f"expected a positive number of seconds, got {expiration:g}"
        )
    queue_type = (values.text(section, "queue_type") or "classic").strip().lower()
    if queue_type not in QUEUE_TYPES:
        raise section.error(
            "queue_type", f"expected {' or '.join(QUEUE_TYPES)}, got {queue_type!r}"
        )
    return ModelSection(
        managed=values.integer(section, "managed", 2, 0, 2),
        queue=queue,
        expiration=expiration,
        queue_type=queue_type,
    )


def _queue(section: Section, uuid: str | None) -> str | None:
    """``[model] queue``, else the old ``[messaging] uuid``; the old ``exchange`` prefixes it."""
    queue = values.text(section, "queue")
    if queue is None and uuid is not None:
        log.info("%s: [messaging] uuid is deprecated; use [model] queue", section.path)
        queue = uuid
    if queue is None:
        return None
    exchange = values.text(section, "exchange")
    if exchange is not None:
        if "/" in queue:
            log.warning("%s: [model] exchange ignored: queue %r names one", section.path, queue)
        else:
            queue = f"{exchange}/{queue}"
    try:
        Address.parse(queue)
    except MessagingError as exc:
        given = "queue" if values.text(section, "queue") else "queue (from [messaging] uuid)"
        raise section.error(
            "queue", f"expected 'queue' or 'exchange/queue' as {given}, got {queue!r}"
        ) from exc
    return queue
