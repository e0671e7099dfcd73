"""The agent side of one request: who a request may run on, what a refusal answers, big results."""

from __future__ import annotations

import importlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gofer.decorators import remote
from gofer.errors import ResultTooLargeError
from gofer.messaging import auth
from gofer.messaging.adapter.model import Address
from gofer.messaging.auth import HmacAuthenticator, KeyPairAuthenticator, ReplayGuard
from gofer.messaging.document import Document
from gofer.rmi import exceptions, wire
from gofer.rmi.async_ import ReplyConsumer
from gofer.rmi.catalog import Catalog, remote_class
from gofer.rmi.dispatcher import Dispatcher
from gofer.rmi.replies import reply_for
from gofer.rmi.serve import Refused, Replier, receive, run

KEY = "unit-test-shared-key-0123456789"


class Sent:
    """Records what a Replier sends."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def __call__(self, address: str, body: bytes, *, confirm: bool = True) -> None:
        self.messages.append((address, body))

    def documents(self, authenticator: auth.Authenticator | None = None) -> list[Document]:
        return [auth.validate(authenticator, body) for _, body in self.messages]


def request(destination: str | None = "agent-a", **fields: Any) -> Document:
    doc = wire.request_document(
        sn=wire.new_sn(),
        address=destination or "x",
        classname="Dog",
        method="bark",
        args=["hi"],
        replyto="caller-replies",
        data={"task": 7},
    )
    if destination is None:
        doc["routing"] = None
    doc.update(fields)
    return doc


@pytest.fixture
def keypair() -> tuple[KeyPairAuthenticator, KeyPairAuthenticator]:
    """(caller, agent) key-pair authenticators that accept each other."""
    caller_key, agent_key = (
        ed25519.Ed25519PrivateKey.generate(),
        ed25519.Ed25519PrivateKey.generate(),
    )

    def public(key: ed25519.Ed25519PrivateKey) -> bytes:
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    return (
        KeyPairAuthenticator(caller_key, [public(agent_key)]),
        KeyPairAuthenticator(agent_key, [public(caller_key)]),
    )


# -- a signed request runs only where it was sent ------------------------------


@pytest.mark.parametrize("destination", ["agent-a", "gofer/agent-a"])
def test_signed_request_runs_on_its_own_queue(destination: str) -> None:
    signer = HmacAuthenticator(KEY)
    body = auth.sign(signer, request(destination))
    got = receive(body, HmacAuthenticator(KEY), Address.parse("agent-a"))
    assert got.address == destination


@pytest.mark.parametrize("destination", ["agent-b", "agent-a/agent-b", None])
def test_signed_request_for_another_queue_is_refused(destination: str | None) -> None:
    body = auth.sign(HmacAuthenticator(KEY), request(destination))
    with pytest.raises(Refused) as caught:
        receive(body, HmacAuthenticator(KEY), Address.parse("agent-a"))
    assert caught.value.rejected.code == wire.ROUTING == "security.routing"
    assert caught.value.authentic  # it is authentic: its caller is told, signed
    assert caught.value.replyto == "caller-replies"


def test_key_pair_signed_request_for_another_queue_is_refused(
    keypair: tuple[KeyPairAuthenticator, KeyPairAuthenticator],
) -> None:
    caller, agent = keypair
    body = auth.sign(caller, request("agent-b"))
    assert receive(body, agent, Address.parse("agent-b")).method == "bark"
    with pytest.raises(Refused) as caught:
        receive(body, agent, Address.parse("agent-a"))
    assert caught.value.rejected.code == wire.ROUTING


def test_unsigned_agents_do_not_check_the_destination() -> None:
    # Without an authenticator anyone may write any destination: nothing to trust.
    assert receive(request("agent-b").dump(), None, Address.parse("agent-a")).sn


# -- a message that fails authentication gets no signed reply ------------------


def test_forged_request_is_answered_unsigned_and_without_its_data() -> None:
    forged = auth.sign(HmacAuthenticator("somebody-else-key-0123456789"), request())
    with pytest.raises(Refused) as caught:
        receive(forged, HmacAuthenticator(KEY), Address.parse("agent-a"))
    refused = caught.value
    assert not refused.authentic
    sent = Sent()
    Replier(sent, HmacAuthenticator(KEY)).refused(refused)
    [(address, body)] = sent.messages
    assert address == "caller-replies"
    reply = json.loads(body)
    assert "signature" not in reply, "the agent signed what a forger wrote"
    assert reply["status"] == "rejected"
    assert reply["code"] == wire.AUTHENTICATION
    assert reply["data"] is None
    # A caller with an authenticator ignores it: it cannot fail a real call.
    with pytest.raises(auth.ValidationFailed):
        auth.validate(HmacAuthenticator(KEY), body)


def test_replayed_request_gets_no_reply_at_all() -> None:
    signer = HmacAuthenticator(KEY)
    agent = HmacAuthenticator(KEY, replay=ReplayGuard())
    body = auth.sign(signer, request())
    receive(body, agent, Address.parse("agent-a"))
    with pytest.raises(Refused) as caught:
        receive(body, agent, Address.parse("agent-a"))
    assert caught.value.replay
    assert caught.value.replyto is None  # the real caller may still wait for the real result
    sent = Sent()
    Replier(sent, agent).refused(caught.value)
    assert sent.messages == []


def test_rejection_of_an_authentic_request_is_signed() -> None:
    body = auth.sign(HmacAuthenticator(KEY), request(version="1.0"))
    with pytest.raises(Refused) as caught:
        receive(body, HmacAuthenticator(KEY), Address.parse("agent-a"))
    sent = Sent()
    Replier(sent, HmacAuthenticator(KEY)).refused(caught.value)
    [reply] = sent.documents(HmacAuthenticator(KEY))
    assert reply["code"] == wire.VERSION_MISMATCH
    assert reply["data"] == {"task": 7}


# -- a result too large to send -------------------------------------------------


def big_dispatcher() -> Dispatcher:
    class Store:
        @remote
        def blob(self, size: int) -> str:
            return "x" * size

    return Dispatcher([Catalog("store", {"Store": remote_class(Store)}, {}, [], [], [])])


def blob_request(size: int) -> wire.Request:
    """A request for ``Store.blob(size)``, a result of ``size`` bytes."""
    doc = wire.request_document(
        sn=wire.new_sn(),
        address="agent-a",
        classname="Store",
        method="blob",
        args=[size],
        replyto="caller-replies",
    )
    return wire.parse_request(doc)


def test_result_over_the_limit_is_answered_with_a_failure() -> None:
    sent = Sent()
    replier = Replier(sent, limit=10_000)
    kept: list[dict[str, Any]] = []
    result = run(blob_request(20_000), big_dispatcher(), replier, keep=kept.append)
    final = sent.documents()[-1]
    assert final["result"] == result == kept[0]  # the journal keeps what is sent
    with pytest.raises(ResultTooLargeError) as caught:
        raise exceptions.rebuild(final["result"])
    assert "Store.blob()" in str(caught.value)
    assert "10000" in str(caught.value)


def test_result_within_the_limit_is_sent_as_it_is() -> None:
    sent = Sent()
    run(blob_request(5_000), big_dispatcher(), Replier(sent, limit=10_000))
    assert sent.documents()[-1]["result"] == {"retval": "x" * 5_000}


def test_the_old_async_module_name_imports() -> None:
    module = importlib.import_module("gofer.rmi.async")
    assert module.ReplyConsumer is ReplyConsumer

    class Mine(module.Listener):  # the old base: every kind of reply has a method
        pass

    doc = wire.result_document(wire.new_sn(), "q", None, {"retval": 1})
    assert Mine().succeeded(reply_for(doc)) is None


def test_replies_carry_their_origin() -> None:
    doc = wire.result_document(wire.new_sn(), "caller-replies", None, {"retval": 1})
    doc["routing"] = ["agent-7", "caller-replies"]
    assert reply_for(doc).origin == "agent-7"  # type: ignore[union-attr]
    doc["routing"] = None
    assert reply_for(doc).origin is None  # type: ignore[union-attr]


# -- statuses a caller asked not to get ------------------------------------------


def test_a_quiet_request_is_answered_with_its_result_alone() -> None:
    doc = wire.request_document(
        sn=wire.new_sn(),
        address="agent-a",
        classname="Store",
        method="blob",
        args=[3],
        replyto="caller-replies",
        quiet=True,
    )
    sent = Sent()
    replier = Replier(sent)
    request = wire.parse_request(doc)
    replier.accepted(request)
    run(request, big_dispatcher(), replier)
    assert [d.get("status") or "result" for d in sent.documents()] == ["result"]


def test_other_requests_get_every_status() -> None:
    sent = Sent()
    replier = Replier(sent)
    request = blob_request(3)
    replier.accepted(request)
    run(request, big_dispatcher(), replier)
    statuses = [d.get("status") or "result" for d in sent.documents()]
    assert statuses == [wire.ACCEPTED, wire.STARTED, "result"]


@pytest.mark.parametrize("value", [False, "yes", 1, None])
def test_only_true_makes_a_request_quiet(value: object) -> None:
    doc = blob_request(3).envelope
    doc["quiet"] = value
    assert not wire.parse_request(doc).quiet
