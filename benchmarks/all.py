"""Every benchmark in one run, printed as one table: metric | gofer | floor | ratio | target.

Usage::

    .venv/bin/python benchmarks/all.py [--quick] [--only NAME[,NAME...]]
                                       [--url RABBITMQ_URL] [--brokerj BROKERJ_URL]

The benchmarks (``--only`` takes these names):

- ``rmi``: sync latency p50/p90/p99, throughput with 1, 4 and 16 callers and
  CPU per call of caller, goferd and broker, against the raw py-amqp
  request/reply floor (:mod:`rmi`).
- ``fire``, ``fork``, ``mib``, ``startup``, ``idle``, ``memory``, ``fds``,
  ``connections``: what one goferd costs and holds (:mod:`agent`).
- ``adapters``: sync p50 and throughput over each adapter and broker pair
  (:mod:`adapters`); Broker-J is started with ``scripts/broker-j start``
  when it is not reachable.

Each figure is printed beside the raw floor measured in the same run where
one exists (the ratio is gofer/floor, or gofer's share of the floor's rate),
and beside the issue's target. Nothing is asserted: the exit status is 0
unless the run itself broke. A benchmark that fails prints its error in its
row and the others go on. ``--quick`` takes a few minutes (fewer calls,
shorter runs, a 10 s idle window; the table says so); a full run takes
about a quarter of an hour. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import sys
import time
from collections.abc import Callable

import adapters
import agent
import rmi
from rmi import Side
from table import HIGHER, LOWER, Row, Section, failed, render

from gofer.messaging.url import Url

#: (gofer, floor) measured so far in this run, by adapter+broker pair.
Known = dict[str, tuple[Side, Side | None]]
#: A benchmark: the options and what is known so far give rows and notes.
Benchmark = Callable[[argparse.Namespace, Known], tuple[list[Row], list[str]]]


def _rmi(options: argparse.Namespace, known: Known) -> tuple[list[Row], list[str]]:
    """benchmarks/rmi.py's gofer and floor (with confirms), as rows."""
    url = Url.parse(options.url)
    floor = rmi.run_floor(url, True, options)
    gofer = rmi.run_gofer(url, options)
    known[adapters.label(url.adapter or "amqp", "RabbitMQ")] = (gofer, floor)
    figures, floors = rmi._metrics(gofer), rmi._metrics(floor)
    last = rmi.CALLERS[-1]
    targets = {
        "sync latency p50 (ms)": adapters.P50_TARGET,
        f"throughput, {last} caller(s) (calls/s)": adapters.THROUGHPUT_TARGET,
        "caller CPU/call, sync (ms)": adapters.CALLER_CPU_TARGET,
    }
    rows = [
        Row(
            metric,
            value,
            floors[metric],
            HIGHER if metric.startswith("throughput") else LOWER,
            targets.get(metric, ""),
        )
        for metric, value in figures.items()
    ]
    notes = [
        f"RMI: {options.calls} sync calls, {options.seconds:g} s per throughput run; floor:"
        " py-amqp request/reply with confirms; broker CPU is the whole broker's (an upper bound)"
    ]
    return rows, notes


def _adapters(options: argparse.Namespace, known: Known) -> tuple[list[Row], list[str]]:
    return adapters.run(options, known)


def _agent(measure: Callable[[Url, argparse.Namespace], list[Row]], note: str = "") -> Benchmark:
    def run(options: argparse.Namespace, known: Known) -> tuple[list[Row], list[str]]:
        return measure(Url.parse(options.url), options), [note] if note else []

    return run


#: Every benchmark by name, in the order they run.
BENCHMARKS: dict[str, Benchmark] = {
    "rmi": _rmi,
    "fire": _agent(agent.fire_and_forget),
    "fork": _agent(agent.fork_model),
    "mib": _agent(agent.mebibyte, "1 MiB floor: py-amqp request/reply of a 1 MiB body"),
    "startup": _agent(
        agent.startup,
        "start-up floor: a bare py-amqp process that declares and consumes the queue",
    ),
    "idle": _agent(agent.idle_cpu, "idle CPU: every thread's schedstat, goferd with demo plugin"),
    "memory": _agent(agent.memory, f"memory: {agent.LOAD_CALLERS} callers, one Agent"),
    "fds": _agent(agent.descriptors),
    "connections": _agent(
        agent.connections, "connections: goferd's established TCP sockets to the broker port"
    ),
    "adapters": _adapters,
}
#: Section titles, with the benchmarks under each.
SECTIONS = (
    ("RMI over RabbitMQ, amqp adapter (benchmarks/rmi.py)", ("rmi",)),
    (
        "one goferd over RabbitMQ, amqp adapter (benchmarks/agent.py)",
        ("fire", "fork", "mib", "startup", "idle", "memory", "fds", "connections"),
    ),
    ("adapter+broker pairs (benchmarks/adapters.py)", ("adapters",)),
)


def _only(text: str | None) -> list[str]:
    """The benchmarks ``--only`` names (all of them without it)."""
    if text is None:
        return list(BENCHMARKS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    return names


def _broker(url: Url) -> str:
    """The broker's product and version, or why they cannot be told."""
    try:
        connection = rmi._connect(url, confirms=False)
    except Exception as exc:  # noqa: BLE001 - a header line; the benchmarks say the rest
        return f"{url.host}:{url.port} not reachable ({exc})"
    with contextlib.closing(connection):
        properties = connection.server_properties or {}
        return f"{properties.get('product', '?')} {properties.get('version', '?')}"


def run(options: argparse.Namespace) -> list[Section]:
    """Run the chosen benchmarks, section by section."""
    chosen = _only(options.only)
    url = Url.parse(options.url)
    known: Known = {}
    sections = []
    for title, names in SECTIONS:
        section = Section(title)
        for name in (name for name in names if name in chosen):
            rmi._progress(f"== {name}")
            try:
                if name != "adapters" and not adapters.reachable(url):
                    raise RuntimeError(f"{url} not reachable")
                rows, notes = BENCHMARKS[name](options, known)
            except Exception as exc:  # noqa: BLE001 - the other benchmarks go on; the row says why
                rmi._progress(f"{name} failed: {exc!r}")
                row, note = failed(name, exc)
                rows, notes = [row], [note]
            section.rows.extend(rows)
            section.notes.extend(notes)
        if section.rows:
            sections.append(section)
    return sections


def main() -> None:
    """Parse the arguments, run the benchmarks and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls, shorter runs")
    parser.add_argument("--only", metavar="NAME[,NAME]", help=", ".join(BENCHMARKS))
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672", help="RabbitMQ")
    parser.add_argument("--brokerj", default="amqp://gofer:gofer@localhost:5673", help="Broker-J")
    options = parser.parse_args()
    chosen = _only(options.only)
    faulthandler.enable()  # a crash in a C extension shows every thread's stack
    options.calls = 300 if options.quick else 2000
    options.seconds = 2.0 if options.quick else 5.0
    options.warmup = 20 if options.quick else 50
    started = time.monotonic()
    url = Url.parse(options.url)
    try:
        rmi._environment(options, url)
        brokers = [url]
        if "adapters" in chosen:
            brokers.append(Url.parse(options.brokerj))
            adapters.ensure_brokerj(brokers[-1])
        print("brokers: " + "; ".join(f"{b} = {_broker(b)}" for b in brokers))
        mode = "--quick (smaller sizes: see the labels)" if options.quick else "full"
        print(f"run: {mode}, benchmarks {', '.join(chosen)}\n", flush=True)
        sections = run(options)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        rmi._finished.set()
    print(render(sections))
    print(f"\ntook {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
