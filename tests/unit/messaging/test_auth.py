"""Message authentication: the signed wrapper, authenticators, replay guard and old plugins."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from gofer.errors import ConfigError, GoferError, InvalidDocumentError
from gofer.messaging.auth import (
    SIGNED_AT,
    AuthenticationFailedError,
    Authenticator,
    HmacAuthenticator,
    KeyPairAuthenticator,
    ReplayDetectedError,
    ReplayGuard,
    ValidationFailed,
    sign,
    validate,
)
from gofer.messaging.document import Document

KEY = b"a shared key of 32 bytes length!"


def make_request(sn: str = "f41644ed-4b97-432e-ab43-9e1155c91b56") -> Document:
    return Document(
        sn=sn,
        version="2.0",
        routing=[None, "agent-123"],
        replyto="reply-queue",
        data={"task": 7},
        request={"classname": "Dog", "method": "bark", "args": ["hi"], "kws": {}, "cntr": None},
    )


def make_reply(status: str, sn: str = "sn-1") -> Document:
    return Document(sn=sn, version="2.0", routing=[None, "reply-queue"], data=None, status=status)


def without_stamp(envelope: Document) -> Document:
    return Document({k: v for k, v in envelope.items() if k != SIGNED_AT})


def old_peer_body(envelope: dict[str, Any], key: bytes = KEY) -> bytes:
    """A body signed the way an existing gofer peer signs: its own JSON, HMAC over the digest."""
    message = json.dumps(envelope)  # spaces after separators: not our formatting
    digest = hashlib.sha256(message.encode()).hexdigest()
    signature = hmac.new(key, digest.encode(), hashlib.sha256).digest()
    wrapper = {"message": message, "signature": base64.b64encode(signature).decode()}
    return json.dumps(wrapper).encode()


def rewrap(body: bytes, **changes: Any) -> bytes:
    wrapper = json.loads(body)
    wrapper.update(changes)
    return json.dumps(wrapper).encode()


def private_pem(key: Any, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )


def public_pem(key: Any) -> bytes:
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def keypair_pair(key: Any) -> tuple[Authenticator, Authenticator]:
    """(signer, verifier) for a caller holding ``key`` and an agent holding its public key."""
    signer = KeyPairAuthenticator(private_key=private_pem(key))
    return signer, KeyPairAuthenticator(public_keys=[public_pem(key)])


@pytest.fixture(params=["hmac", "keypair"])
def pair(request: pytest.FixtureRequest) -> tuple[Authenticator, Authenticator]:
    if request.param == "hmac":
        return HmacAuthenticator(KEY), HmacAuthenticator(KEY)
    return keypair_pair(ed25519.Ed25519PrivateKey.generate())


@pytest.fixture
def signed() -> bytes:
    return sign(HmacAuthenticator(KEY), make_request())


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


# -- the wrapper ------------------------------------------------------------------


def test_round_trip(pair: tuple[Authenticator, Authenticator]) -> None:
    signer, verifier = pair
    envelope = make_request()
    body = sign(signer, envelope)
    assert set(json.loads(body)) == {"message", "signature"}
    received = validate(verifier, body)
    assert without_stamp(received) == envelope
    assert SIGNED_AT in received
    assert SIGNED_AT not in envelope  # the caller's envelope is left alone


def test_tampered_message_is_refused(pair: tuple[Authenticator, Authenticator]) -> None:
    signer, verifier = pair
    body = sign(signer, make_request())
    message = json.loads(body)["message"].replace("bark", "bite")
    with pytest.raises(ValidationFailed, match="signature does not match"):
        validate(verifier, rewrap(body, message=message))


def test_wrong_key_is_refused(pair: tuple[Authenticator, Authenticator]) -> None:
    signer, _ = pair
    if isinstance(signer, HmacAuthenticator):
        other: Authenticator = HmacAuthenticator(b"another key, also 32 bytes long!")
    else:
        _, other = keypair_pair(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(ValidationFailed, match="signature does not match"):
        validate(other, sign(signer, make_request()))


def test_unsigned_body_is_refused_with_an_authenticator() -> None:
    with pytest.raises(ValidationFailed, match="not signed"):
        validate(HmacAuthenticator(KEY), make_request().dump())


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"signature": "!!not base64!!"}, "signature is not base64"),
        ({"signature": "QUJ"}, "signature is not base64"),  # bad padding
        ({"signature": ""}, "signature is empty"),
        ({"signature": 42}, "signature is missing or not a string"),
        ({"signature": None}, "signature is missing or not a string"),
        ({"message": 7}, "message is not a string"),
        ({"message": {"sn": "1"}}, "message is not a string"),
        ({"message": "not json"}, "message is not a JSON object"),
        ({"message": "[1, 2]"}, "message is not a JSON object"),
    ],
)
def test_garbage_wrapper_is_refused_with_a_reason(
    signed: bytes, changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValidationFailed, match=reason) as caught:
        validate(HmacAuthenticator(KEY), rewrap(signed, **changes))
    assert caught.value.reason.endswith(reason)


def test_wrapper_without_signature_is_refused(signed: bytes) -> None:
    wrapper = json.loads(signed)
    del wrapper["signature"]
    with pytest.raises(ValidationFailed, match="signature is missing"):
        validate(HmacAuthenticator(KEY), json.dumps(wrapper).encode())


@pytest.mark.parametrize("authenticator", [None, HmacAuthenticator(KEY)])
@pytest.mark.parametrize("body", [b"not json", b"[1]", b'"message"', b"\xff"])
def test_body_that_is_no_json_object_is_an_invalid_document(
    authenticator: Authenticator | None, body: bytes
) -> None:
    with pytest.raises(InvalidDocumentError):
        validate(authenticator, body)


def test_message_body_from_an_old_peer_validates() -> None:
    # Pins the digest (hex SHA-256 of the message text as sent) and HMAC over it.
    envelope = make_request()
    assert validate(HmacAuthenticator(KEY), old_peer_body(envelope)) == envelope


def test_non_ascii_survives_the_wrapper() -> None:
    envelope = make_request()
    envelope.data = {"name": "Zoë ☃", "lone": "\ud800"}
    received = validate(HmacAuthenticator(KEY), sign(HmacAuthenticator(KEY), envelope))
    assert received.data == envelope.data


# -- without an authenticator -----------------------------------------------------------


def test_sign_without_authenticator_is_the_plain_document() -> None:
    envelope = make_request()
    assert sign(None, envelope) == envelope.dump()


def test_plain_body_without_authenticator() -> None:
    envelope = make_request()
    assert validate(None, envelope.dump()) == envelope


def test_signed_body_without_authenticator_is_unwrapped_unchecked(
    signed: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    tampered = rewrap(signed, signature=base64.b64encode(b"junk").decode())
    with caplog.at_level(logging.DEBUG, logger="gofer.messaging.auth"):
        received = validate(None, tampered)
    assert without_stamp(received) == make_request()
    assert "unchecked" in caplog.text


@pytest.mark.parametrize("message", [7, "not json", "[]"])
def test_malformed_wrapper_without_authenticator_is_an_invalid_document(message: Any) -> None:
    with pytest.raises(InvalidDocumentError):
        validate(None, json.dumps({"message": message}).encode())


# -- the replay guard -------------------------------------------------------------------


def test_replayed_request_is_refused() -> None:
    auth = HmacAuthenticator(KEY, replay=ReplayGuard())
    body = sign(auth, make_request())
    validate(auth, body)
    with pytest.raises(ReplayDetectedError, match="replayed message"):
        validate(auth, body)


def test_request_signed_again_with_the_same_sn_is_refused() -> None:
    auth = HmacAuthenticator(KEY, replay=ReplayGuard())
    validate(auth, sign(auth, make_request()))
    with pytest.raises(ReplayDetectedError):
        validate(auth, sign(auth, make_request()))


def test_replay_of_each_authenticator_is_refused(pair: tuple[Authenticator, Authenticator]) -> None:
    signer, verifier = pair
    verifier.replay = ReplayGuard()
    body = sign(signer, make_request())
    validate(verifier, body)
    with pytest.raises(ValidationFailed):
        validate(verifier, body)


def test_replies_sharing_their_request_sn_are_accepted_but_not_replayed() -> None:
    auth = HmacAuthenticator(KEY, replay=ReplayGuard())
    accepted = sign(auth, make_reply("accepted"))
    validate(auth, accepted)
    validate(auth, sign(auth, make_reply("started")))
    validate(auth, sign(auth, make_reply("progress")))
    validate(auth, sign(auth, make_reply("progress")))  # signed_at tells them apart
    with pytest.raises(ReplayDetectedError):
        validate(auth, accepted)


@pytest.mark.parametrize("skew", [301.0, -301.0])
def test_message_signed_outside_the_window_is_refused(skew: float) -> None:
    clock = FakeClock()
    clock.now += skew
    auth = HmacAuthenticator(KEY, replay=ReplayGuard(window=300, clock=clock))
    with pytest.raises(ReplayDetectedError, match="stale message: signed_at"):
        validate(auth, sign(auth, make_request()))


def test_message_inside_the_window_is_accepted() -> None:
    clock = FakeClock()
    clock.now += 299
    auth = HmacAuthenticator(KEY, replay=ReplayGuard(window=300, clock=clock))
    validate(auth, sign(auth, make_request()))


def test_old_reply_timestamp_outside_the_window_is_refused() -> None:
    reply = make_reply("accepted")
    reply.timestamp = "2020-01-01T00:00:00Z"
    auth = HmacAuthenticator(KEY, replay=ReplayGuard())
    with pytest.raises(ReplayDetectedError, match="stale message: timestamp"):
        validate(auth, old_peer_body(reply))


@pytest.mark.parametrize("stamp", ["yesterday", 12, ["2020"]])
def test_unreadable_signed_at_is_refused(stamp: Any) -> None:
    envelope = make_request()
    envelope[SIGNED_AT] = stamp
    auth = HmacAuthenticator(KEY, replay=ReplayGuard())
    with pytest.raises(ReplayDetectedError, match="unreadable signed_at"):
        validate(auth, old_peer_body(envelope))


def test_old_request_without_a_time_is_refused_only_while_remembered() -> None:
    # The documented limit: the old wire puts no time on requests.
    clock = FakeClock()
    auth = HmacAuthenticator(KEY, replay=ReplayGuard(window=300, clock=clock))
    body = old_peer_body(make_request())
    validate(auth, body)
    clock.now += 300
    with pytest.raises(ReplayDetectedError):
        validate(auth, body)
    clock.now += 1
    validate(auth, body)


def test_expired_entries_are_forgotten() -> None:
    clock = FakeClock()
    guard = ReplayGuard(window=10, clock=clock)
    for n in range(5):
        guard.check(make_request(f"sn-{n}"), "digest")
    assert len(guard) == 5
    clock.now += 11
    guard.check(make_request("sn-new"), "digest")
    assert len(guard) == 1


def test_capacity_bounds_memory_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    guard = ReplayGuard(window=300, capacity=3, clock=FakeClock())
    with caplog.at_level(logging.DEBUG, logger="gofer.messaging.auth"):
        for n in range(10):
            guard.check(make_request(f"sn-{n}"), "digest")
    assert len(guard) == 3
    assert [r.levelno for r in caplog.records].count(logging.WARNING) == 1
    assert "raise the capacity" in caplog.text
    guard.check(make_request("sn-0"), "digest")  # forgotten early: the documented cost
    with pytest.raises(ReplayDetectedError):
        guard.check(make_request("sn-9"), "digest")


def test_forged_message_does_not_reach_the_guard() -> None:
    guard = ReplayGuard()
    auth = HmacAuthenticator(KEY, replay=guard)
    forged = old_peer_body(make_request(), key=b"the attacker's key, 32 bytes ...")
    with pytest.raises(ValidationFailed, match="signature does not match"):
        validate(auth, forged)
    assert len(guard) == 0
    validate(auth, sign(auth, make_request()))  # the real request with that sn still runs


def test_guard_accepts_a_message_once_across_threads() -> None:
    auth = HmacAuthenticator(KEY, replay=ReplayGuard())
    body = sign(auth, make_request())

    def attempt(_: int) -> bool:
        try:
            validate(auth, body)
        except ReplayDetectedError:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(32)))
    assert outcomes.count(True) == 1


@pytest.mark.parametrize(("window", "capacity"), [(0, 10), (-1, 10), (10, 0)])
def test_guard_limits_must_be_positive(window: float, capacity: int) -> None:
    with pytest.raises(ValueError, match="window"):
        ReplayGuard(window=window, capacity=capacity)


# -- errors -----------------------------------------------------------------------


def test_errors_belong_to_the_tree_and_keep_the_old_name() -> None:
    assert ValidationFailed is AuthenticationFailedError
    assert issubclass(ReplayDetectedError, ValidationFailed)
    assert issubclass(ValidationFailed, GoferError)
    error = ValidationFailed()
    assert error.reason == str(error) == "message authentication failed"
    assert error.details is None


# -- user-written authenticators ------------------------------------------------------


class LegacyAuthenticator(Authenticator):
    """Written as a plugin author of the existing gofer would: no super().__init__()."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def sign(self, digest: str) -> bytes:
        return hashlib.sha256((self.secret + digest).encode()).digest()

    def validate(self, document: Document, digest: str, signature: bytes) -> None:
        if document.routing[1] != "agent-123":
            raise ValidationFailed("not for this agent")
        if signature != self.sign(digest):
            raise ValidationFailed()


