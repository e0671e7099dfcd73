"""How fast a gofer RMI call is against RabbitMQ, next to a bare py-amqp request/reply (the floor).

Usage::

    .venv/bin/python benchmarks/rmi.py [--calls N] [--seconds S] [--quick] [--url URL]
    .venv/bin/python benchmarks/rmi.py --profile [--calls N]

One run measures three systems, one after the other, on the same broker:

- **floor**: the least a request/reply over py-amqp costs. A server process
  (``AGENT_THREADS`` threads, each with its own connection and prefetch 1,
  like goferd's workers) consumes a durable request queue, publishes the
  reply to the caller's reply queue, then acks. Each caller has its own
  connection and exclusive reply queue (consumed without acks); every message
  is persistent and mandatory. "floor" publishes with confirms on both sides,
  as gofer does; "no confirms" is the same without them.
- **gofer**: a real goferd, started from a temporary ``GOFER_ROOT`` (the
  repository's ``agent.conf``, the demo plugin with ``threads=AGENT_THREADS``
  on a queue of its own), called with ``Agent(url, queue).Demo().echo("x")``.
  Caller threads share one ``Agent`` (the supported use); one more run gives
  each thread an ``Agent`` of its own.

For each: the latency of N synchronous calls in a row (p50/p90/p99), then
the throughput of 1, 4 and 16 caller threads, each calling for a fixed time.
CPU per call is read from ``/proc`` for this process (the callers), the
server process (the floor's server or goferd) and the broker when it runs
on this machine (the process listening on the URL's port; it serves other
clients too, so its figure is an upper bound). The broker is shared: a run
during which the broker connections broke (another client dropped them, or
restarted the broker) is run again.
The results are figures and ratios; the targets of the issue are printed
next to them, nothing is asserted.

:func:`goferd` (any plugins, any adapter's URL), :func:`floor_server` and
the runs are also used by ``benchmarks/agent.py``, ``benchmarks/adapters.py``
and ``benchmarks/all.py``, which runs every benchmark and prints one table.

``--profile`` measures nothing of the above: it runs goferd under cProfile
(every thread), makes N synchronous calls with cProfile on in the caller, and
prints where the time went on both sides.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import multiprocessing
import os
import platform
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import amqp
import procfs

from gofer.agent.management import ManagementClient
from gofer.cli import goferd as goferd_cli
from gofer.errors import GoferError
from gofer.messaging.url import Url
from gofer.proxy import Agent
from gofer.rmi import transport

REPO = Path(__file__).resolve().parent.parent
#: Worker threads of goferd's plugin, and of the floor's server.
AGENT_THREADS = 4
#: Caller threads of the throughput runs.
CALLERS = (1, 4, 16)
#: The floor's message body: about the size of gofer's request for ``echo("x")``.
PAYLOAD = b"x" * 300
#: Seconds one call may take before the run counts as broken.
CALL_TIMEOUT = 30.0
#: Seconds the latency run may take at most (it stops early with fewer calls).
LATENCY_LIMIT = 60.0
#: Seconds goferd has to answer its management socket and take a call.
START_TIMEOUT = 60.0
#: Seconds goferd has to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 40.0
#: Times a run is tried when the broker connections break under it.
ATTEMPTS = 3

#: Set when the run is over (or interrupted): caller threads stop at their next call.
_finished = threading.Event()


class Caller(Protocol):
    """Makes one synchronous call; confined to one thread."""

    def call(self) -> None: ...

    def close(self) -> None: ...


@dataclasses.dataclass
class Measure:
    """What one run did: calls, wall time, latencies and CPU seconds spent."""

    calls: int
    seconds: float
    latencies: list[float]
    caller_cpu: float
    server_cpu: float | None
    broker_cpu: float | None

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def percentile(self, p: int) -> float | None:
        """The ``p``-th percentile of the latencies, in milliseconds."""
        if len(self.latencies) < 2:
            return None
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1] * 1000

    def cpu_per_call(self, cpu: float | None) -> float | None:
        """``cpu`` seconds per call, in milliseconds."""
        if cpu is None or not self.calls:
            return None
        return cpu / self.calls * 1000


@dataclasses.dataclass
class Side:
    """Every run of one system (gofer or a floor)."""

    name: str
    sync: Measure
    throughput: dict[str, Measure]


# -- CPU from /proc -------------------------------------------------------------


def _cpu_seconds(pid: int | None) -> float | None:
    """User plus system CPU seconds of process ``pid`` so far, or None."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _broker_pid(url: Url) -> int | None:
    """The pid of the broker (the process listening on the URL's port), when the URL points here.

    Found by its listening socket, not by name: RabbitMQ (5672) and Broker-J
    (5673) both run here, and only the port tells which one a URL means.
    """
    if url.host not in ("localhost", "127.0.0.1", "::1"):
        return None
    return procfs.listener_pid(url.port)


