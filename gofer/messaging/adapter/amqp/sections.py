"""AMQP 1.0 body sections, as RabbitMQ 3.x hands them to a 0-9-1 consumer.

A message that an AMQP 1.0 client (the ``proton`` adapter, for one) sends
through RabbitMQ reaches a 0-9-1 consumer with its body still encoded as 1.0
sections: an ``amqp-value`` holding a string or binary (what WIRE.md asks a
1.0 sender for), or one or more ``data`` sections. For example::

    >>> unwrap(b'\\x00Sw\\xa1\\x0b{"sn": "x"}')
    b'{"sn": "x"}'

A gofer document is JSON text, which never starts with the descriptor byte
0x00, so such a body is told apart without doubt; any other body, and any
encoding this module does not know, comes back unchanged (the envelope
check then refuses it with a clear reason).
"""

from __future__ import annotations

#: The start of a section: a described type (0x00) with a smallulong descriptor (0x53).
_SECTION = b"\x00\x53"
_DATA = 0x75
_AMQP_VALUE = 0x77
#: Variable-width constructors a body section holds, by the size of their length field:
#: vbin8, str8-utf8 (1 byte); vbin32, str32-utf8 (4 bytes).
_LENGTH_SIZE = {0xA0: 1, 0xA1: 1, 0xB0: 4, 0xB1: 4}


def unwrap(body: bytes) -> bytes:
    """The payload of a body of one ``amqp-value`` or of ``data`` sections; others unchanged."""
    if not body.startswith(_SECTION):
        return body
    kinds: set[int] = set()
    parts: list[bytes] = []
    offset = 0
    while offset < len(body):
        if body[offset : offset + 2] != _SECTION or offset + 4 > len(body):
            return body
        kind, constructor = body[offset + 2], body[offset + 3]
        size = _LENGTH_SIZE.get(constructor)
        if kind not in (_DATA, _AMQP_VALUE) or size is None:
            return body
        start = offset + 4 + size
        end = start + int.from_bytes(body[offset + 4 : start], "big")
        if end > len(body):
            return body  # truncated
        kinds.add(kind)
        parts.append(body[start:end])
        offset = end
    if _AMQP_VALUE in kinds and (len(parts) > 1 or len(kinds) > 1):
        return body  # one amqp-value, alone, or data sections: nothing else is a message
    return b"".join(parts)
