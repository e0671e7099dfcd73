"""goferd on the three-node RabbitMQ cluster: reconnect storms and failover, measured.

Usage::

    scripts/rabbitmq-cluster start
    .venv/bin/python benchmarks/failover.py [--plugins P] [--outage S] [--kills N]

Two runs, figures and no assertions:

- **reconnect storm**: one goferd with ``P`` plugins (the demo plugin under
  ``P`` names, each on a queue of its own), all on node c only. Node c is
  SIGKILLed and started again ``S`` seconds later. Printed: goferd's failed
  connection attempts during the outage (from its log), per second, and the
  time from the node being back to every plugin answering. With one
  reconnect loop per broker connection the attempts do not grow with ``P``.
- **failover**: one goferd with the demo plugin on a quorum queue, given
  the three nodes; one caller given the three too, calling without pause.
  ``N`` times, the node goferd is connected to (as ``gofer mgt -s`` shows
  it) is SIGKILLed, and started again once calls flow. Printed: how long
  calls stalled at each kill (the longest wait between two answered calls,
  from just before the kill until a call made after it is answered:
  p50, p99, max), and the calls that failed.

Both use goferd's default reconnect settings (1 s doubling to 60 s, full
jitter) unless ``--reconnect-max`` says otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from rmi import REPO, START_TIMEOUT, _delete_queues, spawn_goferd, stop_goferd

from gofer.agent.management import ManagementClient
from gofer.errors import GoferError
from gofer.messaging.url import Url
from gofer.proxy import Agent
from gofer.rmi import transport

CLUSTER = REPO / "scripts/rabbitmq-cluster"
PORTS = {"a": 5681, "b": 5682, "c": 5683}


def cluster(*args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own script
        [str(CLUSTER), *args], check=True, capture_output=True, text=True, timeout=300
    )
    return done.stdout.strip()


def node_url(node: str) -> str:
    return f"amqp://guest:guest@localhost:{PORTS[node]}"


def all_nodes() -> str:
    return ",".join(node_url(node) for node in PORTS)


def make_root(top: Path, url: str, plugins: int, queue_type: str, reconnect_max: float) -> Path:
    root = top / "root"
    (root / "etc/gofer/plugins").mkdir(parents=True)
    (root / "usr/share/gofer/plugins").mkdir(parents=True)
    agent = (REPO / "etc/gofer/agent.conf").read_text()
    # Every failed attempt, not the throttled warnings, is counted from the log.
    agent += "\n[logging]\ngofer.messaging.connection = DEBUG\n"
    (root / "etc/gofer/agent.conf").write_text(agent)
    token = f"{time.time_ns():x}"
    for n in range(plugins):
        name = f"demo{n}"
        (root / f"usr/share/gofer/plugins/{name}.py").write_text(
            (REPO / "plugins/demo.py").read_text()
        )
        (root / f"etc/gofer/plugins/{name}.conf").write_text(
            f"[main]\nenabled=1\n\n[messaging]\nurl={url}\nreconnect_max={reconnect_max}\n\n"
            f"[model]\nqueue=bench.failover.{name}.{token}\nqueue_type={queue_type}\n"
        )
    return root


def queues(root: Path) -> list[str]:
    found = []
    for path in sorted((root / "etc/gofer/plugins").glob("*.conf")):
        for line in path.read_text().splitlines():
            if line.startswith("queue="):
                found.append(line.partition("=")[2])
    return found


def answering(url: str, names: list[str], timeout: float) -> float | None:
    """Seconds until every queue answers Admin.hello(); None past ``timeout``."""
    began = time.monotonic()
    left = list(names)
    while left:
        if time.monotonic() - began > timeout:
            return None
        try:
            Agent(url, left[0], wait=2).Admin().hello()
            left.pop(0)
        except GoferError:
            time.sleep(0.1)
    return time.monotonic() - began


def failed_attempts(log: Path) -> int:
    """goferd's failed connection attempts so far (each plans the next, at debug level)."""
    return log.read_text(errors="replace").count("next attempt, to")


