"""AMQP 0-10 framing: the protocol header, frames, and assemblies of segments.

The specification's XML does not describe framing; this is it. A peer opens
with the 8-octet protocol header ``AMQP 1 1 0 10``. After that everything
is frames, each with a 12-octet header::

    octet 0     flags: 0x08 first segment, 0x04 last segment,
                       0x02 first frame of the segment, 0x01 last frame
                       (the upper two bits are the version, 0)
    octet 1     segment type: 0 control, 1 command, 2 header, 3 body
    octets 2-3  frame size, header included
    octet 4     reserved
    octet 5     track in the lower nibble: 0 control, 1 command
    octets 6-7  channel
    octets 8-11 reserved

A control is one segment. A command is one segment, or three when it carries
a message (command, header, body); together they are an *assembly*. A
segment larger than a frame allows is cut into several frames, which
:class:`Assembler` joins again, refusing anything larger than its limits so
that a broken or hostile peer cannot make it allocate without bound.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from gofer.errors import ProtocolError
from gofer.messaging.adapter.qpid.engine.spec010 import SegmentType, Track

PROTOCOL_HEADER = b"AMQP\x01\x01\x00\x0a"
FRAME_HEADER_SIZE = 12
#: The largest frame the 16-bit size field allows.
MAX_FRAME_SIZE = 0xFFFF

FIRST_SEGMENT = 0x08
LAST_SEGMENT = 0x04
FIRST_FRAME = 0x02
LAST_FRAME = 0x01
_WHOLE = FIRST_SEGMENT | LAST_SEGMENT | FIRST_FRAME | LAST_FRAME

_HEADER = struct.Struct(">BBHxBH4x")

#: Default bound of a control or command segment (their fields are small).
MAX_COMMAND_SIZE = 1 << 20
#: Default bound of a message header segment (properties, application headers).
MAX_HEADER_SIZE = 1 << 20
#: Default bound of a message body.
MAX_BODY_SIZE = 256 << 20


class Frame(NamedTuple):
    """One frame as read from the wire."""

    flags: int
    type: int
    track: int
    channel: int
    payload: bytes


class Assembly(NamedTuple):
    """A complete control, or a command with its header and body segments.

    Attributes:
        channel: the channel (session) it came on.
        track: ``Track.CONTROL`` or ``Track.COMMAND``.
        segments: (segment type, octets) pairs in order.
    """

    channel: int
    track: int
    segments: list[tuple[int, bytes]]


def encode_frames(
    segments: list[tuple[int, bytes]], track: int, channel: int, max_frame_size: int
) -> list[bytes]:
    """Frame one assembly, cutting each segment into frames of at most ``max_frame_size``.

    Args:
        segments: (segment type, octets) pairs; a control or a command
            first, then a header and a body for a message.
        track: the track (control or command).
        channel: the session's channel.
        max_frame_size: the negotiated maximum frame size, header included.

    Returns:
        The encoded frames, in order.
    """
    room = max_frame_size - FRAME_HEADER_SIZE
    frames: list[bytes] = []
    last = len(segments) - 1
    for index, (segment_type, data) in enumerate(segments):
        segment_flags = (FIRST_SEGMENT if index == 0 else 0) | (
            LAST_SEGMENT if index == last else 0
        )
        view = memoryview(data)
        offset = 0
        while True:
            chunk = view[offset : offset + room]
            flags = segment_flags
            if offset == 0:
                flags |= FIRST_FRAME
            offset += len(chunk)
            if offset >= len(data):
                flags |= LAST_FRAME
            size = FRAME_HEADER_SIZE + len(chunk)
            frames.append(_HEADER.pack(flags, segment_type, size, track, channel) + chunk)
            if flags & LAST_FRAME:
                break
    return frames


def encode_single(segment_type: int, data: bytes, track: int, channel: int) -> bytes:
    """One frame holding a whole one-segment assembly (controls, small commands)."""
    return _HEADER.pack(_WHOLE, segment_type, FRAME_HEADER_SIZE + len(data), track, channel) + data


class FrameReader:
    """Cuts a stream of octets into frames.

    Args:
        max_frame_size: frames larger than this are a protocol error (until
            tuning, the largest size the header can express).
        max_channel: the highest channel number accepted.
    """

    def __init__(self, max_frame_size: int = MAX_FRAME_SIZE, max_channel: int = 0xFFFF) -> None:
        self.max_frame_size = max_frame_size
        self.max_channel = max_channel
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Add octets; return the frames now complete.

        Raises:
            ProtocolError: a frame header is invalid.
        """
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        offset = 0
        while len(buffer) - offset >= FRAME_HEADER_SIZE:
            flags, segment_type, size, track, channel = _HEADER.unpack_from(buffer, offset)
            self._check(flags, segment_type, size, track, channel)
            if len(buffer) - offset < size:
                break
            payload = bytes(buffer[offset + FRAME_HEADER_SIZE : offset + size])
            frames.append(Frame(flags, segment_type, track & 0x0F, channel, payload))
            offset += size
        del buffer[:offset]
        return frames

    def _check(self, flags: int, segment_type: int, size: int, track: int, channel: int) -> None:
        if flags & 0xC0:
            raise ProtocolError(f"frame of unknown version {flags >> 6} (flags 0x{flags:02x})")
        if segment_type > SegmentType.BODY:
            raise ProtocolError(f"frame of unknown segment type {segment_type}")
        if size < FRAME_HEADER_SIZE or size > self.max_frame_size:
            raise ProtocolError(
                f"frame size {size} outside {FRAME_HEADER_SIZE}..{self.max_frame_size}"
            )
        if track & 0x0F > Track.COMMAND:
            raise ProtocolError(f"frame on unknown track {track & 0x0F}")
        if channel > self.max_channel:
            raise ProtocolError(f"frame on channel {channel} above the maximum {self.max_channel}")

    @property
    def pending(self) -> int:
        """Octets received but not yet part of a complete frame."""
        return len(self._buffer)