def test_user_written_authenticator_works() -> None:
    auth = LegacyAuthenticator("s3cret")
    envelope = make_request()
    assert without_stamp(validate(auth, sign(auth, envelope))) == envelope
    with pytest.raises(ValidationFailed, match="authentication failed"):
        validate(LegacyAuthenticator("other"), sign(auth, envelope))
    envelope.routing = [None, "agent-999"]
    with pytest.raises(ValidationFailed, match="not for this agent"):
        validate(auth, sign(auth, envelope))


def test_user_written_authenticator_can_hold_a_replay_guard() -> None:
    auth = LegacyAuthenticator("s3cret")
    auth.replay = ReplayGuard()
    body = sign(auth, make_request())
    validate(auth, body)
    with pytest.raises(ReplayDetectedError):
        validate(auth, body)


def test_signature_returned_as_text_is_accepted() -> None:
    # Authenticators from the Python 2 days returned str; it goes out as its UTF-8.
    class TextSigner(LegacyAuthenticator):
        def sign(self, digest: str) -> str:  # type: ignore[override]
            return hmac.new(KEY, digest.encode(), hashlib.sha256).hexdigest()

        def validate(self, document: Document, digest: str, signature: bytes) -> None:
            if signature != self.sign(digest).encode():
                raise ValidationFailed()

    auth = TextSigner("unused")
    validate(auth, sign(auth, make_request()))


