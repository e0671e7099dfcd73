"""gofer's sync latency and throughput over each adapter and broker pair, beside a 0-9-1 floor.

The pairs are those of the adapter contract suite (``tests/contract``):
amqp (py-amqp, 0-9-1), proton (AMQP 1.0) and qpid (0-10), on RabbitMQ and
Qpid Broker-J. For each, a real goferd serves the demo plugin on that URL
and is called through the same URL, as in :func:`rmi.run_gofer`. The floor
(:func:`rmi.run_floor`, py-amqp with confirms) is measured on the same broker
for the amqp pairs only: for the others there is no floor of their protocol.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import faulthandler
import multiprocessing
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import rmi
from rmi import CALLERS, REPO, Side, _progress
from table import HIGHER, Row, failed

from gofer.messaging.url import Url
from gofer.proxy import Agent

#: (adapter, broker) pairs; the broker's URL comes from the options.
PAIRS = (
    ("amqp", "RabbitMQ"),
    ("amqp", "Broker-J"),
    ("proton", "RabbitMQ"),
    ("proton", "Broker-J"),
    ("qpid", "Broker-J"),
)
#: Where ``scripts/broker-j`` runs Broker-J.
BROKERJ_PORT = int(os.environ.get("BROKERJ_PORT", "5673"))
#: The issue's targets against the floor, by row.
# The targets of the per-call work (issue 17; issue 8 had set 1.5x and 60 %).
P50_TARGET = "<= 2x floor"
THROUGHPUT_TARGET = ">= 50 % of floor"
CALLER_CPU_TARGET = "<= 3x floor"


def pair_url(adapter: str, broker: Url) -> Url:
    """The broker's URL through ``adapter`` (``proton+amqp://...``); amqp is the default."""
    return dataclasses.replace(broker, adapter=None if adapter == "amqp" else adapter)


def label(adapter: str, broker: str) -> str:
    return f"{adapter}+{broker}"


def reachable(url: Url, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((url.host, url.port), timeout=timeout):
            return True
    except OSError:
        return False


def start_brokerj() -> None:
    """``scripts/broker-j start``: idempotent; it fetches the broker once, then starts it."""
    _progress("Broker-J not reachable: scripts/broker-j start")
    subprocess.run(  # noqa: S603 - the project's own script
        ["bash", str(REPO / "scripts/broker-j"), "start"],  # noqa: S607 - bash from PATH
        check=True,
        timeout=600,
        stdout=subprocess.DEVNULL,
    )


def ensure_brokerj(url: Url) -> None:
    """Start Broker-J (:func:`start_brokerj`) unless ``url`` is reachable; failures are shown.

    Only a URL of the broker that script runs (here, on its port) is started.
    """
    ours = url.host in ("localhost", "127.0.0.1") and url.port == BROKERJ_PORT
    if not ours or reachable(url):
        return
    try:
        start_brokerj()
    except (OSError, subprocess.SubprocessError) as exc:
        _progress(f"Broker-J could not be started: {exc}")


def run_pair(url: Url, options: argparse.Namespace) -> Side:
    """A goferd serving the demo plugin over ``url``; sync latency and throughput through it."""
    name = f"gofer {url.adapter or 'amqp'}:{url.port}"
    with rmi.goferd(url) as agentd:
        shared = Agent(url.secret(), agentd.queue, wait=rmi.CALL_TIMEOUT)
        return rmi._run_side(
            name,
            lambda: rmi.GoferCaller(shared),
            meter=rmi.Meter(agentd.pid, url),
            options=options,
            spoilt=agentd.reconnects,
        )


def measure(adapter: str, broker: Url, options: argparse.Namespace) -> tuple[Side, Side | None]:
    """One pair's gofer figures and, for the amqp adapter, the floor on the same broker.

    Measured in a process of its own (spawned), so that a driver that
    crashes the calling process (a C extension such as python-qpid-proton
    can) costs that pair's rows only; the crash is then reported with its
    exit status, and ``faulthandler`` has printed every thread's stack.
    """
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    with tempfile.TemporaryDirectory(prefix="gofer-bench-pair-") as work:
        child = context.Process(
            target=_measure_in_child,
            args=(adapter, broker.secret(), vars(options), sending, work),
        )
        child.start()
        sending.close()
        try:
            result = receiving.recv()
        except EOFError:
            child.join(10)
            _clean_after(Path(work), broker)
            raise RuntimeError(f"the measuring process died ({_exit(child.exitcode)})") from None
        finally:
            child.join(rmi.STOP_TIMEOUT)
            if child.is_alive():
                child.terminate()
                child.join(5)
    if isinstance(result, str):
        raise RuntimeError(result)
    gofer, floor = result
    return gofer, floor


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def _clean_after(work: Path, broker: Url) -> None:
    """Stop the goferd a dead measuring process left, and delete its queues.

    That goferd runs in a session of its own, so it outlives the process
    that started it. It is known by its root (below ``work``) and the pid
    file there, checked against the process's ``GOFER_ROOT``.
    """
    for pidfile in work.glob("*/root/run/gofer/goferd.pid"):
        root = pidfile.parents[2]
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().split()[0])
            environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if f"GOFER_ROOT={root}".encode() in environment:
                _progress(f"stopping goferd {pid}, left by the dead process")
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + rmi.STOP_TIMEOUT
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.2)
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
    queues = [
        line.split("=", 1)[1]
        for descriptor in work.glob("*/root/etc/gofer/plugins/*.conf")
        for line in descriptor.read_text().splitlines()
        if line.startswith("queue=")
    ]
    rmi._delete_queues(broker, queues)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie, ended but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _measure_in_child(
    adapter: str, broker: str, settings: dict[str, Any], result: Any, work: str
) -> None:
    """The child of :func:`measure`: sends (gofer, floor) or the error's text back.

    Its goferd's root goes below ``work``, where :func:`_clean_after` finds it.
    """
    faulthandler.enable()
    tempfile.tempdir = work
    options = argparse.Namespace(**settings)
    base = Url.parse(broker)
    try:
        gofer = run_pair(pair_url(adapter, base), options)
        floor = rmi.run_floor(base, True, options) if adapter == "amqp" else None
    except KeyboardInterrupt:
        return
    except Exception as exc:  # noqa: BLE001 - sent to the parent, which shows it
        result.send(f"{exc!r}")
    else:
        result.send((gofer, floor))
    finally:
        rmi._finished.set()
        result.close()


