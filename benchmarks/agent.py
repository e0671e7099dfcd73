"""What one goferd costs and holds: fire-and-forget, fork model, 1 MiB, start-up, CPU, memory, fds.

Each function here starts a real goferd of its own (:func:`rmi.goferd`, a
temporary ``GOFER_ROOT``) with the benchmarks' plugin
(``benchmarks/benchplugin.py``, as plugin ``bench``) on one broker, measures
one thing and gives back table rows (:class:`table.Row`): figures beside the
raw floor measured in the same run where one exists, and the issue's target.
Nothing is asserted. ``benchmarks/all.py`` runs them; the sizes shrink with
``--quick``.

The figures of goferd's process come from ``/proc`` (:mod:`procfs`): CPU
time from each thread's ``schedstat`` (nanoseconds), ``VmRSS``, the count of
``/proc/<pid>/fd``, and its established TCP sockets to the broker's port.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import amqp
import procfs
import rmi
from rmi import CALL_TIMEOUT, START_TIMEOUT, Meter, _connect, _delete_queues, _latency, _progress
from table import HIGHER, Row

from gofer.agent.management import ManagementClient
from gofer.errors import GoferError
from gofer.messaging.url import Url
from gofer.proxy import Agent

#: The benchmarks' plugin, as goferd loads it: (plugin name, module file).
BENCH = (("bench", Path(__file__).resolve().parent / "benchplugin.py"),)
#: Fire-and-forget requests sent, and the threads (sharing one Agent) sending them.
FIRE_REQUESTS = 5000
FIRE_SENDERS = 16
#: Caller threads of the memory and descriptor runs (sharing one Agent).
LOAD_CALLERS = 16
#: Plugins of the second connection count.
MANY_PLUGINS = 10
#: Seconds between two looks at a starting process.
POLL = 0.005


def _bench(agentd: rmi.Goferd, url: Url, wait: float = CALL_TIMEOUT) -> Any:
    """A stub of the bench plugin's ``Bench`` class."""
    return Agent(url.secret(), agentd.queues["bench"], wait=wait).Bench()


