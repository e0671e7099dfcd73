"""Mock agents for testing callers without a broker (imported as ``gofer.messaging.mock``).

::

    from gofer.messaging import mock
    mock.install()                      # gofer.proxy.Agent is now MockAgent
    from gofer.proxy import Agent

    class Dog:
        def bark(self, msg):
            return f"mock Dog, called with: [{msg}]"

    mock.register(Dog=Dog)
    dog = Agent("amqp://localhost", "xyz").Dog()
    dog.bark("hello")                   # 'mock Dog, called with: [hello]'
    dog.bark.history()[-1].args         # ('hello',)
    dog.bark.push(Exception("no more")) # the next call raises it

What can be registered, by the name callers use (``agent.<name>``):

- a class: each mock agent makes its own instance, so call history is kept
  per agent;
- an instance: shared by every mock agent;
- a module: its functions are called as ``agent.<name>.<function>()``.

:func:`uninstall` puts the real ``Agent`` back; :func:`reset` forgets what
was registered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from gofer.errors import MemberNotFound, NamespaceNotFound

_registered: dict[str, Any] = {}
_shared: dict[str, _Stub] = {}
_lock = threading.RLock()
_real: dict[str, Any] = {}


class Call(NamedTuple):
    """One call a mock method received."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def __repr__(self) -> str:
        return repr((self.args, self.kwargs))


class MockMethod:
    """A registered method, with its call history and results pushed for later calls."""

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        self._function = function
        self._history: list[Call] = []
        self._pushed: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._history.append(Call(args, dict(kwargs)))
            pushed = self._pushed.pop(0) if self._pushed else _NOTHING
        if isinstance(pushed, BaseException):
            raise pushed
        if pushed is not _NOTHING:
            return pushed
        return self._function(*args, **kwargs)

    def history(self) -> list[Call]:
        """Every call so far, oldest first."""
        with self._lock:
            return list(self._history)

    def push(self, outcome: Any) -> None:
        """Make the next call raise ``outcome`` (an exception) or return it (anything else)."""
        with self._lock:
            self._pushed.append(outcome)

    def reset(self) -> None:
        """Forget the history and what was pushed."""
        with self._lock:
            self._history.clear()
            self._pushed.clear()


_NOTHING = object()


class _Stub:
    """What ``agent.<name>`` gives: callable (constructor arguments, ignored) and its methods."""

    def __init__(self, name: str, target: Any) -> None:
        self._name = name
        self._target = target
        self._methods: dict[str, MockMethod] = {}
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **options: Any) -> _Stub:
        return self

    def __getattr__(self, name: str) -> MockMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        with self._lock:
            method = self._methods.get(name)
            if method is None:
                function = getattr(self._target, name, None)
                if not callable(function):
                    raise MemberNotFound(f'"{self._name}.{name}()" not provided by plugin.')
                method = self._methods[name] = MockMethod(name, function)
            return method


class MockAgent:
    """Stands for :class:`gofer.proxy.Agent` once :func:`install` ran; takes the same arguments."""

    def __init__(self, *args: Any, **options: Any) -> None:
        self.args = args
        self.options = options
        self._own: dict[str, _Stub] = {}

    def __getattr__(self, name: str) -> _Stub:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> _Stub:
        with _lock:
            if name not in _registered:
                raise NamespaceNotFound(f'"{name}" not provided by plugin.')
            target = _registered[name]
            if isinstance(target, type):
                stub = self._own.get(name)
                if stub is None:
                    stub = self._own[name] = _Stub(name, target())
                return stub
            stub = _shared.get(name)
            if stub is None:
                stub = _shared[name] = _Stub(name, target)
            return stub


def register(**stubs: Any) -> None:
    """Register classes, instances or modules under the names callers use."""
    with _lock:
        for name, stub in stubs.items():
            _registered[name] = stub
            _shared.pop(name, None)


def reset() -> None:
    """Forget every registration (and the shared stubs' history)."""
    with _lock:
        _registered.clear()
        _shared.clear()


def install() -> None:
    """Make ``gofer.proxy.Agent`` (and ``gofer.proxy.agent``) the mock agent."""
    import gofer.proxy  # noqa: PLC0415 - the module patched, imported when asked to

    with _lock:
        for name in ("Agent", "agent"):
            if name not in _real and hasattr(gofer.proxy, name):
                _real[name] = getattr(gofer.proxy, name)
            setattr(gofer.proxy, name, MockAgent)


def uninstall() -> None:
    """Put the real ``gofer.proxy.Agent`` back."""
    import gofer.proxy  # noqa: PLC0415

    with _lock:
        for name, real in _real.items():
            setattr(gofer.proxy, name, real)
        _real.clear()


__all__ = ["Call", "MockAgent", "MockMethod", "install", "register", "reset", "uninstall"]
