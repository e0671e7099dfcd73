"""``agent.conf`` with its ``conf.d`` drop-ins: the daemon's frozen sections, and loading them."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from gofer.agent.config import values
from gofer.agent.config.files import Section, empty, listed, merge, read_ini
from gofer.agent.pam import DEFAULT_SERVICE
from gofer.agent.paths import Paths

log = logging.getLogger(__name__)


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
    documents = [(str(path), read_ini(path)) for path in _agent_files(paths)]
    sections = merge(documents)
    _warn_unknown_sections(sections)
    return AgentConfig(
        main=_main_config(_known(sections, "main")),
        management=_management_config(_known(sections, "management"), paths),
        logging=_logging_config(sections.get("logging") or empty("logging")),
        pam=PamConfig(service=values.text(_known(sections, "pam"), "service") or DEFAULT_SERVICE),
        metrics=_metrics_config(_known(sections, "metrics"), paths),
        files=tuple(Path(path) for path, _ in documents),
    )


def _agent_files(paths: Paths) -> list[Path]:
    files = []
    if paths.config.exists():
        files.append(paths.config)
    else:
        log.info("%s not found: using the default agent configuration", paths.config)
    files.extend(listed(paths.config_dir, (".conf",)))
    return files


def _known(sections: Mapping[str, Section], name: str) -> Section:
    section = sections.get(name)
    if section is None:
        return empty(name)
    folded = section.folded()
    folded.warn_unknown(_AGENT_KEYS[name])
    return folded


def _warn_unknown_sections(sections: Mapping[str, Section]) -> None:
    for name, section in sections.items():
        if name not in _AGENT_KEYS and name != "logging":
            log.warning("%s: unknown section [%s] ignored", section.path, name)


def _metrics_config(section: Section, paths: Paths) -> MetricsConfig:
    textfile = values.text(section, "textfile")
    if textfile is not None and not Path(textfile).is_absolute():
        raise section.error("textfile", f"expected an absolute path, got {textfile!r}")
    interval = values.seconds(section, "interval", MetricsConfig.interval)
    if interval < 1:
        raise section.error("interval", f"expected at least 1 second, got {interval:g}")
    listen = values.text(section, "listen")
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


def _main_config(section: Section) -> MainConfig:
    return MainConfig(
        monitor=values.boolean(section, "monitor", False),
        drain_timeout=values.seconds(section, "drain_timeout", MainConfig.drain_timeout),
        action_splay=max(0.0, values.seconds(section, "action_splay", MainConfig.action_splay)),
    )


def _management_config(section: Section, paths: Paths) -> ManagementConfig:
    return ManagementConfig(
        enabled=values.boolean(section, "enabled", False),
        host=values.text(section, "host") or ManagementConfig.host,
        port=values.integer(section, "port", ManagementConfig.port, 1, 65535),
        socket=values.socket(section, paths),
    )


def _logging_config(section: Section) -> LoggingConfig:
    levels = {key: values.level(section, key) for key in section.values}
    return LoggingConfig(levels=MappingProxyType(levels))