def _p50(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1000


def _sizes(options: argparse.Namespace, quick: int, full: int) -> int:
    return quick if options.quick else full


def _count(n: int) -> str:
    return f"{n:,}"


# -- fire-and-forget ------------------------------------------------------------------


def fire_and_forget(url: Url, options: argparse.Namespace) -> list[Row]:
    """5,000 requests sent with ``wait=0``: from the first send until goferd has run them all.

    goferd journals each request before it acknowledges it (always on). The
    plugin counts the calls and keeps the time of the last one, so the end
    is exact; it is read back with a synchronous call once sending is done.
    """
    with rmi.goferd(url, plugins=BENCH) as agentd:
        bench = _bench(agentd, url)
        bench.reset()
        fire = Agent(url.secret(), agentd.queues["bench"], wait=0)
        fire.Bench().count()  # warms the sending path; counted, then reset below
        _wait_for_count(bench, 1)
        bench.reset()
        share = FIRE_REQUESTS // FIRE_SENDERS
        started, sent = _in_threads(
            FIRE_SENDERS, lambda: lambda: [fire.Bench().count() for _ in range(share)]
        )
        counted = _wait_for_count(bench, share * FIRE_SENDERS)
    total = counted["count"]
    if total != share * FIRE_SENDERS:
        raise RuntimeError(f"goferd ran {total} of {share * FIRE_SENDERS} requests")
    elapsed = counted["last"] - started
    _progress(f"fire-and-forget: sent in {sent:.2f}s, all run after {elapsed:.2f}s")
    return [
        Row(
            f"fire-and-forget, {_count(total)} requests, end to end (req/s)",
            total / elapsed,
            better=HIGHER,
            target=">= 3,000 req/s",
        ),
        Row(f"  sending alone, {FIRE_SENDERS} threads (req/s)", total / sent, better=HIGHER),
    ]


def _wait_for_count(bench: Any, total: int, limit: float = 300.0) -> dict[str, Any]:
    """The plugin's tally once it has counted ``total`` calls (or after ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    while True:
        counted: dict[str, Any] = bench.counted()
        if counted["count"] >= total or time.monotonic() > deadline:
            return counted
        time.sleep(0.1)


def _in_threads(threads: int, make: Callable[[], Callable[[], object]]) -> tuple[float, float]:
    """Run ``make()()`` in each of ``threads`` threads, from the same moment.

    Returns:
        That moment (``time.time()``, which goferd's plugin uses too), and
        the seconds until every thread was done.

    Raises:
        RuntimeError: a thread failed (the first error is chained).
    """
    errors: list[BaseException] = []
    starts: list[float] = []
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        run = make()
        try:
            barrier.wait(CALL_TIMEOUT)
            starts.append(time.time())
            run()
        except Exception as exc:  # noqa: BLE001 - reported by the calling thread
            errors.append(exc)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait(CALL_TIMEOUT)
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    if errors:
        raise RuntimeError(f"a caller thread failed: {errors[0]!r}") from errors[0]
    return min(starts), time.perf_counter() - started


def _calls(call: Callable[[], object], total: int, threads: int) -> float:
    """``total`` calls of ``call`` shared by ``threads`` threads; gives the seconds taken."""
    numbers = itertools.count()  # next() on it is atomic in CPython

    def run() -> None:
        while next(numbers) < total and not rmi._finished.is_set():
            call()

    return _in_threads(threads, lambda: run)[1]


# -- the fork model -------------------------------------------------------------------


def fork_model(url: Url, options: argparse.Namespace) -> list[Row]:
    """The same trivial method, ``@remote`` + ``@fork`` against direct; calls interleaved."""
    calls = _sizes(options, 100, 500)
    direct: list[float] = []
    forked: list[float] = []
    with rmi.goferd(url, plugins=BENCH) as agentd:
        bench = _bench(agentd, url)
        for _ in range(options.warmup):
            bench.nothing()
            bench.forked()
        for _ in range(calls):
            for method, times in ((bench.nothing, direct), (bench.forked, forked)):
                before = time.perf_counter()
                method()
                times.append(time.perf_counter() - before)
    overhead = _p50(forked) - _p50(direct)
    _progress(f"fork model: p50 {_p50(forked):.2f} ms forked, {_p50(direct):.2f} ms direct")
    return [
        Row(f"fork-model call p50 (ms), floor: direct, {calls} each", _p50(forked), _p50(direct)),
        Row("  fork-model overhead, p50 difference (ms)", overhead, target="<= 10 ms"),
    ]


# -- 1 MiB ----------------------------------------------------------------------------


class _Echo:
    """A caller of ``Bench.echo`` with one payload (a :class:`rmi.Caller`)."""

    def __init__(self, bench: Any, payload: str) -> None:
        self._bench = bench
        self._payload = payload

    def call(self) -> None:
        if self._bench.echo(self._payload) != self._payload:
            raise RuntimeError("Bench.echo answered something else")

    def close(self) -> None:
        pass


def mebibyte(url: Url, options: argparse.Namespace) -> list[Row]:
    """The round trip of a 1 MiB string through ``Bench.echo``, against py-amqp's 1 MiB floor."""
    calls = _sizes(options, 20, 100)
    warmup = 3
    payload = "x" * (1 << 20)
    with rmi.goferd(url, plugins=BENCH) as agentd:
        caller = _Echo(_bench(agentd, url), payload)
        gofer = _latency(lambda: caller, calls, warmup, Meter(agentd.pid, None))
    with rmi.floor_server(url, confirms=True) as server:
        floor = _latency(
            lambda: rmi.FloorCaller(url, server.queue, True, payload.encode()),
            calls,
            warmup,
            Meter(server.pid, None),
        )
    return [
        Row(
            f"1 MiB echo round trip p50 (ms), {calls} calls",
            gofer.percentile(50),
            floor.percentile(50),
        )
    ]


# -- start-up -------------------------------------------------------------------------

#: The floor of the start-up: a bare py-amqp process that consumes the queue.
_FLOOR_CONSUMER = """
import os, amqp
connection = amqp.Connection(host=os.environ["BENCH_HOST"], userid=os.environ["BENCH_USER"],
    password=os.environ["BENCH_PASSWORD"], virtual_host=os.environ["BENCH_VHOST"])
connection.connect()
channel = connection.channel()
channel.queue_declare(os.environ["BENCH_QUEUE"], durable=True, auto_delete=False)
channel.basic_consume(os.environ["BENCH_QUEUE"], callback=lambda message: None)
while True:
    connection.drain_events()
"""


class _Consumers:
    """Reads how many consumers a queue has (a passive declare), or None while it is missing."""

    def __init__(self, url: Url) -> None:
        self._connection = _connect(url, confirms=False)

    def __call__(self, queue: str) -> int | None:
        channel = self._connection.channel()
        try:
            _, _, consumers = channel.queue_declare(queue, passive=True)
        except amqp.exceptions.NotFound:
            return None  # the broker closed the channel
        channel.close()
        return int(consumers)

    def close(self) -> None:
        rmi._close(self._connection)


def startup(url: Url, options: argparse.Namespace) -> list[Row]:
    """From goferd's process start (Popen) to READY=1, to serving, to its first call answered.

    Serving means: the management socket answers ``show`` and the plugin's
    queue has a consumer. The floor is a bare py-amqp process started the
    same way that declares the queue and consumes it. Each is started
    ``runs`` times; the figures are medians.
    """
    runs = _sizes(options, 3, 10)
    consumers = _Consumers(url)
    with contextlib.suppress(GoferError):  # warms this process's sending and reply path
        Agent(url.secret(), "bench.gofer.missing", wait=2).Admin().hello()
    try:
        marks = [_start_goferd(url, consumers) for _ in range(runs)]
        floors = [_start_floor(url, consumers) for _ in range(runs)]
    finally:
        consumers.close()

    def median(key: str) -> float:
        return statistics.median(mark[key] for mark in marks)

    _progress(f"start-up: serving after {[round(m['serving'], 3) for m in marks]} s")
    return [
        Row(f"start-up to sd_notify READY=1 (s), median of {runs}", median("ready")),
        Row(
            "start-up to serving: mgt socket answers, queue consumed (s)",
            median("serving"),
            statistics.median(floors),
            target="<= 0.3 s",
        ),
        Row("start-up to first call answered (s)", median("call")),
    ]


def _start_goferd(url: Url, consumers: _Consumers) -> dict[str, float]:
    """Start one goferd and time what it does; stops it and deletes its queue."""
    with tempfile.TemporaryDirectory(prefix="gofer-bench-start-") as top:
        root, queues = rmi.gofer_root(Path(top), url, BENCH)
        queue = queues["bench"]
        management = ManagementClient(root / "run/gofer/goferd.sock", timeout=1)
        agent = Agent(url.secret(), queue, wait=CALL_TIMEOUT)
        marks: dict[str, float] = {}
        with _notify_socket(Path(top) / "notify") as (address, notified):
            started = time.perf_counter()
            process = rmi.spawn_goferd(root, root / "goferd.log", env={"NOTIFY_SOCKET": address})
            try:
                while not {"ready", "call"} <= marks.keys():
                    if process.poll() is not None or time.perf_counter() - started > START_TIMEOUT:
                        raise RuntimeError(
                            f"goferd did not start:\n{rmi._tail(root / 'goferd.log')}"
                        )
                    _look(marks, "ready", notified)
                    _look(marks, "management", lambda: _answers(management))
                    _look(marks, "consumer", lambda: bool(consumers(queue)))
                    if "call" not in marks and {"management", "consumer"} <= marks.keys():
                        marks["serving"] = max(marks["management"], marks["consumer"])
                        agent.Admin().hello()
                        marks["call"] = time.perf_counter()
                    else:
                        time.sleep(POLL)
            finally:
                rmi.stop_goferd(process)
                _delete_queues(url, [queue])
        return {key: mark - started for key, mark in marks.items()}


def _look(marks: dict[str, float], key: str, happened: Callable[[], bool]) -> None:
    """Note the time ``key`` first happened."""
    if key not in marks and happened():
        marks[key] = time.perf_counter()


def _answers(management: ManagementClient) -> bool:
    try:
        management.call("show")
    except (GoferError, OSError):
        return False
    return True


@contextlib.contextmanager
def _notify_socket(path: Path) -> Iterator[tuple[str, Callable[[], bool]]]:
    """A socket standing in for systemd's: its address, and whether READY=1 came."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)

        def ready() -> bool:
            with contextlib.suppress(BlockingIOError):
                while True:
                    if b"READY=1" in sock.recv(4096).split(b"\n"):
                        return True
            return False

        yield str(path), ready


def _start_floor(url: Url, consumers: _Consumers) -> float:
    """Seconds from the start of the floor's consumer process until the queue has its consumer."""
    queue = f"bench.floor.start.{os.urandom(4).hex()}"
    env = {
        **os.environ,
        "BENCH_HOST": f"{url.host}:{url.port}",
        "BENCH_USER": url.userid or "guest",
        "BENCH_PASSWORD": url.password or "guest",
        "BENCH_VHOST": url.virtual_host or "/",
        "BENCH_QUEUE": queue,
    }
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", _FLOOR_CONSUMER], env=env, stdin=subprocess.DEVNULL
    )
    try:
        while not consumers(queue):
            if process.poll() is not None or time.perf_counter() - started > START_TIMEOUT:
                raise RuntimeError("the floor's consumer did not start")
            time.sleep(POLL)
        return time.perf_counter() - started
    finally:
        process.kill()
        process.wait(5)
        _delete_queues(url, [queue])


# -- CPU, memory, descriptors, connections ----------------------------------------------


def idle_cpu(url: Url, options: argparse.Namespace) -> list[Row]:
    """goferd's CPU while it serves the demo plugin and nobody calls, in % of one core."""
    seconds = _sizes(options, 10, 30)
    with rmi.goferd(url) as agentd:
        time.sleep(2)  # start-up is over
        before, ticks = procfs.cpu_ns(agentd.pid), rmi._cpu_seconds(agentd.pid)
        time.sleep(seconds)
        after, ticks_after = procfs.cpu_ns(agentd.pid), rmi._cpu_seconds(agentd.pid)
    if before is None or after is None or ticks is None or ticks_after is None:
        raise RuntimeError("goferd's CPU time could not be read")
    share = (after - before) / 1e9 / seconds * 100
    _progress(f"idle CPU: {share:.4f} % ({(ticks_after - ticks) * 100 / seconds:.3f} % by ticks)")
    return [Row(f"idle CPU over {seconds} s (% of a core)", share, target="<= 0.05 %")]


def memory(url: Url, options: argparse.Namespace) -> list[Row]:
    """goferd's resident memory idle, and after 100,000 synchronous calls (10,000 ``--quick``)."""
    total = _sizes(options, 10_000, 100_000)
    first = total // 10
    with rmi.goferd(url, plugins=BENCH) as agentd:
        bench = _bench(agentd, url)
        time.sleep(1)
        idle = procfs.rss_mib(agentd.pid)
        seconds = _calls(lambda: bench.echo("x"), first, LOAD_CALLERS)
        early = procfs.rss_mib(agentd.pid)
        seconds += _calls(lambda: bench.echo("x"), total - first, LOAD_CALLERS)
        after = procfs.rss_mib(agentd.pid)
    if idle is None or early is None or after is None:
        raise RuntimeError("goferd's memory could not be read")
    _progress(f"memory: {total} calls at {total / seconds:.0f}/s; RSS {idle:.1f} -> {after:.1f}")
    return [
        Row("RSS idle (MiB)", idle, target="<= 30 MiB"),
        Row(f"RSS growth over {_count(total)} calls (MiB)", after - idle, target="<= 2 MiB"),
        Row(f"  of which after the first {_count(first)} calls (MiB)", after - early),
    ]


def descriptors(url: Url, options: argparse.Namespace) -> list[Row]:
    """goferd's open descriptors before and after 10,000 fork-model calls (1,000 ``--quick``)."""
    total = _sizes(options, 1_000, 10_000)
    warmup = 10
    with rmi.goferd(url, plugins=BENCH) as agentd:
        bench = _bench(agentd, url)
        for _ in range(warmup):
            bench.forked()
        time.sleep(0.5)
        before = procfs.open_fds(agentd.pid)
        seconds = _calls(bench.forked, total, LOAD_CALLERS)
        time.sleep(0.5)  # the last children are reaped
        after = procfs.open_fds(agentd.pid)
    if before is None or after is None:
        raise RuntimeError("goferd's descriptors could not be read")
    _progress(f"descriptors: {total} fork calls at {total / seconds:.0f}/s; {before} -> {after}")
    return [
        Row(f"open fds after {warmup} fork-model calls", before),
        Row(f"  growth over {_count(total)} more", after - before, target="0 (no growth)"),
    ]


def connections(url: Url, options: argparse.Namespace) -> list[Row]:
    """Broker connections one goferd holds with 1 and with 10 plugins on the same broker.

    Counted exactly: goferd's established TCP sockets to the broker's port.
    """
    rows = []
    for count in (1, MANY_PLUGINS):
        plugins = BENCH if count == 1 else [(f"bench{i}", BENCH[0][1]) for i in range(count)]
        with rmi.goferd(url, plugins=plugins) as agentd:  # every queue answered a call
            held = procfs.connections_to(agentd.pid, url.port)
        rows.append(Row(f"broker connections, {count} plugin(s) on one broker", held, target="1"))
    return rows
