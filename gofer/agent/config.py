"""goferd's configuration: ``agent.conf`` with its ``conf.d`` drop-ins, and plugin descriptors.

Both are read once, checked, and turned into frozen dataclasses that are
passed down; nothing re-reads a file behind the daemon's back.

Reading rules, shared by every file (they keep the old gofer's files working):

- INI files are read by :mod:`configparser` with interpolation off (a ``%``
  in a password is just a ``%``), without a magic ``[DEFAULT]`` section, with
  repeated sections and keys allowed (the last value wins) and with the case
  of keys kept. Keys of the sections gofer knows are matched ignoring case;
  section names are matched exactly.
- An empty value means "not set": the default applies (``url =`` means no
  broker, as before).
- A wrong value is a :class:`~gofer.errors.ConfigError` naming the file,
  section and key, and saying what was expected.
- An unknown section or key of ``agent.conf``, or an unknown key of a known
  descriptor section, is logged as a warning and ignored, so that a newer
  file still loads in an older goferd.

Plugin descriptors are ``.conf`` or ``.ini`` (INI) or ``.json`` (an object
of sections, each an object of keys and values). Their typed, checked
values are :attr:`Descriptor.main`, :attr:`Descriptor.messaging` and
:attr:`Descriptor.model`; :attr:`Descriptor.cfg` is the file as written, for
plugins that read their own sections (``plugin.cfg.foobar.timeout``).
"""

from __future__ import annotations

import configparser
import dataclasses
import json
import logging
import math
import re
import threading
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gofer.agent.pam import DEFAULT_SERVICE
from gofer.agent.paths import Paths
from gofer.errors import ConfigError, InvalidURLError, MessagingError
from gofer.messaging.adapter.model import QUEUE_TYPES, TLS, Address, Broker, QueueType
from gofer.messaging.retry import Backoff
from gofer.messaging.url import Url
from gofer.rmi.options import seconds

log = logging.getLogger(__name__)

#: File name endings of plugin descriptors.
DESCRIPTOR_SUFFIXES = (".conf", ".ini", ".json")

#: The descriptor sections gofer reads itself; every other one belongs to the plugin.
RESERVED_SECTIONS = frozenset({"main", "messaging", "model"})

_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}
_LEVELS = {
    "CRITICAL": logging.CRITICAL,
    "DEBUG": logging.DEBUG,
    "ERROR": logging.ERROR,
    "FATAL": logging.FATAL,
    "INFO": logging.INFO,
    "WARN": logging.WARN,
    "WARNING": logging.WARNING,
}
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})*")
_OBJECT = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})*(:{_IDENTIFIER}(\.{_IDENTIFIER})*)?")
_SECRET_WORDS = ("password", "passwd", "secret")
# configparser copies the keys of its default section into every other one;
# no header line can name a section "\n", so no file can fill it.
_NO_DEFAULT_SECTION = "\n"

RawSections = dict[str, dict[str, object]]


# Agent configuration ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ManagementConfig:
    """``[management]``: how ``gofer mgt`` reaches goferd.

    The local unix socket is always open (unless ``socket`` is set empty); it
    is created for root only, so only root on this host can manage goferd
    through it. ``enabled = 1`` additionally opens the TCP listener on
    ``host:port``, as the old gofer did; it is off by default because any
    local user (or, with another ``host``, any host) could connect to it.

    Attributes:
        enabled: also listen on TCP ``host:port``.
        host: the interface of the TCP listener.
        port: the port of the TCP listener.
        socket: the local socket's path; None when disabled (``socket =``).
    """

    enabled: bool = False
    host: str = "localhost"
    port: int = 5650
    socket: Path | None = dataclasses.field(default_factory=lambda: Paths.under().socket)


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
    """``[logging]``: a level per logger name, ``root`` being the root logger.

    Attributes:
        levels: logger name to level number (``logging.DEBUG``, ...).
    """

    levels: Mapping[str, int] = dataclasses.field(default_factory=lambda: MappingProxyType({}))

    def apply(self) -> None:
        """Set the levels on the loggers; handlers are the entry point's business."""
        for name, level in self.levels.items():
            logging.getLogger(None if name == "root" else name).setLevel(level)


