"""The management endpoint over real sockets: wire format, limits, permissions, client errors."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from gofer.agent.management import (
    MAX_LINE,
    ManagementClient,
    ManagementError,
    ManagementServer,
)
from tests.nobody import python_for_nobody, readable_tree

SHOW = {"plugins": [{"name": "package", "classes": [{"name": "Package"}]}], "actions": []}

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a client as nobody")


def handler(command: str, args: dict[str, Any]) -> Any:
    if command == "show":
        return SHOW
    if command == "echo":
        return args
    if command == "fail":
        raise ManagementError("no plugin named 'nope'")
    if command == "crash":
        raise RuntimeError("boom")
    if command == "opaque":
        return object()
    raise ManagementError(f"unknown command {command!r}")


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "run" / "management.sock"


@pytest.fixture
def server(socket_path: Path) -> Iterator[ManagementServer]:
    with ManagementServer(
        handler, socket_path=socket_path, allowed_uids=frozenset({os.geteuid()}), idle_timeout=5
    ) as server:
        yield server


class Raw:
    """A hand-driven connection, for what the client never sends."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(str(path))
        self.reader: BinaryIO = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self) -> dict[str, Any]:
        line = self.reader.readline()
        assert line.endswith(b"\n")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


@pytest.fixture
def raw(server: ManagementServer, socket_path: Path) -> Iterator[Raw]:
    connection = Raw(socket_path)
    yield connection
    connection.close()


def test_show_round_trip(server: ManagementServer, socket_path: Path) -> None:
    assert ManagementClient(socket_path).call("show") == SHOW


def test_arguments_reach_the_handler(server: ManagementServer, socket_path: Path) -> None:
    assert ManagementClient(socket_path).call("echo", name="package") == {"name": "package"}


def test_handler_error_reaches_the_client(server: ManagementServer, socket_path: Path) -> None:
    with pytest.raises(ManagementError, match="no plugin named 'nope'"):
        ManagementClient(socket_path).call("fail")


def test_unexpected_exception_is_reported_and_logged(
    server: ManagementServer, socket_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ManagementError, match="RuntimeError: boom"):
        ManagementClient(socket_path).call("crash")
    assert any(r.exc_info and "crash" in r.getMessage() for r in caplog.records)


def test_result_that_is_not_json(server: ManagementServer, socket_path: Path) -> None:
    with pytest.raises(ManagementError, match="cannot be sent as JSON"):
        ManagementClient(socket_path).call("opaque")


def test_wire_format(raw: Raw) -> None:
    raw.send(b'{"command": "echo", "args": {"sn": "abc"}}\n')
    assert raw.answer() == {"ok": True, "result": {"sn": "abc"}}
    raw.send(b'{"command": "fail"}\n')
    assert raw.answer() == {"ok": False, "error": "no plugin named 'nope'"}


def test_several_requests_per_connection_answered_in_order(raw: Raw) -> None:
    raw.send(b"".join(f'{{"command":"echo","args":{{"n":{n}}}}}\n'.encode() for n in range(5)))
    assert [raw.answer()["result"]["n"] for _ in range(5)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"not json\n", "not JSON"),
        (b"\xff\xfe\xfd\n", "not JSON"),
        (b"[" * 100_000 + b"\n", "not JSON"),
        (b'["show"]\n', "expected a JSON object"),
        (b'{"args": {}}\n', "'command' must be"),
        (b'{"command": 7}\n', "'command' must be"),
        (b'{"command": "show", "args": [1]}\n', "'args' must be"),
    ],
)
def test_malformed_line_is_answered_and_the_connection_stays(
    raw: Raw, line: bytes, error: str
) -> None:
    raw.send(line)
    answer = raw.answer()
    assert answer["ok"] is False
    assert error in answer["error"]
    raw.send(b'{"command": "show"}\n')
    assert raw.answer() == {"ok": True, "result": SHOW}


