"""goferd's management endpoint (used by ``gofer mgt``): a local JSON-lines socket and its client.

The daemon hands :class:`ManagementServer` one handler, ``handler(command,
args) -> result``; the server only carries commands to it and answers back.
The commands ``gofer mgt`` sends are ``show`` (no arguments), ``load``
(``path``), ``reload`` and ``unload`` (``name`` or ``path``) and ``cancel``
(``sn`` or ``criteria``).

Wire format, one JSON object per line (UTF-8, ``\\n``-terminated), as many
requests per connection as the caller likes, each answered in order::

    -> {"command": "unload", "args": {"name": "package"}}
    <- {"ok": true, "result": null}
    -> {"command": "nope", "args": {}}
    <- {"ok": false, "error": "unknown command 'nope'"}

A line that is not such an object is answered with an error and the
connection stays usable; a line longer than :data:`MAX_LINE` bytes is
answered with an error and the connection is closed.

Security:

- The endpoint is a unix socket, mode 0600, in a directory no other user
  can write to (so nobody can swap the socket for their own). Each
  connection's peer credentials (``SO_PEERCRED``) are checked and only the
  uids in ``allowed_uids`` (root, plus whatever the daemon adds, normally
  its own uid) are served; anyone else gets an error line, the connection
  is closed and the refusal is logged with the uid.
- A TCP listener exists only when configured (``[management] enabled=1``
  with ``host`` and ``port``, as in gofer 2.x). TCP carries no peer
  credentials: **any local user, and any host that can reach the address,
  can use it**, exactly as with the old gofer. A warning is logged when it
  starts.
- Bounded: at most :data:`MAX_CONNECTIONS` connections are served at once
  (more are answered with an error and closed), a request line holds at
  most :data:`MAX_LINE` bytes, and an idle connection is closed after
  ``idle_timeout`` seconds.

Example::

    server = ManagementServer(handle, socket_path=Path("/run/gofer/management.sock"),
                              allowed_uids=frozenset({0, os.geteuid()}))
    server.start()
    ...
    ManagementClient(Path("/run/gofer/management.sock")).call("unload", name="package")
    ...
    server.stop()
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import stat
import struct
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from gofer.agent.paths import make_directory, unsafe_directory
from gofer.errors import GoferError

log = logging.getLogger(__name__)

#: A socket's timeout (socket.timeout is TimeoutError only from Python 3.10 on).
_TIMEOUTS = (socket.timeout, TimeoutError)

#: Runs one command: ``handler(command, args) -> JSON-able result``.
Handler = Callable[[str, dict[str, Any]], Any]

#: Where goferd listens and ``gofer mgt`` connects unless told otherwise.
DEFAULT_SOCKET_PATH = Path("/run/gofer/goferd.sock")
#: The TCP defaults of gofer 2.x's ``[management]`` section.
DEFAULT_HOST = "localhost"
DEFAULT_PORT = 5650
#: The longest request line, newline included.
MAX_LINE = 1024 * 1024
#: The longest answer line the client reads.
MAX_RESPONSE = 64 * 1024 * 1024
#: Connections served at once.
MAX_CONNECTIONS = 16
#: Seconds a connection may stay silent before it is closed.
IDLE_TIMEOUT = 60.0

_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_JOIN_TIMEOUT = 2.0


class ManagementError(GoferError):
    """A management command failed, or goferd's management endpoint could not be used."""


