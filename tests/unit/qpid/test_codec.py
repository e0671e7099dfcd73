"""The codec: every type, struct, control and command to octets and back."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gofer.errors import ProtocolError
from gofer.messaging.adapter.qpid.engine import codec, spec010
from gofer.messaging.adapter.qpid.engine.base import Command, Control, Struct
from tests.unit.qpid.strategies import MAPS, records, values_for

# connection.start as Qpid Broker-J 10.1 sends it (the payload of its first frame).
BROKER_J_START = bytes.fromhex(
    "0101070000000179000000090770726f64756374950019417061636865205170696420"
    "42726f6b65722d4a20436f72650776657273696f6e950006313"
    "02e312e300a717069642e6275696c64950028393065306165346438623666653731"
    "6638363338616431633366653162326637313330316330303907"
)


def _all(classes: dict[int, type[Any]]) -> list[type[Any]]:
    return list(classes.values())


@pytest.mark.parametrize("cls", _all(spec010.CONTROLS), ids=lambda c: c.NAME)
@settings(max_examples=25)
@given(data=st.data())
def test_every_control_round_trips(cls: type[Control], data: st.DataObject) -> None:
    control = data.draw(records(cls))
    assert codec.decode_control(codec.encode_control(control)) == control


@pytest.mark.parametrize("cls", _all(spec010.COMMANDS), ids=lambda c: c.NAME)
@settings(max_examples=25)
@given(data=st.data(), sync=st.booleans())
def test_every_command_round_trips(cls: type[Command], data: st.DataObject, sync: bool) -> None:
    command = data.draw(records(cls))
    assert codec.decode_command(codec.encode_command(command, sync)) == (command, sync)


@pytest.mark.parametrize("cls", _all(spec010.STRUCTS), ids=lambda c: c.NAME)
@settings(max_examples=25)
@given(data=st.data())
def test_every_coded_struct_round_trips_as_a_header_entry(
    cls: type[Struct], data: st.DataObject
) -> None:
    entry = data.draw(records(cls))
    assert codec.decode_header(codec.encode_header([entry])) == [entry]


@pytest.mark.parametrize("kind", sorted(set(spec010.TYPES) - {"bit"}))
@settings(max_examples=40)
@given(data=st.data())
def test_every_type_round_trips(kind: str, data: st.DataObject) -> None:
    value = data.draw(values_for(kind))
    encoder = codec.Encoder()
    encoder.value(kind, value)
    decoder = codec.Decoder(bytes(encoder.buffer))
    assert decoder.value(kind) == value
    assert decoder.remaining == 0


@given(MAPS)
def test_maps_keep_nested_values_and_types(value: dict[str, Any]) -> None:
    encoder = codec.Encoder()
    encoder.map_value(value)
    assert codec.Decoder(bytes(encoder.buffer)).map_value() == _as_decoded(value)


def _as_decoded(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_as_decoded(v) for v in value]
    return value


def test_known_wire_layouts() -> None:
    # Captured from Broker-J: session.attached, session.command-point, open-ok.
    attached = spec010.SessionAttached(name=b"probe-1")
    assert codec.encode_control(attached).hex() == "02020100000770726f62652d31"
    point = spec010.SessionCommandPoint(command_id=0, command_offset=0)
    assert codec.encode_control(point).hex() == "0207" + "0300" + "00" * 12
    assert codec.decode_control(bytes.fromhex("0108010000000000")) == spec010.ConnectionOpenOk(
        known_hosts=[]
    )
    # A command: class and code, the session header (sync), packing flags, fields.
    assert codec.encode_command(spec010.ExecutionSync(), sync=True).hex() == "030101010000"
    query = codec.encode_command(spec010.QueueQuery(queue="nope"), sync=True)
    assert query.hex() == "080401010100046e6f7065"


def test_broker_j_connection_start_prefix_decodes_the_map_entries_it_holds() -> None:
    decoder = codec.Decoder(BROKER_J_START)
    assert decoder.uint16() == 0x0101
    assert decoder.take(2).tobytes() == b"\x07\x00"  # three fields present
    size = decoder.uint32()
    assert size == 0x179
    count = decoder.uint32()
    assert count == 9
    assert decoder.value("str8") == "product"
    assert decoder.typed(decoder.uint8()) == "Apache Qpid Broker-J Core"


def test_an_empty_map_list_or_array_may_be_a_bare_zero_size() -> None:
    for read in ("map_value", "list_value", "array_value"):
        assert not getattr(codec.Decoder(b"\0\0\0\0"), read)()


def test_sequence_sets_keep_wrapping_ranges() -> None:
    decoder = codec.Decoder(bytes.fromhex("0008fffffffe00000001"))
    assert list(decoder.value("sequence-set").ranges) == [(0xFFFFFFFE, 0x100000001)]


def test_unknown_type_codes_are_skipped_by_their_width() -> None:
    # 0x05 (fixed, 1 octet), 0x8f (1-octet size), 0xcf (5 octets)
    entries = bytes.fromhex("0161052a") + bytes.fromhex("01628f026869")
    entries += bytes.fromhex("0163cf0102030405")
    body = (3).to_bytes(4, "big") + entries
    data = len(body).to_bytes(4, "big") + body
    assert codec.Decoder(data).map_value() == {"a": b"*", "b": b"hi", "c": b"\1\2\3\4\5"}
    with pytest.raises(ProtocolError, match="unknown type code 0xb3"):
        codec.Decoder(bytes.fromhex("0000000500000001b3")).list_value()


def test_encoding_refuses_what_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="required"):
        codec.encode_command(spec010.QueueDeclare())
    with pytest.raises(ValueError, match="do not fit"):
        codec.encode_control(spec010.ConnectionOpen(virtual_host="x" * 300))
    with pytest.raises(TypeError, match="no AMQP 0-10 type"):
        codec.Encoder().map_value({"x": object()})
    with pytest.raises(TypeError, match="mixed"):
        codec.Encoder().array_value(["a", 1])


def test_uuid_and_struct_values_in_maps() -> None:
    value = {"id": uuid.UUID(int=7), "result": spec010.ExchangeQueryResult(type="direct")}
    encoder = codec.Encoder()
    encoder.map_value(value)
    assert codec.Decoder(bytes(encoder.buffer)).map_value() == value
