"""goferd's figures in the Prometheus text format, for node_exporter's textfile collector.

``[metrics] textfile=/var/lib/node_exporter/textfile/gofer.prom`` in
``agent.conf`` makes goferd write them there every ``interval`` seconds
(15 by default), atomically (a new file renamed over the old one), so the
collector never reads half a file. Names follow Prometheus conventions
(``gofer_`` prefix, ``_total`` counters, seconds, base units):

- ``gofer_requests_total{plugin,method,outcome}``: requests ended, by
  outcome: ``succeeded``, ``failed`` (the method raised), ``rejected``
  (not run: expired, cancelled, malformed, ...), ``interrupted`` (running
  when goferd stopped) and ``resent`` (a kept result sent again);
- ``gofer_request_duration_seconds{plugin}``: a histogram of how long the
  methods ran;
- ``gofer_requests_in_flight{plugin}``, ``gofer_journal_requests``;
- ``gofer_broker_connected{plugin}`` (1 or 0),
  ``gofer_broker_reconnects_total{plugin}``,
  ``gofer_last_message_timestamp_seconds{plugin}``;
- ``process_resident_memory_bytes``, ``process_cpu_seconds_total``,
  ``process_open_fds``, ``process_start_time_seconds``.

``[metrics] listen=127.0.0.1:9464`` also serves them at ``/metrics`` over
HTTP, for a Prometheus that scrapes goferd itself (keep it on a local or
management address: anyone who reaches it can read the figures).

Method labels are ``Class.method`` as requested; past ``MAX_SERIES``
label sets, new ones are counted as ``method="other"``, so that callers
naming random methods cannot grow the file without bound.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

#: Upper bounds (seconds) of the duration histogram's buckets.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
#: The most (plugin, method, outcome) label sets kept apart.
MAX_SERIES = 1000

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """The counters goferd keeps as requests end; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._durations: dict[str, list[float]] = {}  # plugin -> [bucket counts..., +Inf]
        self._sums: dict[str, float] = {}
        self._last_message: dict[str, float] = {}
        self.started = time.time()

    def finished(self, plugin: str, method: str, outcome: str, seconds: float | None) -> None:
        """Count one request of ``plugin`` that ended; ``seconds`` when its method ran."""
        with self._lock:
            key = (plugin, method, outcome)
            if key not in self._requests and len(self._requests) >= MAX_SERIES:
                key = (plugin, "other", outcome)
            self._requests[key] = self._requests.get(key, 0) + 1
            if seconds is not None:
                counts = self._durations.setdefault(plugin, [0.0] * (len(BUCKETS) + 1))
                for n, bound in enumerate((*BUCKETS, math.inf)):
                    if seconds <= bound:
                        counts[n] += 1
                self._sums[plugin] = self._sums.get(plugin, 0.0) + seconds

    def received(self, plugin: str) -> None:
        """Note that a message for ``plugin`` arrived now."""
        with self._lock:
            self._last_message[plugin] = time.time()

    def families(self) -> list[Family]:
        """The counters as metric families."""
        with self._lock:
            requests = dict(self._requests)
            durations = {plugin: list(counts) for plugin, counts in self._durations.items()}
            sums = dict(self._sums)
            last = dict(self._last_message)
        histogram: list[tuple[str, Labels, float]] = []
        for plugin, counts in sorted(durations.items()):
            for bound, count in zip((*BUCKETS, math.inf), counts):
                le = "+Inf" if math.isinf(bound) else f"{bound:g}"
                histogram.append(("_bucket", (("plugin", plugin), ("le", le)), count))
            histogram.append(("_sum", (("plugin", plugin),), sums.get(plugin, 0.0)))
            histogram.append(("_count", (("plugin", plugin),), counts[-1]))
        return [
            Family(
                "gofer_requests_total",
                "counter",
                "Requests ended, by plugin, method and outcome.",
                [
                    ("", (("plugin", p), ("method", m), ("outcome", o)), float(n))
                    for (p, m, o), n in sorted(requests.items())
                ],
            ),
            Family(
                "gofer_request_duration_seconds",
                "histogram",
                "How long the plugins' methods ran.",
                histogram,
            ),
            Family(
                "gofer_last_message_timestamp_seconds",
                "gauge",
                "When the last message for the plugin arrived (Unix time).",
                [("", (("plugin", p),), t) for p, t in sorted(last.items())],
            ),
        ]


class Family:
    """One metric: name, type, help, and its samples ``(suffix, labels, value)``."""

    def __init__(
        self, name: str, kind: str, text: str, samples: Sequence[tuple[str, Labels, float]]
    ) -> None:
        self.name = name
        self.kind = kind
        self.text = text
        self.samples = samples

    @classmethod
    def gauge(cls, name: str, text: str, values: Iterable[tuple[Labels, float]]) -> Family:
        return cls(name, "gauge", text, [("", labels, value) for labels, value in values])

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.text}", f"# TYPE {self.name} {self.kind}"]
        for suffix, labels, value in self.samples:
            shown = ",".join(f'{key}="{_escaped(text)}"' for key, text in labels)
            lines.append(
                f"{self.name}{suffix}{{{shown}}} {_number(value)}"
                if shown
                else f"{self.name}{suffix} {_number(value)}"
            )
        return "\n".join(lines) + "\n"


def process_families(started: float) -> list[Family]:
    """This process's memory, CPU, open files and start time."""
    usage = os.times()
    rss = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        rss = float(pages * resource.getpagesize())
    fds = 0.0
    with contextlib.suppress(OSError):
        fds = float(len(os.listdir("/proc/self/fd")))
    return [
        Family.gauge("process_resident_memory_bytes", "Resident memory size.", [((), rss)]),
        Family(
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent.",
            [("", (), usage.user + usage.system)],
        ),
        Family.gauge("process_open_fds", "Open file descriptors.", [((), fds)]),
        Family.gauge("process_start_time_seconds", "Start time (Unix time).", [((), started)]),
    ]


def render(families: Iterable[Family]) -> str:
    """The text exposition of ``families``."""
    return "".join(family.render() for family in families)


def write_textfile(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (readers see the old file or the new one).

    Raises:
        OSError: the directory cannot be written.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


class Server:
    """Serves ``render()`` at ``GET /metrics`` on a local address, on a thread of its own.

    Args:
        address: ``(host, port)``; port 0 picks a free one (see ``address``).
        render: makes the text, called for each scrape.
    """

    def __init__(self, address: tuple[str, int], render: Callable[[], str]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "only /metrics is here")
                    return
                body = render().encode()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # scrapes every 15 s are not worth a log line

        class HTTPServer(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
            daemon_threads = True

        self._server = HTTPServer(address, Handler)
        self.address: tuple[str, int] = self._server.server_address[:2]  # type: ignore[assignment]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="gofer-metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop serving and close the address; True once the thread has ended."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()
        return not self._thread.is_alive()


#: The content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.17g}" if value != int(value) else str(int(value))
