"""The user guide's server-side examples, run as written (print() for print) against a real goferd.

goferd serves the guide's agent-side plugin (tests/e2e/plugins/guide/plugin.py,
descriptor as in "Define Agent-side": uuid=test) and its "Writing A Plugin"
plugin on queue 123, on the test broker at amqp://localhost, which is the URL
the guide's examples name. The examples' own code is in the functions below,
between the "guide" markers, unchanged but for print and except syntax.

Examples that cannot run as the guide writes them, and what is done:

- "Define Agent-side": ``from gofer.rmi.model.FORK`` is a syntax error and
  ``cfg`` is undefined; plugins/guide/plugin.py fixes the two lines.
- "Writing A Plugin": the stand-alone ``@remote def hello(self)`` takes a
  ``self`` nobody passes; its class form runs.
- "Class Constructor Arguments": the plugin's ``wag()`` has no ``self`` and
  ``bark(self)`` is called with an argument; not run.
- "Progress Reporting", agent side: ``details='for: %d' % n)`` is a syntax
  error and ``sleep`` is not imported; the caller side runs, its missing
  colon added. Progress itself is tested in test_goferd.py.
- "Testing" > "Interactive Shell": placeholders (``<your consumer ID>``,
  a ``Foo`` class, Pulp's ``Agent``); the same calls run above, and
  ``proxy.agent()`` below.
"""
# The guide's code as it is written: imports where it makes them, % formats, broad excepts.
# ruff: noqa: PLC0415, BLE001, E501, F841, F821, I001

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from gofer.messaging import Queue
from gofer.messaging.connection import Connection
from tests import brokers
from tests.e2e.conftest import PLUGINS, Goferd

# The formatter would re-indent the guide's code: this file keeps it as written.
# fmt: off

GUIDE = PLUGINS / "guide"
SN = re.compile(r"^[0-9a-f-]{36}$")


@pytest.fixture(scope="module")
def guide_agent(url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Goferd]:
    if not url.startswith("amqp://guest:guest@localhost:5672") and url != "amqp://localhost":
        message = f"the guide's examples name amqp://localhost; the test broker is {url}"
        if brokers.required():
            pytest.fail(message)
        pytest.skip(message)
    # The farm plugin every e2e goferd has gets a queue of its own; "test" is the guide's.
    goferd = Goferd(tmp_path_factory.mktemp("goferd-guide-calls"), url, f"gofer-e2e-{uuid.uuid4()}")
    modules = goferd.root / "usr/lib/gofer/plugins"
    shutil.copy(GUIDE / "plugin.py", modules / "plugin.py")
    shutil.copy(GUIDE / "myplugin_guide.py", modules / "myplugin.py")
    goferd.write_descriptor(
        "plugin",
        {
            "main": {"enabled": 1},
            "messaging": {"url": "amqp://localhost", "uuid": "test"},
            "dog": {"bark_noise": "woof"},
        },
    )
    # "Writing A Plugin", step 1 (its url names the qpid adapter; ours is the test broker).
    goferd.write_descriptor(
        "myplugin",
        {"main": {"enabled": 1}, "messaging": {"url": "amqp://localhost"}, "model": {"queue": "123"}},
    )
    goferd.start()
    yield goferd
    goferd.discard()
    connection = Connection(url)
    try:
        for queue in ("test", "123", "tasks"):
            connection.delete_queue(queue)
    finally:
        connection.close()


BARKED = "Yes master.  I will bark because that is what dogs do."
WAGGED = "Yes master.  I will wag my tail because that is what dogs do."


def test_writing_a_plugin_step_6(guide_agent: Goferd, capsys: pytest.CaptureFixture[str]) -> None:
    # guide: "Writing A Plugin", step 6
    # your server code
    from gofer.proxy import Agent

    url = 'amqp://localhost'
    uuid = '123'
    agent = Agent(url, uuid)
    myclass = agent.MyClass()
    myclass.hello()
    # end guide
    assert myclass.hello() == 'MyPlugin says, "hello".'


def test_synchronous_invocation(guide_agent: Goferd, capsys: pytest.CaptureFixture[str]) -> None:
    # guide: "Synchronous Invocation"
    from gofer.proxy import Agent

    agent = Agent('amqp://localhost', 'test')

    # invoke methods on the agent (remotely)

    dog = agent.Dog()
    print(dog.bark('hello'))
    print(dog.wag(3))
    print(dog.bark('hello'))

    # methods that raise exceptions

    try:
       print(dog.sit())
    except Exception as e:
       print(repr(e))

    try:
       print(dog.not_permitted())
    except Exception as e:
       print(repr(e))
    # end guide
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [BARKED, WAGGED, BARKED]
    assert "MemberNotFound" in out[3]
    assert "Dog.sit()" in out[3]
    assert "MemberNotFound" in out[4]


def test_synchronous_invocation_with_a_timeout(guide_agent: Goferd) -> None:
    # guide: "Synchronous Invocation (specify timeout)"
    from gofer.proxy import Agent

    agent = Agent('amqp://localhost', 'test', wait=180)  # specify timeout

    # invoke methods on the agent (remotely)
    dog = agent.Dog()
    dog.bark('hello')
    dog.wag(3)
    dog.bark('hello')
    # end guide
    assert dog.wag(1) == WAGGED


