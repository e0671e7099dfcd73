"""PAM password checks for remote methods guarded by ``@pam(user=...)`` or ``@user(name=...)``.

A request carries ``pam: {"user": .., "password": ..}``; before running a
guarded method the agent calls :func:`authenticate`, which asks the host's
PAM stack through the ``python-pam`` package (imported only when used, so
gofer runs without it until a plugin guards a method this way).

The check runs the service's ``auth`` stack and then its ``account`` stack
(expired or locked accounts are refused; python-pam before 2.0 skipped the
latter, hence ``python-pam>=2.0.2``); it never establishes credentials or
opens a session, so it cannot change the daemon's own groups or limits.

Choosing the service:

- ``passwd``, the default of the existing gofer, authenticates through the
  host's standard stack: on RHEL its file includes ``system-auth``; on
  Debian it has no ``auth`` lines, so libpam falls back to
  ``/etc/pam.d/other`` (``common-auth``, ``pam_unix``). The unit tests pin
  that it checks the password on Debian 12.
- Never a service that trusts the calling user, such as ``su`` or
  ``runuser`` (``pam_rootok``): goferd runs as root, so they accept any
  password.

A refused password takes as long as the stack's failure delay (about two
seconds from ``pam_unix``): the calling worker thread waits, which slows
down guessing over the bus.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from gofer.errors import GoferError

log = logging.getLogger(__name__)

#: The PAM service used when a decorator or ``[pam] service`` names none.
DEFAULT_SERVICE = "passwd"


class PamError(GoferError):
    """PAM refused the user and password, or PAM cannot be used on this host."""


def authenticate(user: str, password: str, service: str = DEFAULT_SERVICE) -> None:
    """Check a user's password with PAM.

    Safe to call from several threads at once.

    Args:
        user: the local user name.
        password: the password (never logged, never in an error message).
        service: the PAM service (a file in ``/etc/pam.d``) to check with.

    Raises:
        PamError: the password is wrong, the user is unknown, expired or
            locked, the arguments cannot be passed to PAM, or ``python-pam``
            or libpam is missing.
    """
    _check_arguments(user, password, service)
    handle = _new_handle()
    try:
        accepted = handle.authenticate(user, password, service=service, resetcreds=False)
    except ValueError as exc:  # python-pam's own argument checks, encoding errors
        raise PamError(f"PAM cannot check user {user!r}: {type(exc).__name__}") from exc
    if not accepted:
        raise PamError(f"PAM service {service!r} refused user {user!r}: {handle.reason}")
    log.debug("PAM service %r accepted user %r", service, user)


def _check_arguments(user: str, password: str, service: str) -> None:
    """Refuse what PAM should never be asked.

    An empty password is refused here because ``pam_unix nullok`` (Debian's
    default) would accept it for an account that has no password.
    """
    if not user or "\0" in user:
        raise PamError("PAM needs a user name without NUL characters")
    if not password:
        raise PamError(f"no password given for user {user!r}")
    if "\0" in password:
        raise PamError(f"the password given for user {user!r} contains a NUL character")
    if not service or "\0" in service or "/" in service:
        raise PamError(f"invalid PAM service name {service!r}")


def _new_handle() -> Any:
    """A fresh python-pam authenticator (one per call: they are not thread-safe).

    Raises:
        PamError: ``python-pam`` is not installed or libpam cannot be loaded.
    """
    try:
        module = importlib.import_module("pam")
    except ImportError as exc:
        raise PamError(
            f"PAM authentication needs the 'python-pam' package (pip install python-pam): {exc}"
        ) from exc
    try:
        return module.pam()  # the class, under the name every python-pam release has
    except (OSError, AttributeError) as exc:  # no libpam.so, or one without pam_start
        raise PamError(f"libpam cannot be loaded: {exc}") from exc