def test_broken_authenticator_refuses() -> None:
    class Broken(LegacyAuthenticator):
        def validate(self, document: Document, digest: str, signature: bytes) -> None:
            raise KeyError("bug")

    auth = Broken("s")
    with pytest.raises(ValidationFailed, match=r"Broken.validate\(\) failed: KeyError"):
        validate(auth, sign(auth, make_request()))


def test_authenticator_missing_a_method_cannot_be_made() -> None:
    class SignOnly(Authenticator):
        def sign(self, digest: str) -> bytes:
            return b"x"

    with pytest.raises(TypeError, match="validate"):
        SignOnly()  # type: ignore[abstract]


# -- HmacAuthenticator -------------------------------------------------------------------


def test_hmac_key_may_be_text() -> None:
    body = sign(HmacAuthenticator(KEY.decode()), make_request())
    validate(HmacAuthenticator(KEY), body)


def test_hmac_key_must_not_be_short() -> None:
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        HmacAuthenticator(b"short")


def test_hmac_repr_hides_the_key() -> None:
    assert KEY.decode() not in repr(HmacAuthenticator(KEY))


# -- KeyPairAuthenticator -------------------------------------------------------------


@pytest.mark.parametrize(
    "generate",
    [
        lambda: ec.generate_private_key(ec.SECP256R1()),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ],
    ids=["ecdsa", "rsa"],
)
def test_keypair_other_algorithms_round_trip(generate: Callable[[], Any]) -> None:
    signer, verifier = keypair_pair(generate())
    envelope = make_request()
    assert without_stamp(validate(verifier, sign(signer, envelope))) == envelope


