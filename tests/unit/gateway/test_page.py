"""The page at ``/`` in headless Chromium: it lists the caller's calls and follows them live.

Chromium is driven over the DevTools protocol (aiohttp's websocket
client), not with ``--dump-dom``: that dumps the page while an event
stream is still open, so it cannot tell a page that follows a call live
from one that does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from gofer.testing import PluginHarness
from tests import brokers
from tests.unit.gateway.conftest import AUTH, TOKEN

Client = TestClient  # type: ignore[type-arg]

FINAL = ("succeeded", "failed", "rejected", "expired")
MARKUP = '<img src="x" onerror="document.title=1">'

#: Each call's row as the page shows it.
ROWS = """
Array.from(document.querySelectorAll("#calls tr"), (row) => ({
  sn: row.querySelector(".sn").textContent,
  state: row.querySelector(".state").textContent,
  progress: row.querySelector(".progress").textContent,
  outcome: row.querySelector(".outcome").textContent,
}))
"""


@pytest.fixture
def chromium() -> str:
    """The browser's executable; the test skips without it, except in CI where it fails."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (scripts/test installs it on Debian)"
        if brokers.required():
            pytest.fail(message)
        pytest.skip(message)
    return found


class Page:
    """One browser tab over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        sent = next(self.ids)
        await self.ws.send_json({"id": sent, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("id") == sent:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def until(
        self, expression: str, done: Callable[[Any], bool], timeout: float = 20.0
    ) -> list[Any]:
        """The values of ``expression`` seen until one is ``done`` (the last one is)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = []
        while True:
            value = await self.evaluate(expression)
            seen.append(value)
            if done(value):
                return seen
            assert loop.time() < deadline, f"not done in {timeout:g}s: {value!r}"
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def browser(executable: str, home: Path) -> AsyncIterator[Page]:
    """Headless Chromium with one blank tab; killed afterwards."""
    profile = home / "profile"
    with (home / "chromium.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            executable,
            "--headless=new",
            "--no-sandbox",  # as root (CI containers) it does not start otherwise
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
    try:
        port = await devtools_port(profile / "DevToolsActivePort", process)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                targets = await response.json()
            tab = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def devtools_port(path: Path, process: asyncio.subprocess.Process) -> int:
    """The port Chromium writes into its profile once it listens."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30.0
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= 2:
            return int(lines[0])
        assert process.returncode is None, "chromium exited; see chromium.log"
        assert loop.time() < deadline, "chromium did not open its DevTools port"
        await asyncio.sleep(0.05)


def test_the_page_is_one_document_that_runs_only_its_own_script(
    run_gateway: Callable[..., None],
) -> None:
    async def scenario(client: Client) -> None:
        response = await client.get("/")  # no credentials: the page holds no data
        assert response.status == 200
        assert response.content_type == "text/html"
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy
        assert "connect-src 'self'" in policy
        html = await response.text()
        for outside in ("src=", "<link", "@import", "url("):  # nothing loaded from elsewhere
            assert outside not in html
        assert "innerHTML" not in html

    run_gateway(scenario)


def test_the_page_lists_the_callers_calls_and_follows_them_to_their_end(
    kennel: PluginHarness, run_gateway: Callable[..., None], chromium: str, tmp_path: Path
) -> None:
    async def scenario(client: Client) -> None:
        async with browser(chromium, tmp_path) as page:
            await page.send("Page.navigate", url=str(client.make_url("/")))
            status = "document.getElementById('status')?.textContent ?? ''"
            await page.until(status, lambda text: "token" in text)

            url = f"/v1/agents/{kennel.queue}/calls"
            bark = {"class": "Dog", "method": "bark", "args": [MARKUP]}
            barked = await (await client.post(f"{url}?wait=10", json=bark, headers=AUTH)).json()
            walk = {"class": "Dog", "method": "walk", "args": [4, 0.5]}
            walking = await (await client.post(url, json=walk, headers=AUTH)).json()
            assert walking["state"] not in FINAL

            await page.evaluate(
                f"document.getElementById('token').value = {json.dumps(TOKEN)};"
                " document.getElementById('login').requestSubmit()"
            )

            def walked(rows: list[dict[str, str]]) -> bool:
                return any(r["sn"] == walking["sn"] and r["state"] in FINAL for r in rows)

            seen = await page.until(ROWS, walked)
            rows = {row["sn"]: row for row in seen[-1]}
            assert list(rows) == [walking["sn"], barked["sn"]]  # newest first
            assert rows[walking["sn"]]["state"] == "succeeded"
            assert rows[walking["sn"]]["progress"] == "4/4"
            assert rows[walking["sn"]]["outcome"] == "walked 4"
            # Shown running, step by step, then ended. The page reads the list
            # at most twice meanwhile (once a token is given, then every 10 s):
            # three steps seen or more came from the event stream.
            shown = [r for each in seen for r in each if r["sn"] == walking["sn"]]
            assert {r["state"] for r in shown} - set(FINAL), shown
            assert len({r["progress"] for r in shown if r["progress"]}) >= 3, shown
            # Data goes into the page as text, never as markup.
            assert rows[barked["sn"]]["outcome"] == f"woof {MARKUP}"
            assert await page.evaluate("document.querySelectorAll('#calls img').length") == 0
            # The token stays in the tab's storage; it is never put in a URL.
            assert await page.evaluate("sessionStorage.getItem('gofer-gateway-token')") == TOKEN
            assert TOKEN not in await page.evaluate("location.href")

    run_gateway(scenario)
