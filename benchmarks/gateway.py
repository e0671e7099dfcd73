"""What gofer-gateway adds to an RMI call, and how many calls and streams one process carries.

Usage::

    .venv/bin/python benchmarks/gateway.py [--quick] [--clients N] [--seconds S]
                                           [--calls N] [--streams N] [--url URL]

A real goferd (the demo plugin, started as ``benchmarks/rmi.py`` does) and a
real ``gofer-gateway`` process (its own state directory, reply queue and
bearer token) on the broker; the HTTP callers are aiohttp sessions in this
process. Three measures, figures beside the issue's targets, nothing
asserted:

- **accepted calls/s**: ``--clients`` callers POST
  ``/v1/agents/{queue}/calls`` (``Demo.echo``) in a row for ``--seconds``;
  each answer is ``202`` once the broker confirmed the request (``200``
  when the call's reply came in before the answer went out). goferd runs
  the calls meanwhile, so the gateway also takes their replies in.
- **overhead**: ``--calls`` synchronous calls through the gateway
  (``POST ...?wait=10``) and as many direct ``Agent(...).Demo().echo("x")``
  calls, in alternating blocks so that a change in the broker's load falls
  on both; the difference of the p50s.
- **open streams**: ``--streams`` calls sent to a queue nobody consumes
  (they stay ``accepted``), then as many ``GET /v1/calls/{sn}/events``
  opened at once; a stream counts as open when its first event came. The
  time to open them all and the gateway's resident set before and with them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import procfs
from rmi import _cpu_seconds, _declare, _delete_queues, _figure, _progress, _tail, goferd

from gofer.messaging.url import Url
from gofer.proxy import Agent

#: The bearer token of the run's gateway.
TOKEN = uuid.uuid4().hex
#: Seconds the gateway has to answer /readyz.
START_TIMEOUT = 30.0
#: Seconds one HTTP request may take before the run counts as broken.
REQUEST_TIMEOUT = 30.0
#: Calls in a row on each side of the overhead run before switching to the other.
BLOCK = 50
#: Requests in flight while the streams' calls are being sent.
SENDING = 64
#: What every call asks for.
ECHO = {"class": "Demo", "method": "echo", "args": ["x"]}


@dataclasses.dataclass
class Gateway:
    """A gofer-gateway process started by :func:`gateway`."""

    pid: int
    base: str
    log: Path

    def rss(self) -> float | None:
        return procfs.rss_mib(self.pid)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ready(base: str) -> bool:
    url = f"{base}/readyz"
    with (
        contextlib.suppress(OSError, urllib.error.HTTPError),
        urllib.request.urlopen(url, timeout=2) as response,  # noqa: S310
    ):
        return bool(response.status == 200)
    return False


@contextlib.contextmanager
def gateway(url: Url) -> Iterator[Gateway]:
    """A running gofer-gateway on ``url``; stopped and its reply queue deleted on the way out."""
    with tempfile.TemporaryDirectory(prefix="gofer-bench-gw-") as top:
        port = _free_port()
        reply_queue = f"bench.gateway.{uuid.uuid4().hex[:8]}"
        config = Path(top) / "gateway.conf"
        config.write_text(
            f"[main]\nlisten=127.0.0.1:{port}\nstate_dir={Path(top) / 'state'}\n"
            f"[messaging]\nurl={url.secret()}\nreply_queue={reply_queue}\n"
            f"[token:bench]\ntoken={TOKEN}\nagents=*\n"
        )
        log = Path(top) / "gateway.log"
        command = [sys.executable, "-m", "gofer.cli.gateway", "--config", str(config)]
        with log.open("wb") as output:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and gateway
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _ready(base):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gofer-gateway did not get ready:\n{_tail(log)}")
                time.sleep(0.1)
            yield Gateway(process.pid, base, log)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            _delete_queues(url, [reply_queue])


def _session(connections: int = 100) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {TOKEN}"},
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT),
    )


#: Answers to a call without ``?wait=``: 202, or 200 when its reply came before the answer.
ACCEPTED = (200, 202)


async def _post(session: aiohttp.ClientSession, url: str, statuses: tuple[int, ...]) -> None:
    async with session.post(url, json=ECHO) as response:
        body = await response.read()
        if response.status not in statuses:
            raise RuntimeError(f"POST {url}: {response.status} {body[:200]!r}")


def _p50(latencies: list[float]) -> float | None:
    return statistics.median(latencies) * 1000 if latencies else None


# -- (a) accepted calls/s ---------------------------------------------------------


@dataclasses.dataclass
class Accepted:
    calls: int
    seconds: float
    p50: float | None
    gateway_cpu: float | None  # seconds, over the run

    @property
    def cpu_per_call(self) -> float | None:
        """The gateway's CPU per accepted call, in milliseconds."""
        if self.gateway_cpu is None or not self.calls:
            return None
        return self.gateway_cpu / self.calls * 1000

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0


