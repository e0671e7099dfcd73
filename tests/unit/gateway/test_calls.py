"""Calls through the gateway to a plugin on the in-memory broker: sync, async, events, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp.test_utils import TestClient

from gofer.testing import PluginHarness
from tests.sse import parse_sse
from tests.unit.gateway.conftest import AUTH, OTHER

Client = TestClient  # type: ignore[type-arg]


def test_a_call_with_wait_answers_200_with_the_result(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        body = {"class": "Dog", "method": "bark", "args": ["hi"], "kws": {"times": 2}}
        response = await client.post(
            f"/v1/agents/{kennel.queue}/calls?wait=10", json=body, headers=AUTH
        )
        assert response.status == 200, await response.text()
        call = await response.json()
        assert call["state"] == "succeeded"
        assert call["result"] == "woof hi woof hi"
        assert response.headers["Location"] == f"/v1/calls/{call['sn']}"
        assert call["agent"] == kennel.queue

    run_gateway(scenario)


def test_a_call_answers_202_with_its_location_then_its_result_is_there(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        body = {"class": "Dog", "method": "sleep", "args": [0.3]}
        response = await client.post(f"/v1/agents/{kennel.queue}/calls", json=body, headers=AUTH)
        assert response.status == 202
        call = await response.json()
        # The agent may have begun already: the answer shows the call as it is.
        assert call["state"] in ("accepted", "started")
        location = response.headers["Location"]
        done = await (await client.get(f"{location}?wait=10", headers=AUTH)).json()
        assert done["state"] == "succeeded"
        assert done["result"] == "slept"
        again = await (await client.get(location, headers=AUTH)).json()
        assert again == done  # kept: reading a result does not remove it

    run_gateway(scenario)


def test_a_remote_exception_comes_back_as_a_failed_call(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        body = {"class": "Dog", "method": "bite"}
        response = await client.post(
            f"/v1/agents/{kennel.queue}/calls?wait=10", json=body, headers=AUTH
        )
        call = await response.json()
        assert call["state"] == "failed"
        assert call["error"]["type"] == "ValueError"
        assert call["error"]["message"] == "the dog bites"
        assert "result" not in call

    run_gateway(scenario)


def test_an_unknown_method_is_a_failed_call_naming_it(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        body = {"class": "Dog", "method": "fly"}
        response = await client.post(
            f"/v1/agents/{kennel.queue}/calls?wait=10", json=body, headers=AUTH
        )
        call = await response.json()
        assert call["state"] == "failed"
        assert call["error"]["type"] == "MemberNotFound"

    run_gateway(scenario)


def test_events_stream_each_change_with_an_id_and_resume_after_the_last_seen(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        body = {"class": "Dog", "method": "fetch", "args": [3]}
        response = await client.post(f"/v1/agents/{kennel.queue}/calls", json=body, headers=AUTH)
        location = response.headers["Location"]
        stream = await client.get(f"{location}/events", headers=AUTH)
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        events = parse_sse(await stream.text())  # the stream ends after the final event
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))
        kinds = [e["event"] for e in events]
        assert kinds[0] == "accepted"
        # By the broker's confirm or the agent's word, whichever came first.
        assert events[0]["data"]["by"] in ("broker", "agent")
        assert "started" in kinds
        completed = [e["data"]["completed"] for e in events if e["event"] == "progress"]
        assert completed[-3:] == [1, 2, 3]
        assert kinds[-1] == "succeeded"
        assert events[-1]["data"] == {"result": "fetched 3"}

        resumed = await client.get(
            f"{location}/events", headers={**AUTH, "Last-Event-ID": str(events[-3]["id"])}
        )
        assert parse_sse(await resumed.text()) == events[-2:]
        call = await (await client.get(location, headers=AUTH)).json()
        assert call["progress"]["completed"] == 3
        for past_the_end in (str(events[-1]["id"]), "9" * 30):
            after = {**AUTH, "Last-Event-ID": past_the_end}
            ended = await client.get(f"{location}/events", headers=after)
            assert parse_sse(await ended.text()) == []  # ends at once, not waiting

    run_gateway(scenario)


def test_a_running_call_is_cancelled_and_an_ended_one_cannot_be(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        body = {"class": "Dog", "method": "sleep", "args": [30]}
        response = await client.post(f"/v1/agents/{kennel.queue}/calls", json=body, headers=AUTH)
        location = response.headers["Location"]
        for _ in range(200):  # until it runs
            if (await (await client.get(location, headers=AUTH)).json())["state"] == "started":
                break
            await asyncio.sleep(0.02)
        cancel = await client.delete(location, headers=AUTH)
        assert cancel.status == 202
        assert (await cancel.json())["cancel"] == "requested"
        call = await (await client.get(f"{location}?wait=10", headers=AUTH)).json()
        assert call["state"] == "succeeded"
        assert call["result"] == "woken"  # the method saw the cancel and returned
        again = await client.delete(location, headers=AUTH)
        assert again.status == 409
        assert (await again.json())["error"]["call"]["state"] == "succeeded"

    run_gateway(scenario)


def test_a_retry_with_the_same_idempotency_key_returns_the_same_call(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        url = f"/v1/agents/{kennel.queue}/calls"
        body = {"class": "Dog", "method": "bark", "args": ["once"]}
        headers = {**AUTH, "Idempotency-Key": "order-42"}
        first, second = await asyncio.gather(
            client.post(url, json=body, headers=headers),
            client.post(url, json=body, headers=headers),
        )
        sns = {(await first.json())["sn"], (await second.json())["sn"]}
        assert len(sns) == 1
        (sn,) = sns
        third = await client.post(f"{url}?wait=10", json=body, headers=headers)
        assert (await third.json())["sn"] == sn
        assert (await third.json())["result"] == "woof once"
        changed = await client.post(url, json={**body, "args": ["twice"]}, headers=headers)
        assert changed.status == 422
        other = await client.post(
            url,
            json=body,
            headers={"Authorization": f"Bearer {OTHER}", "Idempotency-Key": "order-42"},
        )
        assert (await other.json())["sn"] != sn  # keys are per caller
        stats = await (await client.get("/stats", headers=AUTH)).json()
        assert stats["agents"][kennel.queue]["accepted"] == 2

    run_gateway(scenario)


def test_a_caller_sees_only_its_own_calls(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        body = {"class": "Dog", "method": "bark", "args": ["mine"]}
        response = await client.post(f"/v1/agents/{kennel.queue}/calls", json=body, headers=AUTH)
        location = response.headers["Location"]
        other = {"Authorization": f"Bearer {OTHER}"}
        for method in ("GET", "DELETE"):
            found = await client.request(method, location, headers=other)
            assert found.status == 404
        assert (await client.get(f"{location}/events", headers=other)).status == 404

    run_gateway(scenario)


def test_the_listing_shows_the_callers_own_calls_newest_first(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        made = []
        for text in ("one", "two", "three"):
            body = {"class": "Dog", "method": "bark", "args": [text]}
            url = f"/v1/agents/{kennel.queue}/calls?wait=10"
            made.append((await (await client.post(url, json=body, headers=AUTH)).json())["sn"])
        response = await client.get("/v1/calls?limit=2", headers=AUTH)
        assert response.status == 200
        calls = (await response.json())["calls"]
        assert [call["sn"] for call in calls] == made[::-1][:2]
        assert calls[0]["result"] == "woof three"
        assert calls[0]["links"]["events"] == f"/v1/calls/{made[2]}/events"
        other = {"Authorization": f"Bearer {OTHER}"}
        assert (await (await client.get("/v1/calls", headers=other)).json()) == {"calls": []}
        assert (await client.get("/v1/calls")).status == 401
        for bad in ("0", "501", "x", "-1", "1.5"):
            response = await client.get(f"/v1/calls?limit={bad}", headers=AUTH)
            assert response.status == 400, bad

    run_gateway(scenario)
