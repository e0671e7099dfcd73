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


@pytest.fixture
def raw_replies(url: str) -> Iterator[ReplyQueue]:
    """Replies read as a caller without an authenticator would: signed or not."""
    queue = ReplyQueue(url)
    yield queue
    queue.close()


def signed_marker(goferd: FaultGoferd, replies: ReplyQueue) -> str:
    """Send a good signed request and wait for its result: what was sent before it is done."""
    doc = request(goferd, replies, "marker")
    send(goferd.url, goferd.queue, auth.sign(HmacAuthenticator(KEY), doc))
    assert replies.read(lambda _: replies.finals()[doc["sn"]] >= 1, timeout=15), replies.replies
    return str(doc["sn"])


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
    ],
    ids=["unsigned", "forged", "garbage-signature", "tampered"],
)
def test_unauthentic_requests_get_an_unsigned_rejection_and_never_run(
    signed_goferd: FaultGoferd, raw_replies: ReplyQueue, case: str, make
) -> None:
    doc = request(signed_goferd, raw_replies, case.replace(" ", "-"))
    doc["data"] = {"planted": "text the agent must not sign"}
    send(signed_goferd.url, signed_goferd.queue, make(doc))
    reply = rejection(raw_replies, doc["sn"])
    assert reply["code"] == AUTHENTICATION, reply
    assert reply["description"] == "SECURITY: message authentication failed"
    assert reply["details"], reply
    # Nothing the sender wrote comes back signed: not the reply, not its data.
    body = raw_replies.bodies[raw_replies.replies.index(reply)]
    assert "signature" not in json.loads(body)
    assert reply["data"] is None
    executions = signed_goferd.executions()
    assert [sn for _, sn, _ in executions if sn == doc["sn"]] == []
    assert [tag for *_, tag in executions if tag.startswith("tampered")] == []


def test_stale_request_is_dropped_unanswered(
    signed_goferd: FaultGoferd, raw_replies: ReplyQueue
) -> None:
    doc = request(signed_goferd, raw_replies, "stale")
    stale = wrapper(json.dumps({**doc, "signed_at": "2000-01-01T00:00:00Z"}), KEY)
    send(signed_goferd.url, signed_goferd.queue, stale)
    signed_marker(signed_goferd, raw_replies)
    assert [r for r in raw_replies.replies if r["sn"] == doc["sn"]] == []
    assert signed_goferd.starts()[doc["sn"]] == 0


def test_request_signed_for_another_agent_is_refused(
    signed_goferd: FaultGoferd, replies: ReplyQueue
) -> None:
    # Properly signed, with the shared key, for agent B; delivered to agent A's queue.
    doc = wire.request_document(
        sn=wire.new_sn(),
        address=f"gofer-faults-signed-{wire.new_sn()}",
        classname="Fault",
        method="work",
        args=["misrouted"],
        replyto=replies.name,
    )
    send(signed_goferd.url, signed_goferd.queue, auth.sign(HmacAuthenticator(KEY), doc))
    reply = rejection(replies, doc["sn"])  # signed: the request was authentic
    assert reply["code"] == "security.routing", reply
    assert signed_goferd.starts()[doc["sn"]] == 0


def test_replayed_request_runs_once_and_its_replay_is_not_answered(
    signed_goferd: FaultGoferd, replies: ReplyQueue
) -> None:
    doc = request(signed_goferd, replies, "replayed")
    body = auth.sign(HmacAuthenticator(KEY), doc)
    send(signed_goferd.url, signed_goferd.queue, body)
    assert replies.read(lambda _: replies.finals()[doc["sn"]] >= 1, timeout=15)
    send(signed_goferd.url, signed_goferd.queue, body)  # the same bytes, captured and sent again
    signed_marker(signed_goferd, replies)
    finals = [r for r in replies.replies if r["sn"] == doc["sn"] and r.get("status") != "accepted"]
    finals = [r for r in finals if r.get("status") not in ("started", "progress")]
    # A rejection sent to the real caller's queue would fail a call that is
    # still running (or answered): the replay gets nothing.
    assert [r.get("result") for r in finals] == [{"retval": "replayed"}]
    assert signed_goferd.starts()[doc["sn"]] == 1
