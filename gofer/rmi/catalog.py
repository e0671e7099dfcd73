"""What a plugin module offers, read from the marks: classes, functions, actions and hooks."""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable
from datetime import timedelta
from types import ModuleType
from typing import Any

from gofer.decorators import Marks, marks

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Member:
    """A remote method or function.

    Attributes:
        name: its name.
        function: the function (for a method, as found on the class).
        marks: what its decorators said.
        kind: ``method``, ``static`` (staticmethod), ``class`` (classmethod)
            or ``function`` (module level).
    """

    name: str
    function: Callable[..., Any]
    marks: Marks
    kind: str

    def signature(self) -> str:
        """The parameters as a caller sees them, e.g. ``bark(words, loud=False)``."""
        try:
            parameters = list(inspect.signature(self.function).parameters.values())
        except (TypeError, ValueError):
            return f"{self.name}(...)"
        if self.kind in ("method", "class") and parameters:
            parameters = parameters[1:]
        # As the guide shows them: names and defaults, no annotations.
        plain = [p.replace(annotation=inspect.Parameter.empty) for p in parameters]
        return f"{self.name}({', '.join(str(p) for p in plain)})"


@dataclasses.dataclass(frozen=True)
class RemoteClass:
    """A class with remote methods (its own and inherited ones)."""

    name: str
    cls: type
    methods: dict[str, Member]


@dataclasses.dataclass(frozen=True)
class Action:
    """A recurring action: a function, or a method run on a new instance each time."""

    name: str
    run: Callable[[], Any]
    interval: timedelta


@dataclasses.dataclass(frozen=True)
class Catalog:
    """Everything one plugin module contributes.

    Attributes:
        namespace: the plugin's name; module functions are called as
            ``agent.<namespace>.fn()``.
        classes: remote classes by name.
        functions: remote module functions by name.
        actions: recurring actions.
        load_hooks: ``@load`` functions, in definition order.
        unload_hooks: ``@unload`` functions, in definition order.
    """

    namespace: str
    classes: dict[str, RemoteClass]
    functions: dict[str, Member]
    actions: list[Action]
    load_hooks: list[Callable[[], Any]]
    unload_hooks: list[Callable[[], Any]]

    @classmethod
    def of_module(cls, module: ModuleType, namespace: str | None = None) -> Catalog:
        """Build the catalog of a module from the marks on what it defines.

        Only classes and functions defined in the module itself count, so an
        import (``from other_plugin import Dog``) does not expose them twice.
        """
        name = namespace or module.__name__.rpartition(".")[2]
        classes: dict[str, RemoteClass] = {}
        functions: dict[str, Member] = {}
        actions: list[Action] = []
        load_hooks: list[Callable[[], Any]] = []
        unload_hooks: list[Callable[[], Any]] = []
        for attribute, value in _defined_in(module):
            if inspect.isclass(value):
                found_class = remote_class(value)
                if found_class.methods:
                    classes[attribute] = found_class
                actions.extend(_class_actions(value, f"{name}.{attribute}"))
                continue
            found = marks(value)
            if found is None or not callable(value):
                continue
            if found.remote and not attribute.startswith("_"):
                functions[attribute] = Member(attribute, value, found, "function")
            if found.interval is not None:
                actions.append(Action(f"{name}.{attribute}", value, found.interval))
            if found.load:
                load_hooks.append(value)
            if found.unload:
                unload_hooks.append(value)
        return cls(name, classes, functions, actions, load_hooks, unload_hooks)

    @classmethod
    def of_functions(cls, namespace: str, functions: list[Callable[..., Any]]) -> Catalog:
        """A catalog of remote module functions only (for extending a plugin)."""
        found = {}
        for function in functions:
            function_marks = marks(function)
            if function_marks is not None and function_marks.remote:
                name = function.__name__
                found[name] = Member(name, function, function_marks, "function")
        return cls(namespace, {}, found, [], [], [])


def _defined_in(module: ModuleType) -> list[tuple[str, Any]]:
    """Members defined by the module itself, in definition order."""
    return [
        (attribute, value)
        for attribute, value in vars(module).items()
        if getattr(value, "__module__", None) == module.__name__
    ]


def remote_class(cls: type) -> RemoteClass:
    """The remote methods of a class (its own and inherited), as a catalog entry."""
    methods: dict[str, Member] = {}
    for attribute in dir(cls):
        if attribute.startswith("_"):
            continue
        raw = inspect.getattr_static(cls, attribute)
        found = marks(raw)
        if found is None or not found.remote:
            continue
        kind = (
            "static"
            if isinstance(raw, staticmethod)
            else "class"
            if isinstance(raw, classmethod)
            else "method"
        )
        methods[attribute] = Member(attribute, getattr(raw, "__func__", raw), found, kind)
    return RemoteClass(cls.__name__, cls, methods)


def _class_actions(cls: type, prefix: str) -> list[Action]:
    actions = []
    for attribute in dir(cls):
        raw = inspect.getattr_static(cls, attribute)
        found = marks(raw)
        if found is None or found.interval is None:
            continue
        actions.append(
            Action(f"{prefix}.{attribute}", _on_new_instance(cls, attribute), found.interval)
        )
    return actions


def _on_new_instance(cls: type, attribute: str) -> Callable[[], Any]:
    def run() -> Any:
        return getattr(cls(), attribute)()

    run.__name__ = f"{cls.__name__}.{attribute}"
    return run
