"""Nothing lost: results outlive a gateway restart, calls expire, the store stays bounded."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from pathlib import Path

import pytest

from gofer.gateway import collector, config
from gofer.gateway.api import Api
from gofer.gateway.config import Grant
from gofer.gateway.events import Hub
from gofer.gateway.figures import Figures
from gofer.gateway.security import Caller, Gatekeeper
from gofer.gateway.store import MAX_EVENTS, CallRecord, KeyReusedError, Store, StoreError
from gofer.messaging.adapter.model import Queue
from gofer.messaging.connection import Connection
from gofer.testing import PluginHarness
from tests.sse import parse_sse
from tests.unit.gateway.conftest import AUTH, gateway_config, serving


def test_a_result_sent_while_the_gateway_is_down_is_there_after_its_restart(
    kennel: PluginHarness, tmp_path: Path
) -> None:
    config = gateway_config(kennel.url, tmp_path / "state")

    async def main() -> None:
        body = {"class": "Dog", "method": "sleep", "args": [0.5]}
        async with serving(config) as client:
            response = await client.post(
                f"/v1/agents/{kennel.queue}/calls", json=body, headers=AUTH
            )
            assert response.status == 202
            location = response.headers["Location"]
            seen = parse_sse(
                await (await client.get(f"{location}/events?after=0", headers=AUTH)).text()
            )
        # The gateway is down while the agent answers: the reply waits in its queue.
        await asyncio.sleep(1.0)
        async with serving(config) as client:
            call = await (await client.get(f"{location}?wait=10", headers=AUTH)).json()
            assert call["state"] == "succeeded"
            assert call["result"] == "slept"
            rest = await client.get(f"{location}/events", headers={**AUTH, "Last-Event-ID": "1"})
            events = parse_sse(await rest.text())
            assert events[0]["id"] == 2
            assert events[-1]["event"] == "succeeded"
        assert seen[0]["event"] == "accepted"

    asyncio.run(main())


def test_a_call_no_agent_starts_within_its_ttl_expires(
    kennel: PluginHarness, tmp_path: Path
) -> None:
    config = gateway_config(kennel.url, tmp_path / "state")
    connection = Connection(kennel.url)
    connection.declare_queue(Queue("kennel-asleep", durable=True))  # nobody reads it

    async def main() -> None:
        async with serving(config) as client:
            body = {"class": "Dog", "method": "bark", "args": ["?"], "options": {"ttl": 0.1}}
            response = await client.post("/v1/agents/kennel-asleep/calls", json=body, headers=AUTH)
            location = response.headers["Location"]
            await asyncio.sleep(0.2)
            with Store(config.database) as beside:
                assert beside.expire() == [location.rpartition("/")[2]]
            call = await (await client.get(location, headers=AUTH)).json()
            assert call["state"] == "expired"
            assert call["error"]["code"] == "request.expired"

    try:
        asyncio.run(main())
    finally:
        connection.delete_queue("kennel-asleep")
        connection.close()


def record(sn: str, **values: object) -> CallRecord:
    return CallRecord(sn=sn, queue="q", classname="C", method="m", caller="me", **values)  # type: ignore[arg-type]


def test_a_final_call_changes_no_more_and_a_redelivered_reply_adds_nothing() -> None:
    with Store(":memory:") as store:
        store.add(record("a1"))
        store.confirmed("a1")
        reply = {"sn": "a1", "result": {"retval": 7}}
        assert collector.apply(store, reply) == ("a1", "succeeded")
        assert collector.apply(store, reply) is None
        assert collector.apply(store, {"sn": "a1", "status": "progress", "completed": 1}) is None
        call = store.get("a1")
        assert call is not None
        assert (call.state, call.result) == ("succeeded", 7)
        assert [e.kind for e in store.events("a1")] == ["accepted", "succeeded"]


def test_an_idempotency_key_names_one_request_per_caller() -> None:
    with Store(":memory:") as store:
        first = store.add(record("b1", idempotency_key="k", digest="d1"))
        assert store.add(record("b2", idempotency_key="k", digest="d1")).sn == first.sn
        with pytest.raises(KeyReusedError):
            store.add(record("b3", idempotency_key="k", digest="d2"))


def test_progress_beyond_the_event_cap_updates_the_call_but_the_final_event_still_comes() -> None:
    with Store(":memory:") as store:
        store.add(record("c1"))
        for n in range(MAX_EVENTS + 10):
            collector.apply(store, {"sn": "c1", "status": "progress", "completed": n})
        collector.apply(store, {"sn": "c1", "result": {"retval": None}})
        events = store.events("c1")
        assert len(events) == MAX_EVENTS + 1
        assert events[-1].kind == "succeeded"
        call = store.get("c1")
        assert call is not None
        assert call.progress["completed"] == MAX_EVENTS + 9


def test_calls_are_dropped_after_keep_and_above_max_kept() -> None:
    with Store(":memory:", keep=60, max_kept=2) as store:
        for sn in ("d1", "d2", "d3"):
            store.add(record(sn))
        assert store.sweep() == 1
        assert store.get("d1") is None
        assert store.sweep(now=time.time() + 61) == 2
        assert store.counts() == {}


def test_calls_left_pending_by_a_stopped_gateway_are_dropped(tmp_path: Path) -> None:
    with Store(tmp_path / "calls.sqlite") as store:
        store.add(record("e1"))
        store.add(record("e2"))
        store.confirmed("e2")
    with Store(tmp_path / "calls.sqlite") as again:
        assert again.drop_pending() == 1
        assert again.counts() == {"accepted": 1}


def test_a_request_being_sent_when_its_caller_hangs_up_is_still_recorded() -> None:
    released = threading.Event()

    class SlowSender:
        def send(self, call: object, credentials: object) -> None:
            released.wait(5)

    async def main(store: Store) -> None:
        settings = config.parse({})
        executor = concurrent.futures.ThreadPoolExecutor(1)
        api = Api(
            config=settings,
            store=store,
            sender=SlowSender(),  # type: ignore[arg-type]
            hub=Hub(),
            figures=Figures(),
            gatekeeper=Gatekeeper(settings),
            broker_state=dict,
            executor=executor,
        )
        call = store.add(record("f1"))
        caller = Caller("me", Grant("me"))
        handler = asyncio.ensure_future(api.send(object(), call, caller))  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        handler.cancel()  # the HTTP caller went away
        released.set()
        for _ in range(100):
            await asyncio.sleep(0.01)
            found = store.get("f1")
            if found is not None and found.state == "accepted":
                break
        executor.shutdown()
        found = store.get("f1")
        assert found is not None
        assert found.state == "accepted"  # a retry with its key finds it

    with Store(":memory:") as store:
        asyncio.run(main(store))


def test_a_database_that_cannot_be_opened_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "calls.sqlite").write_text("not a database, " * 100)
    with pytest.raises(StoreError, match=r"calls\.sqlite"):
        Store(tmp_path / "calls.sqlite")
