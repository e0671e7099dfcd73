"""A fleet on one RabbitMQ: N goferd processes with P plugins each, measured as a whole.

Usage::

    .venv/bin/python benchmarks/fleet.py [--goferds N] [--plugins P] [--url URL] [--no-restart]

Defaults: 200 goferds with 5 plugins each (the demo plugin under five
names), 1,000 agent queues in all, on the test RabbitMQ. Figures, not
assertions; the issue's targets are printed beside them:

- **fan-out**: one ``Demo.echo`` to all the queues through
  :class:`gofer.proxy.Fleet` (``concurrency`` = all), wall time and this
  process's CPU, beside a raw py-amqp floor in the same run: the same
  requests, built beforehand, published with confirms on one channel, and
  the replies read from one exclusive queue, with no gofer code on the
  caller's side (the same goferds answer both).
- **idle cost**: the broker's memory (``rabbitmqctl status``) and CPU
  (``/proc``, 10 s) with the fleet idle, less the same without it, per goferd;
  and the part of that memory that is the connection's socket buffer, which
  depends on the link, not on gofer (see :func:`broker_socket_buffers`).
- **broker restart** (unless ``--no-restart``): ``scripts/rabbitmq
  restart``; the time from the broker being back until every queue has its
  consumer again, and the goferds' failed connection attempts per second
  during the outage (from their logs), beside what their reconnect settings
  (1 s doubling to 60 s, full jitter) allow.

It restarts the test broker: run it when nothing else uses it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import amqp
from rmi import REPO, _broker_pid, _cpu_seconds, _delete_queues, spawn_goferd, stop_goferd

from gofer.messaging.url import Url
from gofer.proxy import Fleet
from gofer.rmi import transport, wire

RABBITMQ = REPO / "scripts/rabbitmq"
NODENAME = os.environ.get("RABBITMQ_NODENAME", "rabbit@localhost")


def make_roots(top: Path, url: str, goferds: int, plugins: int) -> list[tuple[Path, list[str]]]:
    """Each goferd's root and queues."""
    agent = (REPO / "etc/gofer/agent.conf").read_text()
    agent += "\n[logging]\ngofer.messaging.connection = DEBUG\n"  # each failed attempt
    token = uuid.uuid4().hex[:8]
    made = []
    for g in range(goferds):
        root = top / f"goferd{g}"
        (root / "etc/gofer/plugins").mkdir(parents=True)
        (root / "usr/share/gofer/plugins").mkdir(parents=True)
        (root / "etc/gofer/agent.conf").write_text(agent)
        queues = []
        for p in range(plugins):
            name = f"demo{p}"
            queue = f"bench.fleet.{token}.{g}.{p}"
            shutil.copy(REPO / "plugins/demo.py", root / f"usr/share/gofer/plugins/{name}.py")
            (root / f"etc/gofer/plugins/{name}.conf").write_text(
                f"[main]\nenabled=1\n\n[messaging]\nurl={url}\n\n[model]\nqueue={queue}\n"
            )
            queues.append(queue)
        made.append((root, queues))
    return made


def consumers(url: Url, queues: list[str]) -> int:
    """How many of ``queues`` have a consumer now."""
    connection = amqp.Connection(
        f"{url.host}:{url.port}", userid=url.userid or "guest", password=url.password or "guest"
    )
    connection.connect()
    try:
        count = 0
        channel = connection.channel()
        for queue in queues:
            try:
                _, _, consumer_count = channel.queue_declare(queue, passive=True)
            except amqp.exceptions.NotFound:
                channel = connection.channel()
                continue
            count += 1 if consumer_count else 0
        return count
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def until_consumed(url: Url, queues: list[str], timeout: float) -> float | None:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        with contextlib.suppress(Exception):
            if consumers(url, queues) == len(queues):
                return time.monotonic() - began
        time.sleep(0.5)
    return None


