"""Base classes and value types that the generated :mod:`.spec010` module builds on.

The generator (``tools/gen010.py``) turns every struct, control and command
of the AMQP 0-10 specification into a small class deriving from
:class:`Struct`, :class:`Control` or :class:`Command`. The classes carry
their wire description as class attributes (:class:`Field` tuples, codes,
size and packing widths); the codec (:mod:`.codec`) reads those to encode
and decode any of them, so no per-class code is generated.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, NamedTuple


class TypeDef(NamedTuple):
    """One primitive type of the specification.

    Attributes:
        name: the spec's name (``str16``, ``map``, ...).
        code: the type code used inside maps, lists and arrays (None for
            types that have none, like ``sequence-set``).
        width: octets of a fixed-width value (0 for variable-width types).
        size_width: octets of the length prefix of a variable-width value
            (0 for fixed-width types).
    """

    name: str
    code: int | None
    width: int
    size_width: int


class Field(NamedTuple):
    """One field of a struct, control or command.

    Attributes:
        name: the Python attribute name (``accept_mode``).
        wire: the spec's name (``accept-mode``).
        kind: the primitive type the field is encoded as (domains resolved),
            or ``"struct"`` for a field holding a struct.
        required: the spec marks the field required.
        struct: the struct class of a ``"struct"`` field, else None.
    """

    name: str
    wire: str
    kind: str
    required: bool = False
    struct: type[Struct] | None = None


class Struct:
    """A record of optional fields: the common base of structs, controls and commands.

    A field holding None (or False, for a ``bit``) is absent on the wire:
    its packing flag is clear. Two instances are equal when they are of the
    same class and every field is equal.
    """

    __slots__ = ()

    #: The spec's qualified name, e.g. ``message.delivery-properties``.
    NAME: ClassVar[str] = ""
    #: The code of the class (``message`` is 4) the definition belongs to.
    CLASS_CODE: ClassVar[int] = 0
    #: The struct's own code within its class; None for uncoded structs.
    CODE: ClassVar[int | None] = None
    #: Octets of the size prefix when the struct is a field value (0: none).
    SIZE: ClassVar[int] = 0
    #: Octets of packing flags (0: every field is always present).
    PACK: ClassVar[int] = 2
    FIELDS: ClassVar[tuple[Field, ...]] = ()

    @classmethod
    def type_code(cls) -> int:
        """The 16-bit code that names this definition on the wire (class code, own code)."""
        return (cls.CLASS_CODE << 8) | (cls.CODE or 0)

    def values(self) -> dict[str, Any]:
        """The fields present, by attribute name."""
        return {
            field.name: getattr(self, field.name)
            for field in self.FIELDS
            if getattr(self, field.name) is not None and getattr(self, field.name) is not False
        }

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable records

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.values().items())
        return f"{type(self).__name__}({shown})"


class Control(Struct):
    """A control: connection and session housekeeping, sent on the control track."""

    __slots__ = ()

    #: Names of the controls that may answer this one.
    RESPONSES: ClassVar[tuple[str, ...]] = ()


class Command(Struct):
    """A command: numbered by the session, completed by the peer, sent on the command track.

    Whether the peer must report completion at once (the ``sync`` bit of the
    session header) is a property of one sending, not of the command, so it
    travels beside the command (see :mod:`.codec`).
    """

    __slots__ = ()

    #: The struct a successful execution returns through ``execution.result``.
    RESULT: ClassVar[type[Struct] | None] = None
    #: The structs of the header segment, for commands that carry a message.
    HEADER: ClassVar[tuple[type[Struct], ...]] = ()
    #: The command carries a header and a body segment (``message.transfer``).
    PAYLOAD: ClassVar[bool] = False


class RangeSet:
    """A set of integers kept as sorted, disjoint, inclusive ranges.

    It is the value of the ``sequence-set`` type (ranges of 32-bit command
    ids) and of ``byte-ranges`` (ranges of 64-bit offsets). Command ids in
    the engine grow without bound; the session maps them to and from the
    32-bit wire values.

    Example::

        >>> ids = RangeSet([(0, 3)])
        >>> ids.add(5)
        >>> ids.add(4)
        >>> list(ids.ranges)
        [(0, 5)]
    """

    __slots__ = ("_ranges",)

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._ranges: list[list[int]] = []
        for lower, upper in ranges:
            self.add_range(lower, upper)

    @property
    def ranges(self) -> Iterator[tuple[int, int]]:
        """The ranges, lowest first."""
        return ((lower, upper) for lower, upper in self._ranges)

    def add(self, value: int) -> None:
        """Add one value."""
        self.add_range(value, value)

    def add_range(self, lower: int, upper: int) -> None:
        """Add every value from ``lower`` to ``upper`` inclusive."""
        if upper < lower:
            raise ValueError(f"empty range {lower}..{upper}")
        ranges = self._ranges
        if not ranges or ranges[-1][1] + 1 < lower:  # the common case: appending
            ranges.append([lower, upper])
            return
        merged = [lower, upper]
        kept: list[list[int]] = []
        for current in ranges:
            if current[1] + 1 < merged[0] or merged[1] + 1 < current[0]:
                kept.append(current)
            else:
                merged = [min(merged[0], current[0]), max(merged[1], current[1])]
        kept.append(merged)
        kept.sort()
        self._ranges = kept

    def remove_through(self, value: int) -> None:
        """Drop every value up to and including ``value``."""
        kept = [r for r in self._ranges if r[1] > value]
        if kept and kept[0][0] <= value:
            kept[0] = [value + 1, kept[0][1]]
        self._ranges = kept

    def first(self) -> int | None:
        """The lowest value, or None when empty."""
        return self._ranges[0][0] if self._ranges else None

    def last(self) -> int | None:
        """The highest value, or None when empty."""
        return self._ranges[-1][1] if self._ranges else None

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and any(lo <= value <= hi for lo, hi in self._ranges)

    def __bool__(self) -> bool:
        return bool(self._ranges)

    def __len__(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self._ranges)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeSet):
            return NotImplemented
        return self._ranges == other._ranges

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"RangeSet({list(self.ranges)!r})"
