"""The gateway's figures: counts kept in memory, shown as ``/stats`` (JSON) and ``/metrics``.

``/stats`` follows statelessd's: calls per agent queue and outcome,
requests per method and status, the broker connection, process figures.
``/metrics`` is the Prometheus text format (version 0.0.4); it counts calls
by outcome only, not by agent queue, since a gateway serving thousands of
agents would otherwise make thousands of series.
"""

from __future__ import annotations

import collections
import os
import resource
import time
from collections.abc import Iterable, Mapping
from typing import Any

#: Prometheus text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


class Figures:
    """Counters of one gateway process (the event loop's thread only)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
        self.requests: collections.Counter[tuple[str, int]] = collections.Counter()
        self.fanouts = 0
        self.busy_seconds = 0.0

    def call(self, queue: str, outcome: str) -> None:
        """A call to ``queue`` reached ``outcome`` (accepted, a final state, or not sent)."""
        self.calls[(queue, outcome)] += 1

    def request(self, method: str, status: int, seconds: float) -> None:
        """An HTTP request was answered."""
        self.requests[(method if method in _METHODS else "OTHER", status)] += 1
        self.busy_seconds += seconds

    def by_outcome(self) -> dict[str, int]:
        totals: collections.Counter[str] = collections.Counter()
        for (_, outcome), count in self.calls.items():
            totals[outcome] += count
        return dict(totals)

    def stats(self, broker: Mapping[str, Any], kept: Mapping[str, int]) -> dict[str, Any]:
        """Everything, as ``/stats`` shows it.

        Args:
            broker: the broker connection's state.
            kept: the calls kept, by state.
        """
        agents: dict[str, dict[str, int]] = {}
        for (queue, outcome), count in sorted(self.calls.items()):
            agents.setdefault(queue, {})[outcome] = count
        requests = {f"method.{m}.{s}": n for (m, s), n in sorted(self.requests.items())}
        return {
            "timestamp": int(time.time()),
            "started": int(self.started),
            "agents": agents,
            "requests": requests,
            "processing_time": round(self.busy_seconds, 6),
            "fanouts": self.fanouts,
            "calls_kept": dict(kept),
            "broker": dict(broker),
            "process": process(),
        }

    def metrics(self, broker: Mapping[str, Any], kept: Mapping[str, int], watchers: int) -> str:
        """Everything, in the Prometheus text format."""
        proc = process()
        families = [
            Family(
                "gofer_gateway_calls_total",
                "counter",
                "Calls by outcome (accepted by the broker, a final state, or not sent).",
                [({"outcome": o}, n) for o, n in sorted(self.by_outcome().items())],
            ),
            Family(
                "gofer_gateway_http_requests_total",
                "counter",
                "HTTP requests answered, by method and status.",
                [({"method": m, "code": str(s)}, n) for (m, s), n in sorted(self.requests.items())],
            ),
            Family("gofer_gateway_fanouts_total", "counter", "Fan-outs run.", [({}, self.fanouts)]),
            Family(
                "gofer_gateway_calls_kept",
                "gauge",
                "Calls in the store, by state.",
                [({"state": s}, n) for s, n in sorted(kept.items())],
            ),
            Family(
                "gofer_gateway_event_watchers",
                "gauge",
                "Open event streams and waits.",
                [({}, watchers)],
            ),
            Family(
                "gofer_gateway_broker_connected",
                "gauge",
                "1 while the reply queue is read from a connected broker.",
                [({}, 1 if broker.get("connected") else 0)],
            ),
            Family(
                "gofer_gateway_replies_total",
                "counter",
                "Messages read from the reply queue.",
                [({}, broker.get("replies", 0))],
            ),
            Family(
                "process_cpu_seconds_total",
                "counter",
                "User and system CPU time spent, in seconds.",
                [({}, proc["cpu_time"]["user"] + proc["cpu_time"]["system"])],
            ),
            Family(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size, in bytes.",
                [({}, proc["memory_usage"])],
            ),
            Family("process_open_fds", "gauge", "Open file descriptors.", [({}, proc["open_fds"])]),
            Family(
                "process_start_time_seconds",
                "gauge",
                "Start time of the process, in seconds since the epoch.",
                [({}, self.started)],
            ),
        ]
        return render(families)


class Family:
    """One metric family: its name, type, help, and samples (labels, value)."""

    def __init__(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[Mapping[str, str], float]],
    ) -> None:
        self.name = name
        self.kind = kind
        self.help_text = help_text
        self.samples = list(samples)


def render(families: Iterable[Family]) -> str:
    """The families in the Prometheus text format."""
    lines = []
    for family in families:
        help_text = family.help_text.replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"# HELP {family.name} {help_text}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in family.samples:
            shown = ",".join(f'{key}="{_escaped(str(v))}"' for key, v in labels.items())
            lines.append(
                f"{family.name}{{{shown}}} {_number(value)}"
                if shown
                else f"{family.name} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def process() -> dict[str, Any]:
    """Figures of this process, named as statelessd's ``/stats`` names them."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    page = resource.getpagesize()
    try:
        with open("/proc/self/statm") as statm:
            resident = int(statm.read().split()[1]) * page
    except (OSError, ValueError, IndexError):
        resident = usage.ru_maxrss * 1024
    try:
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = 0
    return {
        "pid": os.getpid(),
        "cpu_time": {"user": usage.ru_utime, "system": usage.ru_stime},
        "memory_usage": resident,
        "page_faults": {"major": usage.ru_majflt, "minor": usage.ru_minflt},
        "context_switches": usage.ru_nvcsw + usage.ru_nivcsw,
        "swap_outs": usage.ru_nswap,
        "block": {"input": usage.ru_inblock, "output": usage.ru_oublock},
        "page_size": page,
        "open_fds": fds,
    }


__all__ = ["CONTENT_TYPE", "Family", "Figures", "process", "render"]
