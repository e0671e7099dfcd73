"""A journaled request (:class:`Entry`), the checks on its fields, and the journal's errors."""

from __future__ import annotations

import dataclasses
import re

from gofer.errors import ConfigError, GoferError
from gofer.messaging import auth
from gofer.rmi.wire import valid_sn

#: Largest message body the journal takes (RabbitMQ's default maximum message size).
MAX_BODY = 128 * 2**20

_CREDENTIAL_HINTS = (b"secret", b"pam", b"\\u")
_PLUGIN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class JournalError(GoferError):
    """The journal cannot do what was asked: bad input, in use, closed, or the disk failed."""


class JournalConfigError(JournalError, ConfigError):
    """The journal cannot be used as it is, and restarting goferd does not change that.

    Its directory belongs to another user, or others may write to it; or its
    log was written by a later gofer, in a journal format this one cannot read.
    """


@dataclasses.dataclass(frozen=True)
class Entry:
    """One journaled request.

    Attributes:
        sn: the request's serial number (checked with ``valid_sn``).
        plugin: the plugin whose queue delivered it (``[A-Za-z0-9_.-]{1,100}``).
        body: the raw message, as received.
        received: when it was received (epoch seconds); expiry is judged from it.

    Raises:
        JournalError: a field is of the wrong type or not a safe value.
    """

    sn: str
    plugin: str
    body: bytes = dataclasses.field(repr=False)
    received: float

    def __post_init__(self) -> None:
        check_sn(self.sn)
        if not isinstance(self.plugin, str) or not valid_plugin_name(self.plugin):
            raise JournalError(f"not a plugin name: {shown(self.plugin)}")
        if not isinstance(self.body, bytes) or len(self.body) > MAX_BODY:
            raise JournalError(f"body of {self.sn} must be bytes of at most {MAX_BODY}")
        if isinstance(self.received, bool) or not isinstance(self.received, (int, float)):
            raise JournalError(f"received time of {self.sn} must be a number")


def carries_credentials(body: bytes) -> bool:
    """True if a request body holds a shared secret or a PAM login.

    The body is parsed only when its bytes could hold one: JSON spells those
    names without their letters only with ``\\u`` escapes.
    """
    if not any(hint in body for hint in _CREDENTIAL_HINTS):
        return False
    try:
        document = auth.validate(None, body)  # unwrapped unchecked: it was checked when journaled
    except GoferError:
        return False  # nothing goferd could read was journaled, nor holds a readable secret
    return document.get("secret") is not None or document.get("pam") is not None


def valid_plugin_name(name: str) -> bool:
    """True if ``name`` is a plugin name the journal takes (and a safe file name)."""
    return _PLUGIN_NAME.fullmatch(name) is not None


def check_sn(sn: object) -> str:
    """Return ``sn`` if it is a valid serial number.

    Raises:
        JournalError: it is not (the message shows a clipped ``repr``).
    """
    if not isinstance(sn, str) or not valid_sn(sn):
        raise JournalError(f"not a serial number: {shown(sn)}")
    return sn


def shown(value: object) -> str:
    return repr(value)[:80]