def _difference(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


class Meter:
    """Wall time and CPU time between :meth:`start` and :meth:`stop`.

    CPU is counted in this process (every thread), in the server process
    (the floor's server or goferd) and in the broker.
    """

    def __init__(self, server_pid: int, broker: Url | None) -> None:
        self._server_pid = server_pid
        self._broker = broker
        self._broker_pid: int | None = None
        self._started: tuple[float, float, float | None, float | None] = (0.0, 0.0, None, None)

    def start(self) -> None:
        # Looked up each time: other engineers restart the shared broker.
        self._broker_pid = _broker_pid(self._broker) if self._broker is not None else None
        self._started = (
            time.perf_counter(),
            time.process_time(),
            _cpu_seconds(self._server_pid),
            _cpu_seconds(self._broker_pid),
        )

    def elapsed(self) -> float:
        return time.perf_counter() - self._started[0]

    def stop(self, calls: int, latencies: list[float] | None = None) -> Measure:
        wall, own, server, broker = self._started
        return Measure(
            calls=calls,
            seconds=time.perf_counter() - wall,
            latencies=latencies or [],
            caller_cpu=time.process_time() - own,
            server_cpu=_difference(_cpu_seconds(self._server_pid), server),
            broker_cpu=_difference(_cpu_seconds(self._broker_pid), broker),
        )


# -- the runs, the same for every system ---------------------------------------


def _latency(make_caller: Callable[[], Caller], calls: int, warmup: int, meter: Meter) -> Measure:
    """``calls`` synchronous calls in a row (fewer if they take over LATENCY_LIMIT)."""
    caller = make_caller()
    try:
        for _ in range(warmup):
            caller.call()
        latencies = []
        meter.start()
        for _ in range(calls):
            if _finished.is_set() or meter.elapsed() > LATENCY_LIMIT:
                break
            before = time.perf_counter()
            caller.call()
            latencies.append(time.perf_counter() - before)
        return meter.stop(len(latencies), latencies)
    finally:
        caller.close()


def _throughput(
    make_caller: Callable[[], Caller], threads: int, seconds: float, meter: Meter
) -> Measure:
    """``threads`` callers, each making calls in a row for ``seconds``."""
    barrier = threading.Barrier(threads + 1)
    counts: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            caller = make_caller()
        except Exception as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)
            barrier.abort()
            return
        try:
            barrier.wait(timeout=CALL_TIMEOUT)
            calls, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds and not _finished.is_set():
                caller.call()
                calls += 1
            counts.append(calls)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)
        finally:
            caller.close()

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=CALL_TIMEOUT)
        meter.start()
        for worker in workers:
            worker.join(seconds + CALL_TIMEOUT * 2)
    except KeyboardInterrupt:
        _finished.set()  # the callers stop at their next call
        raise
    measure = meter.stop(sum(counts))
    if errors:
        raise RuntimeError(f"a caller failed: {errors[0]!r}") from errors[0]
    if len(counts) != threads:
        raise RuntimeError("a caller did not finish in time")
    return measure