class ManagementServer:
    """Serves management commands on a unix socket and, when asked, on TCP.

    Each listener has an accept thread and each connection a thread of its
    own; all are daemon threads.

    Args:
        handler: runs a command; called from several connection threads at
            once. Raise :class:`ManagementError` for a failure the caller
            should read; any other exception is logged and reported as
            ``Class: text``.
        socket_path: the unix socket to create, or None for none.
        tcp: ``(host, port)`` to listen on as well, or None (the default)
            for no TCP listener. The host is bound exactly as given.
        tcp_handler: runs the commands that come over TCP, where nobody's
            identity is known (default: ``handler``); it may refuse some.
        allowed_uids: the users served on the unix socket.
        idle_timeout: seconds a connection may stay silent.
        max_connections: connections served at once.

    Raises:
        ValueError: neither a socket path nor a TCP address was given.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        socket_path: Path | None,
        tcp: tuple[str, int] | None = None,
        tcp_handler: Handler | None = None,
        allowed_uids: frozenset[int] = frozenset({0}),
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if socket_path is None and tcp is None:
            raise ValueError("the management server needs a socket path or a TCP address")
        self._handler = handler
        self._tcp_handler = tcp_handler or handler
        self._socket_path = socket_path
        self._tcp = tcp
        self._allowed_uids = allowed_uids
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listeners: list[tuple[socket.socket, threading.Thread]] = []
        self._connections: set[socket.socket] = set()
        self._socket_id: tuple[int, int] | None = None
        self._tcp_address: tuple[str, int] | None = None

    @property
    def tcp_address(self) -> tuple[str, int] | None:
        """The address the TCP listener is bound to (port 0 resolved), or None."""
        return self._tcp_address

    def start(self) -> None:
        """Create the listeners and start serving.

        Raises:
            ManagementError: a listener cannot be created: the socket's
                directory is unsafe, another goferd is listening, the
                address is in use.
        """
        self._stopping.clear()
        try:
            if self._socket_path is not None:
                self._listen(self._bind_unix(self._socket_path), "unix", check_peer=True)
                log.info("management listening on %s", self._socket_path)
            if self._tcp is not None:
                self._listen(self._bind_tcp(*self._tcp), "tcp", check_peer=False)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = _JOIN_TIMEOUT) -> bool:
        """Close the listeners and the open connections, and remove the socket file.

        Returns promptly: connection threads finish on their own. True once
        the listeners' threads have ended (within ``timeout`` each).
        """
        self._stopping.set()
        with self._lock:
            listeners, self._listeners = self._listeners, []
        ended = True
        for listener, thread in listeners:
            _shutdown(listener)  # wakes accept() on Linux; closing alone does not
            thread.join(timeout)
            ended = ended and not thread.is_alive()
            listener.close()
        with self._lock:  # no accept thread adds one any more
            connections = list(self._connections)
        for connection in connections:
            _shutdown(connection)  # the connection's thread sees EOF and closes it
        self._remove_socket_file()
        self._tcp_address = None
        return ended

    def __enter__(self) -> ManagementServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind_unix(self, path: Path) -> socket.socket:
        _prepare_directory(path.parent)
        _remove_stale_socket(path)
        listener = _bind_private(path, self._max_connections)
        info = path.stat()
        self._socket_id = (info.st_dev, info.st_ino)
        return listener

    def _bind_tcp(self, host: str, port: int) -> socket.socket:
        try:
            family, _, _, _, address = socket.getaddrinfo(
                host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            listener = socket.create_server(address, family=family, backlog=self._max_connections)
        except OSError as exc:
            raise ManagementError(f"cannot listen on {host}:{port}: {exc}") from exc
        bound_host, bound_port = listener.getsockname()[:2]
        self._tcp_address = (bound_host, bound_port)
        log.warning(
            "management listening on TCP %s:%d: TCP carries no peer credentials, so any "
            "local user%s can show, load and unload plugins and cancel requests, as with "
            "gofer 2.x; the unix socket %s checks who connects",
            bound_host,
            bound_port,
            "" if _is_loopback(bound_host) else " and any host that can reach it",
            self._socket_path or "(not configured)",
        )
        return listener

    def _listen(self, listener: socket.socket, kind: str, *, check_peer: bool) -> None:
        thread = threading.Thread(
            target=self._accept_loop,
            args=(listener, check_peer),
            name=f"gofer-management-{kind}",
            daemon=True,
        )
        with self._lock:
            self._listeners.append((listener, thread))
        thread.start()

    def _accept_loop(self, listener: socket.socket, check_peer: bool) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = listener.accept()
            except OSError as exc:
                if self._stopping.is_set() or listener.fileno() < 0:
                    return
                log.warning("management accept failed: %s", exc)
                self._stopping.wait(0.5)  # e.g. out of file descriptors: do not spin
                continue
            self._admit(connection, check_peer)

    def _admit(self, connection: socket.socket, check_peer: bool) -> None:
        """Check who connected and hand the connection to a thread of its own."""
        if check_peer and not self._peer_allowed(connection):
            return
        if not self._slots.acquire(blocking=False):
            log.warning(
                "management connection refused: %d connections already open",
                self._max_connections,
            )
            _refuse(connection, "too many management connections; try again later")
            return
        with self._lock:  # registered before its thread runs, so stop() always sees it
            self._connections.add(connection)
        thread = threading.Thread(
            target=self._serve,
            args=(connection, self._handler if check_peer else self._tcp_handler),
            name="gofer-management-connection",
            daemon=True,
        )
        try:
            thread.start()
        except RuntimeError as exc:  # the process is out of threads
            log.error("management connection refused: cannot start a thread: %s", exc)
            with self._lock:
                self._connections.discard(connection)
            self._slots.release()
            _refuse(connection, "goferd cannot serve the connection now; try again later")

    def _peer_allowed(self, connection: socket.socket) -> bool:
        try:
            pid, uid, _ = _PEERCRED.unpack(
                connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
            )
        except OSError as exc:
            log.warning("management connection refused: no peer credentials: %s", exc)
            _refuse(connection, "permission denied: peer credentials unavailable")
            return False
        if uid in self._allowed_uids:
            log.debug("management connection from uid %d (pid %d)", uid, pid)
            return True
        log.warning("management connection refused: uid %d (pid %d) is not allowed", uid, pid)
        _refuse(connection, f"permission denied: uid {uid} may not manage goferd (run as root)")
        return False

    def _serve(self, connection: socket.socket, handler: Handler) -> None:
        try:
            connection.settimeout(self._idle_timeout)
            with connection, connection.makefile("rb") as reader:
                while self._serve_one(connection, reader, handler):
                    pass
        except _TIMEOUTS:
            log.debug("management connection idle for %gs; closed", self._idle_timeout)
        except OSError as exc:
            log.debug("management connection ended: %s", exc)
        finally:
            with self._lock:
                self._connections.discard(connection)
            self._slots.release()

    def _serve_one(self, connection: socket.socket, reader: BinaryIO, handler: Handler) -> bool:
        """Answer one request line; False when the connection is done."""
        line = reader.readline(MAX_LINE + 1)
        if not line or self._stopping.is_set():
            return False
        if len(line) > MAX_LINE:
            log.warning("management request longer than %d bytes; connection closed", MAX_LINE)
            connection.sendall(_encode(_failure(f"request line longer than {MAX_LINE} bytes")))
            return False
        connection.sendall(self._answer(line, handler))
        return True

    def _answer(self, line: bytes, handler: Handler) -> bytes:
        """Run one request line through the handler; the encoded answer."""
        try:
            command, args = _parse_request(line)
        except ManagementError as exc:
            return _encode(_failure(str(exc)))
        response = self._run(command, args, handler)
        try:
            return _encode(response)
        except (TypeError, ValueError) as exc:
            log.error("management command %s returned a result that is not JSON: %s", command, exc)
            return _encode(_failure(f"the result of {command!r} cannot be sent as JSON"))

    def _run(self, command: str, args: dict[str, Any], handler: Handler) -> dict[str, Any]:
        log.debug("management command %s %s", command, args)
        try:
            return {"ok": True, "result": handler(command, args)}
        except ManagementError as exc:
            log.info("management command %s failed: %s", command, exc)
            return _failure(str(exc))
        except Exception as exc:
            log.exception("management command %s failed", command)
            return _failure(f"{type(exc).__name__}: {exc}")

    def _remove_socket_file(self) -> None:
        """Remove our socket file, unless someone else's socket replaced it since."""
        if self._socket_path is None or self._socket_id is None:
            return
        with contextlib.suppress(OSError):
            info = self._socket_path.stat()
            if (info.st_dev, info.st_ino) == self._socket_id:
                self._socket_path.unlink()
        self._socket_id = None


