"""What operators watch: goferd under a fake systemd (READY, watchdog, STATUS), its metrics file."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gofer.messaging.url import Url
from gofer.proxy import Agent
from tests.e2e.conftest import Goferd


class FakeSystemd:
    """A datagram socket where goferd's $NOTIFY_SOCKET points; keeps what arrives, in order."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.states: list[str] = []

    def collect(self, seconds: float) -> list[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.states.extend(self.sock.recv(4096).decode().splitlines())
            except socket.timeout:
                continue
        return self.states

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(str(tmp_path_factory.mktemp("systemd") / "notify"))
    yield fake
    fake.close()


def test_goferd_pings_the_watchdog_and_says_what_it_does(
    make_goferd: Any, systemd: FakeSystemd
) -> None:
    goferd: Goferd = make_goferd(start=False)
    goferd.extra_env = {"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "2000000"}
    goferd.start()

    states = systemd.collect(3.5)

    assert states[0] == "READY=1"
    pings = [n for n, state in enumerate(states) if state == "WATCHDOG=1"]
    assert len(pings) >= 3  # every second: half the 2 s watchdog interval
    statuses = [state for state in states if state.startswith("STATUS=")]
    assert statuses
    assert "1 plugin serving" in statuses[0]  # farm (barn has no queue of its own)
    assert len(statuses) == 1  # sent again only when it changes

    goferd.stop()
    assert systemd.collect(0.5)[-1] == "STOPPING=1"


def test_metrics_are_written_for_the_textfile_collector(make_goferd: Any) -> None:
    goferd: Goferd = make_goferd(start=False)
    textfile = goferd.root / "metrics/gofer.prom"
    textfile.parent.mkdir()
    conf = goferd.root / "etc/gofer/agent.conf"
    text = conf.read_text().replace("#textfile=", "textfile=/metrics/gofer.prom")
    port = free_port()
    text = text.replace("interval=15", f"interval=1\nlisten=127.0.0.1:{port}")
    conf.write_text(text)
    goferd.start()
    agent = Agent(goferd.url, goferd.queue, wait=30)
    assert agent.Cow().moo()
    with pytest.raises(Exception):  # noqa: B017, PT011 - any remote failure will do
        agent.Cow().no_such_method()

    deadline = time.monotonic() + 10
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    while time.monotonic() < deadline:
        if textfile.exists():
            families = list(text_string_to_metric_families(textfile.read_text()))
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in families
                for s in family.samples
            }
            if samples.get(
                (
                    "gofer_requests_total",
                    (("method", "Cow.no_such_method"), ("outcome", "failed"), ("plugin", "farm")),
                )
            ):
                break
        time.sleep(0.2)

    done = (
        "gofer_requests_total",
        (("method", "Cow.moo"), ("outcome", "succeeded"), ("plugin", "farm")),
    )
    assert samples.get(done) == 1, sorted(samples)[:20]
    assert samples[("gofer_broker_connected", (("plugin", "farm"),))] == 1
    assert samples[("gofer_request_duration_seconds_count", (("plugin", "farm"),))] == 2
    assert samples[("gofer_requests_in_flight", (("plugin", "farm"),))] == 0
    assert samples[("process_resident_memory_bytes", ())] > 1_000_000
    assert samples[("gofer_last_message_timestamp_seconds", (("plugin", "farm"),))] > 1e9
    assert not list(textfile.parent.glob(".*.tmp"))  # written whole, then renamed

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as scraped:
        assert scraped.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        served = {f.name for f in text_string_to_metric_families(scraped.read().decode())}
    assert {"gofer_requests", "gofer_broker_connected", "process_open_fds"} <= served


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_mgt_show_names_what_failed_to_load_and_where_plugins_are_connected(
    make_goferd: Any,
) -> None:
    goferd: Goferd = make_goferd(start=False)
    goferd.write_descriptor("broken", {"main": {"enabled": 1, "plugin": "no.such.module"}})
    (goferd.root / "etc/gofer/plugins/garbled.conf").write_text("[main\nenabled=1\n")
    goferd.start()

    shown = goferd.mgt("show")

    failed = {item["name"]: item["error"] for item in shown["failed"]}
    assert "broken" in failed
    assert any(name.endswith("garbled.conf") for name in failed)
    farm = next(p for p in shown["plugins"] if p["name"] == "farm")
    assert farm["connected"] is not None
    assert str(Url.parse(goferd.url).port) in farm["connected"]