def _repeated(what: str, run: Callable[[], Measure], spoilt: Callable[[], object]) -> Measure:
    """``run``, again (up to ATTEMPTS times) when the broker connections broke under it.

    The broker is shared: another client may close every connection on it
    (the test suite's ``scripts/rabbitmq drop-connections`` does). A floor
    caller fails then; gofer reconnects by itself, which ``spoilt`` (a
    token that changes with every reconnect) reveals.
    """
    for attempt in range(1, ATTEMPTS + 1):
        before = spoilt()
        try:
            measure = run()
        except Exception as exc:  # noqa: BLE001 - the run is repeated; the error is shown
            problem = repr(exc)
        else:
            if spoilt() == before:
                return measure
            problem = "a broker connection was lost and re-opened"
        _progress(f"{what}: attempt {attempt} of {ATTEMPTS} spoilt: {problem}")
        time.sleep(5)
    raise RuntimeError(f"{what}: no attempt went through; is somebody restarting the broker?")


def _run_side(
    name: str,
    make_caller: Callable[[], Caller],
    *,
    meter: Meter,
    options: argparse.Namespace,
    each: Callable[[], Caller] | None = None,
    spoilt: Callable[[], object] = lambda: None,
) -> Side:
    """The latency run (after a warm-up) and the throughput runs of one system."""
    sync = _repeated(
        f"{name} sync",
        lambda: _latency(make_caller, options.calls, options.warmup, meter),
        spoilt,
    )
    _progress(f"{name}: sync p50 {_figure(sync.percentile(50))} ms over {sync.calls} calls")
    runs: dict[str, Measure] = {}
    variants = [(str(n), make_caller, n) for n in CALLERS]
    if each is not None:
        variants.append((f"{CALLERS[-1]}-each", each, CALLERS[-1]))
    for key, make, threads in variants:

        def run(make: Callable[[], Caller] = make, threads: int = threads) -> Measure:
            return _throughput(make, threads, options.seconds, meter)

        runs[key] = _repeated(f"{name} {key} caller(s)", run, spoilt)
        _progress(f"{name}: {key} caller(s) {runs[key].rate:.0f} calls/s")
    return Side(name, sync, runs)


def _progress(text: str) -> None:
    print(f"  .. {text}", file=sys.stderr, flush=True)


# -- the floor: py-amqp alone ----------------------------------------------------


def _connect(url: Url, confirms: bool) -> amqp.Connection:
    connection = amqp.Connection(
        host=f"{url.host}:{url.port}",
        userid=url.userid if url.userid is not None else "guest",
        password=url.password if url.password is not None else "guest",
        virtual_host=url.virtual_host or "/",
        confirm_publish=confirms,
        connect_timeout=10,
    )
    connection.connect()
    return connection


def _close(connection: amqp.Connection) -> None:
    with contextlib.suppress(Exception):
        connection.close()


class FloorCaller:
    """A floor caller: its own connection and exclusive reply queue; one thread only."""

    def __init__(self, url: Url, queue: str, confirms: bool, payload: bytes = PAYLOAD) -> None:
        self._connection = _connect(url, confirms)
        self._payload = payload
        self._channel = self._connection.channel()
        self._queue = queue
        self._reply_to, _, _ = self._channel.queue_declare("", exclusive=True, auto_delete=True)
        self._replies: list[amqp.Message] = []
        self._channel.basic_consume(self._reply_to, callback=self._replies.append, no_ack=True)
        self._sent = 0

    def call(self) -> None:
        self._sent += 1
        correlation = str(self._sent)
        request = amqp.Message(
            self._payload, delivery_mode=2, reply_to=self._reply_to, correlation_id=correlation
        )
        self._channel.basic_publish(request, exchange="", routing_key=self._queue, mandatory=True)
        deadline = time.monotonic() + CALL_TIMEOUT
        while True:
            while self._replies:
                if self._replies.pop(0).properties.get("correlation_id") == correlation:
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no reply to request {correlation} of the floor")
            self._connection.drain_events(timeout=remaining)

    def close(self) -> None:
        _close(self._connection)


