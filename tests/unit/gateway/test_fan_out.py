"""Fan-out through the gateway: outcomes streamed as NDJSON or Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp.test_utils import TestClient

from gofer.testing import PluginHarness
from tests.unit.gateway.conftest import AUTH
from tests.unit.gateway.test_calls import parse_sse

Client = TestClient  # type: ignore[type-arg]


def test_outcomes_stream_as_ndjson_one_per_agent_then_the_end(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        body = {
            "agents": [kennel.queue, "kennel-gone"],
            "class": "Dog",
            "method": "bark",
            "args": ["all"],
            "options": {"wait": 10},
        }
        response = await client.post("/v1/calls", json=body, headers=AUTH)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in (await response.text()).splitlines()]
        by_agent = {line["agent"]: line for line in lines if "agent" in line}
        assert by_agent[kennel.queue]["status"] == "succeeded"
        assert by_agent[kennel.queue]["result"] == "woof all"
        assert by_agent["kennel-gone"]["status"] == "no_queue"
        assert lines[-1] == {"status": "end", "total": 2, "succeeded": 1, "other": 1}
        stats = await (await client.get("/stats", headers=AUTH)).json()
        assert stats["fanouts"] == 1
        assert stats["agents"][kennel.queue] == {"succeeded": 1}

    run_gateway(scenario)


def test_outcomes_and_progress_stream_as_server_sent_events(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        body = {"agents": [kennel.queue], "class": "Dog", "method": "fetch", "args": [2]}
        headers = {**AUTH, "Accept": "text/event-stream"}
        response = await client.post("/v1/calls", json=body, headers=headers)
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = parse_sse(await response.text())
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))
        kinds = [e["event"] for e in events]
        assert "progress" in kinds
        assert kinds[-2:] == ["outcome", "end"]
        assert events[-2]["data"]["result"] == "fetched 2"

    run_gateway(scenario)


def test_a_fan_out_that_runs_out_of_time_says_timeout(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        body = {
            "agents": [kennel.queue],
            "class": "Dog",
            "method": "sleep",
            "args": [5],
            "options": {"wait": "2s"},  # the agent counts TTLs in whole seconds
        }
        response = await client.post("/v1/calls", json=body, headers=AUTH)
        lines = [json.loads(line) for line in (await response.text()).splitlines()]
        assert lines[0]["status"] == "timeout", lines
        assert lines[-1]["status"] == "end"

    run_gateway(scenario)
