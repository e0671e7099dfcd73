"""The built-in ``Admin`` class every plugin's queue answers: hello, echo, help and cancel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from gofer import __version__
from gofer.decorators import remote
from gofer.rmi.catalog import Catalog, remote_class

#: The namespace of the built-in catalog (as the old gofer showed it).
NAMESPACE = "__builtin__"


class Agent(Protocol):
    """What Admin needs from goferd."""

    def catalogs(self) -> list[tuple[str, Catalog]]:
        """Every plugin's name with its catalog."""

    def cancel(self, sn: str | None, criteria: object) -> list[str]:
        """Cancel a request by serial number, or the pending ones matching criteria."""


def admin_catalog(agent: Agent) -> Catalog:
    """A catalog holding an ``Admin`` class bound to ``agent``."""

    class Admin:
        """Built-in administration of the agent."""

        @remote
        def hello(self) -> str:
            return f"Hello, I am gofer agent {__version__}"

        @remote
        def echo(self, text: Any) -> Any:
            return text

        @remote
        def help(self) -> str:
            return help_text(agent.catalogs())

        @remote
        def cancel(self, sn: str | None = None, criteria: Any = None) -> list[str]:
            if sn is None and criteria is None:
                raise ValueError("cancel needs sn= or criteria=")
            return agent.cancel(sn, criteria)

    return Catalog(NAMESPACE, {"Admin": remote_class(Admin)}, {}, [], [], [])


def help_text(catalogs: list[tuple[str, Catalog]]) -> str:
    """The text of ``Admin.help()``, laid out as the old gofer did."""
    plugins, actions, methods, functions = [], [], [], []
    for name, catalog in catalogs:
        plugins.append(f"  {name}")
        for action in catalog.actions:
            actions.append(f"  {action.name} {_interval(action.interval)}")
        for class_name, found in sorted(catalog.classes.items()):
            for member in sorted(found.methods.values(), key=lambda m: m.name):
                methods.append(f"  {name}.{class_name}.{member.signature()}")
        for member in sorted(catalog.functions.values(), key=lambda m: m.name):
            functions.append(f"  {name}.{member.signature()}")
    lines = ["Plugins:", *plugins, "Actions:", *actions, "Methods:", *methods]
    return "\n".join([*lines, "Functions:", *functions])


def _interval(interval: timedelta) -> str:
    return str(interval)
