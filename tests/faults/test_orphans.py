"""Journaled requests whose plugin does not load: kept until it does, answered when they cannot run.

The journal is written before goferd starts, as a goferd that stopped with
requests accepted would have left it; then the plugin fails to load (its
module raises), is disabled, or its descriptor is gone.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Any

from gofer.agent.journal import Entry, Journal
from gofer.rmi import wire
from tests.faults.conftest import PLUGINS, FaultGoferd, ReplyQueue


def journaled(goferd: FaultGoferd, replies: ReplyQueue, tag: str, **fields: Any) -> str:
    """Leave a request for plugin ``faults`` in goferd's journal, as if accepted before a stop."""
    doc = wire.request_document(
        sn=wire.new_sn(),
        address=goferd.queue,
        classname="Fault",
        method="work",
        args=[tag],
        replyto=replies.name,
        ttl=fields.pop("ttl", None),
    )
    doc.update(fields)
    journal = Journal(goferd.root / "var/lib/gofer/journal")
    try:
        journal.write(Entry(str(doc["sn"]), "faults", doc.dump(), time.time() - 60))
    finally:
        journal.close()
    return str(doc["sn"])


def final(replies: ReplyQueue, sn: str) -> dict[str, Any]:
    assert replies.read(lambda _: replies.finals()[sn] >= 1, timeout=20), replies.replies
    [reply] = [
        r
        for r in replies.replies
        if r["sn"] == sn
        and (r.get("status") or "result" in r)
        and r.get("status") not in ("accepted", "started", "progress")
    ]
    return reply


def test_requests_wait_for_their_plugin_to_load_and_expired_ones_are_answered(
    fault_goferd: Callable[..., FaultGoferd], reply_queue: ReplyQueue
) -> None:
    goferd = fault_goferd(start=False)
    module = goferd.root / "usr/lib/gofer/plugins/faults.py"
    module.write_text("raise ImportError('broken on purpose')\n")
    kept = journaled(goferd, reply_queue, "kept")
    expired = journaled(
        goferd, reply_queue, "expired", ttl=5, timestamp=wire.timestamp(time.time() - 60)
    )
    goferd.start(consuming=False)
    assert final(reply_queue, expired)["code"] == wire.EXPIRED
    # Answered in the same sweep as the expired one had it been dropped or run.
    assert reply_queue.finals()[kept] == 0
    assert goferd.starts()[kept] == 0
    shutil.copy(PLUGINS / "faults.py", module)
    goferd.mgt("load", path=str(goferd.root / "etc/gofer/plugins/faults.conf"))
    assert final(reply_queue, kept)["result"] == {"retval": "kept"}
    assert goferd.starts()[kept] == 1


def test_requests_of_a_disabled_plugin_are_answered(
    fault_goferd: Callable[..., FaultGoferd], reply_queue: ReplyQueue
) -> None:
    goferd = fault_goferd(start=False)
    descriptor = goferd.root / "etc/gofer/plugins/faults.conf"
    descriptor.write_text(descriptor.read_text().replace("enabled=1", "enabled=0"))
    sn = journaled(goferd, reply_queue, "disabled")
    goferd.start(consuming=False)
    reply = final(reply_queue, sn)
    assert reply["code"] == wire.UNKNOWN_PLUGIN
    assert "disabled" in reply["description"]
    assert goferd.starts()[sn] == 0


def test_requests_of_a_plugin_removed_while_goferd_was_stopped_are_answered(
    fault_goferd: Callable[..., FaultGoferd], reply_queue: ReplyQueue
) -> None:
    goferd = fault_goferd()  # it served the plugin: goferd knows its broker from now on
    goferd.stop()
    sn = journaled(goferd, reply_queue, "removed")
    (goferd.root / "etc/gofer/plugins/faults.conf").unlink()
    goferd.start(consuming=False)
    reply = final(reply_queue, sn)
    assert reply["code"] == wire.UNKNOWN_PLUGIN
    assert "removed" in reply["description"]
    assert goferd.starts()[sn] == 0
