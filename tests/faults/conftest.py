"""Shared parts of the fault suites: goferd with the recording plugin, reply queues, rabbitmqctl."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gofer.errors import GoferError
from gofer.messaging import auth
from gofer.messaging.adapter.model import Queue
from gofer.messaging.auth import Authenticator
from gofer.messaging.connection import Connection
from gofer.messaging.retry import Backoff
from tests import brokers
from tests.conftest import mark_broker_tests
from tests.e2e.conftest import REPO, Goferd

PLUGINS = Path(__file__).resolve().parent / "plugins"
NODENAME = os.environ.get("RABBITMQ_NODENAME", "rabbit@localhost")


class FaultGoferd(Goferd):
    """goferd serving only the ``faults`` plugin (tests/faults/plugins/faults.py) on one queue.

    Args:
        root: goferd's private root.
        url: the broker URL in the plugin's descriptor.
        queue: the queue (``queue`` or ``exchange/queue``) it consumes.
        threads: the plugin's worker threads.
        messaging: more ``[messaging]`` keys (TLS files, authenticator, ...).
        model: more ``[model]`` keys.
    """

    def __init__(
        self,
        root: Path,
        url: str,
        queue: str,
        *,
        threads: int = 2,
        messaging: dict[str, Any] | None = None,
        model: dict[str, Any] | None = None,
    ) -> None:
        self._threads = threads
        self._messaging = messaging or {}
        self._model = model or {}
        super().__init__(root, url, queue)
        # The authenticator module is imported by dotted path, so it must be importable.
        self.extra_env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(PLUGINS)])}

    def _layout(self, farm: dict[str, Any]) -> None:
        etc = self.root / "etc/gofer"
        (etc / "plugins").mkdir(parents=True)
        modules = self.root / "usr/lib/gofer/plugins"
        modules.mkdir(parents=True)
        self.marks.mkdir()
        shutil.copy(REPO / "etc/gofer/agent.conf", etc / "agent.conf")
        shutil.copy(PLUGINS / "faults.py", modules / "faults.py")
        self.write_descriptor(
            "faults",
            {
                "main": {"enabled": 1, "threads": self._threads},
                "messaging": {"url": self.url, **self._messaging},
                "model": {"queue": self.queue, "managed": 2, **self._model},
                "faults": {"marks": str(self.marks)},
            },
        )

    def start(self, timeout: float = 30, *, consuming: bool = True) -> None:
        """Start goferd and wait until it consumes (again, when restarted on the same root)."""
        before = self.log().count("consuming")
        super().start(timeout, consuming=consuming)
        if not consuming:
            return
        deadline = time.monotonic() + timeout
        while self.log().count("consuming") <= before:
            if time.monotonic() > deadline:
                raise RuntimeError(f"goferd not consuming in {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def executions(self) -> list[tuple[str, str, str]]:
        """``(event, sn, tag)`` for each line the plugin wrote (event: start or end)."""
        path = self.marks / "executions"
        if not path.exists():
            return []
        return [tuple(line.split(" ", 2)) for line in path.read_text().splitlines()]  # type: ignore[misc]

    def starts(self) -> Counter[str]:
        """How many times each serial number began to run."""
        return Counter(sn for event, sn, _ in self.executions() if event == "start")


@pytest.fixture
def fault_goferd(url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Make goferds with the recording plugin, each with its own root and queue; all stopped after.

    ``make(start=True, broker_url=..., queue=..., root=..., cleanup_url=..., **options)``;
    the queue is deleted afterwards through ``cleanup_url`` (the plain test
    broker by default; None leaves it, e.g. when its vhost goes anyway).
    """
    made: list[tuple[FaultGoferd, str | None]] = []

    def make(
        start: bool = True,
        *,
        broker_url: str | None = None,
        queue: str | None = None,
        root: Path | None = None,
        cleanup_url: str | None = url,
        **options: Any,
    ) -> FaultGoferd:
        goferd = FaultGoferd(
            root or tmp_path_factory.mktemp("goferd-faults"),
            broker_url or url,
            queue or f"gofer-faults-{uuid.uuid4()}",
            **options,
        )
        made.append((goferd, cleanup_url))
        if start:
            goferd.start()
        return goferd

    yield make
    for goferd, cleanup in made:
        goferd.stop()
        if cleanup is not None:
            delete_queues(cleanup, goferd.queue.rpartition("/")[2])


