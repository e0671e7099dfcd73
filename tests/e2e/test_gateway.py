"""gofer-gateway as a real process, in front of a real goferd, on RabbitMQ.

The calls go as a caller outside Python would make them: HTTP requests
(urllib here, curl in the README), with a bearer token.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gofer.messaging.connection import Connection
from gofer.messaging.url import Url
from tests.e2e.conftest import REPO, Goferd
from tests.sse import parse_sse

TOKEN = uuid.uuid4().hex


class Gateway:
    """One gofer-gateway process with its own configuration, state and reply queue."""

    def __init__(self, root: Path, url: str, extra: str = "") -> None:
        self.root = root
        self.url = url
        self.port = _free_port()
        self.reply_queue = f"gofer-e2e-gateway-{uuid.uuid4()}"
        self.config = root / "gateway.conf"
        self.config.write_text(
            f"[main]\nlisten=127.0.0.1:{self.port}\nstate_dir={root / 'state'}\n"
            f"[messaging]\nurl={url}\nreply_queue={self.reply_queue}\n"
            f"[token:e2e]\ntoken={TOKEN}\nagents=*\n{extra}"
        )
        self.log_path = root / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-m", "gofer.cli.gateway", "--config", str(self.config)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"gofer-gateway exited:\n{self.log()}"
            try:
                if request(self, "GET", "/readyz", token=None)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gofer-gateway not ready in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def discard(self) -> None:
        self.stop()
        connection = Connection(self.url)
        try:
            connection.delete_queue(self.reply_queue)
        finally:
            connection.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def request(
    gateway: Gateway,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = TOKEN,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request: (status, headers, body), 4xx and 5xx included."""
    sent = {**(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    if token:
        sent["Authorization"] = f"Bearer {token}"
    url = f"http://127.0.0.1:{gateway.port}{path}"
    prepared = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(prepared, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def call(gateway: Gateway, method: str, path: str, body: Any = None, **kws: Any) -> Any:
    status, _, raw = request(gateway, method, path, body, **kws)
    assert status < 400, raw
    return json.loads(raw)


def sse(raw: bytes) -> list[dict[str, Any]]:
    return parse_sse(raw.decode())


@pytest.fixture(scope="module")
def gateway(url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    started = Gateway(tmp_path_factory.mktemp("gateway"), url)
    started.start()
    yield started
    started.discard()


def test_a_synchronous_call(gateway: Gateway, shared_goferd: Goferd) -> None:
    path = f"/v1/agents/{shared_goferd.queue}/calls?wait=30"
    body = {"class": "Cow", "method": "moo", "kws": {"times": 2}, "cntr": {"args": ["bella"]}}
    status, headers, raw = request(gateway, "POST", path, body)
    assert status == 200, raw
    result = json.loads(raw)
    assert result["state"] == "succeeded"
    assert result["result"] == "moo moo from bella"
    assert headers["Location"] == f"/v1/calls/{result['sn']}"
    failed = call(gateway, "POST", path, {"class": "Cow", "method": "kick"})
    assert failed["state"] == "failed"
    assert failed["error"]["type"] == "ValueError"


def test_an_asynchronous_call_followed_by_its_events(
    gateway: Gateway, shared_goferd: Goferd
) -> None:
    path = f"/v1/agents/{shared_goferd.queue}/calls"
    status, headers, raw = request(
        gateway, "POST", path, {"class": "Cow", "method": "graze", "args": [3]}
    )
    assert status == 202, raw
    location = headers["Location"]
    status, headers, raw = request(gateway, "GET", f"{location}/events")
    assert headers["Content-Type"].startswith("text/event-stream")
    events = sse(raw)
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "accepted"
    assert "started" in kinds
    assert [e["data"]["completed"] for e in events if e["event"] == "progress"][-3:] == [1, 2, 3]
    assert events[-1] == {"id": len(events), "event": "succeeded", "data": {"result": "grazed"}}
    resumed = sse(request(gateway, "GET", f"{location}/events", headers={"Last-Event-ID": "1"})[2])
    assert resumed == events[1:]


def test_cancel_a_running_call(gateway: Gateway, shared_goferd: Goferd) -> None:
    path = f"/v1/agents/{shared_goferd.queue}/calls"
    status, headers, _ = request(
        gateway, "POST", path, {"class": "Cow", "method": "chew", "args": [60]}
    )
    location = headers["Location"]
    deadline = time.monotonic() + 30
    while call(gateway, "GET", location)["state"] != "started":
        assert time.monotonic() < deadline, "the call did not start"
        time.sleep(0.1)
    status, _, raw = request(gateway, "DELETE", location)
    assert status == 202, raw
    ended = call(gateway, "GET", f"{location}?wait=30")
    assert ended["state"] == "succeeded"
    assert ended["result"] == "stopped chewing"
    assert request(gateway, "DELETE", location)[0] == 409


def test_a_fan_out_streams_each_agents_outcome(gateway: Gateway, shared_goferd: Goferd) -> None:
    body = {
        "agents": [shared_goferd.queue, f"gofer-e2e-missing-{uuid.uuid4()}"],
        "class": "Cow",
        "method": "moo",
        "options": {"wait": 30},
    }
    status, headers, raw = request(gateway, "POST", "/v1/calls", body)
    assert status == 200
    assert headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in raw.decode().splitlines()]
    statuses = {line.get("agent"): line["status"] for line in lines}
    assert statuses[shared_goferd.queue] == "succeeded"
    assert statuses[body["agents"][1]] == "no_queue"
    assert lines[-1] == {"status": "end", "total": 2, "succeeded": 1, "other": 1}
    events = sse(
        request(gateway, "POST", "/v1/calls", body, headers={"Accept": "text/event-stream"})[2]
    )
    assert [e["event"] for e in events][-1] == "end"


def test_a_retried_post_with_its_idempotency_key_runs_once(
    gateway: Gateway, shared_goferd: Goferd
) -> None:
    tag = f"retry-{uuid.uuid4()}"
    path = f"/v1/agents/{shared_goferd.queue}/calls"
    body = {"class": "Cow", "method": "milk", "args": [tag, 0]}
    key = {"Idempotency-Key": tag}
    first = call(gateway, "POST", path, body, headers=key)
    second = call(gateway, "POST", f"{path}?wait=30", body, headers=key)
    assert second["sn"] == first["sn"]
    assert second["result"] == "milked"
    milked = (shared_goferd.marks / "milked").read_text().splitlines()
    assert milked.count(tag) == 1


def test_a_result_that_comes_while_the_gateway_is_down_is_kept(
    url: str, tmp_path: Path, shared_goferd: Goferd
) -> None:
    own = Gateway(tmp_path, url)
    own.start()
    try:
        path = f"/v1/agents/{shared_goferd.queue}/calls"
        tag = f"restart-{uuid.uuid4()}"
        status, headers, _ = request(
            own, "POST", path, {"class": "Cow", "method": "milk", "args": [tag, 2]}
        )
        assert status == 202
        own.stop()
        time.sleep(3)  # the agent answers meanwhile; the reply waits in the gateway's queue
        own.start()
        ended = call(own, "GET", f"{headers['Location']}?wait=30")
        assert ended["state"] == "succeeded"
        assert ended["result"] == "milked"
    finally:
        own.discard()


def test_http_basic_credentials_are_the_brokers(
    url: str, tmp_path: Path, shared_goferd: Goferd
) -> None:
    broker = Url.parse(url)
    own = Gateway(tmp_path, url, "[basic]\nenabled=1\nclasses=Cow\n")
    own.start()
    try:
        path = f"/v1/agents/{shared_goferd.queue}/calls?wait=30"
        good = base64.b64encode(f"{broker.userid}:{broker.password}".encode()).decode()
        basic = {"Authorization": f"Basic {good}"}
        moo = {"class": "Cow", "method": "moo"}
        status, _, raw = request(own, "POST", path, moo, token=None, headers=basic)
        assert status == 200, raw
        assert json.loads(raw)["result"] == "moo from daisy"
        denied = request(
            own, "POST", path, {"class": "Barn", "method": "doors"}, token=None, headers=basic
        )
        assert denied[0] == 403
        wrong = base64.b64encode(f"{broker.userid}:not-{broker.password}".encode()).decode()
        refused = request(
            own, "POST", path, moo, token=None, headers={"Authorization": f"Basic {wrong}"}
        )
        assert refused[0] == 401, refused[2]
    finally:
        own.discard()
