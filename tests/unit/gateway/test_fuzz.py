"""Requests made up from the gateway's own OpenAPI document never get a 5xx answer.

schemathesis reads the document the gateway serves at ``/v1/openapi.json``
and sends each operation of a running gateway (in front of the kennel
plugin on the in-memory broker) generated requests, valid and not: whatever
they hold, the gateway answers with a 2xx or a 4xx, never a server error.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import settings
from schemathesis.checks import not_a_server_error

from gofer.gateway import openapi
from gofer.gateway.service import Gateway
from gofer.testing import PluginHarness
from tests.unit.gateway.conftest import AUTH, gateway_config


def wait_ready(url: str, timeout: float = 10.0) -> None:
    """Wait until the gateway at ``url`` reads its reply queue."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=timeout):
                return
        except urllib.error.HTTPError:
            assert time.monotonic() < deadline, "the gateway did not get ready"
            time.sleep(0.02)


@pytest.fixture(scope="module")
def gateway_url(kennel: PluginHarness, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway served on a local port by an event loop of its own thread.

    schemathesis sends its requests with a blocking HTTP client, so the
    gateway cannot share the test's thread. A short max_wait keeps the
    generated ``wait`` parameters (calls to agents that never answer) brief.
    """
    state = Path(tmp_path_factory.mktemp("fuzz")) / "state"
    config = gateway_config(kennel.url, state, calls={"max_wait": "1"})
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway", daemon=True)
    thread.start()
    server = TestServer(Gateway(config).application())
    try:
        asyncio.run_coroutine_threadsafe(server.start_server(), loop).result(30)
        url = str(server.make_url("")).rstrip("/")
        wait_ready(url)
        yield url
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


# The document is loaded when the module is, to make one test per operation
# (schemathesis.pytest.from_fixture, which could load it from the running
# gateway, fails under pytest 9); test_served_document_is_fuzzed checks
# that the gateway serves this very document.
schema = schemathesis.openapi.from_dict(openapi.document())


def test_served_document_is_fuzzed(gateway_url: str) -> None:
    with urllib.request.urlopen(f"{gateway_url}/v1/openapi.json") as answer:
        assert json.load(answer) == schema.raw_schema


@schema.parametrize()
@settings(max_examples=25, derandomize=True, deadline=None)
def test_no_server_error(case: Any, gateway_url: str) -> None:
    case.call_and_validate(base_url=gateway_url, headers=AUTH, checks=[not_a_server_error])
