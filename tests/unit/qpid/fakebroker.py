"""A scripted AMQP 0-10 peer on a local socket, for testing the engine without a broker."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from typing import TypeVar

from gofer.messaging.adapter.qpid.engine import codec, framing, spec010
from gofer.messaging.adapter.qpid.engine.base import Command, Control
from gofer.messaging.adapter.qpid.engine.spec010 import SegmentType, Track

T = TypeVar("T")


class Peer:
    """The broker's end of one accepted connection.

    Only one thread may read from a peer at a time: its script's, and then,
    once the script is done, the test's (see :meth:`FakeBroker.peer`).
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.settimeout(10)
        self.reader = framing.FrameReader()
        self.assembler = framing.Assembler()
        self.ready: list[framing.Assembly] = []
        self.received: list[Control | Command] = []
        self.bodies: list[bytes] = []
        self.done = threading.Event()
        self.eof = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def control(self, control: Control, channel: int = 0) -> None:
        self.send(
            framing.encode_single(
                SegmentType.CONTROL, codec.encode_control(control), Track.CONTROL, channel
            )
        )

    def command(self, command: Command, channel: int = 1) -> None:
        self.send(
            framing.encode_single(
                SegmentType.COMMAND, codec.encode_command(command), Track.COMMAND, channel
            )
        )

    def read_header(self) -> bytes:
        data = b""
        while len(data) < 8:
            chunk = self.sock.recv(8 - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def next(self) -> Control | Command | None:
        """The next control or command from the client; None at the end."""
        while not self.ready:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.eof = True
                return None
            for frame in self.reader.feed(data):
                assembly = self.assembler.add(frame)
                if assembly is not None:
                    self.ready.append(assembly)
        assembly = self.ready.pop(0)
        segment = assembly.segments[0][1]
        self.bodies.extend(data for kind, data in assembly.segments[1:] if kind == SegmentType.BODY)
        if assembly.track == Track.CONTROL:
            item: Control | Command = codec.decode_control(segment)
        else:
            item = codec.decode_command(segment)[0]
        self.received.append(item)
        return item

    def expect(self, cls: type[T]) -> T:
        """Skip heartbeats; the next item must be a ``cls``."""
        while True:
            item = self.next()
            if not isinstance(item, spec010.ConnectionHeartbeat):
                break
        assert isinstance(item, cls), f"expected {cls.__name__}, got {item!r}"
        return item

    def wait_for_eof(self, timeout: float) -> bool:
        """True when the client closes its end within ``timeout``."""
        self.sock.settimeout(timeout)
        try:
            while self.next() is not None:
                pass
        except TimeoutError:
            return False
        return self.eof

    def negotiate(
        self,
        mechanisms: tuple[str, ...] = ("PLAIN", "ANONYMOUS"),
        heartbeat_max: int = 60,
        max_frame_size: int = 65535,
    ) -> spec010.ConnectionStartOk:
        """Play the broker's part up to ``open-ok``; return the client's ``start-ok``."""
        assert self.read_header() == framing.PROTOCOL_HEADER
        self.send(framing.PROTOCOL_HEADER)
        self.control(
            spec010.ConnectionStart(
                server_properties={"product": "fake"},
                mechanisms=list(mechanisms),
                locales=["en_US"],
            )
        )
        start_ok = self.expect(spec010.ConnectionStartOk)
        self.tune(heartbeat_max=heartbeat_max, max_frame_size=max_frame_size)
        return start_ok

    def tune(self, heartbeat_max: int = 60, max_frame_size: int = 65535) -> None:
        self.control(
            spec010.ConnectionTune(
                channel_max=16,
                max_frame_size=max_frame_size,
                heartbeat_min=0,
                heartbeat_max=heartbeat_max,
            )
        )
        self.expect(spec010.ConnectionTuneOk)
        self.expect(spec010.ConnectionOpen)
        self.control(spec010.ConnectionOpenOk(known_hosts=[]))

    def attach(self) -> spec010.SessionAttach:
        attach = self.expect(spec010.SessionAttach)
        self.control(spec010.SessionAttached(name=attach.name), channel=1)
        self.expect(spec010.SessionCommandPoint)
        return attach

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


Script = Callable[[Peer], object]


class FakeBroker:
    """Listens on a local port; each connection runs ``script(peer)`` in a thread.

    Args:
        script: what the broker does on a connection.
        tls: a server TLS context, for a TLS port.
    """

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.port: int = self.server.getsockname()[1]
        self.peers: list[Peer] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(sock,), daemon=True).start()

    def _run(self, sock: socket.socket) -> None:
        peer: Peer | None = None
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
            peer = Peer(sock)
            self.peers.append(peer)
            self.script(peer)
        except BaseException as exc:  # noqa: BLE001 - reported by the test through .errors
            self.errors.append(exc)
        finally:
            if peer is not None:
                peer.done.set()

    def peer(self, timeout: float = 5.0) -> Peer:
        """The first connection's peer once its script is done, for the test to drive.

        The client may go on before the script has read all it expects: after
        ``session.attached`` it does not wait for the script to read its
        ``session.command-point``. A test that read from the peer meanwhile
        would race the script for the client's frames (and one would take a
        frame meant for the other), so it takes the peer from here, not from
        :attr:`peers`.
        """
        peer = self.peers[0]
        assert peer.done.wait(timeout), f"the script still runs after {timeout:g}s"
        assert self.errors == [], f"the script failed: {self.errors!r}"
        return peer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.close()
        for peer in self.peers:
            peer.close()

    def __enter__(self) -> FakeBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
