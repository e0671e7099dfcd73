"""Signing against a real goferd: unsigned, forged, tampered, stale and replayed requests refused.

goferd loads ``faultauth.FaultAuthenticator`` (tests/faults/plugins, on its
PYTHONPATH) from the descriptor's ``[messaging] authenticator``: HMAC with a
key from the environment, and a replay guard.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest

from gofer.errors import RequestRejectedError
from gofer.messaging import auth
from gofer.messaging.auth import HmacAuthenticator
from gofer.messaging.connection import Connection
from gofer.proxy import Agent
from gofer.rmi import wire
from tests.faults.conftest import FaultGoferd, ReplyQueue, delete_queues

KEY = "fault-suite-shared-key-0123456789"
OTHER_KEY = "somebody-else-key-9876543210abcd"
AUTHENTICATION = "security.authentication"


@pytest.fixture(scope="module")
def signed_goferd(url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultGoferd]:
    goferd = FaultGoferd(
        tmp_path_factory.mktemp("goferd-signed"),
        url,
        f"gofer-faults-signed-{wire.new_sn()}",
        messaging={"authenticator": "faultauth.FaultAuthenticator"},
    )
    goferd.extra_env["GOFER_FAULTS_HMAC_KEY"] = KEY
    goferd.start()
    yield goferd
    goferd.stop()
    delete_queues(url, goferd.queue)


@pytest.fixture
def replies(url: str) -> Iterator[ReplyQueue]:
    queue = ReplyQueue(url, authenticator=HmacAuthenticator(KEY))  # goferd signs its replies
    yield queue
    queue.close()


def request(goferd: FaultGoferd, replies: ReplyQueue, tag: str) -> wire.Document:
    return wire.request_document(
        sn=wire.new_sn(),
        address=goferd.queue,
        classname="Fault",
        method="work",
        args=[tag],
        replyto=replies.name,
    )


def send(url: str, address: str, body: bytes) -> None:
    connection = Connection(url)
    try:
        connection.send(address, body)
    finally:
        connection.close()


def wrapper(message: str, key: str) -> bytes:
    """The signed wrapper of WIRE.md, made by hand (HMAC-SHA256 of the message's hex digest)."""
    digest = hashlib.sha256(message.encode()).hexdigest()
    signature = hmac.new(key.encode(), digest.encode(), hashlib.sha256).digest()
    return json.dumps(
        {"message": message, "signature": base64.b64encode(signature).decode()}
    ).encode()


def rejection(replies: ReplyQueue, sn: str) -> dict:
    assert replies.read(lambda got: any(r["sn"] == sn for r in got), timeout=15), replies.replies
    [reply] = [r for r in replies.replies if r["sn"] == sn]
    assert reply["status"] == "rejected", reply
    return reply


def test_signed_call_is_answered(signed_goferd: FaultGoferd) -> None:
    agent = Agent(signed_goferd.url, signed_goferd.queue, authenticator=HmacAuthenticator(KEY))
    assert agent.Fault().work("signed") == "signed"


def test_unsigned_call_is_rejected(signed_goferd: FaultGoferd) -> None:
    with pytest.raises(RequestRejectedError) as caught:
        Agent(signed_goferd.url, signed_goferd.queue, wait=15).Fault().work("unsigned")
    assert caught.value.code == AUTHENTICATION
    assert "not signed" in str(caught.value.details)


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("unsigned", lambda doc: doc.dump()),
        ("forged", lambda doc: wrapper(json.dumps(doc), OTHER_KEY)),
        (
            "garbage signature",
            lambda doc: json.dumps({"message": json.dumps(doc), "signature": "!"}).encode(),
        ),
        (
            "tampered",
            lambda doc: wrapper(json.dumps(doc), KEY).replace(b"tampered", b"tampered-evil"),
        ),
        (
            "stale",
            lambda doc: wrapper(json.dumps({**doc, "signed_at": "2000-01-01T00:00:00Z"}), KEY),
        ),
    ],
    ids=["unsigned", "forged", "garbage-signature", "tampered", "stale"],
)
def test_refused_requests_are_rejected_and_never_run(
    signed_goferd: FaultGoferd, replies: ReplyQueue, case: str, make
) -> None:
    doc = request(signed_goferd, replies, case.replace(" ", "-"))
    send(signed_goferd.url, signed_goferd.queue, make(doc))
    reply = rejection(replies, doc["sn"])
    assert reply["code"] == AUTHENTICATION, reply
    assert reply["description"] == "SECURITY: message authentication failed"
    assert reply["details"], reply
    executions = signed_goferd.executions()
    assert [sn for _, sn, _ in executions if sn == doc["sn"]] == []
    assert [tag for *_, tag in executions if tag.startswith("tampered")] == []


def test_replayed_request_is_rejected_and_runs_once(
    signed_goferd: FaultGoferd, replies: ReplyQueue
) -> None:
    doc = request(signed_goferd, replies, "replayed")
    body = auth.sign(HmacAuthenticator(KEY), doc)
    send(signed_goferd.url, signed_goferd.queue, body)
    assert replies.read(lambda _: replies.finals()[doc["sn"]] >= 1, timeout=15)
    send(signed_goferd.url, signed_goferd.queue, body)  # the same bytes, captured and sent again
    assert replies.read(lambda _: replies.finals()[doc["sn"]] >= 2, timeout=15), replies.replies
    finals = [
        r for r in replies.replies if r["sn"] == doc["sn"] and (r.get("status") or "result" in r)
    ]
    result = [r for r in finals if "result" in r and not r.get("status")]
    rejected = [r for r in finals if r.get("status") == "rejected"]
    assert [r["result"] for r in result] == [{"retval": "replayed"}]
    assert [r["code"] for r in rejected] == [AUTHENTICATION]
    assert "replay" in str(rejected[0]["details"])
    time.sleep(0.5)
    assert signed_goferd.starts()[doc["sn"]] == 1
