"""The ``goferd`` command: run the agent in the foreground, as systemd wants it."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from gofer import __version__, owned
from gofer.agent import logs, metrics, notify
from gofer.agent.config.agent_conf import load_agent_config
from gofer.agent.daemon import Goferd
from gofer.agent.paths import Paths, UnsafeDirectoryError, make_directory, unsafe_directory
from gofer.errors import ConfigError, GoferError
from gofer.rmi import stdio

log = logging.getLogger("gofer.goferd")

#: Exit statuses. TEMPFAIL: goferd could not go on without losing requests
#: (its journal cannot write); systemd restarts it (Restart=on-failure).
OK, FAILED, USAGE, TEMPFAIL, CONFIG = 0, 1, 2, 75, 78
#: Seconds between updates of the status line systemd shows (and watchdog pings, at
#: least twice per watchdog interval).
STATUS_INTERVAL = 10.0


def parser() -> argparse.ArgumentParser:
    """The argument parser (also the source of the man page)."""
    cli = argparse.ArgumentParser(
        prog="goferd",
        description="The gofer agent: hosts plugins and serves their remote methods "
        "over AMQP brokers. Runs in the foreground (systemd's way).",
        epilog="Signals: SIGTERM/SIGINT stop after running requests end (at most "
        "[main] drain_timeout seconds; unfinished ones run again at the next start); "
        "SIGHUP reloads the plugins. Exit status: 0 stopped cleanly, 1 failed, "
        "75 the journal could not be written (restart once the disk is fixed), "
        "78 configuration error (also: a directory of goferd's that another user owns "
        "or may write to, or a journal written by a later gofer).",
    )
    cli.add_argument(
        "-f",
        "--foreground",
        action="store_true",
        help="run in the foreground (always the case; accepted for compatibility)",
    )
    cli.add_argument(
        "--root",
        metavar="DIR",
        help="move every path (/etc/gofer, /var/lib/gofer, /run/gofer, plugin "
        "directories) below DIR; default $GOFER_ROOT or /",
    )
    cli.add_argument(
        "--log",
        dest="log_target",
        default="auto",
        choices=("auto", "journald", "syslog", "stderr", "json"),
        help="where log lines go (auto: the journal under systemd, else stderr; "
        "json: JSON objects, one per line, on stderr)",
    )
    cli.add_argument("--version", action="version", version=f"goferd {__version__}")
    return cli


def main(argv: list[str] | None = None) -> int:
    """Run goferd until a stop signal; returns the exit status."""
    stdio.fill()  # before any file is opened: none may become fd 0, 1 or 2
    args = parser().parse_args(argv)
    paths = Paths.from_environment(args.root)
    try:
        config = load_agent_config(paths)
    except GoferError as exc:
        print(f"goferd: {exc}", file=sys.stderr)
        return CONFIG
    levels = {name: logging.getLevelName(level) for name, level in config.logging.levels.items()}
    logs.configure(levels, target=args.log_target)
    try:
        with pid_lock(paths.pidfile):
            return _serve(paths, config)
    except ConfigError as exc:
        # An unsafe directory, a journal of a later gofer: restarting does not fix
        # those, and 78 is the status goferd.service does not restart on.
        log.error("goferd cannot start: %s", exc)
        return CONFIG
    except GoferError as exc:
        log.error("goferd cannot start: %s", exc)
        return FAILED


def _serve(paths: Paths, config: object) -> int:
    stop = threading.Event()
    reload = threading.Event()

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_reload(signum: int, frame: FrameType | None) -> None:
        reload.set()
        stop.set()  # wakes the main loop; cleared again below

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_reload)
    agent = Goferd(paths, config)  # type: ignore[arg-type]
    fatal: list[str] = []

    def on_fatal(reason: str) -> None:
        fatal.append(reason)
        stop.set()

    agent.on_fatal = on_fatal
    agent.start()
    log.info("goferd %s running (pid %d, root %s)", __version__, os.getpid(), paths.root)
    notify.notify("READY=1")
    watch = _Watch(agent)
    while True:
        if not stop.wait(watch.tick):
            watch.look()
            continue
        if reload.is_set():
            reload.clear()
            stop.clear()
            notify.notify("RELOADING=1")
            agent.reload()
            notify.notify("READY=1")
            continue
        break
    if fatal:
        log.critical("goferd exits: %s", fatal[0])
        notify.notify(f"STATUS=failed: {fatal[0]}")
    log.info("goferd stopping")
    notify.notify("STOPPING=1")
    watch.stop()
    agent.shutdown()
    return TEMPFAIL if fatal else OK


class _Watch:
    """What goferd's main loop does between signals: tell systemd, write the metrics."""

    def __init__(self, agent: Goferd) -> None:
        self.agent = agent
        self.watchdog = notify.watchdog_interval()
        self.figures = agent.config.metrics
        self.tick = min(STATUS_INTERVAL, self.watchdog / 2) if self.watchdog else STATUS_INTERVAL
        self.shown = ""
        self.written = time.monotonic()
        self.server: metrics.Server | None = None
        if self.figures.listen is not None:
            self.server = self._serve(self.figures.listen)
        if self.figures.textfile is not None:
            self.tick = min(self.tick, self.figures.interval)
            self._write(self.figures.textfile)

    def look(self) -> None:
        """Ping the watchdog while goferd is going; update the status and the metrics file."""
        alive, status = self.agent.health()
        if self.watchdog and alive:
            notify.notify(notify.WATCHDOG)
        elif self.watchdog:
            log.error("not pinging the systemd watchdog: %s", status)
        if status != self.shown:
            notify.notify(notify.status(status))
            self.shown = status
        textfile = self.figures.textfile
        if textfile is not None and time.monotonic() - self.written >= self.figures.interval:
            self._write(textfile)
            self.written = time.monotonic()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def _serve(self, listen: tuple[str, int]) -> metrics.Server | None:
        try:
            server = metrics.Server(listen, self.agent.metrics_text)
        except OSError as exc:
            log.error("cannot serve the metrics on %s:%d: %s", *listen, exc)
            return None
        server.start()
        log.info("metrics served at http://%s:%d/metrics", *server.address)
        return server

    def _write(self, path: Path) -> None:
        try:
            metrics.write_textfile(path, self.agent.metrics_text())
        except OSError as exc:
            log.warning("cannot write the metrics to %s: %s", path, exc)


@contextlib.contextmanager
def pid_lock(path: Path) -> Iterator[None]:
    """Hold the pid file's lock (one goferd per root) and keep our pid in it.

    Raises:
        GoferError: another goferd holds it.
    """
    try:
        make_directory(path.parent, 0o755)
        unsafe = unsafe_directory(path.parent, {0, os.geteuid()})
        if unsafe is not None:
            raise UnsafeDirectoryError(f"refusing the pid file's directory: {unsafe}")
        # Never through a link: root would write (and lock) whatever it points to.
        # Owned: a forked child does not keep it (nor, with it, the lock).
        fd = owned.open_file(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise GoferError(f"cannot use the pid file {path}: {exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise GoferError(f"goferd is already running (pid {other or '?'}, {path})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.set_inheritable(fd, False)
        yield
        with contextlib.suppress(OSError):
            os.unlink(path)
    finally:
        owned.close(fd)


if __name__ == "__main__":
    sys.exit(main())