class ManagementClient:
    """Sends management commands to goferd, one connection per call.

    Args:
        socket_path: goferd's unix socket; :data:`DEFAULT_SOCKET_PATH` when
            neither it nor ``tcp`` is given.
        tcp: ``(host, port)`` of goferd's TCP listener instead.
        timeout: seconds to wait for the connection and for each answer.

    Raises:
        ValueError: both a socket path and a TCP address were given.
    """

    def __init__(
        self,
        socket_path: Path | None = None,
        tcp: tuple[str, int] | None = None,
        timeout: float = 10,
    ) -> None:
        if socket_path is not None and tcp is not None:
            raise ValueError("give a socket path or a TCP address, not both")
        if socket_path is None and tcp is None:
            socket_path = DEFAULT_SOCKET_PATH
        self._socket_path = socket_path
        self._tcp = tcp
        self._timeout = timeout

    @property
    def where(self) -> str:
        """The endpoint, for messages."""
        if self._tcp is not None:
            return f"{self._tcp[0]}:{self._tcp[1]}"
        return str(self._socket_path)

    def call(self, command: str, **args: Any) -> Any:
        """Run one command in goferd.

        Args:
            command: ``show``, ``load``, ``reload``, ``unload``, ``cancel``, ...
            **args: the command's arguments (JSON-able).

        Returns:
            The command's result.

        Raises:
            ManagementError: goferd is not running, refused us (the text
                says so: "run as root"), did not answer in time, or the
                command failed (the text is goferd's).
        """
        request = _encode({"command": command, "args": args})
        with self._connect() as connection, connection.makefile("rb") as reader:
            # A refusing server answers and closes at once; its answer is
            # still readable after our send fails (test_refused_uid_reads_the_reason).
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.sendall(request)
            try:
                line = reader.readline(MAX_RESPONSE + 1)
            except _TIMEOUTS as exc:
                raise ManagementError(
                    f"goferd did not answer {command!r} within {self._timeout:g}s"
                ) from exc
            except OSError as exc:
                raise ManagementError(f"connection to goferd at {self.where} broke: {exc}") from exc
        return _result(line)

    def _connect(self) -> socket.socket:
        try:
            if self._tcp is not None:
                return socket.create_connection(self._tcp, timeout=self._timeout)
            return _connect_unix(str(self._socket_path), self._timeout)
        except FileNotFoundError as exc:
            raise ManagementError(
                f"goferd is not running: no management socket at {self.where}"
            ) from exc
        except ConnectionRefusedError as exc:
            raise ManagementError(
                f"goferd is not running: nothing listens on {self.where}"
            ) from exc
        except PermissionError as exc:
            raise ManagementError(f"permission denied on {self.where}: run as root") from exc
        except _TIMEOUTS as exc:
            raise ManagementError(
                f"goferd did not accept a connection on {self.where} within {self._timeout:g}s"
            ) from exc
        except OSError as exc:
            raise ManagementError(f"cannot connect to goferd at {self.where}: {exc}") from exc


