"""One goferd, two plugins: a caller of one plugin's queue cannot see or cancel the other's work.

goferd serves ``faults`` on a signed queue (HMAC, as in test_signing) and a
copy of it, ``open``, on an unsigned queue. Anyone may publish to the
unsigned one; its ``Admin`` must act on ``open`` alone.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator

import pytest

from gofer.errors import RequestRejectedError
from gofer.messaging import auth
from gofer.messaging.auth import HmacAuthenticator
from gofer.proxy import Agent
from gofer.rmi import wire
from tests.faults.conftest import PLUGINS, FaultGoferd, ReplyQueue, delete_queues
from tests.faults.test_signing import KEY, send


@pytest.fixture
def two_plugins(
    fault_goferd: Callable[..., FaultGoferd], url: str
) -> Iterator[tuple[FaultGoferd, str]]:
    """goferd with ``faults`` (signed) and ``open`` (unsigned); yields it and open's queue."""
    goferd = fault_goferd(start=False, messaging={"authenticator": "faultauth.FaultAuthenticator"})
    goferd.extra_env["GOFER_FAULTS_HMAC_KEY"] = KEY
    open_queue = f"gofer-faults-open-{uuid.uuid4()}"
    shutil.copy(PLUGINS / "faults.py", goferd.root / "usr/lib/gofer/plugins/open.py")
    goferd.write_descriptor(
        "open",
        {
            "main": {"enabled": 1, "threads": 1},
            "messaging": {"url": url},
            "model": {"queue": open_queue, "managed": 2},
            "faults": {"marks": str(goferd.marks)},
        },
    )
    goferd.start()
    yield goferd, open_queue
    goferd.stop()
    delete_queues(url, open_queue)


@pytest.fixture
def signed_replies(url: str) -> Iterator[ReplyQueue]:
    queue = ReplyQueue(url, authenticator=HmacAuthenticator(KEY))
    yield queue
    queue.close()


def start_signed_work(goferd: FaultGoferd, replies: ReplyQueue, seconds: float) -> str:
    doc = wire.request_document(
        sn=wire.new_sn(),
        address=goferd.queue,
        classname="Fault",
        method="work",
        args=["signed-work"],
        kws={"seconds": seconds},
        replyto=replies.name,
        data={"owner": "the signed caller"},
    )
    send(goferd.url, goferd.queue, auth.sign(HmacAuthenticator(KEY), doc))
    sn = str(doc["sn"])
    assert replies.read(lambda _: sn in replies.statuses("started"), timeout=15), replies.replies
    return sn


def test_admin_of_an_unsigned_queue_cannot_cancel_a_signed_plugins_work(
    two_plugins: tuple[FaultGoferd, str], signed_replies: ReplyQueue
) -> None:
    goferd, open_queue = two_plugins
    sn = start_signed_work(goferd, signed_replies, seconds=2)
    admin = Agent(goferd.url, open_queue, wait=15).Admin()
    assert admin.cancel(criteria={"neq": "x"}) == []
    assert admin.cancel(sn=sn) == []
    assert signed_replies.read(lambda _: signed_replies.finals()[sn] >= 1, timeout=15)
    [final] = [r for r in signed_replies.replies if r["sn"] == sn and "result" in r]
    assert final["result"] == {"retval": "signed-work"}


def test_admin_help_describes_only_its_own_queue(two_plugins: tuple[FaultGoferd, str]) -> None:
    goferd, open_queue = two_plugins
    text = Agent(goferd.url, open_queue, wait=15).Admin().help()
    plugins = text.split("Actions:")[0].splitlines()
    assert "  open" in plugins
    assert "  faults" not in plugins


def test_admin_of_a_signed_queue_answers_only_signed_callers(
    two_plugins: tuple[FaultGoferd, str],
) -> None:
    goferd, _ = two_plugins
    with pytest.raises(RequestRejectedError) as caught:
        Agent(goferd.url, goferd.queue, wait=15).Admin().cancel(criteria={"neq": "x"})
    assert caught.value.code == wire.AUTHENTICATION
    signed = Agent(goferd.url, goferd.queue, wait=15, authenticator=HmacAuthenticator(KEY))
    assert "  faults" in signed.Admin().help().splitlines()