@dataclasses.dataclass(frozen=True)
class PamConfig:
    """``[pam]``: the PAM service that checks ``@pam`` and ``@user`` logins.

    Attributes:
        service: a file in ``/etc/pam.d``.
    """

    service: str = DEFAULT_SERVICE


@dataclasses.dataclass(frozen=True)
class MainConfig:
    """``[main]`` of ``agent.conf`` (new in this gofer).

    Attributes:
        monitor: watch the descriptor directory and load, reload or unload
            plugins as their descriptors appear, change or go.
        drain_timeout: seconds goferd waits on SIGTERM for running requests.
        action_splay: a plugin's recurring actions first run at a random
            moment within this many seconds of loading (or within their
            interval, if shorter), so that a fleet restarted together does
            not act (and call its servers) in step; 0 runs them at once.
    """

    monitor: bool = False
    drain_timeout: float = 30.0
    action_splay: float = 30.0


@dataclasses.dataclass(frozen=True)
class MetricsConfig:
    """``[metrics]``: goferd's figures for Prometheus (see :mod:`gofer.agent.metrics`).

    Attributes:
        textfile: where to write them (for node_exporter's textfile
            collector); None writes nothing.
        interval: seconds between writes.
        listen: ``(host, port)`` to serve them at ``/metrics`` over HTTP
            (for a Prometheus that scrapes goferd itself); None serves nothing.
    """

    textfile: Path | None = None
    interval: float = 15.0
    listen: tuple[str, int] | None = None


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """The agent's configuration: ``agent.conf`` with ``conf.d/*.conf`` merged over it.

    Attributes:
        main: daemon behaviour.
        management: the management endpoint.
        logging: logger levels.
        pam: PAM settings.
        files: the files read, in the order they were merged.
    """

    main: MainConfig = dataclasses.field(default_factory=MainConfig)
    management: ManagementConfig = dataclasses.field(default_factory=ManagementConfig)
    logging: LoggingConfig = dataclasses.field(default_factory=LoggingConfig)
    pam: PamConfig = dataclasses.field(default_factory=PamConfig)
    metrics: MetricsConfig = dataclasses.field(default_factory=MetricsConfig)
    files: tuple[Path, ...] = ()


# Plugin descriptors -----------------------------------------------------------------------


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


class CfgSection:
    """One section of a descriptor as written, read (and written) by attribute or by key.

    A key that is not there reads as None, so a plugin can probe for
    optional settings (``cfg.foobar.timeout or 100``), as with the old gofer.
    Values are strings in INI files and whatever the JSON held in JSON files.
    Iterating gives ``(key, value)`` pairs as the old gofer's sections did;
    ``keys()`` and ``items()`` make ``dict(section)`` work. Keys that are not
    identifiers, start with ``_``, or are named ``keys`` or ``items`` are read
    by key: ``section["max-size"]``.

    A plugin may change values at run time (``plugin.cfg.model.queue =
    "other"``), as the old gofer allowed; ``plugin.attach()`` then applies
    the messaging and model sections. Nothing is written back to the file.
    """

    __slots__ = ("_lock", "_name", "_owner", "_values")
    _name: str
    _values: dict[str, object]
    _owner: Cfg | None
    _lock: threading.Lock

    def __init__(self, name: str, values: Mapping[str, object], owner: Cfg | None = None) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_lock", threading.Lock())

    def __getattr__(self, key: str) -> Any:
        # Private and special names must fail as usual (copy, pickle, hasattr).
        if key.startswith("_"):
            raise AttributeError(key)
        with self._lock:
            return self._values.get(key)

    def __getitem__(self, key: str) -> Any:
        with self._lock:
            return self._values.get(key)

    def __setattr__(self, key: str, value: object) -> None:
        if key.startswith("_") or key in ("keys", "items"):
            raise AttributeError(f"section [{self._name}]: {key!r} is not a setting")
        self[key] = value

    def __setitem__(self, key: str, value: object) -> None:
        with self._lock:
            self._values[key] = value
        if self._owner is not None:
            self._owner._adopt(self)

    def keys(self) -> KeysView[str]:
        """The keys, as written."""
        with self._lock:
            return dict(self._values).keys()

    def items(self) -> ItemsView[str, object]:
        """The ``(key, value)`` pairs."""
        with self._lock:
            return dict(self._values).items()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._values

    def __iter__(self) -> Iterator[tuple[str, object]]:
        return iter(self.items())

    def __len__(self) -> int:
        with self._lock:
            return len(self._values)

    def __repr__(self) -> str:
        shown = {key: _masked(key, value) for key, value in self.items()}
        return f"CfgSection({self._name!r}, {shown!r})"


