"""Turning exception replies back into exceptions, without ever importing what a reply names.

Built-in exceptions (``ValueError``, ``KeyError``, ...) come back as
themselves, and so do classes the caller registers and gofer's own RMI
errors. Anything else becomes :class:`~gofer.errors.RemoteError`. Every
rebuilt exception carries the agent's traceback text as ``remote_traceback``.

Example::

    from gofer.rmi import exceptions

    class QuotaExceeded(Exception):
        pass

    exceptions.register(QuotaExceeded)   # now rebuilt as itself
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import threading
from typing import Any

from gofer import errors

log = logging.getLogger(__name__)

_BUILTIN_MODULES = frozenset({"builtins", "exceptions", "__builtin__"})

_registered: dict[tuple[str, str], type[BaseException]] = {}
_by_name: dict[str, type[BaseException]] = {
    cls.__name__: cls
    for cls in (
        errors.DispatchError,
        errors.NotAuthorized,
        errors.NamespaceNotFound,
        errors.MemberNotFound,
        errors.RequestInterruptedError,
        errors.ResultTooLargeError,
    )
}
# A gofer 2.x agent names its dispatch errors otherwise (its gofer.rmi.dispatcher);
# a caller catching ours catches theirs too.
_by_name.update(
    {
        "ClassNotFound": errors.NamespaceNotFound,
        "MethodNotFound": errors.MemberNotFound,
        "NotPermitted": errors.MemberNotFound,  # a method not decorated @remote
        **dict.fromkeys(
            (
                "AuthMethod",
                "SecretRequired",
                "SecretNotMatched",
                "UserRequired",
                "PasswordRequired",
                "NotAuthenticated",
                "UserNotAuthorized",
            ),
            errors.NotAuthorized,
        ),
    }
)
_lock = threading.Lock()


def register(cls: type[BaseException], module: str | None = None) -> type[BaseException]:
    """Let replies naming ``cls`` (by its module and name) be rebuilt as ``cls``.

    Args:
        cls: an exception class whose constructor accepts its own ``args``.
        module: the module name the agent reports, when it differs from
            ``cls.__module__`` (e.g. a plugin loaded under another name).

    Returns:
        ``cls``, so that this works as a class decorator.
    """
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        raise TypeError(f"{cls!r} is not an Exception class")
    with _lock:
        _registered[(module or cls.__module__, cls.__name__)] = cls
    return cls


def unregister(cls: type[BaseException], module: str | None = None) -> None:
    """Undo :func:`register`."""
    with _lock:
        _registered.pop((module or cls.__module__, cls.__name__), None)


def rebuild(result: dict[str, Any]) -> BaseException:
    """The exception for an exception reply's ``result`` object."""
    xmodule = str(result.get("xmodule") or "")
    xclass = str(result.get("xclass") or "Exception")
    xargs = result.get("xargs")
    args = list(xargs) if isinstance(xargs, list) else [] if xargs is None else [xargs]
    raw_state = result.get("xstate")
    xstate: dict[str, Any] = dict(raw_state) if isinstance(raw_state, dict) else {}
    trace = str(result.get("exval") or "")
    cls = _known(xmodule, xclass)
    exception: BaseException | None = None
    if cls is not None:
        exception = _construct(cls, args, xstate, own_state=cls not in vars(builtins).values())
    if exception is None:
        exception = errors.RemoteError(xmodule, xclass, args, xstate, trace)
    with contextlib.suppress(AttributeError, TypeError):
        exception.remote_traceback = trace  # type: ignore[attr-defined]
    return exception


def _known(xmodule: str, xclass: str) -> type[BaseException] | None:
    with _lock:
        registered = _registered.get((xmodule, xclass))
    if registered is not None:
        return registered
    if xmodule in _BUILTIN_MODULES:
        candidate = getattr(builtins, xclass, None)
        # Exception subclasses only: never SystemExit, KeyboardInterrupt, GeneratorExit.
        if isinstance(candidate, type) and issubclass(candidate, Exception):
            return candidate
    if xmodule.startswith("gofer"):
        return _by_name.get(xclass)
    return None


def _construct(
    cls: type[BaseException], args: list[Any], xstate: dict[str, Any], own_state: bool
) -> BaseException | None:
    try:
        exception = cls(*args)
    except Exception as exc:  # noqa: BLE001 - any constructor may refuse remote args
        log.debug("cannot rebuild %s%r: %s", cls.__name__, tuple(args), exc)
        return None
    if own_state:
        for key, value in xstate.items():
            if key != "trace" and isinstance(key, str) and not key.startswith("__"):
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(exception, key, value)
    return exception
