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

Mock agents are kept by address: ``Agent(url, "xyz")`` in a test gives the
agent (and the call history) that the code under test got for ``"xyz"``.
:func:`all` lists them; :func:`reset` forgets them (and every call history),
keeping what is registered; :func:`purge` forgets the registrations too.
:func:`uninstall` puts the real ``Agent`` back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from gofer.errors import MemberNotFound, NamespaceNotFound

_registered: dict[str, Any] = {}
_shared: dict[str, _Stub] = {}
_agents: dict[Any, MockAgent] = {}
_lock = threading.RLock()
_real: dict[str, Any] = {}


class NotRegisteredError(NamespaceNotFound, AttributeError):
    """``agent.<name>`` for a name nothing was registered under (``hasattr()`` is False)."""


class NoSuchMethodError(MemberNotFound, AttributeError):
    """``stub.<name>`` for a method the registered object lacks."""


class Call(NamedTuple):
    """One call a mock method received: ``(args, kwargs)``."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @property
    def call(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call as the tuple ``(args, kwargs)``."""
        return (self.args, self.kwargs)

    def __repr__(self) -> str:
        return repr(self.call)


class MockMethod:
    """A registered method, with its call history and what was pushed for the next calls."""

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        self._function = function
        self._history: list[Call] = []
        self._pushed: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self._history.append(Call(args, dict(kwargs)))
            pushed = self._pushed.pop() if self._pushed else _NOTHING
        if pushed is _NOTHING:
            return self._function(*args, **kwargs)
        if isinstance(pushed, BaseException) or (
            isinstance(pushed, type) and issubclass(pushed, BaseException)
        ):
            raise pushed
        if callable(pushed):
            return pushed(*args, **kwargs)
        return pushed

    def history(self) -> list[Call]:
        """Every call so far, oldest first."""
        with self._lock:
            return list(self._history)

    def push(self, outcome: Any) -> None:
        """Decide the next call: raise ``outcome`` (an exception), call it, or return it.

        Pushed outcomes are a stack, as they were: the last pushed is used first.
        """
        with self._lock:
            self._pushed.append(outcome)

    def pop(self) -> Any:
        """Take back the outcome pushed last (None when nothing is pushed)."""
        with self._lock:
            return self._pushed.pop() if self._pushed else None

    def purge(self) -> None:
        """Forget the call history."""
        with self._lock:
            self._history.clear()

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
                    raise NoSuchMethodError(f'"{self._name}.{name}()" not provided by plugin.')
                method = self._methods[name] = MockMethod(name, function)
            return method

    def __getitem__(self, name: str) -> MockMethod:
        return self.__getattr__(name)

    def __repr__(self) -> str:
        return f"<mock stub {self._name}: {self._target!r}>"


class MockAgent:
    """Stands for :class:`gofer.proxy.Agent` once :func:`install` ran; takes the same arguments.

    One per address (the last positional argument): asking again for the
    same address gives the same mock agent, whatever the options.
    """

    address: Any
    args: tuple[Any, ...]
    options: dict[str, Any]
    _own: dict[str, tuple[Any, _Stub]]

    def __new__(cls, *args: Any, **options: Any) -> MockAgent:
        address = args[-1] if args else None
        with _lock:
            agent = _agents.get(address)
            if agent is None:
                agent = super().__new__(cls)
                agent.address, agent.args, agent.options = address, args, options
                agent._own = {}
                _agents[address] = agent
            return agent

    def __getattr__(self, name: str) -> _Stub:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> _Stub:
        with _lock:
            if name not in _registered:
                raise NotRegisteredError(f'"{name}" not provided by plugin.')
            target = _registered[name]
            if isinstance(target, type):
                own = self._own.get(name)
                if own is None or own[0] is not target:
                    own = self._own[name] = (target, _Stub(name, target()))
                return own[1]
            stub = _shared.get(name)
            if stub is None:
                stub = _shared[name] = _Stub(name, target)
            return stub

    def __repr__(self) -> str:
        return f"MockAgent{self.args!r}"


def agent(*args: Any, **options: Any) -> MockAgent:
    """The mock agent for these arguments (the existing gofer's ``mock.agent()``)."""
    return MockAgent(*args, **options)


# The existing gofer's name; it hides the builtin in this module only.
def all() -> list[MockAgent]:
    """Every mock agent made since the last :func:`reset`."""
    with _lock:
        return list(_agents.values())


def register(**stubs: Any) -> None:
    """Register classes, instances or modules under the names callers use."""
    with _lock:
        for name, stub in stubs.items():
            _registered[name] = stub
            _shared.pop(name, None)


def reset() -> None:
    """Forget the mock agents and every call history; what is registered stays."""
    with _lock:
        _agents.clear()
        _shared.clear()


def purge() -> None:
    """Forget what is registered, as well as the mock agents."""
    with _lock:
        _registered.clear()
        reset()


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


__all__ = [
    "Call",
    "MockAgent",
    "MockMethod",
    "NoSuchMethodError",
    "NotRegisteredError",
    "agent",
    "all",
    "install",
    "purge",
    "register",
    "reset",
    "uninstall",
]
