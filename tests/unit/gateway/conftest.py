"""The gateway served by aiohttp's test server, in front of a plugin on the in-memory broker."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gofer.gateway import config as settings
from gofer.gateway.service import Gateway
from gofer.testing import PluginHarness

KENNEL = Path(__file__).resolve().parent / "kennel.py"
TOKEN = "t" * 32
LIMITED = "l" * 32
OTHER = "o" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def kennel() -> Iterator[PluginHarness]:
    """The test plugin, served by an in-process goferd on an in-memory broker."""
    with PluginHarness(KENNEL, threads=4) as harness:
        yield harness


def gateway_config(url: str, state_dir: Path, **sections: dict[str, Any]) -> settings.GatewayConfig:
    """A gateway for ``url`` with three tokens: all agents, the Dog class only, and another."""
    base: dict[str, dict[str, Any]] = {
        "main": {"state_dir": str(state_dir), "max_body": "4096"},
        "messaging": {"url": url, "reply_queue": f"gateway-{uuid.uuid4().hex[:8]}"},
        "calls": {"max_wait": "20"},
        "token:admin": {"token": TOKEN, "agents": "*"},
        "token:dogs": {"token": LIMITED, "agents": "kennel-*", "classes": "Dog"},
        "token:other": {"token": OTHER, "agents": "*"},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return settings.parse(base)


@contextlib.asynccontextmanager
async def serving(config: settings.GatewayConfig) -> AsyncIterator[TestClient[Any, Any]]:
    """A test client of a running gateway (collector and all), stopped afterwards."""
    gateway = Gateway(config)
    async with TestClient(TestServer(gateway.application())) as client:
        await ready(client)
        yield client


async def ready(client: TestClient[Any, Any], timeout: float = 10.0) -> None:
    """Wait until the gateway reads its reply queue."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (await client.get("/readyz")).status != 200:
        assert loop.time() < deadline, "the gateway did not get ready"
        await asyncio.sleep(0.02)


Scenario = Callable[[TestClient[Any, Any]], Awaitable[None]]


@pytest.fixture
def run_gateway(kennel: PluginHarness, tmp_path: Path) -> Callable[..., None]:
    """Run ``scenario(client)`` against a gateway in front of the kennel plugin."""

    def run(scenario: Scenario, **sections: dict[str, Any]) -> None:
        config = gateway_config(kennel.url, tmp_path / "state", **sections)

        async def main() -> None:
            async with serving(config) as client:
                await scenario(client)

        asyncio.run(main())

    return run
