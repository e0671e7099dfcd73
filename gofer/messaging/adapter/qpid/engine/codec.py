"""Encoding and decoding of AMQP 0-10 values, structs, controls and commands.

Everything is driven by the generated definitions in :mod:`.spec010`: a
struct, control or command is its packing flags (one bit per field, first
field in the lowest bit of the first octet) followed by the fields that are
present, each encoded by its primitive type. Bit fields have no value: the
flag is the value.

Layouts (all integers big-endian):

- control: class code, control code, packing flags (2), fields;
- command: class code, command code, session header (size 1, flags 1 with
  the ``sync`` bit), packing flags (2), fields;
- struct as a field value: its size prefix (``SIZE`` octets), its type code
  when it has one, packing flags (``PACK`` octets), fields;
- ``struct32`` and header-segment entries: a 4-octet size, the type code,
  packing flags, fields;
- ``map``: size (4), count (4), then per entry a ``str8`` key, a type code
  and the value; ``list``: size, count, then code and value per item;
  ``array``: size, one element type code, count, then the values;
- ``sequence-set``: size (2), then pairs of ``sequence-no``; ``byte-ranges``
  the same with 8-octet offsets.

The decoder never trusts a length: every size and count is checked against
the octets actually left before anything is allocated, nesting is limited,
and any violation raises :class:`~gofer.errors.ProtocolError`.
"""

from __future__ import annotations

import decimal
import struct
import uuid
from collections.abc import Callable
from typing import Any

from gofer.errors import ProtocolError
from gofer.messaging.adapter.qpid.engine import spec010
from gofer.messaging.adapter.qpid.engine.base import Command, Control, RangeSet, Struct

#: Deepest nesting of maps, lists, arrays and structs the decoder accepts.
MAX_DEPTH = 32

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_PAIR32 = struct.Struct(">II")
_PAIR64 = struct.Struct(">QQ")

# Fixed-width numbers: primitive type -> struct format.
_NUMBERS: dict[str, struct.Struct] = {
    "int8": struct.Struct(">b"),
    "uint8": _U8,
    "int16": struct.Struct(">h"),
    "uint16": _U16,
    "int32": struct.Struct(">i"),
    "uint32": _U32,
    "sequence-no": _U32,
    "int64": struct.Struct(">q"),
    "uint64": _U64,
    "datetime": struct.Struct(">q"),
    "float": struct.Struct(">f"),
    "double": struct.Struct(">d"),
}
_STRINGS = {
    "str8": "utf-8",
    "str16": "utf-8",
    "str8-latin": "latin-1",
    "str16-latin": "latin-1",
    "str8-utf16": "utf-16-be",
    "str16-utf16": "utf-16-be",
}
_SIZE_FORMATS = {1: _U8, 2: _U16, 4: _U32}
_INT64 = (-(1 << 63), 1 << 63)

# Octets of a value whose type code is unknown, by the code's upper nibble
# (the spec fixes widths by code range so that unknown types can be skipped).
# Negative: a size prefix of that many octets.
_WIDTH_BY_NIBBLE = {
    0x0: 1,
    0x1: 2,
    0x2: 4,
    0x3: 8,
    0x4: 16,
    0x5: 32,
    0x6: 64,
    0x7: 128,
    0x8: -1,
    0x9: -2,
    0xA: -4,
    0xC: 5,
    0xD: 9,
    0xF: 0,
}


# -- encoding --------------------------------------------------------------------------


