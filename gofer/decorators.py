"""Plugin decorators: ``@remote``, ``@direct``, ``@fork``, ``@action``, ``@load``, ``@pam``, ...

Decorators only *mark* a function (an attribute ``__gofer__`` holding a
:class:`Marks`) and return it unchanged, so they stack in any order and the
function stays callable locally. The plugin loader builds a catalog from the
marks of a module (see :mod:`gofer.rmi.catalog`).

::

    from gofer.decorators import remote, fork, action

    class Dog:
        @remote
        def bark(self, words):
            return f"woof {words}"

        @fork
        @remote(secret="biscuit")
        def dig(self):
            ...

    @action(minutes=10)
    def tidy():
        ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar, Union, overload

F = TypeVar("F", bound=Callable[..., Any])

DIRECT = "direct"
FORK = "fork"
MODELS = (DIRECT, FORK)

Secret = Union[str, list[str], tuple[str, ...], Callable[[], Any], None]


@dataclasses.dataclass
class Marks:
    """What the decorators said about one function."""

    remote: bool = False
    secret: Secret = None
    model: str | None = None
    pam_user: str | None = None
    #: None: agent.conf's ``[pam] service`` (``passwd`` unless set there).
    pam_service: str | None = None
    interval: timedelta | None = None
    load: bool = False
    unload: bool = False


def marks(fn: object) -> Marks | None:
    """The marks of a function, method, staticmethod or classmethod; None if unmarked."""
    target = getattr(fn, "__func__", fn)
    found = getattr(target, "__gofer__", None)
    return found if isinstance(found, Marks) else None


def _marked(fn: F) -> Marks:
    target = getattr(fn, "__func__", fn)
    found = getattr(target, "__gofer__", None)
    if not isinstance(found, Marks):
        found = Marks()
        setattr(target, "__gofer__", found)  # noqa: B010 - functions take any attribute
    return found


def _check_model(model: str | None) -> str | None:
    if model is not None and model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, not {model!r}")
    return model


@overload
def remote(fn: F) -> F: ...
@overload
def remote(*, secret: Secret = None, model: str | None = None) -> Callable[[F], F]: ...


def remote(
    fn: F | None = None, *, secret: Secret = None, model: str | None = None
) -> F | Callable[[F], F]:
    """Expose a method or function to remote callers.

    Args:
        fn: the function (when used bare, ``@remote``).
        secret: a shared secret the caller must send: a string, a list or
            tuple of accepted strings, or a callable returning either.
        model: ``"direct"`` (in goferd, the default) or ``"fork"`` (in a
            child process per call).
    """

    def mark(target: F) -> F:
        found = _marked(target)
        found.remote = True
        if secret is not None:
            found.secret = secret
        if model is not None:
            found.model = _check_model(model)
        return target

    return mark(fn) if fn is not None else mark


def direct(fn: F) -> F:
    """Run the remote function inside goferd (a worker thread)."""
    _marked(fn).model = DIRECT
    return fn


def fork(fn: F) -> F:
    """Run the remote function in a child process per call (isolation from leaks and crashes)."""
    _marked(fn).model = FORK
    return fn


def action(
    *, days: float = 0, hours: float = 0, minutes: float = 0, seconds: float = 0, weeks: float = 0
) -> Callable[[F], F]:
    """Run the function (or a method, on a new instance) at this interval, first at start."""
    interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds, weeks=weeks)
    if interval <= timedelta(0):
        raise ValueError("an action needs a positive interval (days, hours, minutes, ...)")

    def mark(target: F) -> F:
        _marked(target).interval = interval
        return target

    return mark


def load(fn: F) -> F:
    """Call the function after its plugin is loaded (it may set up the plugin)."""
    _marked(fn).load = True
    return fn


#: The old name of ``@load``.
initializer = load


def unload(fn: F) -> F:
    """Call the function before its plugin is unloaded (or goferd stops)."""
    _marked(fn).unload = True
    return fn


def pam(*, user: str, service: str | None = None) -> Callable[[F], F]:
    """Require the caller to log in (PAM) as ``user``, through ``service``.

    Without ``service``, agent.conf's ``[pam] service`` (default ``passwd``) checks it.
    """

    def mark(target: F) -> F:
        found = _marked(target)
        found.pam_user = user
        found.pam_service = service
        return target

    return mark


def user(*, name: str) -> Callable[[F], F]:
    """The old alias of ``@pam(user=name)``."""
    return pam(user=name)


__all__ = [
    "DIRECT",
    "FORK",
    "action",
    "direct",
    "fork",
    "initializer",
    "load",
    "pam",
    "remote",
    "unload",
    "user",
]
