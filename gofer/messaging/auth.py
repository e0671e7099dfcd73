"""Message authentication: the signed wrapper of WIRE.md and the authenticators that sign it.

When an authenticator is configured, every body goes out as::

    {"message": "<the envelope as a JSON string>", "signature": "<base64>"}

The authenticator signs the SHA-256 hex digest of the ``message`` text and
the receiver's authenticator checks it. :func:`sign` builds a body to send,
:func:`validate` turns a received body back into the envelope. Everything a
receiver refuses raises :class:`ValidationFailed`, whose message the agent
answers with a ``rejected`` status (code ``security.authentication``).

Three authenticators come with gofer:

- :class:`HmacAuthenticator`: a key shared by callers and agents (HMAC-SHA256).
- :class:`KeyPairAuthenticator`: public-key signatures (Ed25519 preferred)
  through the optional ``cryptography`` package.
- any subclass of :class:`Authenticator`, as plugins of the existing gofer
  write them.

Each can hold a :class:`ReplayGuard` (``replay=``), which refuses a signed
message seen before or signed too long ago; its docstring says exactly what
that protects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gofer.errors import ConfigError, GoferError, InvalidDocumentError
from gofer.messaging.document import Document

if TYPE_CHECKING:
    from typing import TypeAlias

    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

    SigningKey: TypeAlias = (
        ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey
        | ec.EllipticCurvePrivateKey
        | rsa.RSAPrivateKey
    )
    VerifyingKey: TypeAlias = (
        ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey
        | ec.EllipticCurvePublicKey
        | rsa.RSAPublicKey
    )
    #: A key as configured: PEM bytes, a PEM file's path, or a key object.
    PrivateKeySource: TypeAlias = bytes | str | os.PathLike[str] | SigningKey
    PublicKeySource: TypeAlias = bytes | str | os.PathLike[str] | VerifyingKey

log = logging.getLogger(__name__)

#: The envelope field our signer adds: when the message was signed (ISO-8601 UTC).
SIGNED_AT = "signed_at"


class AuthenticationFailedError(GoferError):
    """A received message failed authentication and must not be processed.

    Raised for an unsigned body when an authenticator is configured, a
    malformed signed wrapper, a signature that does not match, and a replay.
    Authenticators written for the existing gofer raise it under its old name,
    :data:`ValidationFailed`.

    Args:
        reason: why, in words fit for a ``rejected`` reply (never a secret).
        details: optional JSON-safe detail for the reply.
    """

    def __init__(self, reason: str = "message authentication failed", details: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class ReplayDetectedError(AuthenticationFailedError):
    """A correctly signed message was refused as a replay or as too old.

    Distinct so that a receiver can tell it from a bad signature: a broker's
    redelivery of a message that was validated but never acknowledged (the
    connection broke in between) looks exactly like a replay.
    """


#: The name the existing gofer uses; authenticators raise it from ``validate``.
ValidationFailed = AuthenticationFailedError


class Authenticator(ABC):
    """Signs outgoing messages and checks incoming ones; subclass it.

    The contract of the existing gofer, unchanged: ``sign`` gets the SHA-256
    hex digest of the message text and returns the raw signature;
    ``validate`` gets the parsed envelope (to pick a key by
    ``document.routing``, say), the digest it recomputed and the raw
    signature, and raises :class:`ValidationFailed` when they do not match.
    Set ``replay`` to a :class:`ReplayGuard` to refuse replays as well; it is
    consulted only after ``validate`` passed.

    Example::

        class SharedSecret(Authenticator):
            def sign(self, digest):
                return hmac.new(SECRET, digest.encode(), "sha256").digest()

            def validate(self, document, digest, signature):
                if not hmac.compare_digest(self.sign(digest), signature):
                    raise ValidationFailed("signature does not match")

        agent = Agent(url, uuid, authenticator=SharedSecret())
    """

    replay: ReplayGuard | None = None

    @abstractmethod
    def sign(self, digest: str) -> bytes:
        """Sign a message.

        Args:
            digest: SHA-256 hex digest of the message text.

        Returns:
            The raw signature (it is base64-encoded on the wire).
        """

    @abstractmethod
    def validate(self, document: Document, digest: str, signature: bytes) -> None:
        """Check a received message's signature.

        Args:
            document: the envelope the message carries.
            digest: SHA-256 hex digest of the message text, computed here.
            signature: the raw signature that came with it.

        Raises:
            ValidationFailed: the signature does not match.
        """


def sign(authenticator: Authenticator | None, envelope: Document) -> bytes:
    """Build the body to send for an envelope.

    With an authenticator, the envelope is copied, stamped with
    ``signed_at`` (which old peers ignore, and a :class:`ReplayGuard` checks)
    and wrapped with its signature. The caller's envelope is not changed.

    Args:
        authenticator: the configured authenticator, or None to send unsigned.
        envelope: the message.

    Returns:
        The body: ``envelope.dump()`` when unsigned, the signed wrapper otherwise.

    Raises:
        InvalidDocumentError: the envelope is not JSON-serializable.
    """
    if authenticator is None:
        return envelope.dump()
    stamped = Document(envelope)
    stamped[SIGNED_AT] = _utc_text(time.time())
    message = stamped.dump().decode("ascii")  # json.dumps escapes all non-ASCII
    signature = _as_bytes(authenticator.sign(_digest(message)))
    return Document(message=message, signature=base64.b64encode(signature).decode()).dump()


def validate(authenticator: Authenticator | None, body: bytes) -> Document:
    """Turn a received body into its envelope, checking the signature.

    Args:
        authenticator: the configured authenticator, or None to accept
            unsigned bodies (a signed one is then unwrapped unchecked).
        body: the message body as received.

    Returns:
        The envelope.

    Raises:
        InvalidDocumentError: the body is not a JSON object, or (without an
            authenticator) a signed wrapper holds no JSON object.
        ValidationFailed: with an authenticator: the body is unsigned, the
            wrapper is malformed, the signature does not match, or the
            replay guard refuses it.
    """
    document = Document.load(body)
    if "message" not in document:
        if authenticator is not None:
            raise ValidationFailed("message is not signed")
        return document
    if authenticator is None:
        return _unwrap_unchecked(document)
    message, signature = _open_wrapper(document)
    try:
        envelope = Document.load(message)
    except InvalidDocumentError as exc:
        raise ValidationFailed("signed wrapper: message is not a JSON object") from exc
    digest = _digest(message)
    _check_signature(authenticator, envelope, digest, signature)
    if authenticator.replay is not None:
        authenticator.replay.check(envelope, digest)
    return envelope


def _unwrap_unchecked(document: Document) -> Document:
    """The envelope inside a signed wrapper, when there is nothing to check it with."""
    message = document["message"]
    if not isinstance(message, str):
        raise InvalidDocumentError("signed wrapper: message is not a string")
    envelope = Document.load(message)
    log.debug("accepted signed message %s unchecked: no authenticator", envelope.sn)
    return envelope


def _open_wrapper(document: Document) -> tuple[str, bytes]:
    """The message text and raw signature of a signed wrapper.

    Raises:
        ValidationFailed: either is missing or not a string, or the
            signature is not base64.
    """
    message, signature = document.get("message"), document.get("signature")
    if not isinstance(message, str):
        raise ValidationFailed("signed wrapper: message is not a string")
    if not isinstance(signature, str):
        raise ValidationFailed("signed wrapper: signature is missing or not a string")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed("signed wrapper: signature is not base64") from exc
    if not raw:
        raise ValidationFailed("signed wrapper: signature is empty")
    return message, raw


def _check_signature(
    authenticator: Authenticator, envelope: Document, digest: str, signature: bytes
) -> None:
    """Run the authenticator, failing closed on anything but a clean return."""
    try:
        authenticator.validate(envelope, digest, signature)
    except AuthenticationFailedError:
        raise
    # An authenticator is user code: whatever else it raises must refuse the
    # message, not let it through or kill the consumer (test_auth:
    # test_broken_authenticator_refuses).
    except Exception as exc:
        name = type(authenticator).__name__
        raise ValidationFailed(f"{name}.validate() failed: {type(exc).__name__}") from exc


def _digest(message: str) -> str:
    """SHA-256 hex digest of a message text (``surrogatepass``: any JSON string encodes)."""
    return hashlib.sha256(message.encode("utf-8", "surrogatepass")).hexdigest()


def _as_bytes(signature: bytes | str) -> bytes:
    """A signature as bytes; authenticators written for Python 2 returned text."""
    if isinstance(signature, str):
        return signature.encode("utf-8")
    if isinstance(signature, (bytes, bytearray, memoryview)):
        return bytes(signature)
    raise TypeError(f"Authenticator.sign() returned {type(signature).__name__}, not bytes")


def _utc_text(seconds: float) -> str:
    """ISO-8601 UTC with microseconds and a ``Z`` suffix."""
    stamp = datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="microseconds")
    return stamp.replace("+00:00", "Z")


def _utc_seconds(text: Any) -> float:
    """Parse an ISO-8601 time of an envelope (naive means UTC).

    Raises:
        ValueError: not an ISO-8601 string.
    """
    if not isinstance(text, str):
        raise ValueError(f"not a string: {type(text).__name__}")
    # Before 3.11, fromisoformat() does not read the "Z" every signer writes.
    stamp = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


class ReplayGuard:
    """Refuses signed messages seen before, or signed outside a time window.

    What it protects: someone who can publish to the broker but holds no key
    cannot make an agent run a captured signed request twice, within the
    limits below. A message is refused when

    - its ``signed_at`` (added by this gofer's :func:`sign`) or, failing that,
      its ``timestamp`` is further than ``window`` seconds from now, either
      way; or
    - it was accepted before within the last ``window`` seconds: a request
      (an envelope with ``request``) by its ``sn``; any other message (a
      reply, which shares its request's ``sn``) by the digest of its exact text.

    What it does not protect:

    - Requests from old gofer callers carry no time at all. They are refused
      only while their ``sn`` is remembered (``window`` seconds, at most
      ``capacity`` messages); a replay after that is accepted. Messages
      from this gofer carry ``signed_at``, so once forgotten they are stale.
    - When more than ``capacity`` messages arrive within ``window`` seconds,
      the oldest are forgotten early (logged as a warning); size
      ``capacity`` to at least the peak rate times ``window``.
    - Memory is per process: a restarted agent remembers nothing (the
      agent's journal is what refuses a finished ``sn`` after a restart).
    - Signing is not encryption: anyone on the broker still reads messages.
    - An old peer's two identical unstamped progress reports look like one
      replayed; the second is refused.
    - A broker's redelivery of a request validated but never acknowledged
      is refused as a replay (:class:`ReplayDetectedError`); the agent's
      journal, not this guard, is what decides whether it already ran.

    Choose ``window`` longer than a message may legitimately wait in a
    queue (an agent that is down, a caller's reply listener that is down, a
    request TTL): older messages are refused as stale. Clocks of signers and
    receivers must agree to well within it.

    The guard is thread-safe; one guard serves one receiver.

    Args:
        window: seconds a message stays fresh, and its identity remembered.
        capacity: most identities remembered at once.
        clock: wall-clock seconds since the epoch (tests pass their own).
    """

    def __init__(
        self,
        window: float = 300.0,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window <= 0 or capacity < 1:
            raise ValueError("ReplayGuard needs window > 0 and capacity >= 1")
        self.window = window
        self.capacity = capacity
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._warned = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def check(self, envelope: Document, digest: str) -> None:
        """Refuse a replayed or stale message, else remember it.

        Call only for messages whose signature has been verified, so that
        forged messages cannot fill the memory.

        Args:
            envelope: the validated envelope.
            digest: SHA-256 hex digest of its message text.

        Raises:
            ReplayDetectedError: seen before, stale, or its time is unreadable.
        """
        now = self._clock()
        self._check_time(envelope, now)
        key = self._identity(envelope, digest)
        with self._lock:
            self._forget_expired(now)
            if key in self._seen:
                raise ReplayDetectedError(f"replayed message: {key} was already accepted")
            self._seen[key] = now
            if len(self._seen) > self.capacity:
                self._evict(now)

    def _check_time(self, envelope: Document, now: float) -> None:
        field = SIGNED_AT if envelope.get(SIGNED_AT) is not None else "timestamp"
        text = envelope.get(field)
        if text is None:
            return
        try:
            age = now - _utc_seconds(text)
        except (ValueError, OverflowError, OSError) as exc:
            raise ReplayDetectedError(f"unreadable {field}: {text!r}") from exc
        if abs(age) > self.window:
            raise ReplayDetectedError(
                f"stale message: {field} {text} is {age:.0f}s from now,"
                f" outside the {self.window:g}s window"
            )

    @staticmethod
    def _identity(envelope: Document, digest: str) -> str:
        sn = envelope.get("sn")
        if envelope.get("request") is not None and isinstance(sn, str):
            return f"request {sn}"
        return f"message {digest}"

    def _forget_expired(self, now: float) -> None:
        while self._seen:
            key, seen_at = next(iter(self._seen.items()))
            if now - seen_at <= self.window:
                return
            del self._seen[key]

    def _evict(self, now: float) -> None:
        _key, seen_at = self._seen.popitem(last=False)
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        log.log(
            level,
            "replay guard full (capacity %d): forgot a message %.0fs before its %gs window"
            " ended; raise the capacity",
            self.capacity,
            self.window - (now - seen_at),
            self.window,
        )


class HmacAuthenticator(Authenticator):
    """Authenticates with a key shared by callers and agents (HMAC-SHA256).

    Anyone holding the key can both sign and verify, so every caller can
    impersonate every other; use :class:`KeyPairAuthenticator` when that
    matters.

    Example::

        auth = HmacAuthenticator(key_bytes, replay=ReplayGuard())

    Args:
        key: the shared key (text is encoded as UTF-8); at least 16 bytes.
        replay: an optional replay guard.
    """

    MIN_KEY_BYTES = 16

    def __init__(self, key: bytes | str, replay: ReplayGuard | None = None) -> None:
        raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        if len(raw) < self.MIN_KEY_BYTES:
            raise ConfigError(f"the HMAC key must be at least {self.MIN_KEY_BYTES} bytes")
        self._key = raw
        self.replay = replay

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key=<redacted>, replay={self.replay!r})"

    def sign(self, digest: str) -> bytes:
        """HMAC-SHA256 of the digest under the shared key."""
        return hmac.new(self._key, digest.encode("ascii"), hashlib.sha256).digest()

    def validate(self, document: Document, digest: str, signature: bytes) -> None:
        """Compare in constant time.

        Raises:
            ValidationFailed: the signature was not made with this key.
        """
        if not hmac.compare_digest(self.sign(digest), signature):
            raise ValidationFailed("signature does not match (HMAC)")


class KeyPairAuthenticator(Authenticator):
    """Authenticates with public-key signatures (needs ``cryptography``).

    Each side holds its own private key, to sign what it sends, and the
    public keys of the peers it accepts messages from. An agent typically
    holds its private key and its callers' public keys; a caller, its private
    key and the agents' public keys. A message is accepted when any of
    :meth:`keys_for` verifies it; override that method to choose keys by
    ``document.routing``.

    Keys are PEM (a path to a file, or the bytes), or key objects of
    ``cryptography``. Ed25519 is preferred; Ed448, ECDSA (SHA-256) and
    RSA-PSS (SHA-256) keys work too. Generate a pair with::

        openssl genpkey -algorithm ed25519 -out agent.pem
        openssl pkey -in agent.pem -pubout -out agent.pub

    Example::

        auth = KeyPairAuthenticator(
            private_key="/etc/gofer/agent.pem",
            public_keys=["/etc/gofer/callers/satellite.pub"],
            replay=ReplayGuard(),
        )

    Args:
        private_key: this side's signing key; None when it only verifies.
        public_keys: the peers' verifying keys.
        password: decrypts an encrypted private key.
        replay: an optional replay guard.

    Raises:
        ConfigError: ``cryptography`` is not installed, or a key cannot be
            read, or its type cannot sign.
    """

    def __init__(
        self,
        private_key: PrivateKeySource | None = None,
        public_keys: Iterable[PublicKeySource] = (),
        password: bytes | None = None,
        replay: ReplayGuard | None = None,
    ) -> None:
        _require_cryptography()
        self._private = None if private_key is None else _load_private(private_key, password)
        self._public = [_load_public(source) for source in public_keys]
        self.replay = replay

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(private_key={'<set>' if self._private else None},"
            f" public_keys={len(self._public)}, replay={self.replay!r})"
        )

    def sign(self, digest: str) -> bytes:
        """Sign the digest with the private key.

        Raises:
            ConfigError: no private key was given.
        """
        if self._private is None:
            raise ConfigError("KeyPairAuthenticator has no private key: it can verify, not sign")
        return _sign_with(self._private, digest.encode("ascii"))

    def validate(self, document: Document, digest: str, signature: bytes) -> None:
        """Accept the message when one of :meth:`keys_for` verifies it.

        Raises:
            ValidationFailed: no key verifies the signature.
        """
        keys = self.keys_for(document)
        data = digest.encode("ascii")
        if not any(_verifies(key, signature, data) for key in keys):
            raise ValidationFailed(f"signature does not match any of {len(keys)} public key(s)")

    def keys_for(self, document: Document) -> Sequence[VerifyingKey]:
        """The public keys that may have signed a message; all of them by default.

        Args:
            document: the envelope being validated.
        """
        return self._public


def _require_cryptography() -> None:
    """Fail with a clear message when the optional dependency is missing."""
    try:
        import cryptography  # noqa: F401, PLC0415
    except ImportError as exc:
        raise ConfigError(
            "KeyPairAuthenticator needs the 'cryptography' package (pip install cryptography)"
        ) from exc


def _load_private(source: PrivateKeySource, password: bytes | None) -> SigningKey:
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415
        load_pem_private_key,
    )

    key = _load_pem(source, "private key", lambda pem: load_pem_private_key(pem, password))
    kinds = (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)
    if isinstance(key, (*kinds, ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        return key
    raise _unsupported(key, "private key", source)


def _load_public(source: PublicKeySource) -> VerifyingKey:
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import (  # noqa: PLC0415
        load_pem_public_key,
    )

    key = _load_pem(source, "public key", load_pem_public_key)
    kinds = (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)
    if isinstance(key, (*kinds, ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        return key
    raise _unsupported(key, "public key", source)


def _load_pem(source: object, what: str, parse: Callable[[bytes], object]) -> object:
    """A key object: given as one, or parsed from PEM bytes or a PEM file.

    Raises:
        ConfigError: the file cannot be read, or holds no such key.
    """
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415

    if not isinstance(source, (bytes, str, os.PathLike)):
        return source
    path = _path_of(source)
    try:
        pem = source if isinstance(source, bytes) else Path(source).read_bytes()
        return parse(pem)
    except OSError as exc:
        raise ConfigError(f"cannot read the {what}: {exc.strerror}", path=path) from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # The library says what is wrong (not PEM, wrong password) and never echoes the key.
        raise ConfigError(f"cannot load the {what}: {exc}", path=path) from exc


def _unsupported(key: object, what: str, source: object) -> ConfigError:
    return ConfigError(
        f"unsupported {what} type {type(key).__name__}: use Ed25519, Ed448, EC or RSA",
        path=_path_of(source),
    )


def _path_of(source: object) -> str | None:
    """The file a key came from, for error messages."""
    return str(source) if isinstance(source, (str, os.PathLike)) else None


def _sign_with(key: SigningKey, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: PLC0415

    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, _pss(), hashes.SHA256())
    return key.sign(data)


def _verifies(key: VerifyingKey, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: PLC0415

    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, _pss(), hashes.SHA256())
        else:
            key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _pss() -> padding.PSS:
    """RSA-PSS with SHA-256 and a digest-length salt, the same on both sides."""
    from cryptography.hazmat.primitives import hashes  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import padding  # noqa: PLC0415

    # The digest length spelled as a number: PSS.DIGEST_LENGTH needs cryptography >= 37.
    salt = hashes.SHA256.digest_size
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
