"""The JSON document: attribute access, dumping and hostile bodies."""

from __future__ import annotations

import pytest

from gofer.errors import InvalidDocumentError
from gofer.messaging.document import Document


def test_attributes_read_keys_and_missing_keys_read_none() -> None:
    doc = Document(sn="1", request={"classname": "Dog", "args": []})
    assert doc.sn == "1"
    assert doc.request.classname == "Dog"
    assert doc.replyto is None


def test_attribute_assignment_writes_keys() -> None:
    doc = Document()
    doc.status = "accepted"
    assert doc == {"status": "accepted"}


def test_dump_is_sorted_compact_ascii_and_round_trips() -> None:
    # ASCII escapes, as the existing (Python 2) peers send and read.
    doc = Document(b=1, a="é")
    assert doc.dump() == b'{"a":"\\u00e9","b":1}'
    assert Document.load(doc.dump()) == doc


def test_dump_rejects_values_json_cannot_hold() -> None:
    with pytest.raises(InvalidDocumentError):
        Document(x=object()).dump()


@pytest.mark.parametrize(
    "body",
    [b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"", b"[" * 100_000 + b"]" * 100_000],
)
def test_load_rejects_bad_bodies_clearly(body: bytes) -> None:
    with pytest.raises(InvalidDocumentError):
        Document.load(body)