def delete_queues(url: str, *names: str) -> None:
    """Delete queues, giving up quietly after a few seconds (cleanup must not hang a test)."""
    connection = Connection(url, backoff=Backoff(initial=0.2, maximum=1.0, limit=5))
    try:
        for name in names:
            connection.delete_queue(name)
    except GoferError:
        pass
    finally:
        connection.close()


class ReplyQueue:
    """A durable queue for asynchronous replies, read raw so that duplicates show.

    Replies are checked with ``authenticator`` (when given) and unwrapped.

    Durable, so that replies survive a broker restart; it expires ten minutes
    after its last use, so that a crashed test leaves nothing behind for long.
    """

    def __init__(
        self, url: str, name: str | None = None, authenticator: Authenticator | None = None
    ) -> None:
        self.url = url
        self.name = name or f"gofer-faults-replies-{uuid.uuid4()}"
        self.authenticator = authenticator
        self.connection = Connection(url, backoff=Backoff(initial=0.2, maximum=2.0, limit=60))
        self.connection.declare_queue(Queue(self.name, durable=True, expiration=600))
        self.replies: list[dict[str, Any]] = []
        #: The bodies as they came, beside ``replies`` (to tell signed from unsigned).
        self.bodies: list[bytes] = []
        self._reader = self.connection.reader(self.name, prefetch=100)

    def read(self, until: Callable[[list[dict[str, Any]]], bool], timeout: float) -> bool:
        """Read replies into ``replies`` until ``until(replies)`` holds; False on timeout."""
        deadline = time.monotonic() + timeout
        while not until(self.replies):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            delivery = self._reader.get(timeout=min(remaining, 1.0))
            if delivery is not None:
                # Signed replies are checked (and unwrapped) as a caller would.
                self.replies.append(dict(auth.validate(self.authenticator, delivery.body)))
                self.bodies.append(delivery.body)
                self._reader.ack(delivery)
        return True

    def finals(self) -> Counter[str]:
        """How many final replies (results, or ``rejected``) each serial number got."""
        return Counter(r["sn"] for r in self.replies if is_final(r))

    def contradicting(self) -> dict[str, list[Any]]:
        """Serial numbers whose final replies differ from one another, with those replies.

        A copy of the same final reply is not counted: replies are sent at
        least once (a reply whose confirm a broker outage swallowed goes again).
        """
        answers: dict[str, list[Any]] = {}
        for reply in self.replies:
            if is_final(reply):
                answers.setdefault(reply["sn"], []).append(
                    reply.get("result") if "result" in reply else reply.get("code")
                )
        return {sn: got for sn, got in answers.items() if any(a != got[0] for a in got)}

    def statuses(self, status: str) -> set[str]:
        return {r["sn"] for r in self.replies if r.get("status") == status}

    def close(self) -> None:
        self._reader.close()
        self.connection.delete_queue(self.name)
        self.connection.close()


def is_final(reply: dict[str, Any]) -> bool:
    """A reply that ends its request: a result, or a ``rejected`` status."""
    return reply.get("status") == "rejected" or ("result" in reply and not reply.get("status"))


@pytest.fixture
def reply_queue(url: str) -> Iterator[ReplyQueue]:
    queue = ReplyQueue(url)
    yield queue
    queue.close()


@pytest.fixture(scope="session")
def rabbitmq() -> brokers.TestBroker:
    """The RabbitMQ under test, when it is ours to control (restart, rabbitmqctl, TLS setup)."""
    for broker in brokers.brokers():
        if broker.name == "rabbitmq" and broker.control is not None:
            return broker
    message = "no controllable RabbitMQ (GOFER_TEST_RABBITMQ or its _CONTROL is off)"
    if brokers.required():
        pytest.fail(message)
    pytest.skip(message)


def rabbitmqctl(
    *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``rabbitmqctl -q`` on the test node (as the rabbitmq user: give files on stdin)."""
    done = subprocess.run(
        ["rabbitmqctl", "-n", NODENAME, "-q", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        input=stdin,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"rabbitmqctl {' '.join(args)}: {done.returncode}\n{done.stderr}")
    return done


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_broker_tests(items, "faults")
