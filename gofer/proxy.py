"""The documented caller entry point: ``from gofer.proxy import Agent``."""

from __future__ import annotations

from typing import Any

from gofer.rmi.stub import Agent


def agent(url: str, address: str, **options: Any) -> Agent:
    """Same as ``Agent(url, address, **options)`` (the old ``proxy.agent()``)."""
    return Agent(url, address, **options)


__all__ = ["Agent", "agent"]