async def accepted(gw: Gateway, queue: str, clients: int, seconds: float) -> Accepted:
    """``clients`` callers POSTing in a row for ``seconds``, answered once the broker has it."""
    url = f"{gw.base}/v1/agents/{queue}/calls"
    latencies: list[float] = []
    async with _session(clients) as session:
        for _ in range(20):  # warm-up: connections opened, code paths taken once
            await _post(session, url, ACCEPTED)

        async def client(until: float) -> None:
            while time.perf_counter() < until:
                before = time.perf_counter()
                await _post(session, url, ACCEPTED)
                latencies.append(time.perf_counter() - before)

        cpu, started = _cpu_seconds(gw.pid), time.perf_counter()
        await asyncio.gather(*(client(started + seconds) for _ in range(clients)))
        elapsed, after = time.perf_counter() - started, _cpu_seconds(gw.pid)
        spent = None if cpu is None or after is None else after - cpu
        return Accepted(len(latencies), elapsed, _p50(latencies), spent)


# -- (b) overhead ---------------------------------------------------------------------


async def overhead(
    gw: Gateway, url: Url, queue: str, calls: int
) -> tuple[float | None, float | None]:
    """p50 (ms) of a synchronous call through the gateway and of a direct one."""
    path = f"{gw.base}/v1/agents/{queue}/calls?wait=10"
    agent = Agent(url.secret(), queue, wait=10)
    through: list[float] = []
    direct: list[float] = []
    async with _session(1) as session:
        for _ in range(20):
            await _post(session, path, (200,))
            agent.Demo().echo("x")
        while len(through) < calls:
            for _ in range(min(BLOCK, calls - len(through))):
                before = time.perf_counter()
                await _post(session, path, (200,))
                through.append(time.perf_counter() - before)
            # Blocking the loop on purpose: nothing else runs in it now, and
            # a hop to an executor thread would add its own cost to the direct call.
            for _ in range(min(BLOCK, calls - len(direct))):
                before = time.perf_counter()
                agent.Demo().echo("x")
                direct.append(time.perf_counter() - before)
    return _p50(through), _p50(direct)


# -- (c) open streams -----------------------------------------------------------------


@dataclasses.dataclass
class Streams:
    wanted: int
    opened: int
    seconds: float
    rss_before: float | None
    rss_with: float | None


async def streams(gw: Gateway, url: Url, count: int) -> Streams:
    """``count`` event streams open at once on calls that stay ``accepted``."""
    idle = f"bench.gateway.idle.{uuid.uuid4().hex[:8]}"
    _declare(url, idle)  # nobody consumes it: its calls never start, their streams stay open
    try:
        return await _open_streams(gw, idle, count)
    finally:
        _delete_queues(url, [idle])


async def _open_streams(gw: Gateway, queue: str, count: int) -> Streams:
    # Each stream is a connection of its own (HTTP/1.1): no pooling limit here.
    async with _session(0) as session:
        limit = asyncio.Semaphore(SENDING)

        async def send() -> str:
            async with limit, session.post(f"{gw.base}/v1/agents/{queue}/calls", json=ECHO) as r:
                if r.status not in ACCEPTED:
                    raise RuntimeError(f"POST: {r.status} {(await r.read())[:200]!r}")
                return r.headers["Location"]

        locations = await asyncio.gather(*(send() for _ in range(count)))
        rss_before = gw.rss()
        opened: list[aiohttp.ClientResponse] = []
        all_open = asyncio.Event()

        async def watch(location: str) -> None:
            async with session.get(f"{gw.base}{location}/events") as response:
                if response.status != 200:
                    return
                while (line := await response.content.readline()) and line.strip():
                    pass  # the first event, up to its blank line
                opened.append(response)
                if len(opened) == count:
                    all_open.set()
                await asyncio.Event().wait()  # held open until cancelled

        started = time.perf_counter()
        watchers = [asyncio.ensure_future(watch(location)) for location in locations]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(all_open.wait(), REQUEST_TIMEOUT)
        seconds = time.perf_counter() - started
        await asyncio.sleep(1)  # the gateway settles before its memory is read
        measure = Streams(count, len(opened), seconds, rss_before, gw.rss())
        failed = [w for w in watchers if w.done() and w.exception() is not None]
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        if failed:
            _progress(f"{len(failed)} streams failed, the first: {failed[0].exception()!r}")
        return measure


