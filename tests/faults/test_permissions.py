"""Broker permissions per agent and per caller (the callme idea), as docs/security.md sets them.

A vhost of its own; an agent user that can use only its queue (and send
replies through the reply exchange); a caller user that can only publish to
agents' exchanges and use its own reply queues. goferd runs as the agent
user, the caller as the caller user, and a call works end to end; whatever
else either user tries is refused by the broker with ``AccessDeniedError``.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from gofer.errors import AccessDeniedError
from gofer.messaging.adapter.model import Queue
from gofer.messaging.connection import Connection
from gofer.messaging.retry import Backoff
from gofer.proxy import Agent
from gofer.rmi import transport
from tests import brokers
from tests.faults.conftest import rabbitmqctl

REPLY_EXCHANGE = "gofer.replies"


@dataclass(frozen=True)
class Site:
    """One vhost with an agent ``a1`` (and a neighbour ``a2``) and a caller, with their URLs."""

    vhost: str
    agent_url: str
    caller_url: str

    agent_queue = "gofer.agent.a1"
    agent_exchange = "gofer.to.a1"
    neighbour_queue = "gofer.agent.a2"
    neighbour_exchange = "gofer.to.a2"

    @property
    def agent_address(self) -> str:
        return f"{self.agent_exchange}/{self.agent_queue}"


def permissions(agent: str) -> tuple[tuple[str, str, str], tuple[str, str, str]]:
    """(configure, write, read) of an agent's user and of a caller's user (docs/security.md)."""
    agent_user = (
        rf"^gofer\.agent\.{agent}$",
        rf"^gofer\.agent\.{agent}$|^gofer\.replies$",
        rf"^gofer\.agent\.{agent}$|^gofer\.to\.{agent}$",
    )
    caller_user = (
        r"^gofer\.reply\..*",
        r"^gofer\.reply\..*|^gofer\.to\..*",
        r"^gofer\.reply\..*|^gofer\.replies$",
    )
    return agent_user, caller_user


def exchanges(vhost: str) -> dict[str, list[dict[str, object]]]:
    """The definitions an administrator imports: the agents' exchanges and the reply exchange."""
    names = [REPLY_EXCHANGE, Site.agent_exchange, Site.neighbour_exchange]
    return {
        "exchanges": [
            {
                "name": name,
                "vhost": vhost,
                "type": "direct",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name in names
        ]
    }


@pytest.fixture
def site(rabbitmq: brokers.TestBroker) -> Iterator[Site]:
    token = uuid.uuid4().hex[:8]
    vhost, agent, caller = f"gofer-faults-{token}", f"agent-a1-{token}", f"caller-{token}"
    agent_password, caller_password = secrets.token_hex(16), secrets.token_hex(16)
    agent_perms, caller_perms = permissions("a1")
    host = rabbitmq.parsed.host
    port = rabbitmq.parsed.port
    try:
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("add_user", agent, agent_password)
        rabbitmqctl("set_permissions", "-p", vhost, agent, *agent_perms)
        rabbitmqctl("add_user", caller, caller_password)
        rabbitmqctl("set_permissions", "-p", vhost, caller, *caller_perms)
        rabbitmqctl("import_definitions", stdin=json.dumps(exchanges(vhost)))
        yield Site(
            vhost,
            f"amqp://{agent}:{agent_password}@{host}:{port}/{vhost}",
            f"amqp://{caller}:{caller_password}@{host}:{port}/{vhost}",
        )
    finally:
        transport.close_all()  # the caller's shared connection is in the vhost going away
        rabbitmqctl("delete_vhost", vhost, check=False)
        rabbitmqctl("delete_user", agent, check=False)
        rabbitmqctl("delete_user", caller, check=False)


def connection(url: str) -> Connection:
    return Connection(url, backoff=Backoff(initial=0.1, maximum=0.5, limit=3))


def test_agent_and_caller_users_call_end_to_end_and_nothing_else(site: Site, fault_goferd) -> None:
    goferd = fault_goferd(broker_url=site.agent_url, queue=site.agent_address, cleanup_url=None)
    agent = Agent(site.caller_url, site.agent_address, exchange=REPLY_EXCHANGE, wait=30)
    assert agent.Fault().work("permitted") == "permitted"
    assert "permitted" in [tag for *_, tag in goferd.executions()]

    caller = connection(site.caller_url)
    try:
        with pytest.raises(AccessDeniedError):  # the agent's queue is not the caller's to read
            caller.reader(site.agent_queue).get(timeout=2)
        with pytest.raises(AccessDeniedError):  # nor to publish into, past the agent's exchange
            caller.send(site.agent_queue, b"{}")
        with pytest.raises(AccessDeniedError):  # callers make reply queues only
            caller.declare_queue(Queue("gofer.agent.mine", durable=False))
        own_replies = f"gofer.reply.{uuid.uuid4()}"
        caller.declare_queue(Queue(own_replies, durable=False, expiration=60))
    finally:
        caller.close()

    as_agent = connection(site.agent_url)
    try:
        with pytest.raises(AccessDeniedError):  # no requests to a neighbour agent
            as_agent.send(f"{site.neighbour_exchange}/{site.neighbour_queue}", b"{}")
        with pytest.raises(AccessDeniedError):  # nor through the default exchange
            as_agent.send(site.neighbour_queue, b"{}")
        with pytest.raises(AccessDeniedError):  # callers' replies are not the agent's to read
            as_agent.reader(own_replies).get(timeout=2)
    finally:
        as_agent.close()
    assert goferd.process is not None
    assert goferd.process.poll() is None
