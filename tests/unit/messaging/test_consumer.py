"""The existing gofer's Consumer: what it does with each message it reads (no broker)."""

from __future__ import annotations

from typing import Any

import pytest

from gofer.errors import NotFoundError
from gofer.messaging import Consumer, Document, Queue, auth
from gofer.messaging.adapter.model import Delivery
from gofer.messaging.consumer import ConsumerThread


class FakeReader:
    """Hands out the given bodies (or raises the given errors), records acks."""

    def __init__(self, *items: Any) -> None:
        self.items = list(items)
        self.acked: list[bytes] = []

    def get(self, timeout: float | None = None) -> Delivery | None:
        item = self.items.pop(0) if self.items else None
        if isinstance(item, Exception):
            raise item
        return None if item is None else Delivery(item, tag=None)

    def ack(self, delivery: Delivery) -> None:
        self.acked.append(delivery.body)


class Recorder(Consumer):
    def __init__(self, node: Any, url: str | None = None) -> None:
        super().__init__(node, url)
        self.documents: list[Document] = []
        self.refused: list[tuple[str, Any]] = []
        self.no_routes = 0

    def dispatch(self, document: Document) -> None:
        if document.get("boom"):
            raise RuntimeError("dispatch bug")
        self.documents.append(document)

    def rejected(self, code: str, description: str, document: Any, details: Any) -> None:
        self.refused.append((code, document))

    def no_route(self) -> None:
        self.no_routes += 1


def test_documents_are_dispatched_and_acknowledged() -> None:
    consumer = Recorder("notes")
    reader = FakeReader(Document(sn="1", note="hi").dump(), None)
    consumer._read(reader)
    consumer._read(reader)  # nothing there: nothing happens
    assert [doc.note for doc in consumer.documents] == ["hi"]
    assert len(reader.acked) == 1


def test_what_is_no_document_is_rejected_and_acknowledged() -> None:
    consumer = Recorder("notes")
    reader = FakeReader(b"not json")
    consumer._read(reader)
    assert consumer.refused == [("model", b"not json")]
    assert reader.acked == [b"not json"]


def test_signatures_are_checked_with_the_authenticator() -> None:
    key = auth.HmacAuthenticator(b"k" * 32)
    consumer = Recorder("notes")
    consumer.authenticator = key
    signed = auth.sign(key, Document(sn="1"))
    reader = FakeReader(signed, Document(sn="2").dump())
    consumer._read(reader)
    consumer._read(reader)
    assert [doc.sn for doc in consumer.documents] == ["1"]
    assert [code for code, _ in consumer.refused] == ["security.authentication"]


def test_a_failing_dispatch_is_logged_and_the_message_acknowledged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = Recorder("notes")
    reader = FakeReader(Document(sn="1", boom=True).dump())
    consumer._read(reader)
    assert "dispatch failed" in caplog.text
    assert len(reader.acked) == 1


def test_a_missing_queue_calls_no_route_after_a_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gofer.messaging.consumer.NOT_FOUND_DELAY", 0.01)
    consumer = Recorder("notes")
    consumer._read(FakeReader(NotFoundError("no queue 'notes'")))
    assert consumer.no_routes == 1
    consumer.shutdown()
    consumer._read(FakeReader(NotFoundError("no queue 'notes'")))
    assert consumer.no_routes == 1  # shutting down: no more retries


def test_the_queue_and_url_come_from_the_node() -> None:
    consumer = ConsumerThread(Queue("notes", url="amqp://mq.example.com"), wait=1)
    assert (consumer.queue, consumer.url, consumer.wait) == ("notes", "amqp://mq.example.com", 1)
    assert consumer.daemon
    assert ConsumerThread("x/notes", url="amqp://h").queue == "notes"
    assert Consumer("notes").url == "amqp://localhost"
