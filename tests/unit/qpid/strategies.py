"""Hypothesis strategies for AMQP 0-10 values and every generated struct, control and command."""

from __future__ import annotations

import decimal
from typing import Any, TypeVar

from hypothesis import strategies as st

from gofer.messaging.adapter.qpid.engine import spec010
from gofer.messaging.adapter.qpid.engine.base import RangeSet, Struct

S = TypeVar("S", bound=Struct)

_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "int8": st.integers(-(2**7), 2**7 - 1),
    "uint8": st.integers(0, 2**8 - 1),
    "int16": st.integers(-(2**15), 2**15 - 1),
    "uint16": st.integers(0, 2**16 - 1),
    "int32": st.integers(-(2**31), 2**31 - 1),
    "uint32": st.integers(0, 2**32 - 1),
    "sequence-no": st.integers(0, 2**32 - 1),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "uint64": st.integers(0, 2**64 - 1),
    "datetime": st.integers(-(2**63), 2**63 - 1),
    "double": st.floats(allow_nan=False),
    "float": st.just(1.5),
    "boolean": st.booleans(),
    "bit": st.just(True),
    "char": st.characters(max_codepoint=255),
    "char-utf32": st.characters(exclude_categories=["Cs"]),
    "uuid": st.uuids(),
    "str8": st.text(max_size=20),
    "str16": st.text(max_size=40),
    "str8-latin": st.text(st.characters(max_codepoint=255), max_size=20),
    "str16-latin": st.text(st.characters(max_codepoint=255), max_size=20),
    "str8-utf16": st.text(
        st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=20
    ),
    "str16-utf16": st.text(
        st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"]), max_size=20
    ),
    "vbin8": st.binary(max_size=20),
    "vbin16": st.binary(max_size=40),
    "vbin32": st.binary(max_size=60),
    "void": st.none(),
    "dec32": st.integers(-(2**31), 2**31 - 1).map(lambda n: decimal.Decimal(n).scaleb(-2)),
    "dec64": st.integers(-(2**63), 2**63 - 1).map(lambda n: decimal.Decimal(n).scaleb(-3)),
}
for _name, _type in spec010.TYPES.items():
    if _name.startswith("bin") and _type.width:
        _SCALARS[_name] = st.binary(min_size=_type.width, max_size=_type.width)

_RANGES = st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 5)), max_size=4).map(
    lambda pairs: RangeSet((lo, lo + span) for lo, span in pairs)
)
# What a map or list may hold (the Python types the encoder chooses codes for).
TYPED = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
    | st.binary(max_size=10)
    | st.uuids(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
MAPS = st.dictionaries(st.text(max_size=8), TYPED, max_size=5)


def values_for(kind: str) -> st.SearchStrategy[Any]:
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind in ("sequence-set", "byte-ranges"):
        return _RANGES
    if kind == "map":
        return MAPS
    if kind == "list":
        return st.lists(TYPED, max_size=4)
    if kind == "array":
        return st.lists(st.text(max_size=8), max_size=4)
    if kind == "struct32":
        return st.just(spec010.QueueQueryResult(queue="q", message_count=3, subscriber_count=0))
    raise AssertionError(kind)


def records(cls: type[S]) -> st.SearchStrategy[S]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in cls.FIELDS:
        if field.kind == "bit":
            fields[field.name] = st.booleans()
            continue
        value = records(field.struct) if field.struct is not None else values_for(field.kind)
        fields[field.name] = value if field.required or not cls.PACK else st.none() | value
    return st.builds(cls, **fields)