def _floor_server(url: str, queue: str, confirms: bool, ready: Any, stop: Any) -> None:
    """The floor's server process: AGENT_THREADS consumers, until ``stop`` is set."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    subscribed = threading.Barrier(AGENT_THREADS + 1)
    workers = [
        threading.Thread(
            target=_floor_serve, args=(Url.parse(url), queue, confirms, subscribed, stop)
        )
        for _ in range(AGENT_THREADS)
    ]
    for worker in workers:
        worker.start()
    subscribed.wait(timeout=CALL_TIMEOUT)
    ready.set()
    for worker in workers:
        worker.join()


def _floor_serve(
    url: Url, queue: str, confirms: bool, subscribed: threading.Barrier, stop: Any
) -> None:
    """One server thread: serves until ``stop``, connecting again when another client drops it."""
    waited = False

    def on_subscribed() -> None:
        nonlocal waited
        if not waited:
            waited = True
            subscribed.wait(timeout=CALL_TIMEOUT)

    while not stop.is_set():
        try:
            _floor_serve_connected(url, queue, confirms, on_subscribed, stop)
        except (amqp.exceptions.AMQPError, OSError):
            stop.wait(0.5)


def _floor_serve_connected(
    url: Url, queue: str, confirms: bool, on_subscribed: Callable[[], None], stop: Any
) -> None:
    """Take a request, publish its reply, then ack the request; until ``stop``."""
    connection = _connect(url, confirms)
    try:
        channel = connection.channel()
        channel.basic_qos(0, 1, False)
        requests: list[amqp.Message] = []
        channel.basic_consume(queue, callback=requests.append)
        on_subscribed()
        while True:
            try:
                connection.drain_events(timeout=0.2)
            except TimeoutError:
                if stop.is_set():
                    return
                continue
            # Replied outside the delivery callback: a confirm is a nested wait.
            while requests:
                request = requests.pop(0)
                properties = request.properties
                reply = amqp.Message(
                    request.body, delivery_mode=2, correlation_id=properties.get("correlation_id")
                )
                channel.basic_publish(reply, exchange="", routing_key=properties["reply_to"])
                channel.basic_ack(request.delivery_tag)
    finally:
        _close(connection)


def _declare(url: Url, queue: str) -> str:
    """Declare the floor's durable request queue; gives the broker's product and version."""
    connection = _connect(url, confirms=False)
    try:
        connection.channel().queue_declare(queue, durable=True, auto_delete=False)
        properties = connection.server_properties or {}
        return f"{properties.get('product', '?')} {properties.get('version', '?')}"
    finally:
        _close(connection)


def _delete_queues(url: Url, names: list[str]) -> None:
    """Delete what this run left on the broker (quietly: it may be gone already)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            connection = _connect(url, confirms=False)
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the run's outcome
            if attempt == ATTEMPTS:
                print(f"queues {names} not deleted: {exc}", file=sys.stderr)
                return
            time.sleep(2)  # the broker may be restarting
            continue
        try:
            for name in names:
                with contextlib.suppress(Exception):
                    connection.channel().queue_delete(name)
        finally:
            _close(connection)
        return


@dataclasses.dataclass(frozen=True)
class FloorServer:
    """A floor's server process started by :func:`floor_server`."""

    pid: int
    queue: str
    broker: str  # its product and version


@contextlib.contextmanager
def floor_server(url: Url, confirms: bool) -> Iterator[FloorServer]:
    """The floor's server process, serving a queue of its own until the block ends.

    The process is stopped and its queue deleted on the way out.
    """
    queue = f"bench.rmi.floor.{uuid.uuid4().hex[:8]}"
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    server = context.Process(
        target=_floor_server, args=(url.secret(), queue, confirms, ready, stop), daemon=True
    )
    try:
        broker = _declare(url, queue)
        server.start()
        if not ready.wait(START_TIMEOUT):
            raise RuntimeError("the floor's server did not start")
        assert server.pid is not None
        yield FloorServer(server.pid, queue, broker)
    finally:
        stop.set()
        server.join(5)
        if server.is_alive():
            server.terminate()
            server.join(5)
        _delete_queues(url, [queue])