def test_keypair_reads_pem_files_and_encrypted_keys(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "agent.pem").write_bytes(private_pem(key, password=b"pw"))
    (tmp_path / "agent.pub").write_bytes(public_pem(key))
    signer = KeyPairAuthenticator(private_key=tmp_path / "agent.pem", password=b"pw")
    verifier = KeyPairAuthenticator(public_keys=[str(tmp_path / "agent.pub")])
    validate(verifier, sign(signer, make_request()))


def test_keypair_accepts_key_objects() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    signer = KeyPairAuthenticator(private_key=key)
    validate(KeyPairAuthenticator(public_keys=[key.public_key()]), sign(signer, make_request()))


def test_keypair_accepts_any_of_its_public_keys() -> None:
    caller_a, caller_b = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    agent = KeyPairAuthenticator(public_keys=[public_pem(caller_a), public_pem(caller_b)])
    for caller in (caller_a, caller_b):
        validate(agent, sign(KeyPairAuthenticator(private_key=private_pem(caller)), make_request()))


def test_keypair_keys_for_can_pick_by_routing() -> None:
    key = ed25519.Ed25519PrivateKey.generate()

    class PerAgent(KeyPairAuthenticator):
        def keys_for(self, document: Document) -> list[Any]:
            return list(super().keys_for(document)) if document.routing[1] == "agent-123" else []

    verifier = PerAgent(public_keys=[public_pem(key)])
    signer = KeyPairAuthenticator(private_key=private_pem(key))
    validate(verifier, sign(signer, make_request()))
    elsewhere = make_request()
    elsewhere.routing = [None, "agent-999"]
    with pytest.raises(ValidationFailed, match="any of 0 public key"):
        validate(verifier, sign(signer, elsewhere))


