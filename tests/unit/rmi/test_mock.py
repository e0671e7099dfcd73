"""gofer.messaging.mock: the user guide's examples (section "Mocks"), then the rest of its API."""
# The guide's code as it is written: imports where it makes them, % formats, a broad except.
# ruff: noqa: PLC0415, UP031, BLE001

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest

from gofer.errors import MemberNotFound, NamespaceNotFound
from gofer.messaging import mock


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    yield
    mock.purge()
    mock.uninstall()


def test_guide_example_registering_a_class(capsys: pytest.CaptureFixture[str]) -> None:
    # The user guide, "Mocks", first example, 1819-1859 (its output lines asserted below).
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
    # The user guide, "Mocks", second example, 1866-1892 (its output asserted below).
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


class Repo:
    def bind(self, repoid: str, data: object = None) -> str:
        return f"bound {repoid}"


def test_reset_between_tests_keeps_what_is_registered() -> None:
    # The way Pulp's tests use it: register once, reset between tests.
    mock.install()
    mock.reset()
    mock.register(Repo=Repo)
    from gofer.proxy import Agent

    Agent("amqp://localhost", "consumer-1").Repo().bind("zoo")
    assert [agent.address for agent in mock.all()] == ["consumer-1"]
    mock.reset()
    assert mock.all() == []
    again = Agent("amqp://localhost", "consumer-1").Repo()
    assert again.bind("zoo") == "bound zoo"
    assert len(again.bind.history()) == 1  # a fresh agent, a fresh history


def test_one_mock_agent_per_address() -> None:
    mock.install()
    mock.register(Repo=Repo)
    from gofer.proxy import Agent

    Agent("amqp://localhost", "c1", wait=0).Repo().bind("made by the code under test")
    seen = Agent("amqp://localhost", "c1").Repo.bind.history()
    assert seen[0].args == ("made by the code under test",)
    assert seen[0].call == (("made by the code under test",), {})
    assert Agent("amqp://localhost", "c2") is not Agent("amqp://localhost", "c1")
    assert mock.agent("amqp://localhost", "c1") is Agent("amqp://localhost", "c1")


def test_pushed_outcomes_are_a_stack_of_exceptions_functions_and_values() -> None:
    mock.register(Repo=Repo)
    method = mock.agent("c").Repo().bind
    method.push("first pushed")
    method.push(lambda repoid, data=None: f"replaced {repoid}")
    method.push(KeyError)
    with pytest.raises(KeyError):
        method("a")
    assert method("b") == "replaced b"
    assert method("c") == "first pushed"
    assert method("d") == "bound d"  # nothing pushed: the registered method
    method.push("x")
    assert method.pop() == "x"
    assert method.pop() is None
    assert [call.args[0] for call in method.history()] == ["a", "b", "c", "d"]
    method.purge()
    assert method.history() == []


def test_stubs_take_options_and_constructor_arguments_and_names() -> None:
    mock.register(Repo=Repo)
    agent = mock.agent("amqp://localhost", "c")
    repo = agent.Repo(wait=0)
    assert repo("constructor", arg=1) is repo
    assert repo["bind"]("zoo") == "bound zoo"
    assert agent["Repo"] is agent.Repo


def test_unknown_names_are_attribute_errors_too() -> None:
    mock.register(Repo=Repo)
    agent = mock.agent("c")
    assert not hasattr(agent, "Cat")
    assert not hasattr(agent.Repo(), "sit")
    with pytest.raises(MemberNotFound):
        agent.Repo().sit()


def test_purge_forgets_the_registrations() -> None:
    mock.register(Repo=Repo)
    mock.purge()
    with pytest.raises(NamespaceNotFound):
        mock.agent("c").Repo()


def test_registering_a_class_again_replaces_it_in_every_agent() -> None:
    agent = mock.agent("c")
    mock.register(Repo=Repo)
    assert agent.Repo().bind("a") == "bound a"

    class Other:
        def bind(self, repoid: str) -> str:
            return "other"

    mock.register(Repo=Other)
    assert agent.Repo().bind("a") == "other"