# -- the report -------------------------------------------------------------------------


def report(rate: Accepted, through: float | None, direct: float | None, open_: Streams) -> None:
    """Print the figures beside the targets."""
    added = None if through is None or direct is None else through - direct
    opened = f"{open_.opened} of {open_.wanted}"
    memory = "n/a"
    if open_.rss_before is not None and open_.rss_with is not None:
        memory = f"{open_.rss_with:.0f} MiB (+{open_.rss_with - open_.rss_before:.0f})"
    rows = [
        ("metric", "figure", "target"),
        ("accepted calls/s (202 after confirm)", f"{rate.rate:.0f}", ">= 500"),
        ("  accept latency p50 (ms)", _figure(rate.p50), ""),
        ("  gateway CPU per accepted call (ms)", _figure(rate.cpu_per_call), ""),
        ("sync p50 through the gateway (ms)", _figure(through), ""),
        ("sync p50, direct Agent (ms)", _figure(direct), ""),
        ("added by the gateway, p50 (ms)", _figure(added), "<= 2"),
        ("SSE streams open at once", opened, ">= 1000 open"),
        ("  time to open them (s)", _figure(open_.seconds), ""),
        ("  gateway RSS with them open", memory, ""),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for number, row in enumerate(rows):
        print(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if number == 0:
            print("-+-".join("-" * w for w in widths))


async def measure(url: Url, options: argparse.Namespace) -> None:
    with goferd(url) as agentd, gateway(url) as gw:
        _progress(f"goferd {agentd.pid} and gofer-gateway {gw.pid} serving")
        rate = await accepted(gw, agentd.queue, options.clients, options.seconds)
        _progress(f"accepted: {rate.rate:.0f} calls/s with {options.clients} clients")
        through, direct = await overhead(gw, url, agentd.queue, options.calls)
        _progress(f"overhead: p50 {_figure(through)} ms through, {_figure(direct)} ms direct")
        open_ = await streams(gw, url, options.streams)
        _progress(f"streams: {open_.opened} of {open_.wanted} open in {open_.seconds:.2f}s")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"CPUs {os.cpu_count()}, load {load}; aiohttp {aiohttp.__version__};"
        f" {options.clients} clients for {options.seconds:g}s, {options.calls} sync calls"
        f" on each side, {options.streams} streams\n"
    )
    report(rate, through, direct, open_)


def _descriptors(wanted: int) -> None:
    """Raise the soft descriptor limit (the gateway inherits it): each stream is two sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def main() -> None:
    """Parse the arguments, then measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672", help="broker URL")
    parser.add_argument("--quick", action="store_true", help="fewer clients, calls and streams")
    parser.add_argument("--clients", type=int, help="concurrent HTTP callers (32; --quick 16)")
    parser.add_argument("--seconds", type=float, help="of the accepted run (5; --quick 2)")
    parser.add_argument("--calls", type=int, help="sync calls on each side (1000; --quick 200)")
    parser.add_argument("--streams", type=int, help="SSE streams at once (1000; --quick 1000)")
    options = parser.parse_args()
    options.clients = options.clients or (16 if options.quick else 32)
    options.seconds = options.seconds or (2.0 if options.quick else 5.0)
    options.calls = options.calls or (200 if options.quick else 1000)
    # Even quick: the count is the target, and 1,000 idle calls cost the broker little.
    options.streams = options.streams or 1000
    _descriptors(options.streams * 2 + 1000)
    try:
        asyncio.run(measure(Url.parse(options.url), options))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