def test_oversized_line_is_refused_and_closed(
    server: ManagementServer, raw: Raw, socket_path: Path
) -> None:
    raw.send(b'{"command": "echo", "args": {"x": "' + b"x" * MAX_LINE + b'"}}\n')
    answer = raw.answer()
    assert answer["ok"] is False
    assert "longer than" in answer["error"]
    assert raw.reader.readline() == b""
    assert ManagementClient(socket_path).call("show") == SHOW


def test_line_of_almost_the_limit_is_served(raw: Raw) -> None:
    text = "x" * (MAX_LINE - 100)
    raw.send(json.dumps({"command": "echo", "args": {"x": text}}).encode() + b"\n")
    assert raw.answer()["result"] == {"x": text}


def test_idle_connection_is_closed(socket_path: Path) -> None:
    with ManagementServer(
        handler, socket_path=socket_path, allowed_uids=frozenset({os.geteuid()}), idle_timeout=0.2
    ):
        connection = Raw(socket_path)
        try:
            assert connection.reader.readline() == b""
        finally:
            connection.close()


def test_connections_are_bounded(socket_path: Path) -> None:
    with ManagementServer(
        handler,
        socket_path=socket_path,
        allowed_uids=frozenset({os.geteuid()}),
        max_connections=2,
    ):
        held = [Raw(socket_path), Raw(socket_path)]
        for connection in held:  # answered, so each holds a slot
            connection.send(b'{"command": "show"}\n')
            assert connection.answer()["ok"] is True
        with pytest.raises(ManagementError, match="too many management connections"):
            ManagementClient(socket_path).call("show")
        held.pop().close()
        assert _eventually(lambda: ManagementClient(socket_path).call("show")) == SHOW
        held.pop().close()


def _eventually(call: Any, seconds: float = 5) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except ManagementError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_stop_returns_promptly_and_closes_connections(socket_path: Path) -> None:
    server = ManagementServer(handler, socket_path=socket_path, allowed_uids=frozenset({0}))
    server.start()
    connection = Raw(socket_path)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1
    assert connection.reader.readline() == b""
    connection.close()
    assert not socket_path.exists()
    assert not [t for t in threading.enumerate() if t.name == "gofer-management-unix"]


def test_socket_is_0600_in_a_directory_no_one_else_can_write(
    server: ManagementServer, socket_path: Path
) -> None:
    info = socket_path.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(socket_path.parent.stat().st_mode) & 0o022 == 0
    assert [p.name for p in socket_path.parent.iterdir()] == [socket_path.name]


def test_directory_others_can_write_is_refused(socket_path: Path) -> None:
    socket_path.parent.mkdir()
    socket_path.parent.chmod(0o777)
    with pytest.raises(ManagementError, match="other users could replace its files"):
        ManagementServer(handler, socket_path=socket_path).start()
    assert not socket_path.exists()


def test_stale_socket_is_replaced(socket_path: Path) -> None:
    socket_path.parent.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(socket_path))
    with ManagementServer(handler, socket_path=socket_path, allowed_uids=frozenset({os.geteuid()})):
        assert ManagementClient(socket_path).call("show") == SHOW


def test_live_socket_is_not_taken_over(server: ManagementServer, socket_path: Path) -> None:
    with pytest.raises(ManagementError, match="already listening"):
        ManagementServer(handler, socket_path=socket_path).start()
    assert ManagementClient(socket_path).call("show") == SHOW


def test_file_that_is_not_a_socket_is_left_alone(socket_path: Path) -> None:
    socket_path.parent.mkdir()
    socket_path.write_text("precious")
    with pytest.raises(ManagementError, match="not a socket"):
        ManagementServer(handler, socket_path=socket_path).start()
    assert socket_path.read_text() == "precious"