def run_floor(url: Url, confirms: bool, options: argparse.Namespace) -> Side:
    """Start the floor's server process, measure, stop it and delete its queue."""
    name = "floor" if confirms else "floor (no confirms)"
    with floor_server(url, confirms) as server:
        options.broker = server.broker
        return _run_side(
            name,
            lambda: FloorCaller(url, server.queue, confirms),
            meter=Meter(server.pid, url),
            options=options,
        )


# -- gofer: a real goferd and gofer.proxy.Agent -----------------------------------


class GoferCaller:
    """A gofer caller: ``Demo().echo("x")`` through an Agent (shared or its own)."""

    def __init__(self, agent: Agent) -> None:
        self._agent = agent

    def call(self) -> None:
        if self._agent.Demo().echo("x") != "x":
            raise RuntimeError("Demo.echo answered something else")

    def close(self) -> None:
        pass


#: The plugins goferd serves unless told otherwise: (name, module file) of each.
DEMO = (("demo", REPO / "plugins/demo.py"),)


def gofer_root(
    top: Path,
    url: Url,
    plugins: Sequence[tuple[str, Path]] = DEMO,
    threads: int = AGENT_THREADS,
) -> tuple[Path, dict[str, str]]:
    """A GOFER_ROOT below ``top`` like scripts/demo makes, each plugin on a queue of its own.

    Args:
        top: an empty directory.
        url: the broker of every plugin.
        plugins: (name, module file) of each plugin.
        threads: each plugin's worker threads.

    Returns:
        The root, and the queue of each plugin by name.
    """
    root = top / "root"
    (root / "etc/gofer/plugins").mkdir(parents=True)
    (root / "usr/share/gofer/plugins").mkdir(parents=True)
    shutil.copy(REPO / "etc/gofer/agent.conf", root / "etc/gofer/agent.conf")
    token = uuid.uuid4().hex[:8]
    queues = {}
    for name, module in plugins:
        queues[name] = f"bench.gofer.{name}.{token}"
        shutil.copy(module, root / f"usr/share/gofer/plugins/{name}.py")
        (root / f"etc/gofer/plugins/{name}.conf").write_text(
            f"[main]\nenabled=1\nthreads={threads}\n\n"
            f"[messaging]\nurl={url.secret()}\n\n"
            f"[model]\nqueue={queues[name]}\nmanaged=2\n"
        )
    return root, queues


def sysconfig() -> dict[str, str]:
    """The ``KEY=value`` settings of the repository's ``etc/sysconfig/goferd``."""
    settings = {}
    for line in (REPO / "etc/sysconfig/goferd").read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            settings[key] = value.strip('"')
    return settings