class Cfg:
    """A descriptor as written: sections by attribute or by key.

    ``cfg.foobar.timeout`` and the old form ``cfg().foobar.timeout`` both
    work (calling a ``Cfg`` returns it). A section that is not there reads as
    an empty section, which joins the others once a value is set in it.
    Iterating gives ``(name, section)`` pairs; sections named ``keys`` or
    ``items`` are read by key. Sections themselves cannot be replaced.
    """

    __slots__ = ("_lock", "_sections")
    _sections: dict[str, CfgSection]
    _lock: threading.Lock

    def __init__(self, sections: Mapping[str, Mapping[str, object]]) -> None:
        built = {name: CfgSection(name, values, self) for name, values in sections.items()}
        object.__setattr__(self, "_sections", built)
        object.__setattr__(self, "_lock", threading.Lock())

    def __call__(self) -> Cfg:
        return self

    def __getattr__(self, name: str) -> CfgSection:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> CfgSection:
        with self._lock:
            section = self._sections.get(name)
        return section if section is not None else CfgSection(name, {}, self)

    def _adopt(self, section: CfgSection) -> None:
        """A section that was missing got a value: it is one of ours from now on."""
        with self._lock:
            self._sections.setdefault(section._name, section)

    def keys(self) -> KeysView[str]:
        """The section names, in file order."""
        with self._lock:
            return dict(self._sections).keys()

    def items(self) -> ItemsView[str, CfgSection]:
        """The ``(name, section)`` pairs."""
        with self._lock:
            return dict(self._sections).items()

    def raw(self) -> dict[str, dict[str, object]]:
        """Every section's values as they are now."""
        return {name: dict(section.items()) for name, section in self.items()}

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a descriptor's sections cannot be replaced; set their values")

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._sections

    def __iter__(self) -> Iterator[tuple[str, CfgSection]]:
        return iter(self.items())

    def __len__(self) -> int:
        with self._lock:
            return len(self._sections)

    def __repr__(self) -> str:
        return f"Cfg({list(self.items())!r})"


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


# Reading files ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Section:
    """One section as merged from files, remembering which file set each key."""

    name: str
    values: Mapping[str, object]
    origins: Mapping[str, str]
    path: str | None

    def get(self, key: str) -> object:
        """The value, stripped; None when absent or empty."""
        value = self.values.get(key)
        if isinstance(value, str):
            value = value.strip()
        return None if value == "" else value

    def error(self, key: str, message: str) -> ConfigError:
        """An error about ``key``, naming the file that set it."""
        return ConfigError(message, self.origins.get(key, self.path), self.name, key)

    def folded(self) -> _Section:
        """The section with its keys in lower case, for matching known keys."""
        values = {key.lower(): value for key, value in self.values.items()}
        origins = {key.lower(): path for key, path in self.origins.items()}
        return _Section(self.name, values, origins, self.path)

    def warn_unknown(self, known: Iterable[str]) -> None:
        """Log every key that is not in ``known``."""
        for key in sorted(set(self.values) - set(known)):
            log.warning(
                "%s: unknown key %r in section [%s] ignored",
                self.origins.get(key, self.path),
                key,
                self.name,
            )


def _empty(name: str, path: str | None = None) -> _Section:
    return _Section(name, {}, {}, path)