def storm(plugins: int, outage: float, reconnect_max: float) -> None:
    with tempfile.TemporaryDirectory(prefix="gofer-failover-") as top:
        url = node_url("c")
        root = make_root(Path(top), url, plugins, "classic", reconnect_max)
        log = root / "goferd.log"
        process = spawn_goferd(root, log)
        names = queues(root)
        try:
            if answering(url, names, START_TIMEOUT) is None:
                raise RuntimeError(f"goferd did not serve:\n{log.read_text()[-2000:]}")
            before = failed_attempts(log)
            cluster("kill", "c")
            killed = time.monotonic()
            time.sleep(outage)
            cluster("restart", "c")
            back = time.monotonic()
            recovery = answering(url, names, 120)
            attempts = failed_attempts(log) - before
            down = back - killed
            print(
                f"reconnect storm: {plugins} plugins, node down {down:.1f}s (kill to node ready):"
                f" {attempts} failed connection attempts ({attempts / down:.2f}/s);"
                f" every plugin answering {recovery:.2f}s after the node was ready"
                if recovery is not None
                else "reconnect storm: goferd did not answer within 120 s"
            )
        finally:
            stop_goferd(process)
            transport.close_all()
            _delete_queues(Url.parse(url), names)


def connected(root: Path) -> str | None:
    """The node goferd's plugin is connected to now."""
    shown = ManagementClient(root / "run/gofer/goferd.sock", timeout=5).call("show")
    where = shown["plugins"][0].get("connected") or ""
    for node, port in PORTS.items():
        if f":{port}" in where:
            return node
    return None


def stall(outcomes: list[tuple[float, float, bool]], issued: float, killed: float) -> float:
    """How long calls stalled at a kill issued at ``issued`` that ended at ``killed``.

    The longest wait between two answered calls, from just before the kill
    to the first answer to a call made after it (infinite after a minute).
    """
    while True:
        done = [end for began, end, ok in list(outcomes) if ok and began >= killed]
        if done:
            break
        if time.monotonic() - killed > 60:
            return float("inf")
        time.sleep(0.02)
    ends = sorted(end for _, end, ok in list(outcomes) if ok and issued - 1 <= end <= min(done))
    return max((b - a for a, b in zip(ends, ends[1:])), default=float("inf"))


def failover(kills: int, reconnect_max: float, verbose: bool = False) -> None:
    url = all_nodes()
    with tempfile.TemporaryDirectory(prefix="gofer-failover-") as top:
        root = make_root(Path(top), url, 1, "quorum", reconnect_max)
        log = root / "goferd.log"
        process = spawn_goferd(root, log)
        name = queues(root)[0]
        outcomes: list[tuple[float, float, bool]] = []
        errors: list[str] = []
        stopping = threading.Event()

        def call() -> None:
            agent = Agent(url, name, wait=10)
            while not stopping.is_set():
                began = time.monotonic()
                try:
                    ok = agent.Demo().echo("x") == "x"
                except GoferError as exc:
                    ok = False
                    errors.append(f"{type(exc).__name__}: {exc}")
                outcomes.append((began, time.monotonic(), ok))

        caller = threading.Thread(target=call, daemon=True)
        recoveries: list[float] = []
        try:
            if answering(url, [name], START_TIMEOUT) is None:
                raise RuntimeError(f"goferd did not serve:\n{log.read_text()[-2000:]}")
            caller.start()
            for _ in range(kills):
                time.sleep(2)
                victim = connected(root) or "a"
                issued = time.monotonic()
                cluster("kill", victim)  # returns once the node's process is gone
                recoveries.append(stall(outcomes, issued, time.monotonic()))
                if verbose:
                    print(f"  killed {victim}: calls stalled {recoveries[-1]:.2f}s")
                cluster("restart", victim)
        finally:
            stopping.set()
            caller.join(30)
            stop_goferd(process)
            transport.close_all()
            _delete_queues(Url.parse(node_url("a")), [name])
            if verbose:
                for line in log.read_text(errors="replace").splitlines():
                    if "done in" not in line:
                        print(line[:200])
        ordered = sorted(recoveries)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        failed = sum(1 for _, _, ok in outcomes if not ok)
        median = statistics.median(ordered)
        print(
            f"failover: {kills} kills of goferd's node: calls stalled p50 {median:.2f}s,"
            f" p99 {p99:.2f}s, max {ordered[-1]:.2f}s; {len(outcomes)} calls, {failed} failed"
        )
        for error in errors:
            print(f"  failed: {error}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugins", type=int, default=5)
    parser.add_argument("--outage", type=float, default=5.0)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--reconnect-max", type=float, default=60.0)
    parser.add_argument("--verbose", action="store_true", help="each kill's figures")
    args = parser.parse_args()
    cluster("start")
    if args.plugins:
        storm(args.plugins, args.outage, args.reconnect_max)
    if args.kills:
        failover(args.kills, args.reconnect_max, args.verbose)


if __name__ == "__main__":
    main()