def spawn_goferd(
    root: Path, log: Path, command: list[str] | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start goferd from ``root`` (or ``command``), its output going to ``log``.

    Its environment has the shipped ``/etc/sysconfig/goferd`` settings, as
    systemd would give them (``EnvironmentFile=``).
    """
    environment = {**os.environ, **sysconfig(), "GOFER_ROOT": str(root), **(env or {})}
    if env is None or "NOTIFY_SOCKET" not in env:
        environment.pop("NOTIFY_SOCKET", None)  # we are its supervisor, not systemd
    with log.open("wb") as output:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and goferd
            command
            or [str(Path(sys.executable).parent / "goferd"), "--foreground", "--log", "stderr"],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            start_new_session=True,  # Ctrl-C reaches us; we stop goferd ourselves
        )


@dataclasses.dataclass(frozen=True)
class Goferd:
    """A goferd started by :func:`goferd`."""

    pid: int
    queue: str  # the first plugin's
    log: Path
    root: Path
    queues: dict[str, str]  # each plugin's, by name

    def reconnects(self) -> object:
        """A token that changes whenever goferd or this process re-opens a broker connection."""
        # Private, but the only way to see that the shared transports reconnected.
        ours = sum(t.connection.generation for t in transport._transports.values())
        return ours, _read(self.log).count("reconnected to")


@contextlib.contextmanager
def goferd(
    url: Url,
    profile_to: Path | None = None,
    *,
    plugins: Sequence[tuple[str, Path]] = DEMO,
    threads: int = AGENT_THREADS,
) -> Iterator[Goferd]:
    """A running goferd serving ``plugins`` (the demo plugin), each on a queue of its own.

    goferd is stopped (SIGTERM, then SIGKILL) and its queues and our reply
    queues deleted on the way out, whatever happened. With ``profile_to``,
    goferd runs under cProfile and writes its stats there when it stops.
    """
    with tempfile.TemporaryDirectory(prefix="gofer-bench-") as top:
        root, queues = gofer_root(Path(top), url, plugins, threads)
        log = root / "goferd.log"
        command = None
        if profile_to is not None:
            command = [sys.executable, __file__, "--goferd-profile", str(profile_to)]
        process = spawn_goferd(root, log, command)
        try:
            _wait_until_serving(process, root, url, list(queues.values()), log)
            first = next(iter(queues.values()))
            yield Goferd(process.pid, first, log, root, queues)
        finally:
            stop_goferd(process)
            replies = [
                name
                for name in (
                    getattr(t, "_reply_queue", None) for t in transport._transports.values()
                )
                if name
            ]  # private, but cleaner than leaving them for the broker to expire
            transport.close_all()
            _delete_queues(url, [*queues.values(), *replies])


def _wait_until_serving(
    process: subprocess.Popen[bytes], root: Path, url: Url, queues: list[str], log: Path
) -> None:
    """Until the management socket answers ``show`` and every queue answers a call."""
    deadline = time.monotonic() + START_TIMEOUT
    client = ManagementClient(root / "run/gofer/goferd.sock", timeout=2)
    steps = iter(["show", *queues])
    step = next(steps)
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"goferd exited ({process.returncode}):\n{_tail(log)}")
        try:
            if step == "show":
                client.call("show")
            else:
                Agent(url.secret(), step, wait=5).Admin().hello()
            step = next(steps)
            continue
        except StopIteration:
            return
        except (GoferError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"goferd did not serve within {START_TIMEOUT:.0f}s:\n{_tail(log)}"
                ) from None
        time.sleep(0.2)


def stop_goferd(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT seconds; waits for the process."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _read(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")
    return ""


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(_read(path).splitlines()[-lines:])


def run_gofer(url: Url, options: argparse.Namespace) -> Side:
    """Start goferd and measure gofer."""
    with goferd(url) as agentd:
        shared = Agent(url.secret(), agentd.queue, wait=CALL_TIMEOUT)
        return _run_side(
            "gofer",
            lambda: GoferCaller(shared),
            meter=Meter(agentd.pid, url),
            options=options,
            each=lambda: GoferCaller(Agent(url.secret(), agentd.queue, wait=CALL_TIMEOUT)),
            spoilt=agentd.reconnects,
        )


# -- the report ------------------------------------------------------------------

_LOWER = "lower is better"
_HIGHER = "higher is better"


def _metrics(side: Side) -> dict[str, float | None]:
    """The figures of one system, by row label."""
    last = str(CALLERS[-1])
    loaded = side.throughput[last]
    values = {f"sync latency p{p} (ms)": side.sync.percentile(p) for p in (50, 90, 99)}
    for n in CALLERS:
        values[f"throughput, {n} caller(s) (calls/s)"] = side.throughput[str(n)].rate
    # Floor callers have a connection each anyway: their row repeats the plain run.
    each = side.throughput.get(f"{last}-each", loaded)
    values[f"throughput, {last} callers, an Agent each"] = each.rate
    for label, measure in (("sync", side.sync), (f"{last} callers", loaded)):
        values[f"caller CPU/call, {label} (ms)"] = measure.cpu_per_call(measure.caller_cpu)
        values[f"server CPU/call, {label} (ms)"] = measure.cpu_per_call(measure.server_cpu)
        values[f"broker CPU/call, {label} (ms)"] = measure.cpu_per_call(measure.broker_cpu)
    return values


def _ratio(value: float | None, base: float | None, kind: str) -> str:
    if value is None or not base:
        return "n/a"
    if kind == _HIGHER:
        return f"{value / base * 100:.0f} %"
    return f"{value / base:.2f}x"


def _figure(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def report(gofer: Side, floor: Side, bare: Side) -> None:
    """Print the table and the targets."""
    header = ("metric", "gofer", "floor", "gofer/floor", "no confirms", "gofer/nc")
    table = [header]
    figures = [_metrics(side) for side in (gofer, floor, bare)]
    for label in figures[0]:
        g, f, b = (values[label] for values in figures)
        kind = _HIGHER if label.startswith("throughput") else _LOWER
        table.append(
            (label, _figure(g), _figure(f), _ratio(g, f, kind), _figure(b), _ratio(g, b, kind))
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for number, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]
        print(" | ".join(cells))
        if number == 0:
            print("-+-".join("-" * w for w in widths))
    p50 = _ratio(gofer.sync.percentile(50), floor.sync.percentile(50), _LOWER)
    last = str(CALLERS[-1])
    share = _ratio(gofer.throughput[last].rate, floor.throughput[last].rate, _HIGHER)
    print()
    print("targets of the issue (against the floor with confirms):")
    print(f"  sync p50 <= 1.5x the floor's:                  {p50}")
    print(f"  {last}-caller throughput >= 60 % of the floor's:  {share}")


def _environment(options: argparse.Namespace, url: Url) -> None:
    """What the figures depend on: the machine, Python, py-amqp, the broker and its load."""
    background = "n/a (broker not local)"
    broker_pid = _broker_pid(url)
    if broker_pid is not None:
        before = _cpu_seconds(broker_pid)
        time.sleep(1)
        spent = _difference(_cpu_seconds(broker_pid), before)
        background = "n/a" if spent is None else f"{spent * 100:.0f} % of a core"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"CPUs {os.cpu_count()}, load {load}; Python {platform.python_version()},"
        f" py-amqp {amqp.__version__}; broker pid {broker_pid}, idle use {background}"
    )
    print(
        f"{options.calls} sync calls, {options.seconds:g}s per throughput run,"
        f" goferd and floor server with {AGENT_THREADS} worker threads"
    )


# -- profiles ---------------------------------------------------------------------


class ThreadProfiles:
    """cProfile in every thread started while installed (cProfile alone sees one thread).

    Times are each thread's CPU time, not wall time: these threads mostly
    wait (for the socket, for work), and waiting would hide what they spend.
    """

    def __init__(self) -> None:
        self._profiles: list[cProfile.Profile] = []
        self._original = threading.Thread.run

    def install(self) -> None:
        original, profiles = self._original, self._profiles

        def run(thread: threading.Thread) -> None:
            profile = cProfile.Profile(time.thread_time)
            profiles.append(profile)
            profile.enable()
            try:
                original(thread)
            finally:
                profile.disable()

        threading.Thread.run = run  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        threading.Thread.run = self._original  # type: ignore[method-assign]

    def stats(self, *more: cProfile.Profile) -> pstats.Stats | None:
        """The merged statistics of every thread so far (and of ``more``)."""
        profiles = [*more, *self._profiles]
        if not profiles:
            return None
        return pstats.Stats(*profiles, stream=sys.stdout)


def _profiled_goferd(out: Path) -> int:
    """Run goferd with every thread under cProfile; write the merged stats to ``out``."""
    threads = ThreadProfiles()
    threads.install()
    main = cProfile.Profile(time.thread_time)
    main.enable()
    try:
        return goferd_cli.main(["--foreground", "--log", "stderr"])
    finally:
        main.disable()
        threads.uninstall()
        stats = threads.stats(main)
        if stats is not None:
            stats.dump_stats(out)


class ProfilingMeter(Meter):
    """A meter that also runs cProfile (wall time) in the measuring thread."""

    def __init__(self, server_pid: int, broker: Url | None) -> None:
        super().__init__(server_pid, broker)
        self.profile = cProfile.Profile()

    def start(self) -> None:
        super().start()
        self.profile.enable()

    def stop(self, calls: int, latencies: list[float] | None = None) -> Measure:
        self.profile.disable()
        return super().stop(calls, latencies)


def _print_stats(title: str, stats: pstats.Stats | None, sort: str, count: int) -> None:
    print(f"\n== {title} (top {count} by {sort})")
    if stats is None:
        print("no profile")
        return
    stats.strip_dirs().sort_stats(sort).print_stats(count)


def profile(url: Url, options: argparse.Namespace) -> None:
    """Profile the synchronous gofer call on both sides."""
    threads = ThreadProfiles()
    threads.install()  # before the first call starts gofer's reply and I/O threads
    with tempfile.TemporaryDirectory(prefix="gofer-bench-prof-") as top:
        out = Path(top) / "goferd.prof"
        try:
            with goferd(url, profile_to=out) as agentd:
                agent = Agent(url.secret(), agentd.queue, wait=CALL_TIMEOUT)
                meter = ProfilingMeter(agentd.pid, None)
                measure = _latency(lambda: GoferCaller(agent), options.calls, options.warmup, meter)
        finally:
            threads.uninstall()
        print(
            f"{measure.calls} sync calls under cProfile:"
            f" p50 {_figure(measure.percentile(50))} ms,"
            f" CPU per call: caller {_figure(measure.cpu_per_call(measure.caller_cpu))} ms,"
            f" goferd {_figure(measure.cpu_per_call(measure.server_cpu))} ms"
        )
        calling = pstats.Stats(meter.profile, stream=sys.stdout)
        _print_stats("caller, the calling thread, wall time", calling, "cumulative", 25)
        _print_stats(
            "caller, gofer's reply and I/O threads, CPU time", threads.stats(), "tottime", 15
        )
        agentd_stats = pstats.Stats(str(out), stream=sys.stdout) if out.exists() else None
        _print_stats("goferd, every thread, CPU time", agentd_stats, "tottime", 25)
        _print_stats("goferd, every thread, CPU time", agentd_stats, "cumulative", 25)


# -- main -------------------------------------------------------------------------


def main() -> None:
    """Parse the arguments, then measure (or profile)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672", help="broker URL")
    parser.add_argument("--calls", type=int, default=None, help="sync calls (2000; --quick 300)")
    parser.add_argument(
        "--seconds", type=float, default=None, help="per throughput run (5; --quick 2)"
    )
    parser.add_argument("--quick", action="store_true", help="fewer calls, shorter runs")
    parser.add_argument("--profile", action="store_true", help="profile gofer's sync call instead")
    parser.add_argument("--goferd-profile", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.goferd_profile is not None:
        sys.exit(_profiled_goferd(options.goferd_profile))
    options.calls = options.calls or (300 if options.quick else 2000)
    options.seconds = options.seconds or (2.0 if options.quick else 5.0)
    options.warmup = 20 if options.quick else 50
    url = Url.parse(options.url)
    try:
        if options.profile:
            profile(url, options)
            return
        _environment(options, url)
        floor = run_floor(url, True, options)
        bare = run_floor(url, False, options)
        gofer = run_gofer(url, options)
        print(f"broker: {options.broker}\n")
        report(gofer, floor, bare)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        _finished.set()


if __name__ == "__main__":
    main()
