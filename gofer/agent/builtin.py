"""The built-in ``Admin`` class every plugin's queue answers: hello, echo, help and cancel.

Each plugin's queue has an ``Admin`` of its own, bound to that plugin: it
describes and cancels only the requests of the queue it is called on, and a
caller reaches it under that plugin's authenticator. A caller allowed to
publish to one plugin's queue thus learns nothing of the others and cannot
cancel their work.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from gofer import __version__
from gofer.decorators import remote
from gofer.rmi.catalog import Catalog, remote_class
from gofer.rmi.context import Context, NoContextError

#: The namespace of the built-in catalog (as the old gofer showed it).
NAMESPACE = "__builtin__"
#: The class name callers use.
ADMIN = "Admin"


class Agent(Protocol):
    """What Admin needs from goferd: a view of one plugin's queue."""

    def catalogs(self) -> list[tuple[str, Catalog]]:
        """The name and catalog of each plugin the queue serves."""

    def cancel(self, sn: str | None, criteria: object) -> list[str]:
        """Cancel a request of the queue by serial number, or those matching criteria."""


def admin_catalog(agent: Agent) -> Catalog:
    """A catalog holding an ``Admin`` class bound to ``agent`` (one plugin's queue)."""

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
            # Never this very call, which criteria such as {"neq": "x"} would match.
            return [done for done in agent.cancel(sn, criteria) if done != _own_sn()]

    return Catalog(NAMESPACE, {ADMIN: remote_class(Admin)}, {}, [], [], [])


def _own_sn() -> str | None:
    try:
        return Context.current().sn
    except NoContextError:
        return None


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
