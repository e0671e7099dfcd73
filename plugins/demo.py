"""The demo plugin of the user guide: greetings, an echo, a dog, a forked call and a heartbeat.

Try it once goferd runs with ``/etc/gofer/plugins/demo.conf`` enabled::

    $ gofer rmi -u amqp://localhost -a demo -t Dog.bark howdy
      Yes master.  I will bark because that is what dogs do. "howdy"
    $ gofer rmi -u amqp://localhost -a demo -t Dog.wag 3

or from Python::

    from gofer.proxy import Agent

    agent = Agent("amqp://localhost", "demo")
    agent.Dog().bark("howdy")
    agent.demo.echo("hi")          # a module function, in the plugin's namespace
    agent.Demo().nap(30)           # runs in a child process; cancel it to see it stop

Nothing here touches the host: it is safe to enable anywhere.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from gofer.agent.rmi import Context
from gofer.decorators import action, fork, remote

log = logging.getLogger(__name__)

#: Seconds between the steps of :meth:`Demo.demo` (tests set it to 0).
PAUSE = 0.1
#: Most wags (and seconds of nap) one call may ask for: a caller cannot tie up a worker for long.
MOST = 600


class Demo:
    """The guide's ``Demo`` class: the smallest remote methods there are."""

    @remote
    def hello(self) -> str:
        """A greeting, to check that the agent answers."""
        return "Hello, I am the gofer demo plugin."

    @remote
    def echo(self, something: Any) -> Any:
        """``something``, sent back as it came."""
        return something

    @remote
    def demo(self) -> str:
        """Ten steps of progress, a tenth of a second apart; stops early when cancelled."""
        context = Context.current()
        context.progress.total = 10
        for step in range(1, 11):
            if context.cancelled():
                return f"cancelled after {step - 1} steps"
            time.sleep(PAUSE)
            context.progress.completed = step
            context.progress.details = f"step {step}"
            context.progress.report()
        return "demo finished: 10 steps"

    @fork
    @remote
    def nap(self, seconds: int = 5) -> dict[str, int]:
        """Sleep in a child process of its own (the fork model), reporting each second.

        Cancelling the request stops the child at once; nothing of it is left
        in goferd.

        Args:
            seconds: how long to sleep, at most :data:`MOST`.

        Returns:
            ``{"pid": <the child>, "agent": <goferd>, "slept": seconds}``.
        """
        count = _bounded(seconds, "seconds")
        progress = Context.current().progress
        progress.total = count
        for second in range(1, count + 1):
            time.sleep(1)
            progress.completed = second
            progress.report()
        return {"pid": os.getpid(), "agent": os.getppid(), "slept": count}


class Dog:
    """The dog of the guide's ``gofer rmi`` examples."""

    @remote
    def bark(self, words: str) -> str:
        """What the dog says to ``words``."""
        return f'Yes master.  I will bark because that is what dogs do. "{words}"'

    @remote
    def wag(self, n: int) -> str:
        """Wag ``n`` times (at most :data:`MOST`), one progress report per wag."""
        count = _bounded(n, "n")
        context = Context.current()
        context.progress.total = count
        for wag in range(1, count + 1):
            if context.cancelled():
                break
            context.progress.completed = wag
            context.progress.details = "wag"
            context.progress.report()
        return "Yes master.  I will wag my tail because that is what dogs do."


@remote
def echo(something: Any) -> Any:
    """A module function: ``something``, sent back as it came (``agent.demo.echo(...)``)."""
    return something


@action(minutes=10)
def heartbeat() -> None:
    """Show in the log, every ten minutes, that the agent and its actions are alive."""
    log.info("demo plugin heartbeat (goferd pid %d)", os.getpid())


def _bounded(value: Any, name: str) -> int:
    """``value`` as a whole number from 0 to :data:`MOST` (the CLI sends ``"3"`` as text)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a whole number, not {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a whole number, not {value!r}") from None
    if not 0 <= number <= MOST:
        raise ValueError(f"{name} must be from 0 to {MOST}, not {number}")
    return number