class Encoder:
    """Appends encoded values to :attr:`buffer`.

    Encoding errors (a value of the wrong type, a string too long for its
    size prefix) raise ``ValueError`` or ``TypeError``: they are bugs of the
    caller, not of the peer.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()

    def value(self, kind: str, value: Any) -> None:
        """Append ``value`` encoded as the primitive type ``kind``."""
        number = _NUMBERS.get(kind)
        if number is not None:
            self.buffer += number.pack(value)
        elif kind in _STRINGS:
            encoded = value.encode(_STRINGS[kind])
            self._sized(encoded, 1 if kind.startswith("str8") else 2, kind)
        else:
            _ENCODERS[kind](self, value)

    def _sized(self, data: bytes, width: int, kind: str) -> None:
        if len(data) >= 1 << (8 * width):
            raise ValueError(f"{len(data)} octets do not fit a {kind}")
        self.buffer += _SIZE_FORMATS[width].pack(len(data))
        self.buffer += data

    def _fixed_binary(self, value: bytes, width: int) -> None:
        if len(value) != width:
            raise ValueError(f"expected {width} octets, got {len(value)}")
        self.buffer += value

    def _boolean(self, value: bool) -> None:
        self.buffer.append(1 if value else 0)

    def _char(self, value: str) -> None:
        self.buffer += value.encode("latin-1")[:1].ljust(1, b"\0")

    def _char_utf32(self, value: str) -> None:
        self.buffer += value[:1].encode("utf-32-be").ljust(4, b"\0")

    def _uuid(self, value: uuid.UUID) -> None:
        self.buffer += value.bytes

    def _decimal(self, value: decimal.Decimal, wide: bool) -> None:
        sign, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int):
            raise ValueError(f"cannot encode {value}")
        mantissa = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        places = max(0, -exponent)
        mantissa *= 10 ** max(0, exponent)
        self.buffer += _U8.pack(places)
        self.buffer += struct.pack(">q" if wide else ">i", mantissa)

    def ranges(self, value: RangeSet, pair: struct.Struct) -> None:
        """Append a ``sequence-set`` (32-bit pairs) or ``byte-ranges`` (64-bit pairs)."""
        body = b"".join(pair.pack(lower, upper) for lower, upper in value.ranges)
        self._sized(body, 2, "range set")

    def map_value(self, value: dict[str, Any]) -> None:
        """Append a ``map``: keys are strings, values are typed by :meth:`typed`."""
        inner = Encoder()
        inner.buffer += _U32.pack(len(value))
        for key, item in value.items():
            inner._sized(str(key).encode(), 1, "map key")
            inner.typed(item)
        self._sized(bytes(inner.buffer), 4, "map")

    def list_value(self, value: list[Any] | tuple[Any, ...]) -> None:
        """Append a ``list`` of typed values."""
        inner = Encoder()
        inner.buffer += _U32.pack(len(value))
        for item in value:
            inner.typed(item)
        self._sized(bytes(inner.buffer), 4, "list")

    def array_value(self, value: list[Any] | tuple[Any, ...]) -> None:
        """Append an ``array``: one element type, taken from the elements (str16 when empty)."""
        kinds = {_kind_of(item) for item in value} or {"str16"}
        if len(kinds) != 1:
            raise TypeError(f"array elements of mixed types: {sorted(kinds)}")
        kind = kinds.pop()
        inner = Encoder()
        inner.buffer += _U8.pack(_code(kind))
        inner.buffer += _U32.pack(len(value))
        for item in value:
            inner.value(kind, item)
        self._sized(bytes(inner.buffer), 4, "array")

    def typed(self, value: Any) -> None:
        """Append a type code and the value, the type chosen from the Python value."""
        kind = _kind_of(value)
        self.buffer += _U8.pack(_code(kind))
        self.value(kind, value)

    def fields(self, record: Struct) -> None:
        """Append the packing flags and the present fields of ``record``."""
        definitions = record.FIELDS
        values = [getattr(record, field.name) for field in definitions]
        if record.PACK:
            flags = 0
            for index, item in enumerate(values):
                if item is not None and item is not False:
                    flags |= 1 << index
            self.buffer += flags.to_bytes(record.PACK, "little")
        for field, item in zip(definitions, values):
            if item is None and (field.required or not record.PACK):
                raise ValueError(f"{record.NAME}: {field.wire} is required")
            if item is None or field.kind == "bit":
                continue
            if field.struct is not None:
                self.struct_value(item)
            else:
                self.value(field.kind, item)

    def struct_value(self, record: Struct) -> None:
        """Append a struct as a field value: size prefix, type code if any, fields."""
        if not record.SIZE:
            self._coded(record)
            return
        inner = Encoder()
        inner._coded(record)
        self._sized(bytes(inner.buffer), record.SIZE, record.NAME)

    def struct32_value(self, record: Struct) -> None:
        """Append a struct with a 4-octet size and its type code (``struct32``, header entries)."""
        if record.CODE is None:
            raise TypeError(f"{record.NAME} has no type code; it cannot be a struct32")
        inner = Encoder()
        inner._coded(record)
        self._sized(bytes(inner.buffer), 4, record.NAME)

    def _coded(self, record: Struct) -> None:
        if record.CODE is not None:
            self.buffer += _U16.pack(record.type_code())
        self.fields(record)


def _kind_of(value: Any) -> str:  # noqa: PLR0911 - one branch per Python type
    """The primitive type a Python value is encoded as inside maps, lists and arrays."""
    if value is None:
        return "void"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        if _INT64[0] <= value < _INT64[1]:
            return "int64"
        return "uint64"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "str16"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "vbin32"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, uuid.UUID):
        return "uuid"
    if isinstance(value, decimal.Decimal):
        return "dec64"
    if isinstance(value, Struct):
        return "struct32"
    raise TypeError(f"no AMQP 0-10 type for {type(value).__name__}")


def _code(kind: str) -> int:
    code = spec010.TYPES[kind].code
    if code is None:
        raise TypeError(f"{kind} has no type code")
    return code


_ENCODERS: dict[str, Callable[[Encoder, Any], None]] = {
    "bit": lambda e, v: None,
    "void": lambda e, v: None,
    "boolean": Encoder._boolean,
    "char": Encoder._char,
    "char-utf32": Encoder._char_utf32,
    "uuid": Encoder._uuid,
    "dec32": lambda e, v: e._decimal(v, wide=False),
    "dec64": lambda e, v: e._decimal(v, wide=True),
    "vbin8": lambda e, v: e._sized(bytes(v), 1, "vbin8"),
    "vbin16": lambda e, v: e._sized(bytes(v), 2, "vbin16"),
    "vbin32": lambda e, v: e._sized(bytes(v), 4, "vbin32"),
    "sequence-set": lambda e, v: e.ranges(v, _PAIR32),
    "byte-ranges": lambda e, v: e.ranges(v, _PAIR64),
    "map": Encoder.map_value,
    "list": Encoder.list_value,
    "array": Encoder.array_value,
    "struct32": Encoder.struct32_value,
}


def _fixed_binary_encoder(width: int) -> Callable[[Encoder, Any], None]:
    return lambda encoder, value: encoder._fixed_binary(bytes(value), width)


for _name, _type in spec010.TYPES.items():
    if _name.startswith("bin") and _type.width:
        _ENCODERS[_name] = _fixed_binary_encoder(_type.width)


def encode_control(control: Control) -> bytes:
    """The segment of a control."""
    encoder = Encoder()
    encoder.buffer += _U16.pack(control.type_code())
    encoder.fields(control)
    return bytes(encoder.buffer)


def encode_command(command: Command, sync: bool = False) -> bytes:
    """The command segment of a command; ``sync`` asks the peer to complete it at once."""
    encoder = Encoder()
    encoder.buffer += _U16.pack(command.type_code())
    encoder.buffer += b"\x01\x01" if sync else b"\x01\x00"
    encoder.fields(command)
    return bytes(encoder.buffer)


def encode_header(entries: list[Struct]) -> bytes:
    """The header segment of a message: each entry a sized, coded struct."""
    encoder = Encoder()
    for entry in entries:
        encoder.struct32_value(entry)
    return bytes(encoder.buffer)


# -- decoding --------------------------------------------------------------------------


class Decoder:
    """Reads values from ``data[start:end]``, never past ``end``.

    Args:
        data: the octets (a segment).
        start: where to begin.
        end: where to stop; the length of ``data`` when None.
        depth: the nesting level already entered (for nested decoders).
    """

    def __init__(
        self, data: bytes | memoryview, start: int = 0, end: int | None = None, depth: int = 0
    ) -> None:
        self.data = memoryview(data)
        self.pos = start
        self.end = len(self.data) if end is None else end
        self.depth = depth

    @property
    def remaining(self) -> int:
        """Octets left before the end."""
        return self.end - self.pos

    def take(self, count: int, what: str = "value") -> memoryview:
        """The next ``count`` octets.

        Raises:
            ProtocolError: fewer are left.
        """
        if count < 0 or count > self.end - self.pos:
            raise ProtocolError(
                f"truncated {what}: needs {count} octets, {self.end - self.pos} left"
            )
        start = self.pos
        self.pos += count
        return self.data[start : self.pos]

    def number(self, fmt: struct.Struct, what: str = "number") -> Any:
        """A fixed-width number."""
        return fmt.unpack(self.take(fmt.size, what))[0]

    def uint8(self) -> int:
        """An unsigned octet."""
        return int(self.number(_U8, "uint8"))

    def uint16(self) -> int:
        """An unsigned 16-bit integer."""
        return int(self.number(_U16, "uint16"))

    def uint32(self) -> int:
        """An unsigned 32-bit integer."""
        return int(self.number(_U32, "uint32"))

    def sized(self, width: int, what: str) -> Decoder:
        """A decoder over the region announced by a size prefix of ``width`` octets."""
        size = self.number(_SIZE_FORMATS[width], f"size of {what}")
        region = Decoder(self.data, self.pos, self.pos, self.depth)
        self.take(size, what)
        region.end = self.pos
        return region

    def nested(self, width: int, what: str) -> Decoder:
        """Like :meth:`sized`, one level deeper (maps, lists, arrays, structs)."""
        if self.depth >= MAX_DEPTH:
            raise ProtocolError(f"{what} nested deeper than {MAX_DEPTH} levels")
        region = self.sized(width, what)
        region.depth += 1
        return region

    def value(self, kind: str) -> Any:
        """A value of the primitive type ``kind``."""
        number = _NUMBERS.get(kind)
        if number is not None:
            return self.number(number, kind)
        encoding = _STRINGS.get(kind)
        if encoding is not None:
            raw = self.take(self.number(_SIZE_FORMATS[1 if kind.startswith("str8") else 2]), kind)
            try:
                return str(raw, encoding)
            except UnicodeDecodeError as exc:
                raise ProtocolError(f"{kind} is not valid {encoding}: {exc}") from exc
        return _DECODERS[kind](self)

    def _binary(self, width: int) -> bytes:
        return bytes(self.take(width))

    def _char(self) -> str:
        return str(self.take(1), "latin-1")

    def _char_utf32(self) -> str:
        try:
            return str(self.take(4, "char-utf32"), "utf-32-be")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"bad char-utf32: {exc}") from exc

    def _decimal(self, wide: bool) -> decimal.Decimal:
        places = self.uint8()
        mantissa = self.number(struct.Struct(">q" if wide else ">i"), "decimal")
        return decimal.Decimal(mantissa).scaleb(-places)

    def ranges(self, pair: struct.Struct) -> RangeSet:
        """A ``sequence-set`` or ``byte-ranges`` (by the pair format)."""
        region = self.sized(2, "range set")
        if region.remaining % pair.size:
            raise ProtocolError(f"range set of {region.remaining} octets, not pairs")
        ranges = RangeSet()
        while region.remaining:
            lower, upper = pair.unpack(region.take(pair.size))
            if upper < lower:
                # A range that wraps around the top of the sequence numbers.
                ranges.add_range(lower, upper + (1 << (8 * pair.size // 2)))
            else:
                ranges.add_range(lower, upper)
        return ranges

    def map_value(self) -> dict[str, Any]:
        """A ``map``."""
        region = self.nested(4, "map")
        if not region.remaining:  # Broker-J sends an empty map as a bare zero size
            return {}
        count = region.uint32()
        if count > region.remaining // 2:  # a key and a type code at least
            raise ProtocolError(f"map claims {count} entries in {region.remaining} octets")
        result: dict[str, Any] = {}
        for _ in range(count):
            key = region.value("str8")
            result[key] = region.typed(region.uint8())
        region.finish("map")
        return result

    def list_value(self) -> list[Any]:
        """A ``list``."""
        region = self.nested(4, "list")
        if not region.remaining:  # Broker-J sends an empty list as a bare zero size
            return []
        count = region.uint32()
        if count > region.remaining:  # a type code at least
            raise ProtocolError(f"list claims {count} items in {region.remaining} octets")
        result = [region.typed(region.uint8()) for _ in range(count)]
        region.finish("list")
        return result

    def array_value(self) -> list[Any]:
        """An ``array``."""
        region = self.nested(4, "array")
        if not region.remaining:  # Broker-J sends an empty array as a bare zero size
            return []
        code = region.uint8()
        count = region.uint32()
        width = _width_of(code)
        if count > max(region.remaining, 1) or (width > 0 and count * width > region.remaining):
            raise ProtocolError(f"array claims {count} items in {region.remaining} octets")
        result = [region.typed(code) for _ in range(count)]
        region.finish("array")
        return result

    def typed(self, code: int) -> Any:
        """The value of the type with ``code`` (raw octets for codes this spec does not name)."""
        known = spec010.TYPES_BY_CODE.get(code)
        if known is not None:
            return self.value(known.name)
        width = _width_of(code)
        if width >= 0:
            return bytes(self.take(width, f"value of type 0x{code:02x}"))
        size = self.number(_SIZE_FORMATS[-width], f"size of type 0x{code:02x}")
        return bytes(self.take(size, f"value of type 0x{code:02x}"))

    def finish(self, what: str) -> None:
        """Check that a sized region was used up exactly."""
        if self.remaining:
            raise ProtocolError(f"{self.remaining} stray octets at the end of a {what}")

    def fields(self, cls: type[Struct]) -> dict[str, Any]:
        """Packing flags and the present fields of a ``cls``, as keyword arguments."""
        definitions = cls.FIELDS
        if cls.PACK:
            flags = int.from_bytes(self.take(cls.PACK, f"flags of {cls.NAME}"), "little")
        else:
            flags = (1 << len(definitions)) - 1
        values: dict[str, Any] = {}
        for index, field in enumerate(definitions):
            if not flags >> index & 1:
                continue
            if field.kind == "bit":
                values[field.name] = True
            elif field.struct is not None:
                values[field.name] = self.struct_value(field.struct)
            else:
                values[field.name] = self.value(field.kind)
        return values

    def struct_value(self, cls: type[Struct]) -> Struct:
        """A struct field value of class ``cls`` (size prefix, type code, fields)."""
        region = self.nested(cls.SIZE, cls.NAME) if cls.SIZE else self
        if cls.CODE is not None:
            code = region.uint16()
            if code != cls.type_code():
                raise ProtocolError(f"expected a {cls.NAME}, found type code 0x{code:04x}")
        return cls(**region.fields(cls))

    def struct32_value(self) -> Struct | bytes:
        """A ``struct32``: any coded struct (raw octets when its code is unknown)."""
        region = self.nested(4, "struct32")
        return region.coded()

    def coded(self) -> Struct | bytes:
        """A type code and the struct it names, up to the end of this decoder."""
        code = self.uint16()
        cls = spec010.STRUCTS.get(code)
        if cls is None:
            return bytes(self.take(self.remaining))
        return cls(**self.fields(cls))


def _width_of(code: int) -> int:
    """Octets of a value of type ``code``; negative: the width of its size prefix."""
    known = spec010.TYPES_BY_CODE.get(code)
    if known is not None:
        return known.width if known.width or not known.size_width else -known.size_width
    width = _WIDTH_BY_NIBBLE.get(code >> 4)
    if width is None:
        raise ProtocolError(f"unknown type code 0x{code:02x}")
    return width


_DECODERS: dict[str, Callable[[Decoder], Any]] = {
    "bit": lambda d: True,
    "void": lambda d: None,
    "boolean": lambda d: d.uint8() != 0,
    "char": Decoder._char,
    "char-utf32": Decoder._char_utf32,
    "uuid": lambda d: uuid.UUID(bytes=bytes(d.take(16, "uuid"))),
    "dec32": lambda d: d._decimal(wide=False),
    "dec64": lambda d: d._decimal(wide=True),
    "vbin8": lambda d: bytes(d.take(d.uint8(), "vbin8")),
    "vbin16": lambda d: bytes(d.take(d.uint16(), "vbin16")),
    "vbin32": lambda d: bytes(d.take(d.uint32(), "vbin32")),
    "sequence-set": lambda d: d.ranges(_PAIR32),
    "byte-ranges": lambda d: d.ranges(_PAIR64),
    "map": Decoder.map_value,
    "list": Decoder.list_value,
    "array": Decoder.array_value,
    "struct32": Decoder.struct32_value,
}


def _fixed_binary_decoder(width: int) -> Callable[[Decoder], bytes]:
    return lambda decoder: decoder._binary(width)


for _name, _type in spec010.TYPES.items():
    if _name.startswith("bin") and _type.width:
        _DECODERS[_name] = _fixed_binary_decoder(_type.width)


def decode_control(segment: bytes | memoryview) -> Control:
    """The control in a control segment.

    Raises:
        ProtocolError: unknown control, or a malformed one.
    """
    decoder = Decoder(segment)
    code = decoder.uint16()
    cls = spec010.CONTROLS.get(code)
    if cls is None:
        raise ProtocolError(f"unknown control 0x{code:04x}")
    return cls(**decoder.fields(cls))


def decode_command(segment: bytes | memoryview) -> tuple[Command, bool]:
    """The command in a command segment, and its ``sync`` bit.

    Raises:
        ProtocolError: unknown command, or a malformed one.
    """
    decoder = Decoder(segment)
    code = decoder.uint16()
    cls = spec010.COMMANDS.get(code)
    if cls is None:
        raise ProtocolError(f"unknown command 0x{code:04x}")
    header = decoder.sized(1, "session header")
    sync = bool(header.uint8() & 1) if header.remaining else False
    return cls(**decoder.fields(cls)), sync


def decode_header(segment: bytes | memoryview) -> list[Struct]:
    """The structs of a header segment; entries of unknown type are skipped."""
    decoder = Decoder(segment)
    entries: list[Struct] = []
    while decoder.remaining:
        entry = decoder.struct32_value()
        if isinstance(entry, Struct):
            entries.append(entry)
    return entries
