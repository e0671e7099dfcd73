"""Unwrapping AMQP 1.0 body sections that RabbitMQ hands to 0-9-1 consumers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gofer.messaging.adapter.amqp.sections import unwrap


def value(payload: bytes, constructor: int = 0xA1) -> bytes:
    """An amqp-value section holding ``payload`` (str8-utf8 unless told)."""
    width = 1 if constructor in (0xA0, 0xA1) else 4
    return b"\x00\x53\x77" + bytes([constructor]) + len(payload).to_bytes(width, "big") + payload


def data(payload: bytes, constructor: int = 0xA0) -> bytes:
    width = 1 if constructor == 0xA0 else 4
    return b"\x00\x53\x75" + bytes([constructor]) + len(payload).to_bytes(width, "big") + payload


DOCUMENT = json.dumps({"sn": "x", "version": "2.0"}).encode()


@pytest.mark.parametrize("constructor", [0xA1, 0xB1, 0xA0, 0xB0])
def test_an_amqp_value_of_text_or_binary_gives_its_payload(constructor: int) -> None:
    assert unwrap(value(DOCUMENT, constructor)) == DOCUMENT


def test_a_large_value_as_rabbitmq_sends_it() -> None:
    big = b'{"sn": "' + b"y" * 300 + b'"}'
    assert unwrap(b"\x00Sw\xb1\x00\x00\x016" + big) == big


def test_data_sections_are_joined() -> None:
    assert unwrap(data(DOCUMENT[:5]) + data(DOCUMENT[5:], 0xB0)) == DOCUMENT


@pytest.mark.parametrize(
    "body",
    [
        value(DOCUMENT)[:-1],  # truncated
        value(DOCUMENT) + value(DOCUMENT),  # two values: not a message body
        value(DOCUMENT) + data(DOCUMENT),
        b"\x00\x53\x73\xc0\x01\x00" + value(DOCUMENT),  # a properties section first
        b"\x00\x53\x77\x71\x00\x00\x00\x07",  # an int value
        b"\x00\x53",
        b"\x00\x53\x77\xa1",
    ],
)
def test_anything_else_that_looks_encoded_is_left_alone(body: bytes) -> None:
    assert unwrap(body) == body


@given(st.binary().filter(lambda b: not b.startswith(b"\x00")))
def test_a_body_not_starting_with_a_descriptor_is_untouched(body: bytes) -> None:
    assert unwrap(body) is body


@given(st.binary(max_size=300), st.sampled_from([0xA0, 0xA1, 0xB0, 0xB1]))
def test_any_payload_comes_back_whole(payload: bytes, constructor: int) -> None:
    if constructor in (0xA0, 0xA1) and len(payload) > 255:
        constructor += 0x10
    assert unwrap(value(payload, constructor)) == payload


@given(st.binary(max_size=64))
def test_arbitrary_encoded_looking_bytes_never_raise(tail: bytes) -> None:
    unwrap(b"\x00\x53" + tail)