def test_fire_and_forget(guide_agent: Goferd, capsys: pytest.CaptureFixture[str]) -> None:
    # guide: "Asynchronous (fire & forget) Invocation"
    from gofer.proxy import Agent

    # create an agent where user data = 'task_id'
    agent = Agent('amqp://localhost', 'test', wait=0)

    # invoke methods on the agent (remotely)
    dog = agent.Dog()
    dog.bark('hello')
    dog.wag(3)
    print(dog.bark('hello'))

    # methods that raise exceptions
    try:
       print(dog.sit())
    except Exception as e:
       print(repr(e))

    try:
       print(dog.not_permitted())
    except Exception as e:
       print(repr(e))
    # end guide
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3
    assert all(SN.match(line) for line in out), out  # fire-and-forget: serial numbers


def test_asynchronous_callbacks(guide_agent: Goferd, capsys: pytest.CaptureFixture[str]) -> None:
    got: list[Any] = []
    # guide: "Asynchronous (callback) Invocation", the Listener form
    from gofer.proxy import Agent
    from gofer.rmi.async_ import ReplyConsumer

    # specify a reply address to be used for asynchronous responses.

    reply_to = 'tasks'

    # create my listener class

    class Listener:
       """
       An asynchronous operation callback listener.
       """

       def succeeded(self, reply):
           got.append(reply)  # (the guide's body is "pass")

       def failed(self, reply):
           pass

       def accepted(self, reply):
           pass

       def rejected(self, reply):
           pass

       def started(self, reply):
           pass

       def progress(self, reply):
           pass


    # create my reply consumer using the reply to and my listener

    reader = ReplyConsumer(reply_to)
    reader.start(Listener())

    # create an agent where user data is {'task_id': 1234} and
    # setup for asynchronous invocation with my reply address.

    agent = Agent('amqp://localhost', 'test', reply=reply_to)

    # invoke methods on the agent (remotely)
    dog = agent.Dog()
    dog.bark('hello')
    dog.wag(3)
    print(dog.bark('hello'))
    # end guide
    try:
        deadline = time.monotonic() + 30
        while len(got) < 3:
            assert time.monotonic() < deadline, got
            time.sleep(0.05)
        assert sorted(reply.retval for reply in got) == [BARKED, BARKED, WAGGED]
        assert SN.match(capsys.readouterr().out.strip())
    finally:
        reader.shutdown()
        Queue(reply_to, url="amqp://localhost").purge()


def test_asynchronous_callable(guide_agent: Goferd, capsys: pytest.CaptureFixture[str]) -> None:
    from gofer.proxy import Agent
    from gofer.rmi.async_ import ReplyConsumer

    # guide: "Asynchronous (callback) Invocation", the callable form
    # specify a reply address to be used for responses.

    reply_to = 'tasks'

    # create my listener

    def callback(reply):
       try:
           reply.throw()
           print(reply.retval) # succeeded, do something with return value.
       except Exception as ex:
           # handle general exception
           pass

    # create my reply consumer using the reply address and my callback

    reader = ReplyConsumer(reply_to)
    reader.start(callback)
    # end guide
    try:
        Agent('amqp://localhost', 'test', reply=reply_to).Dog().bark('hi')
        deadline = time.monotonic() + 30
        while BARKED not in capsys.readouterr().out:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        reader.shutdown()


def test_getting_started(guide_agent: Goferd, capsys: pytest.CaptureFixture[str]) -> None:
    # guide: "Getting Started" > "Python", the interactive session
    from gofer.proxy import Agent

    url = 'amqp://localhost'
    agent = Agent(url, '123')
    admin = agent.Admin()
    print(admin.help())
    # end guide
    out = capsys.readouterr().out
    assert "Plugins:\n  myplugin" in out
    assert "myplugin.MyClass.hello()" in out


def test_security(guide_agent: Goferd) -> None:
    # guide: "Security" (this Dog wants no secret: the call goes through)
    from gofer.proxy import Agent
    from gofer.messaging.dispatcher import NotAuthorized

    agent = Agent('amqp://localhost', 'test', secret='mycathas9lives')
    # invoke methods on the agent (remotely)
    dog = agent.Dog()
    try:
       dog.bark('secure hello')
    except NotAuthorized:
       log.error('wrong secret')
    # end guide


def test_progress_reporting_caller(guide_agent: Goferd) -> None:
    # guide: "Progress Reporting", the caller (the guide's "def progress_reported(report)"
    # lacks its colon)
    from gofer.proxy import Agent

    def progress_reported(report):
     pass

    agent = Agent('amqp://localhost', 'test')
    dog = agent.Dog(progress=progress_reported)
    dog.bark('howdy')
    # end guide


def test_interactive_shell_with_the_proxy_module(guide_agent: Goferd) -> None:
    # guide: "Testing" > "Interactive Shell", the proxy module form, with this
    # test's agent ('123') and class (MyClass.hello) for the placeholders
    from gofer import proxy
    uuid = '123'
    agent = proxy.agent('amqp://localhost', uuid)
    foo = agent.MyClass()
    print(foo.hello())
    # end guide
