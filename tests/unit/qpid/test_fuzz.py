"""Robustness: truncated, oversized and random input gives a clear ProtocolError, bounded and quick.

Three levels: the decoder on one segment, the frame reader and assembler on
a byte stream, and a live engine connection whose peer turns hostile after
the handshake (the connection must fail with ``ProtocolError``, hang up, and
not wait or allocate without bound).
"""

from __future__ import annotations

import contextlib
import socket
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gofer.errors import ConnectionLostError, ProtocolError
from gofer.messaging.adapter.qpid.engine import codec, framing, spec010
from gofer.messaging.adapter.qpid.engine.base import Command, Control
from gofer.messaging.adapter.qpid.engine.connection import Connection, Settings
from gofer.messaging.adapter.qpid.engine.spec010 import SegmentType, Track
from tests.unit.qpid.fakebroker import FakeBroker, Peer
from tests.unit.qpid.strategies import records

_DECODERS: list[Callable[[bytes], object]] = [
    codec.decode_control,
    codec.decode_command,
    codec.decode_header,
]
_COMMANDS = st.sampled_from(list(spec010.COMMANDS.values())).flatmap(records)
_CONTROLS = st.sampled_from(list(spec010.CONTROLS.values())).flatmap(records)


def _decodes_or_refuses(decode: Callable[[bytes], object], data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode(data)


# -- one segment ----------------------------------------------------------------------


@settings(max_examples=500)
@given(data=st.binary(max_size=400))
def test_random_segments_decode_or_raise_protocol_error(data: bytes) -> None:
    for decode in _DECODERS:
        _decodes_or_refuses(decode, data)


@settings(max_examples=300)
@given(command=_COMMANDS, cut=st.floats(0, 1, exclude_max=True))
def test_every_truncated_command_is_a_protocol_error(command: Command, cut: float) -> None:
    encoded = codec.encode_command(command)
    with pytest.raises(ProtocolError):
        codec.decode_command(encoded[: int(len(encoded) * cut)])


@settings(max_examples=300)
@given(
    control=_CONTROLS, flips=st.lists(st.tuples(st.integers(0), st.integers(0, 255)), max_size=4)
)
def test_corrupted_controls_decode_or_raise_protocol_error(
    control: Control, flips: list[tuple[int, int]]
) -> None:
    encoded = bytearray(codec.encode_control(control))
    for where, value in flips:
        encoded[where % len(encoded)] = value
    _decodes_or_refuses(codec.decode_control, bytes(encoded))


@pytest.mark.parametrize(
    "payload",
    [
        # message.transfer's header segment: one struct32 claiming 4 GiB
        "ffffffff0401",
        # a map claiming 2**32-1 entries in 8 octets
        "00000008ffffffff0000",
        # an array of 2**32-1 void elements
        "00000005f0ffffffff",
        # a map entry holding a vbin32 that claims 4 GiB
        "0000000d00000001016ba0ffffffff00",
    ],
)
def test_lengths_are_checked_before_anything_is_allocated(payload: str) -> None:
    data = bytes.fromhex(payload)
    tracemalloc.start()
    try:
        for read in (codec.decode_header, _read_map, _read_array, _read_list):
            _decodes_or_refuses(read, data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


def _read_map(data: bytes) -> object:
    return codec.Decoder(data).map_value()


def _read_array(data: bytes) -> object:
    return codec.Decoder(data).array_value()


def _read_list(data: bytes) -> object:
    return codec.Decoder(data).list_value()


def test_nesting_is_bounded() -> None:
    # A list holding a list holding a list ... 200 deep (count, type code, size, body).
    data = (0).to_bytes(4, "big")
    for _ in range(200):
        data = (1).to_bytes(4, "big") + b"\xa9" + len(data).to_bytes(4, "big") + data
    data = len(data).to_bytes(4, "big") + data
    with pytest.raises(ProtocolError, match="nested deeper than 32"):
        codec.Decoder(data).list_value()


# -- a byte stream ----------------------------------------------------------------------


@settings(max_examples=300)
@given(stream=st.binary(max_size=3000), chunk=st.integers(1, 512))
def test_random_streams_give_frames_or_a_protocol_error_with_bounded_buffers(
    stream: bytes, chunk: int
) -> None:
    reader = framing.FrameReader(max_frame_size=4096, max_channel=16)
    assembler = framing.Assembler(max_command_size=2048, max_header_size=2048, max_body_size=8192)
    try:
        for offset in range(0, len(stream), chunk):
            for frame in reader.feed(stream[offset : offset + chunk]):
                assembly = assembler.add(frame)
                if assembly is not None and assembly.segments[0][0] == SegmentType.CONTROL:
                    _decodes_or_refuses(codec.decode_control, assembly.segments[0][1])
            assert reader.pending < 4096 + chunk
    except ProtocolError:
        pass


# -- a live connection -------------------------------------------------------------------


def _frame(segment_type: int, payload: bytes, channel: int = 1, flags: int = 0x0F) -> bytes:
    track = Track.CONTROL if segment_type == SegmentType.CONTROL else Track.COMMAND
    size = framing.FRAME_HEADER_SIZE + len(payload)
    return (
        bytes([flags, segment_type])
        + size.to_bytes(2, "big")
        + bytes([0, track])
        + (channel.to_bytes(2, "big") + b"\0\0\0\0" + payload)
    )


_TRANSFER_COMMAND = spec010.MessageTransfer(accept_mode=0, acquire_mode=0)
_ATTACKS: dict[str, bytes] = {
    "random octets": bytes(range(256)) * 2,
    "a frame larger than negotiated": bytes.fromhex("0f011ffe00010001000000000000"),
    "a frame of an unknown version": bytes.fromhex("cf00000c0000000000000000"),
    "an unknown control": _frame(SegmentType.CONTROL, bytes.fromhex("01ff0000"), channel=0),
    "an unknown command": _frame(SegmentType.COMMAND, bytes.fromhex("04ff01000000")),
    "a truncated control": _frame(SegmentType.CONTROL, bytes.fromhex("020a0100000800"), 1),
    "connection.start on an open connection": _frame(
        SegmentType.CONTROL,
        codec.encode_control(spec010.ConnectionStart(mechanisms=[], locales=[])),
        channel=0,
    ),
    "a channel above channel-max": _frame(SegmentType.CONTROL, b"\x01\x0a\0\0", channel=999),
    "a body without its command": _frame(SegmentType.BODY, b"x" * 100, flags=0x07),
    "a message larger than allowed": b"".join(
        framing.encode_frames(
            [
                (SegmentType.COMMAND, codec.encode_command(_TRANSFER_COMMAND)),
                (SegmentType.HEADER, b""),
                (SegmentType.BODY, b"x" * 40_000),
            ],
            Track.COMMAND,
            1,
            4096,
        )
    ),
    "a header struct claiming 4 GiB": b"".join(
        framing.encode_frames(
            [
                (SegmentType.COMMAND, codec.encode_command(_TRANSFER_COMMAND)),
                (SegmentType.HEADER, bytes.fromhex("ffffffff0401")),
                (SegmentType.BODY, b""),
            ],
            Track.COMMAND,
            1,
            4096,
        )
    ),
}


Hostile = Callable[[bytes, bool], tuple[Connection, Peer]]


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    """Connect to a peer that negotiates, attaches a session, then sends ``attack``."""
    brokers: list[FakeBroker] = []
    connections: list[Connection] = []

    def connect(attack: bytes, hang_up: bool) -> tuple[Connection, Peer]:
        def script(peer: Peer) -> None:
            peer.negotiate(max_frame_size=4096)
            peer.attach()

        broker = FakeBroker(script)
        brokers.append(broker)
        connection = Connection(
            Settings(
                "127.0.0.1",
                broker.port,
                username="u",
                password="p",
                connect_timeout=5,
                max_message_size=10_000,
            )
        )
        connections.append(connection)
        connection.session()
        peer = broker.peer()
        peer.send(attack)
        if hang_up:
            peer.sock.shutdown(socket.SHUT_WR)
        return connection, peer

    yield connect
    for connection in connections:
        connection.close(timeout=0.1)
    for broker in brokers:
        broker.close()


def _failed(connection: Connection, seconds: float = 5.0) -> BaseException:
    deadline = time.monotonic() + seconds
    while connection.failure is None:
        assert time.monotonic() < deadline, "the connection did not fail"
        time.sleep(0.01)
    return connection.failure


@pytest.mark.parametrize("attack", list(_ATTACKS), ids=list(_ATTACKS))
def test_hostile_frames_end_the_connection_with_a_protocol_error(
    hostile: Hostile, attack: str
) -> None:
    connection, peer = hostile(_ATTACKS[attack], False)
    assert isinstance(_failed(connection), ProtocolError)
    assert not connection.is_open
    # The engine said why (framing-error) and hung up.
    assert peer.wait_for_eof(5)
    closes = [c for c in peer.received if isinstance(c, spec010.ConnectionClose)]
    assert closes
    assert closes[0].reply_code == spec010.ConnectionCloseCode.FRAMING_ERROR


_FLUSH = _frame(SegmentType.CONTROL, codec.encode_control(spec010.SessionFlush(completed=True)))
_TRANSFER = b"".join(
    framing.encode_frames(
        [
            (SegmentType.COMMAND, codec.encode_command(_TRANSFER_COMMAND)),
            (SegmentType.HEADER, b""),
            (SegmentType.BODY, b"x" * 5000),
        ],
        Track.COMMAND,
        1,
        4096,
    )
)


@pytest.mark.parametrize(
    "cut", [1, 5, 11, 12, len(_FLUSH) - 1, len(_TRANSFER) - 4096, len(_TRANSFER) - 1]
)
def test_a_stream_cut_short_inside_a_frame_or_assembly_is_a_protocol_error(
    hostile: Hostile, cut: int
) -> None:
    stream = _FLUSH if cut < len(_FLUSH) else _TRANSFER
    connection, _peer = hostile(stream[:cut], True)
    assert isinstance(_failed(connection), ProtocolError)
    assert "closed the connection inside a frame or an assembly" in str(connection.failure)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(attack=st.binary(min_size=1, max_size=600))
def test_random_octets_after_the_handshake_never_hang_the_connection(
    hostile: Hostile, attack: bytes
) -> None:
    started = time.monotonic()
    connection, peer = hostile(attack, True)
    failure = _failed(connection)
    # A stream that happens to hold only whole, valid frames just ends.
    assert isinstance(failure, (ProtocolError, ConnectionLostError))
    assert peer.wait_for_eof(5)
    assert time.monotonic() - started < 6
