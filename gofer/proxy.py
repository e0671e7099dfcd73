"""The documented caller entry points: ``from gofer.proxy import Agent, Fleet``."""

from __future__ import annotations

from typing import Any

from gofer.rmi.fanout import Fleet, Outcome
from gofer.rmi.stub import Agent


def agent(url: str, address: str, **options: Any) -> Agent:
    """Same as ``Agent(url, address, **options)`` (the old ``proxy.agent()``)."""
    return Agent(url, address, **options)


__all__ = ["Agent", "Fleet", "Outcome", "agent"]