def test_keypair_without_private_key_cannot_sign() -> None:
    with pytest.raises(ConfigError, match="no private key"):
        sign(KeyPairAuthenticator(), make_request())


def test_keypair_without_public_keys_refuses_everything() -> None:
    signer, _ = keypair_pair(ed25519.Ed25519PrivateKey.generate())
    with pytest.raises(ValidationFailed, match="any of 0 public key"):
        validate(KeyPairAuthenticator(), sign(signer, make_request()))


def test_keypair_refuses_keys_that_cannot_sign() -> None:
    key = x25519.X25519PrivateKey.generate()
    with pytest.raises(ConfigError, match="unsupported private key type"):
        KeyPairAuthenticator(private_key=private_pem(key))
    with pytest.raises(ConfigError, match="unsupported public key type"):
        KeyPairAuthenticator(public_keys=[public_pem(key)])


def test_keypair_bad_key_files_name_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN NOTHING-----\n")
    with pytest.raises(ConfigError, match=r"cannot load the public key.*garbage\.pem"):
        KeyPairAuthenticator(public_keys=[garbage])
    with pytest.raises(ConfigError, match=r"cannot read the private key.*missing\.pem"):
        KeyPairAuthenticator(private_key=tmp_path / "missing.pem")


def test_keypair_wrong_password_is_a_config_error() -> None:
    pem = private_pem(ed25519.Ed25519PrivateKey.generate(), password=b"right")
    with pytest.raises(ConfigError, match="cannot load the private key"):
        KeyPairAuthenticator(private_key=pem, password=b"wrong")


def test_keypair_repr_hides_the_key() -> None:
    pem = private_pem(ed25519.Ed25519PrivateKey.generate())
    assert "PRIVATE" not in repr(KeyPairAuthenticator(private_key=pem))


def test_keypair_without_cryptography_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(ConfigError, match="needs the 'cryptography' package"):
        KeyPairAuthenticator(public_keys=[])
