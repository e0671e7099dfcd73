"""Caller options (wait, ttl, reply, trigger, progress, ...) and their parsing."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger(__name__)

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)

DEFAULT_WAIT = 90.0


def seconds(value: object, name: str = "duration") -> float:
    """Seconds for ``5``, ``2.5``, ``"30"``, ``"30s"``, ``"5m"``, ``"2h"`` or ``"1d"``.

    Raises:
        ValueError: anything else, naming the option.
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number of seconds or like '5m', not {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{name} must not be negative: {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2).lower()]
    raise ValueError(f"{name} must be a number of seconds or like '5m', not {value!r}")


@dataclasses.dataclass(frozen=True)
class Options:
    """What a caller can say about its calls (the user guide's *Options*).

    Given to ``Agent(url, address, **options)`` they apply to every call;
    given to a stub (``agent.Dog(wait=5)``) they override for its calls.

    Attributes:
        wait: seconds a synchronous call waits for the result; 0 sends and
            returns the serial number at once (fire-and-forget).
        ttl: seconds the agent has to start the request; for a synchronous
            call without one, ``wait`` (nobody waits for it after that).
        reply: an address for asynchronous replies; the call returns the
            serial number at once.
        trigger: 1 returns a trigger (``.sn``; call it to send) instead of sending.
        progress: ``fn(report)`` called with progress of synchronous calls.
        data: anything JSON, echoed back in every reply.
        authenticator: signs requests and checks replies (gofer.messaging.auth).
        exchange: the exchange through which replies reach our reply queue.
        secret: the shared secret methods with ``@remote(secret=...)`` want.
        user: the PAM user for ``@pam`` methods.
        password: the PAM password.
        cacert, clientcert, clientkey, host_validation, heartbeat: broker
            connection settings, as in a plugin descriptor's ``[messaging]``.
    """

    wait: float = DEFAULT_WAIT
    ttl: float | None = None
    reply: str | None = None
    trigger: int = 0
    progress: Callable[[dict[str, Any]], None] | None = None
    data: Any = None
    authenticator: Any = None
    exchange: str | None = None
    secret: str | None = None
    user: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    cacert: str | None = None
    clientcert: str | None = None
    clientkey: str | None = None
    host_validation: bool = True
    heartbeat: float | None = None

    def merged(self, overrides: Mapping[str, Any]) -> Options:
        """These options with ``overrides`` applied (unknown names are logged and ignored)."""
        known = {field.name for field in dataclasses.fields(self)}
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            if name not in known:
                log.warning("unknown RMI option %r ignored", name)
                continue
            changes[name] = _checked(name, value)
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def synchronous(self) -> bool:
        """True when a call waits for its result."""
        return self.reply is None and self.wait > 0

    def effective_ttl(self) -> float | None:
        """The TTL put on a request."""
        if self.ttl is not None:
            return self.ttl
        return self.wait if self.synchronous else None


def _checked(name: str, value: Any) -> Any:
    if name == "wait":
        return seconds(value, "wait")
    if name == "ttl":
        return None if value is None else seconds(value, "ttl")
    if name == "trigger":
        if value not in (0, 1, False, True):
            raise ValueError(f"trigger must be 0 (automatic) or 1 (manual), not {value!r}")
        return int(value)
    if name == "progress" and value is not None and not callable(value):
        raise ValueError("progress must be a callable taking one report")
    if name == "heartbeat":
        return None if value is None else seconds(value, "heartbeat")
    return value
