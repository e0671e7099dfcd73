"""Tells systemd how goferd is doing (``sd_notify``): ready, reloading, stopping, status, watchdog.

The protocol is one datagram of ``KEY=VALUE`` lines sent to the unix socket
named by ``$NOTIFY_SOCKET`` (a path, or an abstract name written with a
leading ``@``). When the variable is unset goferd does not run under a
``Type=notify`` unit and every call is a quiet no-op.

Example::

    notify(READY)
    notify(status("3 plugins loaded"))
    ...
    notify(STOPPING)
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

READY = "READY=1"
RELOADING = "RELOADING=1"
STOPPING = "STOPPING=1"
WATCHDOG = "WATCHDOG=1"


def status(text: str) -> str:
    """The state that shows ``text`` in ``systemctl status``."""
    return "STATUS=" + text.replace("\n", " ")


def notify(state: str) -> bool:
    """Send a state to systemd.

    Args:
        state: one or more ``KEY=VALUE`` lines, e.g. :data:`READY`.

    Returns:
        True when it was sent; False when ``$NOTIFY_SOCKET`` is unset, names
        a kind of socket we do not speak (``vsock:``), or the send failed
        (logged: a daemon keeps running when its supervisor cannot be told).
    """
    address = _address(os.environ.get("NOTIFY_SOCKET", ""))
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode("utf-8"), address)
    except OSError as exc:
        log.warning("cannot notify systemd (%s) at %r: %s", state, address, exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """The watchdog interval systemd expects us to ping within, in seconds.

    Ping (``notify(WATCHDOG)``) at about half of it.

    Returns:
        The interval from ``$WATCHDOG_USEC``, or None when there is no
        watchdog, the value is not a positive number, or ``$WATCHDOG_PID``
        names another process.
    """
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = os.environ.get("WATCHDOG_PID")
    if usec <= 0 or (pid is not None and pid.strip() != str(os.getpid())):
        return None
    return usec / 1_000_000


def _address(value: str) -> str | None:
    """The socket address of ``$NOTIFY_SOCKET``, or None when there is none we can use."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    if value:
        log.debug("NOTIFY_SOCKET %r is not a unix socket; not notifying", value)
    return None