def _connect_unix(path: str, timeout: float) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.settimeout(timeout)
        connection.connect(path)
    except BaseException:
        connection.close()
        raise
    return connection


def _prepare_directory(directory: Path) -> None:
    """Create the socket's directory (0755), or check that no other user can write to it.

    A directory others can write to would let them replace our socket with
    theirs; an existing one is never loosened or tightened behind the
    admin's back, so an unsafe one is refused.

    Raises:
        ManagementError: the directory is unsafe or cannot be created.
    """
    try:
        make_directory(directory, 0o755)
        unsafe = unsafe_directory(directory, {0, os.geteuid()})
    except OSError as exc:
        raise ManagementError(f"cannot create the management directory {directory}: {exc}") from exc
    if unsafe is not None:
        raise ManagementError(f"refusing the management directory: {unsafe}")


def _remove_stale_socket(path: Path) -> None:
    """Remove a socket file left by a goferd that is gone.

    Raises:
        ManagementError: the path is not a socket, or a live goferd listens on it.
    """
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ManagementError(f"{path} exists and is not a socket; refusing to replace it")
    try:
        _connect_unix(str(path), 1.0).close()
    except OSError:
        log.info("removing the stale management socket %s", path)
        path.unlink(missing_ok=True)
        return
    raise ManagementError(f"another goferd is already listening on {path}")


