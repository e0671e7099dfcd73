"""The user guide's plugin examples ("Plugin Extension"), loaded as written by a real goferd.

tests/e2e/plugins/guide holds the guide's code unchanged but for the
``from gofer.decorators import *`` (and ``Plugin`` import) its snippets
take for granted; each file names its section.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from gofer.errors import NotAuthorized
from gofer.messaging.connection import Connection
from gofer.proxy import Agent
from tests.e2e.conftest import PLUGINS, Goferd

GUIDE = PLUGINS / "guide"
#: Plugins with a queue of their own (dog extends animals, by its descriptor).
SERVED = ("animals", "myplugin", "retriever", "retriever2", "toy")


@pytest.fixture(scope="module")
def guide_goferd(
    url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Goferd, dict[str, str]]]:
    goferd = Goferd(tmp_path_factory.mktemp("goferd-guide"), url, f"gofer-e2e-{uuid.uuid4()}")
    modules = goferd.root / "usr/lib/gofer/plugins"
    queues = {name: f"gofer-e2e-guide-{name}-{uuid.uuid4()}" for name in SERVED}
    for name in (*SERVED, "dog"):
        shutil.copy(GUIDE / f"{name}.py", modules / f"{name}.py")
    for name, queue in queues.items():
        goferd.write_descriptor(
            name,
            {"main": {"enabled": 1}, "messaging": {"url": url}, "model": {"queue": queue}},
        )
    # The guide's descriptor for dog: "[main] enabled=1, extends=animals".
    goferd.write_descriptor("dog", {"main": {"enabled": 1, "extends": "animals"}})
    goferd.start()
    yield goferd, queues
    goferd.discard()
    connection = Connection(url)
    try:
        for queue in queues.values():
            connection.delete_queue(queue)
    finally:
        connection.close()


def agent(served: tuple[Goferd, dict[str, str]], plugin: str, **options: Any) -> Agent:
    goferd, queues = served
    return Agent(goferd.url, queues[plugin], wait=30, **options)


def test_extending_by_the_api_and_by_the_descriptor(guide_goferd: Any) -> None:
    assert agent(guide_goferd, "animals").Dog().bark() is None
    assert agent(guide_goferd, "myplugin").Dog().bark() is None  # plugin += animals['Dog']
    assert agent(guide_goferd, "animals").Puppy().yip() == "yip"  # dog: extends=animals


def test_inheritance_keeps_the_superclass_methods_as_decorated(guide_goferd: Any) -> None:
    retriever = agent(guide_goferd, "retriever").Retriever()
    assert retriever.bark() is None  # inherited: no auth
    with pytest.raises(NotAuthorized):
        retriever.fetch()
    assert agent(guide_goferd, "retriever", secret="wagf").Retriever().fetch() is None


def test_inheritance_with_redecorated_methods(guide_goferd: Any) -> None:
    with pytest.raises(NotAuthorized):
        agent(guide_goferd, "retriever2").Retriever().bark()
    assert agent(guide_goferd, "retriever2", secret="wag").Retriever().bark() is None


def test_delegation(guide_goferd: Any) -> None:
    assert agent(guide_goferd, "toy").Toy().theDog() is None
