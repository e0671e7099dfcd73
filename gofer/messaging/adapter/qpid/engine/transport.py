"""The byte pipe under an AMQP 0-10 connection: a non-blocking TCP socket, TLS done in memory.

TLS runs through :class:`ssl.SSLObject` over two :class:`ssl.MemoryBIO`
buffers rather than an ``SSLSocket``: the socket stays a plain non-blocking
socket that one thread (the connection's I/O thread) reads and writes, and
encryption is a function call on that thread. Plain and TLS connections
therefore share every code path, and no two threads ever touch the TLS
state at once.

Before the I/O thread starts, the negotiation uses the blocking helpers
(:meth:`Transport.send_all`, :meth:`Transport.receive`), each bounded by a
deadline on the monotonic clock.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import time

from gofer.errors import ConnectError, ConnectionLostError, TLSError

_CHUNK = 256 * 1024


class Transport:
    """A connected socket, optionally with TLS; used by one thread at a time.

    Create it with :meth:`connect`.
    """

    def __init__(self, sock: socket.socket, tls: ssl.SSLObject | None = None) -> None:
        sock.setblocking(False)
        self.sock = sock
        self._tls = tls
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._pending = bytearray()  # octets ready for the socket (ciphertext under TLS)
        self._eof = False

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        deadline: float,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> Transport:
        """Connect, and do the TLS handshake when ``tls`` is given, before ``deadline``.

        Args:
            host: the broker's host name or address.
            port: its port.
            deadline: ``time.monotonic()`` value by which all of it must be done.
            tls: the TLS context; None for plain TCP.
            server_hostname: the name to check the certificate against (and
                to send as SNI); None when host names are not checked.

        Raises:
            ConnectError: the TCP connection failed or timed out.
            TLSError: the handshake or the certificate check failed.
        """
        try:
            sock = socket.create_connection((host, port), timeout=_remaining(deadline))
        except OSError as exc:
            raise ConnectError(f"cannot connect to {host}:{port}: {_describe(exc)}") from exc
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is None:
            return cls(sock)
        transport = cls(sock)
        try:
            session = tls.wrap_bio(
                transport._incoming, transport._outgoing, server_hostname=server_hostname
            )
            transport._handshake(session, deadline)
            transport._tls = session
        except BaseException:
            transport.close()
            raise
        return transport

    def _handshake(self, tls: ssl.SSLObject, deadline: float) -> None:
        while True:
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                raise TLSError(f"TLS handshake failed: {exc}") from exc
            else:
                self._move_ciphertext()
                self._flush_until(deadline)
                return
            self._move_ciphertext()
            self._flush_until(deadline)
            data = self._receive_raw(deadline, "the TLS handshake")
            if not data:
                raise TLSError("the broker closed the connection during the TLS handshake")
            self._incoming.write(data)

    # -- used by the I/O thread --------------------------------------------------------

    def fileno(self) -> int:
        """The socket's descriptor, for selectors."""
        return self.sock.fileno()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue plaintext for sending; :meth:`flush` sends it.

        Raises:
            TLSError: TLS failed.
        """
        if self._tls is None:
            self._pending += data
            return
        try:
            self._tls.write(data)
        except ssl.SSLError as exc:
            raise TLSError(f"TLS failed: {exc}") from exc
        self._move_ciphertext()

    @property
    def backlog(self) -> int:
        """Octets queued for the socket."""
        return len(self._pending)

    @property
    def wants_write(self) -> bool:
        """True while queued octets wait for the socket."""
        return bool(self._pending)

    def flush(self) -> bool:
        """Send what the socket takes now; True when nothing is left queued.

        Raises:
            ConnectionLostError: the socket failed.
        """
        pending = self._pending
        while pending:
            try:
                sent = self.sock.send(pending[:_CHUNK] if len(pending) > _CHUNK else pending)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:
                raise ConnectionLostError(f"connection lost: {_describe(exc)}") from exc
            del pending[:sent]
        return True

    def read(self) -> bytes | None:
        """Plaintext that has arrived: None when nothing is there yet, ``b""`` at the end.

        Raises:
            ConnectionLostError: the socket failed.
            TLSError: TLS failed (the broker refused our certificate, say).
        """
        try:
            data = self.sock.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            raise ConnectionLostError(f"connection lost: {_describe(exc)}") from exc
        if self._tls is None:
            return data
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()
        return self._decrypt(self._tls, eof=not data)

    def _decrypt(self, tls: ssl.SSLObject, eof: bool) -> bytes | None:
        plain = bytearray()
        while True:
            try:
                chunk = tls.read(_CHUNK)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                eof = True
                break
            except ssl.SSLError as exc:
                raise TLSError(f"TLS failed: {exc}") from exc
            if not chunk:
                eof = True
                break
            plain += chunk
        self._move_ciphertext()  # TLS may answer by itself (key updates)
        if plain:
            return bytes(plain)
        return b"" if eof else None

    def _move_ciphertext(self) -> None:
        if self._outgoing.pending:
            self._pending += self._outgoing.read()

    # -- blocking helpers for the negotiation ----------------------------------------

    def send_all(self, data: bytes, deadline: float) -> None:
        """Send ``data`` completely before ``deadline``.

        Raises:
            ConnectError: the deadline passed.
            ConnectionLostError: the socket failed.
        """
        self.write(data)
        self._flush_until(deadline)

    def receive(self, deadline: float, what: str) -> bytes:
        """The next plaintext (``b""`` at the end), waiting until ``deadline``.

        Raises:
            ConnectError: nothing came before the deadline.
        """
        while True:
            data = self.read()
            if data is not None:
                return data
            self._wait(selectors.EVENT_READ, deadline, what)

    def _receive_raw(self, deadline: float, what: str) -> bytes:
        while True:
            try:
                return self.sock.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                self._wait(selectors.EVENT_READ, deadline, what)
            except OSError as exc:
                raise ConnectError(f"connection failed during {what}: {_describe(exc)}") from exc

    def _flush_until(self, deadline: float) -> None:
        while not self.flush():
            self._wait(selectors.EVENT_WRITE, deadline, "sending")

    def _wait(self, event: int, deadline: float, what: str) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, event)
            if not selector.select(_remaining(deadline)):
                raise ConnectError(f"timed out waiting for {what}")

    def close(self) -> None:
        """Close the socket (without a TLS goodbye: the AMQP close came first)."""
        with contextlib.suppress(OSError):
            self.sock.close()


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ConnectError("timed out connecting")
    return left


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def tls_context(
    cacert: str | None = None,
    clientcert: str | None = None,
    clientkey: str | None = None,
    host_validation: bool = True,
) -> ssl.SSLContext:
    """A client TLS context that verifies the broker's certificate.

    Args:
        cacert: PEM file of the CA(s); None trusts the system's CAs.
        clientcert: PEM file of our certificate (may hold the key too).
        clientkey: PEM file of our key.
        host_validation: check the certificate's host name.

    Raises:
        TLSError: a file cannot be read or is not a certificate or key.
    """
    try:
        context = ssl.create_default_context(cafile=cacert)
        context.check_hostname = host_validation
        if clientcert:
            context.load_cert_chain(clientcert, clientkey)
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(f"cannot set up TLS: {_describe(exc)}") from exc
    return context