def test_refused_uid_reads_the_reason(socket_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    called: list[str] = []
    with (
        ManagementServer(
            lambda command, args: called.append(command),
            socket_path=socket_path,
            allowed_uids=frozenset({12345}),
        ),
        pytest.raises(ManagementError, match=f"uid {os.geteuid()} may not manage goferd"),
    ):
        ManagementClient(socket_path).call("unload", name="package")
    assert called == []
    assert os.geteuid() in refused_uids(caplog)


def refused_uids(caplog: pytest.LogCaptureFixture) -> list[object]:
    """The uids of the logged refusals."""
    return [
        r.args[0]
        for r in caplog.records
        if r.levelno == logging.WARNING and "refused: uid" in r.msg and isinstance(r.args, tuple)
    ]


CLIENT = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from gofer.agent.management import ManagementClient, ManagementError
try:
    ManagementClient(Path(sys.argv[2]), timeout=5).call("show")
except ManagementError as exc:
    print(exc)
    sys.exit(3)
print("served")
"""


@pytest.fixture(scope="module")
def nobody_tree() -> Iterator[Path]:
    """The gofer package, copied where nobody can read it."""
    with readable_tree() as tree:
        yield tree


@pytest.fixture(scope="module")
def nobody_python(nobody_tree: Path) -> str:
    """A Python that the user nobody can run and that imports gofer from ``nobody_tree``."""
    found = python_for_nobody(nobody_tree, "gofer.agent.management")
    if found is None:
        pytest.fail("no Python that nobody can run imports gofer from a copy nobody can read")
    return found


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory nobody can reach (pytest's tmp_path is 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="gofer-mgt-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory)


def run_as_nobody(python: str, tree: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-c", CLIENT, str(tree), str(path)],
        check=False,
        user="nobody",
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )


@needs_root
def test_unprivileged_user_cannot_open_the_socket(
    nobody_python: str, nobody_tree: Path, public_dir: Path
) -> None:
    path = public_dir / "management.sock"
    with ManagementServer(handler, socket_path=path):
        done = run_as_nobody(nobody_python, nobody_tree, path)
    assert done.returncode == 3, done.stderr
    assert "permission denied" in done.stdout
    assert "run as root" in done.stdout


@needs_root
def test_unprivileged_user_is_refused_by_credentials(
    nobody_python: str, nobody_tree: Path, public_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = public_dir / "management.sock"
    with ManagementServer(handler, socket_path=path):
        path.chmod(0o666)  # a mistake elsewhere must not open the door
        done = run_as_nobody(nobody_python, nobody_tree, path)
    assert done.returncode == 3, done.stderr
    assert "uid 65534 may not manage goferd" in done.stdout
    assert 65534 in refused_uids(caplog)


def test_no_tcp_listener_unless_asked(server: ManagementServer) -> None:
    assert server.tcp_address is None
    assert not [t for t in threading.enumerate() if t.name == "gofer-management-tcp"]


def test_tcp_listener_when_asked(caplog: pytest.LogCaptureFixture) -> None:
    with ManagementServer(handler, socket_path=None, tcp=("127.0.0.1", 0)) as server:
        assert server.tcp_address is not None
        host, port = server.tcp_address
        assert host == "127.0.0.1"
        assert ManagementClient(tcp=(host, port)).call("show") == SHOW
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("any local user" in w for w in warnings)


def test_server_needs_somewhere_to_listen() -> None:
    with pytest.raises(ValueError, match="socket path or a TCP address"):
        ManagementServer(handler, socket_path=None)


def test_client_without_socket_says_goferd_is_not_running(socket_path: Path) -> None:
    with pytest.raises(ManagementError, match="goferd is not running: no management socket"):
        ManagementClient(socket_path).call("show")


def test_client_on_a_dead_socket_says_goferd_is_not_running(tmp_path: Path) -> None:
    path = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))
    with pytest.raises(ManagementError, match="goferd is not running: nothing listens"):
        ManagementClient(path).call("show")


def test_client_on_a_closed_port_says_goferd_is_not_running() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(ManagementError, match="goferd is not running"):
        ManagementClient(tcp=("127.0.0.1", port)).call("show")


def test_client_times_out_on_a_silent_server(tmp_path: Path) -> None:
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(str(path))
        silent.listen()
        with pytest.raises(ManagementError, match=r"did not answer 'show' within 0\.2s"):
            ManagementClient(path, timeout=0.2).call("show")


def test_client_takes_one_endpoint() -> None:
    with pytest.raises(ValueError, match="not both"):
        ManagementClient(Path("/x"), tcp=("localhost", 5650))
