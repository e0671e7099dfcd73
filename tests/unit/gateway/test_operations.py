"""What operators and tools read: health, readiness, /stats, /metrics, the OpenAPI document."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gofer.testing import PluginHarness
from tests.unit.gateway.conftest import AUTH

Client = TestClient  # type: ignore[type-arg]


def test_health_readiness_and_figures(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        assert (await (await client.get("/healthz")).json()) == {"status": "ok"}
        ready = await (await client.get("/readyz")).json()
        assert ready["status"] == "ready"
        assert ready["broker"]["connected"] is True
        body = {"class": "Dog", "method": "bite"}
        await client.post(f"/v1/agents/{kennel.queue}/calls?wait=10", json=body, headers=AUTH)

        # Outcomes are counted on the event loop just after the store has them.
        for _ in range(100):
            stats = await (await client.get("/stats", headers=AUTH)).json()
            if stats["agents"][kennel.queue].get("failed"):
                break
            await asyncio.sleep(0.01)
        assert stats["agents"] == {kennel.queue: {"accepted": 1, "failed": 1}}
        assert stats["requests"]["method.POST.200"] == 1
        assert stats["broker"]["url"].startswith("memory://")
        assert stats["calls_kept"] == {"failed": 1}
        for figure in ("cpu_time", "memory_usage", "page_faults", "context_switches", "open_fds"):
            assert figure in stats["process"]

        response = await client.get("/metrics")
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        families = {f.name: f for f in text_string_to_metric_families(await response.text())}
        calls = {s.labels["outcome"]: s.value for s in families["gofer_gateway_calls"].samples}
        assert calls == {"accepted": 1.0, "failed": 1.0}
        assert families["gofer_gateway_broker_connected"].samples[0].value == 1.0
        assert families["process_resident_memory_bytes"].samples[0].value > 0

    run_gateway(scenario)


def test_the_openapi_document_describes_every_route_and_only_those(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        document = await (await client.get("/v1/openapi.json")).json()
        assert document["openapi"].startswith("3.")
        described = {
            (path, method.upper())
            for path, operations in document["paths"].items()
            for method in operations
        }
        routed = {
            (resource.canonical, route.method)
            for resource in client.app.router.resources()
            for route in resource
            if route.method != "HEAD"  # aiohttp adds HEAD to every GET
        }
        assert described == routed
        states = document["components"]["schemas"]["Call"]["properties"]["state"]["enum"]
        assert states == [
            "accepted",
            "started",
            "progress",
            "succeeded",
            "failed",
            "rejected",
            "expired",
        ]
        for path, operations in document["paths"].items():
            for operation in operations.values():
                assert operation["responses"], path
                refs: list[Any] = []
                _refs(operation, refs)
                for ref in refs:
                    assert ref.rpartition("/")[2] in document["components"]["schemas"], ref

    run_gateway(scenario)


def _refs(node: Any, found: list[Any]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                found.append(value)
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)
