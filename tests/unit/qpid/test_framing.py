"""Framing: frames and their flags, fragmentation within the frame size, reassembly."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gofer.errors import ProtocolError
from gofer.messaging.adapter.qpid.engine import framing
from gofer.messaging.adapter.qpid.engine.spec010 import SegmentType, Track


def _reassemble(frames: list[bytes], chunk: int, **limits: int) -> list[framing.Assembly]:
    reader, assembler = framing.FrameReader(), framing.Assembler(**limits)
    stream = b"".join(frames)
    found = []
    for offset in range(0, len(stream), chunk):
        for frame in reader.feed(stream[offset : offset + chunk]):
            assembly = assembler.add(frame)
            if assembly is not None:
                found.append(assembly)
    assert reader.pending == 0
    assert assembler.pending == 0
    return found


def test_the_frame_header_layout() -> None:
    frame = framing.encode_single(SegmentType.CONTROL, b"\x01\x0a\x00\x00", Track.CONTROL, 3)
    #                 flags type size     rsv track channel  reserved     payload
    assert frame.hex() == "0f0000100000000300000000010a0000"


@given(
    body=st.binary(max_size=20_000),
    frame_size=st.integers(4096, 5000),
    chunk=st.integers(1, 9000),
)
def test_a_message_is_cut_into_frames_and_joined_again(
    body: bytes, frame_size: int, chunk: int
) -> None:
    segments = [(1, b"command"), (2, b"header"), (3, body)]
    frames = framing.encode_frames(segments, Track.COMMAND, 7, frame_size)
    assert all(len(f) <= frame_size for f in frames)
    assert len(frames) >= 2 + max(1, -(-len(body) // (frame_size - 12)))
    assert [f[0] & 0x0C for f in frames[:2]] == [framing.FIRST_SEGMENT, 0]
    assert frames[-1][0] & (framing.LAST_SEGMENT | framing.LAST_FRAME) == 0x05
    assert _reassemble(frames, chunk) == [framing.Assembly(7, Track.COMMAND, segments)]


def test_assemblies_of_different_channels_may_interleave() -> None:
    one = framing.encode_frames([(1, b"a"), (2, b"h"), (3, b"x" * 9000)], 1, 1, 4096)
    two = framing.encode_frames([(1, b"b"), (2, b"i"), (3, b"y" * 9000)], 1, 2, 4096)
    mixed = [frame for pair in zip(one, two) for frame in pair]
    mixed += one[len(two) :] + two[len(one) :]
    channels = sorted(a.channel for a in _reassemble(mixed, 1000))
    assert channels == [1, 2]


@pytest.mark.parametrize(
    ("stream", "error"),
    [
        (bytes.fromhex("4f00000c0000000000000000"), "unknown version"),
        (bytes.fromhex("0f07000c0000000000000000"), "segment type 7"),
        (bytes.fromhex("0f000008000000000000000000"), "frame size 8"),
        (bytes.fromhex("0f00000c0003000000000000"), "unknown track"),
        # a body frame with no assembly begun on the channel
        (bytes.fromhex("07030010000100010000000061626364"), "segment without an assembly"),
        # a continuation frame with no segment begun
        (bytes.fromhex("08010010000100010000000061626364"), "continuation frame"),
        # an assembly cannot begin with a header segment
        (bytes.fromhex("0f020010000100010000000061626364"), "cannot start with segment type 2"),
    ],
)
def test_malformed_frames_are_protocol_errors(stream: bytes, error: str) -> None:
    with pytest.raises(ProtocolError, match=error):
        _feed(framing.FrameReader(max_frame_size=4096), framing.Assembler(), stream)


def _feed(reader: framing.FrameReader, assembler: framing.Assembler, stream: bytes) -> None:
    for frame in reader.feed(stream):
        assembler.add(frame)


def test_a_new_assembly_before_the_last_one_ended_is_an_error() -> None:
    first = framing.encode_frames([(1, b"a"), (2, b"h"), (3, b"b")], 1, 1, 4096)
    again = framing.encode_frames([(1, b"a")], 1, 1, 4096)
    with pytest.raises(ProtocolError, match="new assembly"):
        _reassemble(first[:2] + again, 100)


def test_frames_larger_than_negotiated_are_refused() -> None:
    frame = framing.encode_single(SegmentType.BODY, b"x" * 5000, Track.COMMAND, 1)
    with pytest.raises(ProtocolError, match=r"outside 12\.\.4096"):
        framing.FrameReader(max_frame_size=4096).feed(frame[:12])


def test_channels_above_the_maximum_are_refused() -> None:
    frame = framing.encode_single(SegmentType.CONTROL, b"\x01\x0a\x00\x00", Track.CONTROL, 99)
    with pytest.raises(ProtocolError, match="channel 99"):
        framing.FrameReader(max_channel=16).feed(frame)


def test_segments_are_bounded_while_they_arrive() -> None:
    frames = framing.encode_frames([(1, b"c"), (2, b"h"), (3, b"z" * 50_000)], 1, 1, 4096)
    reader, assembler = framing.FrameReader(), framing.Assembler(max_body_size=10_000)
    with pytest.raises(ProtocolError, match="body segment larger than 10000"):
        _feed(reader, assembler, b"".join(frames))
    big_command = framing.encode_frames([(1, b"c" * 3000)], 1, 1, 4096)
    with pytest.raises(ProtocolError, match="command segment larger than 1000"):
        _reassemble(big_command, 4096, max_command_size=1000)