def _bind_private(path: Path, backlog: int) -> socket.socket:
    """Bind a listening socket at ``path`` that is mode 0600 from the moment it is reachable.

    The socket is bound in a fresh 0700 directory next to ``path``, made
    0600, then renamed into place. Unlike setting a restrictive umask around
    bind(), this leaves the process-wide umask alone, so other threads
    creating files at the same moment are unaffected.

    Raises:
        ManagementError: it cannot be created.
    """
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        private = Path(tempfile.mkdtemp(prefix=".g", dir=path.parent))
    except OSError as exc:
        listener.close()
        raise ManagementError(f"cannot create the management socket {path}: {exc}") from exc
    staged = private / "s"
    try:
        listener.bind(str(staged))
        staged.chmod(0o600)
        listener.listen(backlog)
        staged.replace(path)
    except OSError as exc:
        listener.close()
        raise ManagementError(f"cannot create the management socket {path}: {exc}") from exc
    finally:
        staged.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            private.rmdir()
    return listener


def _parse_request(line: bytes) -> tuple[str, dict[str, Any]]:
    """The command and arguments of a request line.

    Raises:
        ManagementError: it is not ``{"command": "...", "args": {...}}``.
    """
    try:
        request = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ManagementError(f"malformed request: not JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise ManagementError("malformed request: expected a JSON object")
    command = request.get("command")
    if not isinstance(command, str) or not command:
        raise ManagementError("malformed request: 'command' must be a non-empty string")
    args = request.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ManagementError("malformed request: 'args' must be a JSON object")
    return command, args


def _result(line: bytes) -> Any:
    """The result of an answer line.

    Raises:
        ManagementError: the answer is an error, or is not an answer.
    """
    if not line:
        raise ManagementError("goferd closed the connection without answering")
    if len(line) > MAX_RESPONSE:
        raise ManagementError(f"goferd's answer is longer than {MAX_RESPONSE} bytes")
    try:
        response = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ManagementError(f"goferd sent a malformed answer: {exc}") from exc
    if not isinstance(response, dict) or not isinstance(response.get("ok"), bool):
        raise ManagementError("goferd sent a malformed answer: no 'ok' field")
    if response["ok"]:
        return response.get("result")
    raise ManagementError(str(response.get("error") or "goferd reported an unspecified error"))


def _failure(text: str) -> dict[str, Any]:
    return {"ok": False, "error": text}


def _encode(message: dict[str, Any]) -> bytes:
    """One JSON line; raises TypeError or ValueError for what JSON cannot carry."""
    text = json.dumps(message, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def _refuse(connection: socket.socket, text: str) -> None:
    """Tell the peer why, then close; never blocks the accept thread for long."""
    with connection, contextlib.suppress(OSError):
        connection.settimeout(1.0)
        connection.sendall(_encode(_failure(text)))


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
