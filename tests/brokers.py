"""The brokers the suite talks to: the one place where their addresses come from.

Each broker has an environment variable holding its URL; the defaults are
the test brokers that ``scripts/rabbitmq`` and ``scripts/broker-j`` start.
Point the suite at your own broker by setting the variable, or turn one off
by setting it to ``off``:

    GOFER_TEST_RABBITMQ=amqp://me:secret@mq.example.com:5672/test
    GOFER_TEST_BROKERJ=off

Tests that restart a broker or drop its connections run the control script
named by ``GOFER_TEST_<NAME>_CONTROL`` (default: the project's script), and
skip when it is set to ``off``.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
from pathlib import Path

from gofer.messaging.url import Url

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class TestBroker:
    """A broker under test and what it can do."""

    __test__ = False  # not a test class, despite the name

    name: str
    url: str
    control: str | None
    #: Messages survive a restart (Broker-J here runs in memory: they do not).
    persistent: bool
    #: The broker cancels a consumer whose queue is deleted (Broker-J does not).
    cancel_notify: bool = True
    #: Queues can expire when unused (``x-expires``; Broker-J has no such thing).
    queue_expiry: bool = True
    #: Exchanges can be declared and deleted, and queues bound to them.
    bind: bool = True
    #: Queues can be deleted and purged.
    queue_admin: bool = True
    #: Queues can be exclusive to the connection that declares them.
    exclusive_queues: bool = True
    #: A message that ``amq.direct`` cannot route is refused (not dropped).
    amq_unroutable_refused: bool = True
    #: A requeued message comes back marked as redelivered.
    requeue_marks_redelivered: bool = True
    #: A broker over the network: connections can be refused, time out, be
    #: dropped by a control script (not so the in-memory broker).
    network: bool = True
    #: What differs through one adapter (one protocol): adapter name to the
    #: capabilities above that take another value there.
    by_adapter: dict[str, dict[str, bool]] = dataclasses.field(
        default_factory=dict, hash=False, compare=False
    )

    def has(self, capability: str, adapter: str) -> bool:
        """Whether the broker has ``capability`` when reached through ``adapter``."""
        overrides = self.by_adapter.get(adapter, {})
        if capability in overrides:
            return overrides[capability]
        return bool(getattr(self, capability))

    @property
    def parsed(self) -> Url:
        return Url.parse(self.url)

    def reachable(self, timeout: float = 2.0) -> bool:
        url = self.parsed
        if url.scheme == "memory":
            return True  # in this process
        try:
            with socket.create_connection((url.host, url.port), timeout=timeout):
                return True
        except OSError:
            return False

    def run(self, command: str, timeout: float = 180) -> None:
        """Run a control command (``restart``, ``drop-connections``, ...)."""
        if self.control is None:
            raise RuntimeError(f"no control script for {self.name}")
        subprocess.run([self.control, command], check=True, timeout=timeout)


def _broker(name: str, default_url: str, script: str, **capabilities: object) -> TestBroker | None:
    key = f"GOFER_TEST_{name.upper()}"
    url = os.environ.get(key, default_url)
    if url.lower() == "off":
        return None
    control = os.environ.get(f"{key}_CONTROL", str(ROOT / "scripts" / script))
    control_script = None if control.lower() == "off" else control
    return TestBroker(name, url, control_script, **capabilities)  # type: ignore[arg-type]


# RabbitMQ 3.10's AMQP 1.0 plugin has no management: it declares a queue on
# attach (never exclusive or expiring) and can do nothing else; a reader is
# not told that its queue was deleted. (docs/proton.md)
_RABBITMQ_OVER_AMQP_1_0 = {
    "bind": False,
    "queue_admin": False,
    "exclusive_queues": False,
    "queue_expiry": False,
    "cancel_notify": False,
}
# Broker-J over AMQP 1.0 detaches a reader whose queue is deleted, drops what
# its amq.* exchanges cannot route, and marks a redelivery only by
# delivery-count, which a requeue (``released``) does not raise.
_BROKERJ_OVER_AMQP_1_0 = {
    "cancel_notify": True,
    "amq_unroutable_refused": False,
    "requeue_marks_redelivered": False,
}


def brokers() -> list[TestBroker]:
    """The configured brokers, in a stable order."""
    found = [
        _broker(
            "rabbitmq",
            "amqp://guest:guest@localhost:5672",
            "rabbitmq",
            persistent=True,
            by_adapter={"proton": _RABBITMQ_OVER_AMQP_1_0},
        ),
        _broker(
            "brokerj",
            "amqp://gofer:gofer@localhost:5673",
            "broker-j",
            persistent=False,
            cancel_notify=False,
            queue_expiry=False,
            by_adapter={"proton": _BROKERJ_OVER_AMQP_1_0},
        ),
    ]
    # The in-memory broker of gofer.testing: in the contract suite as a broker
    # of its own, through its own adapter only (tests/contract/conftest.py).
    found.append(
        TestBroker(
            "memory", "memory://contract", None, persistent=False, queue_expiry=False, network=False
        )
    )
    return [b for b in found if b is not None]


def required() -> bool:
    """True when a broker test may not skip (CI, or GOFER_REQUIRE_BROKERS=1)."""
    flag = os.environ.get("GOFER_REQUIRE_BROKERS") or os.environ.get("CI") or ""
    return flag.lower() in {"1", "true", "yes"}


@dataclasses.dataclass(frozen=True)
class TestCluster:
    """The three-node RabbitMQ cluster of ``scripts/rabbitmq-cluster``, or one like it.

    ``GOFER_TEST_CLUSTER`` holds its nodes' URLs separated by commas, in node
    order (a, b, c), or ``off``; ``GOFER_TEST_CLUSTER_CONTROL`` the control
    script (``kill NODE``, ``restart NODE``, ``leader QUEUE``).
    """

    __test__ = False

    url: str
    control: str

    NODES = ("a", "b", "c")

    @property
    def urls(self) -> dict[str, str]:
        """Each node's own URL."""
        return dict(zip(self.NODES, (u.secret() for u in Url.parse(self.url).each())))

    def reachable(self) -> bool:
        for url in Url.parse(self.url).each():
            try:
                with socket.create_connection((url.host, url.port), timeout=2):
                    pass
            except OSError:
                return False
        return True

    def run(self, *args: str, timeout: float = 180) -> str:
        done = subprocess.run(
            [self.control, *args], check=True, timeout=timeout, capture_output=True, text=True
        )
        return done.stdout.strip()


def cluster() -> TestCluster | None:
    """The cluster under test; None when turned off."""
    url = os.environ.get(
        "GOFER_TEST_CLUSTER",
        ",".join(f"amqp://guest:guest@localhost:{5680 + n}" for n in (1, 2, 3)),
    )
    if url.lower() == "off":
        return None
    control = os.environ.get(
        "GOFER_TEST_CLUSTER_CONTROL", str(ROOT / "scripts" / "rabbitmq-cluster")
    )
    return TestCluster(url, control)