class _Partial:
    """An assembly being received on one channel and track."""

    __slots__ = ("chunks", "last", "segment_type", "segments", "size")

    def __init__(self) -> None:
        self.segments: list[tuple[int, bytes]] = []
        self.chunks: list[bytes] | None = None  # the segment in progress
        self.segment_type = -1
        self.size = 0
        self.last = False


class Assembler:
    """Joins frames into segments and segments into assemblies.

    Frames of one assembly arrive in order on their channel and track;
    different channels and tracks may interleave.

    Args:
        max_command_size: bound of a control or command segment.
        max_header_size: bound of a header segment.
        max_body_size: bound of a body segment (the largest message).
    """

    def __init__(
        self,
        max_command_size: int = MAX_COMMAND_SIZE,
        max_header_size: int = MAX_HEADER_SIZE,
        max_body_size: int = MAX_BODY_SIZE,
    ) -> None:
        self._limits = {
            SegmentType.CONTROL: max_command_size,
            SegmentType.COMMAND: max_command_size,
            SegmentType.HEADER: max_header_size,
            SegmentType.BODY: max_body_size,
        }
        self._partial: dict[tuple[int, int], _Partial] = {}

    @property
    def pending(self) -> int:
        """How many assemblies are partly received."""
        return len(self._partial)

    def add(self, frame: Frame) -> Assembly | None:
        """Take one frame; return the assembly it completes, if any.

        Raises:
            ProtocolError: the frame does not fit what came before, or a
                segment exceeds its bound.
        """
        if frame.flags == _WHOLE and (frame.channel, frame.track) not in self._partial:
            self._check_first(frame.type, frame.track)
            self._bound(frame.type, len(frame.payload), frame.channel)
            return Assembly(frame.channel, frame.track, [(frame.type, frame.payload)])
        key = (frame.channel, frame.track)
        partial = self._partial.get(key)
        if frame.flags & FIRST_FRAME:
            partial = self._begin_segment(key, partial, frame)
        elif partial is None or partial.chunks is None:
            raise ProtocolError(f"continuation frame without a segment on channel {frame.channel}")
        elif frame.type != partial.segment_type:
            raise ProtocolError(
                f"frame of segment type {frame.type} inside a segment of type "
                f"{partial.segment_type} on channel {frame.channel}"
            )
        chunks = self._append(partial, frame)
        if not frame.flags & LAST_FRAME:
            return None
        partial.segments.append((partial.segment_type, b"".join(chunks)))
        partial.chunks = None
        partial.size = 0
        if not (frame.flags & LAST_SEGMENT or partial.last):
            return None
        del self._partial[key]
        return Assembly(frame.channel, frame.track, partial.segments)

    def _begin_segment(
        self, key: tuple[int, int], partial: _Partial | None, frame: Frame
    ) -> _Partial:
        if partial is not None and partial.chunks is not None:
            raise ProtocolError(f"new segment before the last one ended on channel {key[0]}")
        if frame.flags & FIRST_SEGMENT:
            if partial is not None:
                raise ProtocolError(f"new assembly before the last one ended on channel {key[0]}")
            self._check_first(frame.type, frame.track)
            partial = self._partial[key] = _Partial()
        elif partial is None:
            raise ProtocolError(f"segment without an assembly on channel {key[0]}")
        elif frame.type not in (SegmentType.HEADER, SegmentType.BODY):
            raise ProtocolError(f"segment type {frame.type} cannot continue an assembly")
        partial.chunks = []
        partial.segment_type = frame.type
        partial.last = bool(frame.flags & LAST_SEGMENT)
        return partial

    def _append(self, partial: _Partial, frame: Frame) -> list[bytes]:
        chunks = partial.chunks if partial.chunks is not None else []
        partial.size += len(frame.payload)
        self._bound(partial.segment_type, partial.size, frame.channel)
        chunks.append(frame.payload)
        partial.chunks = chunks
        if frame.flags & LAST_SEGMENT:
            partial.last = True
        return chunks

    def _bound(self, segment_type: int, size: int, channel: int) -> None:
        limit = self._limits[SegmentType(segment_type)]
        if size > limit:
            name = SegmentType(segment_type).name.lower()
            raise ProtocolError(f"{name} segment larger than {limit} octets on channel {channel}")

    @staticmethod
    def _check_first(segment_type: int, track: int) -> None:
        if segment_type == SegmentType.CONTROL and track == Track.CONTROL:
            return
        if segment_type == SegmentType.COMMAND and track == Track.COMMAND:
            return
        raise ProtocolError(
            f"an assembly cannot start with segment type {segment_type} on track {track}"
        )
