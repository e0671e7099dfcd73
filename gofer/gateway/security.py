"""Who is calling: bearer tokens, HTTP Basic (broker credentials), or nobody (if allowed).

A token names its grant (``[token:NAME]``). HTTP Basic credentials are the
caller's broker credentials: the gateway sends that caller's requests with
them, so the broker's own permissions apply, and checks them by
connecting (the answer is remembered for a while). Each caller sees only
the calls it made.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import threading
import time
from collections.abc import Callable

from gofer.errors import GoferError
from gofer.gateway.config import GatewayConfig, Grant

#: Seconds a checked pair of Basic credentials is taken without asking the broker again.
BASIC_CACHE = 300.0
#: The most pairs remembered.
BASIC_CACHE_SIZE = 1024


class UnauthorizedError(GoferError):
    """No credentials, or wrong ones (401)."""


@dataclasses.dataclass(frozen=True)
class Caller:
    """An authenticated caller.

    Attributes:
        name: who it is, as calls are stored (``token:ci``, ``basic:alice``,
            ``anonymous``); a caller sees only calls of its own name.
        grant: what it may call.
        credentials: broker credentials to send with (HTTP Basic), or None.
    """

    name: str
    grant: Grant
    credentials: tuple[str, str] | None = dataclasses.field(default=None, repr=False)


class Gatekeeper:
    """Tells callers from the ``Authorization`` header.

    Args:
        config: the gateway's settings (tokens, ``[basic]``, ``[anonymous]``).
        check_basic: ``fn((user, password))`` that raises
            :class:`UnauthorizedError` when the broker refuses them (it
            blocks: :meth:`identify` is run in an executor for Basic).
    """

    def __init__(
        self,
        config: GatewayConfig,
        check_basic: Callable[[tuple[str, str]], None] | None = None,
    ) -> None:
        self.config = config
        self.check_basic = check_basic
        # Digests, so that comparing takes the same time whatever the length.
        self._tokens = [(_digest(t.secret), t.grant) for t in config.tokens]
        self._checked: dict[bytes, float] = {}
        self._lock = threading.Lock()  # Basic checks run in executor threads

    def needs_broker(self, header: str | None) -> bool:
        """True when identifying this header may ask the broker (run it in an executor)."""
        if not header or not header.lower().startswith("basic "):
            return False
        return self._unchecked(header)

    def identify(self, header: str | None) -> Caller:
        """The caller an ``Authorization`` header names.

        Raises:
            UnauthorizedError: missing or wrong credentials.
        """
        if not header:
            if self.config.anonymous is not None:
                return Caller("anonymous", self.config.anonymous)
            raise UnauthorizedError("credentials are required")
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer":
            return self._bearer(value.strip())
        if scheme == "basic":
            return self._basic(value.strip())
        raise UnauthorizedError(f"unsupported authorization scheme {scheme!r}")

    def _bearer(self, token: str) -> Caller:
        given = _digest(token)
        found = None
        for digest, grant in self._tokens:
            if hmac.compare_digest(digest, given):
                found = grant
        if found is None:
            raise UnauthorizedError("unknown token")
        return Caller(f"token:{found.name}", found)

    def _basic(self, value: str) -> Caller:
        grant = self.config.basic
        if grant is None:
            raise UnauthorizedError("HTTP Basic is not enabled")
        user, password = _pair(value)
        key = _digest(f"{user}\0{password}")
        now = time.monotonic()
        with self._lock:
            known = self._checked.get(key, 0.0) >= now
        if not known:
            if self.check_basic is None:
                raise UnauthorizedError("HTTP Basic credentials cannot be checked")
            self.check_basic((user, password))
            with self._lock:
                if len(self._checked) >= BASIC_CACHE_SIZE:
                    self._checked = {k: t for k, t in self._checked.items() if t >= now}
                    if len(self._checked) >= BASIC_CACHE_SIZE:
                        self._checked.clear()
                self._checked[key] = now + BASIC_CACHE
        return Caller(f"basic:{user}", grant, (user, password))

    def _unchecked(self, header: str) -> bool:
        try:
            user, password = _pair(header.strip().partition(" ")[2].strip())
        except UnauthorizedError:
            return False
        with self._lock:
            return self._checked.get(_digest(f"{user}\0{password}"), 0.0) < time.monotonic()


def _pair(value: str) -> tuple[str, str]:
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise UnauthorizedError("malformed Basic credentials") from exc
    user, colon, password = text.partition(":")
    if not colon or not user:
        raise UnauthorizedError("malformed Basic credentials")
    return user, password


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


__all__ = ["Caller", "Gatekeeper", "UnauthorizedError"]