def broker_memory() -> float:
    """The broker's total memory (bytes), as rabbitmqctl reports it."""
    done = subprocess.run(  # noqa: S603 - the system's rabbitmqctl
        ["rabbitmqctl", "-n", NODENAME, "-q", "eval", "erlang:memory(total)."],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(done.stdout.strip())


def broker_socket_buffers(port: int) -> float:
    """The broker's user-level socket buffers (bytes) of its connections on ``port``, in all.

    RabbitMQ sizes each connection's buffer to the socket's kernel buffers,
    which Linux sizes from the link's MTU: about 3.8 MiB over loopback
    (MTU 65,536), 128 KiB over a 1,500-byte MTU network.
    """
    expression = (
        "lists:sum([B || P <- erlang:ports(),"
        ' erlang:port_info(P, name) == {name, "tcp_inet"},'
        f" {{ok, {{_, {port}}}}} <- [inet:sockname(P)],"
        " {ok, [{buffer, B}]} <- [inet:getopts(P, [buffer])]])."
    )
    done = subprocess.run(  # noqa: S603 - the system's rabbitmqctl
        ["rabbitmqctl", "-n", NODENAME, "-q", "eval", expression],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(done.stdout.strip())


def broker_cpu(url: Url, seconds: float) -> float:
    """The broker's CPU seconds per second over ``seconds``."""
    pid = _broker_pid(url)
    before = _cpu_seconds(pid) or 0.0
    time.sleep(seconds)
    return ((_cpu_seconds(pid) or 0.0) - before) / seconds


def caller_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fan_out(url: str, queues: list[str]) -> tuple[float, float, int]:
    """Wall seconds, caller CPU seconds, and answers of one fan-out through Fleet."""
    began, cpu = time.monotonic(), caller_cpu()
    answered = sum(
        1 for o in Fleet(url, queues, wait=60, concurrency=len(queues)).Demo().echo("x") if o.ok
    )
    return time.monotonic() - began, caller_cpu() - cpu, answered


def floor(url: Url, queues: list[str]) -> tuple[float, float, int]:
    """The same fan-out with py-amqp alone: confirmed publishes, one reply queue."""
    connection = amqp.Connection(
        f"{url.host}:{url.port}", userid=url.userid or "guest", password=url.password or "guest"
    )
    connection.connect()
    channel = connection.channel()
    replies = channel.queue_declare("", exclusive=True).queue
    channel.confirm_select()
    bodies = [
        wire.request_document(
            sn=wire.new_sn(),
            address=queue,
            classname="Demo",
            method="echo",
            args=("x",),
            replyto=replies,
            ttl=60,
            quiet=True,  # as Fleet asks: the result alone
        ).dump()
        for queue in queues
    ]
    answered: set[str] = set()

    def on_reply(message: amqp.Message) -> None:
        document = json.loads(message.body)
        if "result" in document:
            answered.add(str(document["sn"]))

    channel.basic_consume(replies, callback=on_reply, no_ack=True)
    began, cpu = time.monotonic(), caller_cpu()
    for queue, body in zip(queues, bodies):
        channel.basic_publish(
            amqp.Message(body, delivery_mode=2, expiration="60000"),
            routing_key=queue,
            mandatory=True,
        )
    deadline = time.monotonic() + 60
    while len(answered) < len(queues) and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError, OSError):
            connection.drain_events(timeout=0.5)
    took, used = time.monotonic() - began, caller_cpu() - cpu
    with contextlib.suppress(Exception):
        connection.close()
    return took, used, len(answered)


def attempts(roots: list[Path]) -> int:
    return sum(
        (root / "goferd.log").read_text(errors="replace").count("next attempt, to")
        for root in roots
    )


def restart(url: Url, queues: list[str], roots: list[Path]) -> tuple[float, float | None, int]:
    """Outage seconds, seconds until every queue is consumed again, failed attempts."""
    before = attempts(roots)
    stopped = time.monotonic()
    subprocess.run([str(RABBITMQ), "restart"], check=True, timeout=300)  # noqa: S603
    back = time.monotonic()
    recovered = until_consumed(url, queues, timeout=180)
    return back - stopped, recovered, attempts(roots) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goferds", type=int, default=200)
    parser.add_argument("--plugins", type=int, default=5)
    parser.add_argument("--url", default="amqp://guest:guest@localhost:5672")
    parser.add_argument("--no-restart", dest="restart", action="store_false")
    args = parser.parse_args()
    url = Url.parse(args.url)
    memory_before = broker_memory()
    buffers_before = broker_socket_buffers(url.port or 5672)
    cpu_before = broker_cpu(url, 10)
    with tempfile.TemporaryDirectory(prefix="gofer-fleet-") as top:
        made = make_roots(Path(top), args.url, args.goferds, args.plugins)
        roots = [root for root, _ in made]
        queues = [queue for _, qs in made for queue in qs]
        processes = []
        began = time.monotonic()
        try:
            for root in roots:
                processes.append(spawn_goferd(root, root / "goferd.log"))
            if until_consumed(url, queues, timeout=900) is None:
                sys.exit("the fleet did not start within 15 minutes")
            print(
                f"fleet: {args.goferds} goferds x {args.plugins} plugins = {len(queues)} queues,"
                f" started in {time.monotonic() - began:.0f}s",
                flush=True,
            )
            time.sleep(15)  # let start-up settle
            memory = (broker_memory() - memory_before) / args.goferds
            buffers = (broker_socket_buffers(url.port or 5672) - buffers_before) / args.goferds
            cpu = (broker_cpu(url, 10) - cpu_before) / args.goferds
            fan_out(args.url, queues[:50])  # warm-up: connection and reply queue
            rows = []
            for _ in range(3):
                rows.append((fan_out(args.url, queues), floor(url, queues)))
            best = min(rows, key=lambda row: row[0][0])
            (wall, used, answered), (floor_wall, floor_used, floor_answered) = best
            print(
                f"fan-out to {len(queues)} queues (best of 3): gofer {wall:.2f}s wall,"
                f" {used:.2f}s caller CPU, {answered} answered; py-amqp floor"
                f" {floor_wall:.2f}s wall, {floor_used:.2f}s CPU, {floor_answered} answered;"
                f" ratio {wall / floor_wall:.2f}x (target: within 2x, under 2 s)"
            )
            print(
                f"idle: broker memory {memory / 1024:.0f} KiB per goferd (target: under 150 KB),"
                f" of which the connection's socket buffer {buffers / 1024:.0f} KiB (sized by"
                f" the link's MTU) and the rest {(memory - buffers) / 1024:.0f} KiB;"
                f" broker CPU {cpu * 1000:.2f} ms/s per goferd"
            )
            if args.restart:
                outage, recovered, failed = restart(url, queues, roots)
                shown = f"{recovered:.1f}s" if recovered is not None else "not within 180 s"
                print(
                    f"broker restart: outage {outage:.1f}s; every queue consumed again {shown}"
                    f" after the broker was back; {failed} failed connection attempts,"
                    f" {failed / outage:.1f}/s for {args.goferds} goferds"
                    f" ({failed / outage / args.goferds:.2f}/s each; the back-off allows at"
                    f" most about 1/s each in the first second, halving after)"
                )
        finally:
            for process in processes:
                with contextlib.suppress(OSError):
                    process.terminate()
            for process in processes:
                stop_goferd(process)
            transport.close_all()
            _delete_queues(url, queues)


if __name__ == "__main__":
    main()
