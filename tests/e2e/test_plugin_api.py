"""A plugin written against gofer 3.0's plugin API loads under goferd and moves its queue."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from typing import Any

from gofer.messaging.connection import Connection
from gofer.proxy import Agent
from tests.e2e.conftest import PLUGINS, Goferd


def test_plugin_moves_its_queue_from_its_load_hook_and_on_a_watched_file(
    make_goferd: Callable[..., Any], url: str
) -> None:
    goferd: Goferd = make_goferd(start=False)
    name = f"gofer-e2e-mover-{uuid.uuid4()}"
    first, second, third = f"{name}-first", f"{name}-second", f"{name}-third"
    watched = goferd.root / "queue-name"
    watched.write_text(second)
    shutil.copy(PLUGINS / "mover.py", goferd.root / "usr/lib/gofer/plugins/mover.py")
    goferd.write_descriptor(
        "mover",
        {
            "main": {"enabled": 1},
            "messaging": {"url": url},
            "model": {"queue": first, "managed": 1},
            "mover": {"watch": str(watched)},
        },
    )
    goferd.start()
    try:
        # The @load hook moved it from the descriptor's queue to the file's.
        assert Agent(url, second, wait=30).Mover().where() == second
        watched.write_text(third)
        deadline = time.monotonic() + 30
        while f"consuming {third}" not in goferd.log():
            assert time.monotonic() < deadline, goferd.log()[-3000:]
            time.sleep(0.05)
        assert Agent(url, third, wait=30).Mover().where() == third
        child = Agent(url, third, wait=30).Mover().child()  # the fork model, after the move
        assert isinstance(child, int)
        assert child != goferd.process.pid  # type: ignore[union-attr]
        assert f"plugin mover detached from {second}" in goferd.log()
    finally:
        goferd.stop()
        connection = Connection(url)
        try:
            for queue in (first, second, third):
                connection.delete_queue(queue)
        finally:
            connection.close()
