"""Request signing: with [signing], the gateway signs requests and checks replies."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gofer.testing import PluginHarness
from tests.unit.gateway.conftest import AUTH, gateway_config, serving

KEY = "k" * 32

SIGNED_PLUGIN = f"""
from gofer.agent.plugin import Plugin
from gofer.decorators import remote
from gofer.messaging.auth import HmacAuthenticator

Plugin.find(__name__).authenticator = HmacAuthenticator({KEY!r})


class Vault:
    @remote
    def open(self):
        return "opened"
"""


def test_signed_requests_are_run_and_unsigned_ones_rejected(tmp_path: Path) -> None:
    module = tmp_path / "vault.py"
    module.write_text(SIGNED_PLUGIN)
    key = tmp_path / "gateway.key"
    key.write_text(KEY)
    body = {"class": "Vault", "method": "open"}

    async def main(harness: PluginHarness) -> None:
        path = f"/v1/agents/{harness.queue}/calls?wait=10"
        signing = gateway_config(harness.url, tmp_path / "a", signing={"hmac_key": str(key)})
        async with serving(signing) as client:
            call = await (await client.post(path, json=body, headers=AUTH)).json()
            assert (call["state"], call["result"]) == ("succeeded", "opened")
        plain = gateway_config(harness.url, tmp_path / "b")
        async with serving(plain) as client:
            call = await (await client.post(path, json=body, headers=AUTH)).json()
            assert call["state"] == "rejected"
            assert call["error"]["code"] == "security.authentication"

    with PluginHarness(module) as harness:
        asyncio.run(main(harness))
