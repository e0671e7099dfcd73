"""The user guide's mocks (its section "Mocks"), run as written there with print() for print."""
# The guide's code as it is written: imports where it makes them, % formats, a broad except.
# ruff: noqa: PLC0415, UP031, BLE001

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest

from gofer.errors import NamespaceNotFound
from gofer.messaging import mock


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    yield
    mock.reset()
    mock.uninstall()


def test_guide_example_registering_a_class(capsys: pytest.CaptureFixture[str]) -> None:
    # The user guide, "Mocks", first example.
    from gofer.messaging import mock

    mock.install()
    from gofer.proxy import Agent

    agent = Agent("xyz")

    # define mock impl for testing
    class Dog:
        def bark(self, msg):
            return "mock Dog, called with: [%s]" % msg

    # register our mock class
    mock.register(Dog=Dog)

    # call bark()

    dog = agent.Dog()

    print(dog.bark("hello"))

    print(dog.bark("world"))

    #
    # now, let look at the call history
    #

    h = dog.bark.history()
    print(h)

    # get last call
    last = h[-1]

    # look at the passed args
    print(last.args[0])

    # look at the keyword args
    print(last.kwargs)

    assert capsys.readouterr().out.splitlines() == [
        "mock Dog, called with: [hello]",
        "mock Dog, called with: [world]",
        "[(('hello',), {}), (('world',), {})]",
        "world",
        "{}",
    ]


def test_guide_example_pushing_an_exception(capsys: pytest.CaptureFixture[str]) -> None:
    # The user guide, "Mocks", second example.
    from gofer.messaging import mock

    mock.install()
    from gofer.proxy import Agent

    agent = Agent("amqp://localhost", "xyz")

    # define mock impl for testing
    class Dog:
        def bark(self, msg):
            return "mock Dog, called with: [%s]" % msg

    # register our mock class
    mock.register(Dog=Dog)

    dog = agent.Dog()

    # call bark() normally
    print(dog.bark("hello"))

    # now, let's have it raise an exception

    dog.bark.push(Exception("no more barking"))
    try:
        dog.bark("hello")
    except Exception as e:
        print(e)

    assert capsys.readouterr().out.splitlines() == [
        "mock Dog, called with: [hello]",
        "no more barking",
    ]
    assert dog.bark("again") == "mock Dog, called with: [again]"  # one push, one call


def test_classes_are_per_agent_and_instances_shared() -> None:
    mock.install()
    from gofer.proxy import Agent

    class Counter:
        def __init__(self) -> None:
            self.n = 0

        def bump(self) -> int:
            self.n += 1
            return self.n

    shared = Counter()
    mock.register(Counter=Counter, Shared=shared)
    first, second = Agent("a"), Agent("b")
    assert first.Counter().bump() == 1
    assert second.Counter().bump() == 1  # its own instance
    assert len(first.Counter().bump.history()) == 1
    assert first.Shared().bump() == 1
    assert second.Shared().bump() == 2
    assert len(second.Shared().bump.history()) == 2


def test_modules_and_unknown_names() -> None:
    mock.install()
    from gofer.proxy import Agent

    module = types.ModuleType("demo")
    module.echo = lambda text: text  # type: ignore[attr-defined]
    mock.register(demo=module)
    assert Agent("a").demo.echo("hi") == "hi"
    with pytest.raises(NamespaceNotFound):
        Agent("a").Cat()


def test_uninstall_brings_the_real_agent_back() -> None:
    import gofer.proxy

    real = gofer.proxy.Agent
    mock.install()
    assert gofer.proxy.Agent is mock.MockAgent
    mock.uninstall()
    assert gofer.proxy.Agent is real
