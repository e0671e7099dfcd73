"""The caller's view of an agent: ``Agent``, its class stubs and their remote methods.

::

    agent = Agent("amqp://localhost", "agent-123", wait=30)
    dog = agent.Dog(progress=show)   # a stub; keyword arguments are options
    dog("rover", age=3)              # constructor arguments, sent with each call
    dog.bark("hello")                # a remote call
    agent.demo.echo("hi")            # a module function of plugin "demo"
    agent["Dog"]().bark("hi")        # the same stub by name
"""

from __future__ import annotations

from typing import Any

from gofer.messaging.url import Url
from gofer.rmi.options import Options
from gofer.rmi.policy import Call


class Method:
    """A remote method of a stub; calling it makes the remote call."""

    def __init__(self, stub: Stub, name: str) -> None:
        self._stub = stub
        self.name = name

    def __call__(self, *args: Any, **kws: Any) -> Any:
        return self._stub._call(self.name, args, kws)

    def __repr__(self) -> str:
        return f"<remote method {self._stub._classname}.{self.name}>"


class Stub:
    """A remote class (or plugin namespace) with its options and constructor arguments."""

    def __init__(self, agent: Agent, classname: str, options: Options) -> None:
        self._agent = agent
        self._classname = classname
        self._options = options
        self._cntr: tuple[tuple[Any, ...], dict[str, Any]] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Stub:
        """Set the constructor arguments sent with every later call; returns the stub."""
        self._cntr = (args, kwargs)
        return self

    def __getattr__(self, name: str) -> Method:
        if name.startswith("_"):
            raise AttributeError(name)
        return Method(self, name)

    def __getitem__(self, name: str) -> Method:
        return Method(self, name)

    def _call(self, method: str, args: tuple[Any, ...], kws: dict[str, Any]) -> Any:
        agent = self._agent
        call = Call(
            url=agent.url,
            address=agent.address,
            options=self._options,
            classname=self._classname,
            method=method,
            args=args,
            kws=kws,
            cntr=self._cntr,
        )
        return call()

    def __repr__(self) -> str:
        return f"<stub {self._classname} of {self._agent!r}>"


class StubFactory:
    """What ``agent.Dog`` is: call it (with options) for a stub, or use a function at once."""

    def __init__(self, agent: Agent, classname: str) -> None:
        self._agent = agent
        self._classname = classname

    def __call__(self, **options: Any) -> Stub:
        """A new stub; keyword arguments are RMI options for its calls only."""
        return Stub(self._agent, self._classname, self._agent.options.merged(options))

    def __getattr__(self, name: str) -> Method:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self(), name)  # type: ignore[no-any-return]

    def __getitem__(self, name: str) -> Method:
        return self()[name]


class Agent:
    """A remote agent, addressed by broker URL and queue address.

    Args:
        url: the broker URL (``amqp://localhost``, ``proton+amqps://...``).
        address: the agent's queue: ``queue`` or ``exchange/queue``.
        **options: RMI options for every call (see :class:`Options`).

    One ``Agent`` may be used by many threads at once; all agents of a
    process share one connection per broker.
    """

    def __init__(self, url: str, address: str, **options: Any) -> None:
        if not isinstance(address, str) or not address:
            raise ValueError(f"an agent address is a queue name, not {address!r}")
        self.url = url
        self.address = address
        self.options = Options().merged(options)

    def __getattr__(self, name: str) -> StubFactory:
        if name.startswith("_"):
            raise AttributeError(name)
        return StubFactory(self, name)

    def __getitem__(self, name: str) -> StubFactory:
        return StubFactory(self, name)

    def __repr__(self) -> str:
        try:
            url = str(Url.parse(self.url))
        except ValueError:
            url = "<bad url>"
        return f"Agent({url!r}, {self.address!r})"
