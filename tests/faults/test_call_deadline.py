"""A synchronous call never outlives its ``wait``, even while the broker cannot be reached at first.

The broker is reached through a local TCP gate that opens a few seconds
after the call begins (the broker itself is left alone). The call's request
goes to a queue nobody reads, so it must end with ``RequestTimeoutError``
once its ``wait`` is over, counted from the call, not from the moment the
broker answered.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from gofer.errors import GoferError, RequestTimeoutError
from gofer.messaging.adapter.model import Queue
from gofer.messaging.connection import Connection
from gofer.messaging.url import Url
from gofer.proxy import Agent
from gofer.rmi import transport
from tests.faults.conftest import delete_queues

WAIT = 5.0
CLOSED_FOR = 3.0
SLACK = 1.5


class Gate:
    """Forwards 127.0.0.1:<port> to the broker, but only once opened (until then: refused)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # nothing listens there until open()
        self.listener: socket.socket | None = None
        self.sockets: list[socket.socket] = []

    def open(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        for sock in [self.listener, *self.sockets]:
            if sock is not None:
                sock.close()


@pytest.fixture
def gate(url: str) -> Iterator[Gate]:
    parsed = Url.parse(url)
    made = Gate(parsed.host, parsed.port)
    yield made
    transport.close_all()  # the caller's connection through the gate goes with it
    made.close()


def test_wait_bounds_the_whole_call(url: str, gate: Gate) -> None:
    nobody_reads = f"gofer-faults-unread-{uuid.uuid4()}"
    connection = Connection(url)
    connection.declare_queue(Queue(nobody_reads, durable=False, expiration=60))
    connection.close()
    parsed = Url.parse(url)
    gated = f"amqp://{parsed.userid}:{parsed.password}@127.0.0.1:{gate.port}"
    opener = threading.Timer(CLOSED_FOR, gate.open)
    opener.start()
    began = time.monotonic()
    try:
        with pytest.raises(GoferError) as caught:
            Agent(gated, nobody_reads, wait=WAIT).Fault().work("in time")
        took = time.monotonic() - began
    finally:
        opener.cancel()
        delete_queues(url, nobody_reads)
    assert isinstance(caught.value, RequestTimeoutError), caught.value
    assert took <= WAIT + SLACK, f"a call with wait={WAIT:g}s took {took:.1f}s"