def rows(pair: str, gofer: Side, floor: Side | None) -> list[Row]:
    """The rows of one pair: sync p50, and throughput with 1, 4 and 16 callers."""
    targets = floor is not None
    found = [
        Row(
            f"{pair}: sync p50 (ms)",
            gofer.sync.percentile(50),
            floor.sync.percentile(50) if floor else None,
            target=P50_TARGET if targets else "",
        )
    ]
    for n in CALLERS:
        found.append(
            Row(
                f"{pair}: throughput, {n} caller(s) (calls/s)",
                gofer.throughput[str(n)].rate,
                floor.throughput[str(n)].rate if floor else None,
                better=HIGHER,
                target=THROUGHPUT_TARGET if targets and n == CALLERS[-1] else "",
            )
        )
    return found


def run(
    options: argparse.Namespace, known: dict[str, tuple[Side, Side | None]]
) -> tuple[list[Row], list[str]]:
    """Every pair's rows (a pair that cannot be measured says why), and notes.

    Args:
        options: ``url`` (RabbitMQ), ``brokerj`` (Broker-J), sizes.
        known: (gofer, floor) already measured in this run, by pair label;
            such a pair is not measured again.
    """
    brokers = {"RabbitMQ": Url.parse(options.url), "Broker-J": Url.parse(options.brokerj)}
    ensure_brokerj(brokers["Broker-J"])
    found: list[Row] = []
    notes = []
    for adapter, broker in PAIRS:
        pair = label(adapter, broker)
        base = brokers[broker]
        if pair in known:
            found.extend(rows(pair, *known[pair]))
            notes.append(f"{pair}: the figures of the RMI section above, not measured again")
            continue
        if not reachable(base):
            found.append(Row(pair, f"not reachable at {base.host}:{base.port}"))
            continue
        try:
            gofer, floor = measure(adapter, base, options)
        except Exception as exc:  # noqa: BLE001 - the other pairs go on; the row says why
            _progress(f"{pair}: {exc!r}")
            row, note = failed(pair, exc)
            found.append(row)
            notes.append(note)
            continue
        found.extend(rows(pair, gofer, floor))
    return found, notes