class _Parser(configparser.ConfigParser):
    """configparser that keeps the case of keys (the old gofer did)."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def _read_text(path: Path) -> str:
    """The file's text.

    Raises:
        ConfigError: it does not exist, cannot be read or is not UTF-8.
    """
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", str(path)) from exc


def _read_ini(path: Path) -> RawSections:
    """Sections of an INI file; error messages give line numbers, never line text."""
    parser = _Parser(
        interpolation=None,
        strict=False,
        allow_no_value=True,
        default_section=_NO_DEFAULT_SECTION,
    )
    try:
        parser.read_string(_read_text(path), source=str(path))
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError(f"line {exc.lineno}: text before the first [section]", str(path)) from exc
    except configparser.ParsingError as exc:
        lines = ", ".join(str(number) for number, _ in exc.errors)
        raise ConfigError(f"cannot parse line(s) {lines}", str(path)) from exc
    except configparser.Error as exc:
        raise ConfigError(f"not an INI file: {type(exc).__name__}", str(path)) from exc
    return {name: dict(parser[name]) for name in parser.sections()}


def _read_json(path: Path) -> RawSections:
    """Sections of a JSON descriptor: an object of objects."""
    try:
        document = json.loads(_read_text(path))
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"not JSON: {exc}", str(path)) from exc
    if not isinstance(document, dict):
        raise ConfigError("expected a JSON object of sections", str(path))
    for name, section in document.items():
        if not isinstance(section, dict):
            raise ConfigError("expected a JSON object of keys and values", str(path), name)
    return document


_READERS: Mapping[str, Callable[[Path], RawSections]] = {
    ".conf": _read_ini,
    ".ini": _read_ini,
    ".json": _read_json,
}


def _merge(documents: Iterable[tuple[str, RawSections]]) -> dict[str, _Section]:
    """Merge files in order, later values winning key by key."""
    values: dict[str, dict[str, object]] = {}
    origins: dict[str, dict[str, str]] = {}
    files: dict[str, str] = {}
    for path, sections in documents:
        for name, section in sections.items():
            values.setdefault(name, {}).update(section)
            origins.setdefault(name, {}).update(dict.fromkeys(section, path))
            files[name] = path
    return {name: _Section(name, values[name], origins[name], files[name]) for name in values}


# Typed values -----------------------------------------------------------------------------


def _boolean(section: _Section, key: str, default: bool) -> bool:
    value = section.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        return _BOOLEANS[value.lower()]
    raise section.error(key, f"expected a boolean (1/0, true/false, yes/no, on/off), got {value!r}")


def _integer(section: _Section, key: str, default: int, low: int, high: int) -> int:
    value = section.get(key)
    if value is None:
        return default
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[+-]?\d{1,20}", value):
        number = int(value)
    if number is None or not low <= number <= high:
        raise section.error(key, f"expected an integer from {low} to {high}, got {value!r}")
    return number


def _duration(section: _Section, key: str, default: float | None) -> float | None:
    """Seconds: ``30``, ``2.5``, ``"30s"``, ``"5m"``, ``"2h"``, ``"1d"``."""
    value = section.get(key)
    if value is None:
        return default
    try:
        result = seconds(value, key)
    except ValueError as exc:
        raise section.error(key, f"expected seconds: {exc}") from exc
    if not math.isfinite(result):
        raise section.error(key, f"expected a finite number of seconds, got {value!r}")
    return result


def _seconds(section: _Section, key: str, default: float) -> float:
    result = _duration(section, key, default)
    return default if result is None else result


def _text(section: _Section, key: str) -> str | None:
    value = section.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # JSON ``"queue": 123``, as ``queue=123`` in INI
    raise section.error(key, f"expected a string, got {value!r}")


def _names(section: _Section, key: str) -> tuple[str, ...]:
    """A comma-separated list (or a JSON list) of plugin names; ``*`` means all."""
    value = section.get(key)
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise section.error(key, f"expected a comma-separated list of plugin names, got {value!r}")
    return tuple(name.strip() for name in items if name.strip())


def _dotted(section: _Section, key: str, pattern: re.Pattern[str], example: str) -> str | None:
    value = _text(section, key)
    if value is not None and not pattern.fullmatch(value):
        raise section.error(key, f"expected a dotted Python path like {example!r}, got {value!r}")
    return value


def _url(section: _Section, key: str) -> Url | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise section.error(key, "expected a broker URL string")
    try:
        return Url.parse(value)
    except InvalidURLError as exc:  # its message masks the password
        raise section.error(key, f"expected a broker URL: {exc}") from exc


def _socket(section: _Section, paths: Paths) -> Path | None:
    """The management socket; an explicit path moves below the root like every path."""
    if "socket" not in section.values:
        return paths.socket
    value = _text(section, "socket")
    if value is None:
        return None
    if not Path(value).is_absolute():
        raise section.error("socket", f"expected an absolute path, got {value!r}")
    return paths.root / Path(value).relative_to("/")


def _level(section: _Section, key: str) -> int:
    value = section.get(key)
    if isinstance(value, str) and value.upper() in _LEVELS:
        return _LEVELS[value.upper()]
    raise section.error(key, f"expected a level ({', '.join(_LEVELS)}), got {value!r}")


def _masked(key: str, value: object) -> object:
    """A value fit for repr: secrets and URL passwords hidden."""
    if any(word in key.lower() for word in _SECRET_WORDS):
        return "***"
    if isinstance(value, str) and "://" in value and "@" in value:
        try:
            return str(Url.parse(value.strip()))
        except InvalidURLError:
            return "***"
    return value


# Agent configuration: building ------------------------------------------------------------

_AGENT_KEYS: Mapping[str, frozenset[str]] = {
    "main": frozenset({"monitor", "drain_timeout", "action_splay"}),
    "management": frozenset({"enabled", "host", "port", "socket"}),
    "pam": frozenset({"service"}),
    "metrics": frozenset({"textfile", "interval", "listen"}),
}


def load_agent_config(paths: Paths) -> AgentConfig:
    """Read ``agent.conf``, then merge ``conf.d/*.conf`` over it in name order.

    A missing ``agent.conf`` means the defaults (logged at info).

    Args:
        paths: where the files are.

    Returns:
        The checked configuration.

    Raises:
        ConfigError: a file cannot be read or parsed, or a value is wrong;
            the error names the file, section and key.
    """
    documents = [(str(path), _read_ini(path)) for path in _agent_files(paths)]
    sections = _merge(documents)
    _warn_unknown_sections(sections)
    return AgentConfig(
        main=_main_config(_known(sections, "main")),
        management=_management_config(_known(sections, "management"), paths),
        logging=_logging_config(sections.get("logging") or _empty("logging")),
        pam=PamConfig(service=_text(_known(sections, "pam"), "service") or DEFAULT_SERVICE),
        metrics=_metrics_config(_known(sections, "metrics"), paths),
        files=tuple(Path(path) for path, _ in documents),
    )


def _agent_files(paths: Paths) -> list[Path]:
    files = []
    if paths.config.exists():
        files.append(paths.config)
    else:
        log.info("%s not found: using the default agent configuration", paths.config)
    files.extend(_listed(paths.config_dir, (".conf",)))
    return files


def _listed(directory: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files of ``directory`` ending in one of ``suffixes``, sorted; hidden ones skipped.

    Raises:
        ConfigError: the directory exists but cannot be listed.
    """
    try:
        entries = sorted(directory.iterdir())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"cannot list: {exc.strerror or exc}", str(directory)) from exc
    return [
        entry
        for entry in entries
        if entry.suffix in suffixes and not entry.name.startswith(".") and not entry.is_dir()
    ]


def _known(sections: Mapping[str, _Section], name: str) -> _Section:
    section = sections.get(name)
    if section is None:
        return _empty(name)
    folded = section.folded()
    folded.warn_unknown(_AGENT_KEYS[name])
    return folded


def _warn_unknown_sections(sections: Mapping[str, _Section]) -> None:
    for name, section in sections.items():
        if name not in _AGENT_KEYS and name != "logging":
            log.warning("%s: unknown section [%s] ignored", section.path, name)


def _metrics_config(section: _Section, paths: Paths) -> MetricsConfig:
    textfile = _text(section, "textfile")
    if textfile is not None and not Path(textfile).is_absolute():
        raise section.error("textfile", f"expected an absolute path, got {textfile!r}")
    interval = _seconds(section, "interval", MetricsConfig.interval)
    if interval < 1:
        raise section.error("interval", f"expected at least 1 second, got {interval:g}")
    listen = _text(section, "listen")
    address: tuple[str, int] | None = None
    if listen:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise section.error("listen", f"expected HOST:PORT, got {listen!r}")
        address = (host.strip("[]"), int(port))
    return MetricsConfig(
        textfile=paths.root / Path(textfile).relative_to("/") if textfile else None,
        interval=interval,
        listen=address,
    )


def _main_config(section: _Section) -> MainConfig:
    return MainConfig(
        monitor=_boolean(section, "monitor", False),
        drain_timeout=_seconds(section, "drain_timeout", MainConfig.drain_timeout),
        action_splay=max(0.0, _seconds(section, "action_splay", MainConfig.action_splay)),
    )


def _management_config(section: _Section, paths: Paths) -> ManagementConfig:
    return ManagementConfig(
        enabled=_boolean(section, "enabled", False),
        host=_text(section, "host") or ManagementConfig.host,
        port=_integer(section, "port", ManagementConfig.port, 1, 65535),
        socket=_socket(section, paths),
    )


def _logging_config(section: _Section) -> LoggingConfig:
    levels = {key: _level(section, key) for key in section.values}
    return LoggingConfig(levels=MappingProxyType(levels))


# Plugin descriptors: building -------------------------------------------------------------

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
    reader = _READERS.get(path.suffix.lower())
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
    sections = _merge([(str(path), raw)])

    def known(name: str) -> _Section:
        section = (sections.get(name) or _empty(name, str(path))).folded()
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
        files = _listed(paths.descriptors, DESCRIPTOR_SUFFIXES)
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


def _main_section(section: _Section, default_name: str) -> MainSection:
    name = _text(section, "name") or default_name
    return MainSection(
        enabled=_boolean(section, "enabled", False),
        name=name,
        plugin=_dotted(section, "plugin", _MODULE, "package.module"),
        threads=_integer(section, "threads", 1, 1, 1000),
        latency=_seconds(section, "latency", 0.0),
        accept=_names(section, "accept"),
        forward=_names(section, "forward"),
        extends=_names(section, "extends"),
    )


def _messaging_section(section: _Section) -> MessagingSection:
    return MessagingSection(
        url=_url(section, "url"),
        uuid=_text(section, "uuid"),
        cacert=_text(section, "cacert"),
        clientcert=_text(section, "clientcert"),
        clientkey=_text(section, "clientkey"),
        host_validation=_boolean(section, "host_validation", True),
        authenticator=_dotted(section, "authenticator", _OBJECT, "package.module.Class"),
        heartbeat=_seconds(section, "heartbeat", 10.0),
        **_reconnect(section),
        shuffle=_boolean(section, "shuffle", True),
    )


def _reconnect(section: _Section) -> dict[str, float]:
    low = _seconds(section, "reconnect_min", MessagingSection.reconnect_min)
    high = _seconds(section, "reconnect_max", MessagingSection.reconnect_max)
    if low <= 0:
        raise section.error("reconnect_min", f"expected a positive number of seconds, got {low:g}")
    if high < low:
        raise section.error(
            "reconnect_max", f"expected at least reconnect_min ({low:g}s), got {high:g}"
        )
    return {"reconnect_min": low, "reconnect_max": high}


def _model_section(section: _Section, uuid: str | None) -> ModelSection:
    queue = _queue(section, uuid)
    expiration = _duration(section, "expiration", None)
    if expiration is not None and expiration <= 0:
        raise section.error(
            "expiration", f"expected a positive number of seconds, got {expiration:g}"
        )
    queue_type = (_text(section, "queue_type") or "classic").strip().lower()
    if queue_type not in QUEUE_TYPES:
        raise section.error(
            "queue_type", f"expected {' or '.join(QUEUE_TYPES)}, got {queue_type!r}"
        )
    return ModelSection(
        managed=_integer(section, "managed", 2, 0, 2),
        queue=queue,
        expiration=expiration,
        queue_type=queue_type,
    )


def _queue(section: _Section, uuid: str | None) -> str | None:
    """``[model] queue``, else the old ``[messaging] uuid``; the old ``exchange`` prefixes it."""
    queue = _text(section, "queue")
    if queue is None and uuid is not None:
        log.info("%s: [messaging] uuid is deprecated; use [model] queue", section.path)
        queue = uuid
    if queue is None:
        return None
    exchange = _text(section, "exchange")
    if exchange is not None:
        if "/" in queue:
            log.warning("%s: [model] exchange ignored: queue %r names one", section.path, queue)
        else:
            queue = f"{exchange}/{queue}"
    try:
        Address.parse(queue)
    except MessagingError as exc:
        given = "queue" if _text(section, "queue") else "queue (from [messaging] uuid)"
        raise section.error(
            "queue", f"expected 'queue' or 'exchange/queue' as {given}, got {queue!r}"
        ) from exc
    return queue
