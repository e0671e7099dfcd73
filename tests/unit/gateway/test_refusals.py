"""What the gateway refuses: bad input, missing or wrong credentials, calls outside a grant.

Each refusal is a JSON 4xx that says why, and nothing reaches the broker.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gofer.testing import PluginHarness
from tests.unit.gateway.conftest import AUTH, LIMITED

Client = TestClient  # type: ignore[type-arg]

GOOD = {"class": "Dog", "method": "bark", "args": ["hi"]}


async def refused(response: Any, status: int) -> str:
    assert response.status == status, await response.text()
    assert response.headers["Content-Type"].startswith("application/json")
    body = await response.json()
    assert body["error"]["status"] == status
    message: str = body["error"]["message"]
    assert message
    return message


async def nothing_sent(client: Client) -> None:
    stats = await (await client.get("/stats", headers=AUTH)).json()
    assert stats["agents"] == {}
    assert stats["calls_kept"] == {}


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "not JSON"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "object"),
        (
            b'{"class": "Dog", "method": "bark", "args": [NaN]}',
            {"Content-Type": "application/json"},
            400,
            "NaN",
        ),
        (
            b'{"class": "Dog", "method": "bark", "args": [1e999]}',
            {"Content-Type": "application/json"},
            400,
            "large",
        ),
        (
            b'{"class": "Dog", "method": "bark", "args": ' + b"[" * 1500 + b"]" * 1500 + b"}",
            {"Content-Type": "application/json"},
            400,
            "deep",
        ),
        (b"class=Dog", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "JSON"),
        (
            b'{"class": "Dog", "method": "bark", "x' + b"y" * 5000 + b'": 1}',
            {"Content-Type": "application/json"},
            413,
            "size",
        ),
    ],
)
def test_bodies_that_are_no_json_object_or_too_large_are_refused(
    kennel: PluginHarness,
    run_gateway: Callable[..., None],
    body: bytes,
    headers: dict[str, str],
    status: int,
    says: str,
) -> None:
    async def scenario(client: Client) -> None:
        url = f"/v1/agents/{kennel.queue}/calls"
        response = await client.post(url, data=body, headers={**AUTH, **headers})
        assert says in await refused(response, status)
        await nothing_sent(client)

    run_gateway(scenario)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"class": 3}, "class"),
        ({"method": ""}, "method"),
        ({"args": {"a": 1}}, "args"),
        ({"kws": [1]}, "kws"),
        ({"options": []}, "options"),
        ({"options": {"ttl": "soon"}}, "ttl"),
        ({"options": {"ttl": -1}}, "ttl"),
        ({"options": {"ttl": 10**9}}, "ttl"),
        ({"options": {"reply": "x"}}, "reply"),
        ({"options": {"secret": 5}}, "secret"),
        ({"cntr": [1]}, "cntr"),
        ({"agents": ["a"]}, "agents"),
        ({"method": None}, "method"),
    ],
)
def test_wrong_members_are_refused_naming_them(
    kennel: PluginHarness, run_gateway: Callable[..., None], change: dict[str, Any], says: str
) -> None:
    async def scenario(client: Client) -> None:
        url = f"/v1/agents/{kennel.queue}/calls"
        response = await client.post(url, json={**GOOD, **change}, headers=AUTH)
        assert says in await refused(response, 400)
        await nothing_sent(client)

    run_gateway(scenario)


def test_query_and_header_values_are_checked(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        url = f"/v1/agents/{kennel.queue}/calls"
        assert "wait" in await refused(
            await client.post(f"{url}?wait=later", json=GOOD, headers=AUTH), 400
        )
        assert "wait" in await refused(
            await client.post(f"{url}?wait=1000", json=GOOD, headers=AUTH), 400
        )
        long_key = {**AUTH, "Idempotency-Key": "k" * 300}
        assert "Idempotency-Key" in await refused(
            await client.post(url, json=GOOD, headers=long_key), 400
        )
        await nothing_sent(client)

    run_gateway(scenario)


def test_an_unknown_agent_is_404_and_nothing_is_kept(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        response = await client.post("/v1/agents/nobody-here/calls", json=GOOD, headers=AUTH)
        assert "nobody-here" in await refused(response, 404)
        stats = await (await client.get("/stats", headers=AUTH)).json()
        assert stats["agents"] == {"nobody-here": {"not_sent": 1}}
        assert stats["calls_kept"] == {}

    run_gateway(scenario)


def test_unknown_calls_routes_and_methods_are_json_errors(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        await refused(await client.get("/v1/calls/0123-abcd", headers=AUTH), 404)
        await refused(await client.get("/v1/calls/../../etc", headers=AUTH), 404)
        await refused(await client.get("/v2/nothing", headers=AUTH), 404)
        response = await client.put(f"/v1/agents/{kennel.queue}/calls", json=GOOD, headers=AUTH)
        await refused(response, 405)
        assert "POST" in response.headers["Allow"]

    run_gateway(scenario)


def test_calls_need_credentials_that_the_gateway_knows(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        url = f"/v1/agents/{kennel.queue}/calls"
        response = await client.post(url, json=GOOD)
        await refused(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        await refused(
            await client.post(url, json=GOOD, headers={"Authorization": "Bearer wrong"}), 401
        )
        await refused(await client.post(url, json=GOOD, headers={"Authorization": "Digest x"}), 401)
        basic = base64.b64encode(b"guest:guest").decode()
        says = await refused(
            await client.post(url, json=GOOD, headers={"Authorization": f"Basic {basic}"}), 401
        )
        assert "Basic" in says  # not enabled here
        await refused(await client.get("/stats"), 401)
        await nothing_sent(client)

    run_gateway(scenario)


def test_a_token_calls_only_the_agents_and_classes_it_is_granted(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        limited = {"Authorization": f"Bearer {LIMITED}"}
        url = f"/v1/agents/{kennel.queue}/calls?wait=10"
        allowed = await client.post(url, json=GOOD, headers=limited)
        assert (await allowed.json())["result"] == "woof hi"
        cat = {"class": "Cat", "method": "purr"}
        assert "Cat" in await refused(await client.post(url, json=cat, headers=limited), 403)
        elsewhere = await client.post("/v1/agents/stable-1/calls", json=GOOD, headers=limited)
        assert "stable-1" in await refused(elsewhere, 403)
        fan_out = {"agents": [kennel.queue, "stable-1"], **GOOD}
        response = await client.post("/v1/calls", json=fan_out, headers=limited)
        await refused(response, 403)
        assert (await response.json())["error"]["denied"] == ["stable-1"]

    run_gateway(scenario)


def test_anonymous_callers_get_only_what_anonymous_grants(
    kennel: PluginHarness, run_gateway: Callable[..., None]
) -> None:
    async def scenario(client: Client) -> None:
        url = f"/v1/agents/{kennel.queue}/calls?wait=10"
        assert (await (await client.post(url, json=GOOD)).json())["result"] == "woof hi"
        await refused(await client.post(url, json={"class": "Cat", "method": "purr"}), 403)

    run_gateway(scenario, anonymous={"enabled": "1", "classes": "Dog"})
