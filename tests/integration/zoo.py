"""A plugin module written the way the user guide shows, used by the RMI integration tests."""

from __future__ import annotations

import os
import time

from gofer.agent.rmi import Context
from gofer.decorators import fork, remote
from gofer.rmi.model import FORK


class BadDog(Exception):
    """A plugin's own exception (the caller may register it)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name, reason)
        self.name = name
        self.reason = reason


class Animal:
    @remote
    def breathe(self) -> str:
        return "in, out"


class Dog(Animal):
    def __init__(self, name: str = "rex", age: int = 1) -> None:
        self.name = name
        self.age = age

    @remote
    def bark(self, words: str, loud: bool = False) -> str:
        text = f'Yes master.  I will bark because that is what dogs do. "{words}"'
        return text.upper() if loud else text

    @remote
    def whoami(self) -> list[object]:
        return [self.name, self.age]

    @remote
    def sit(self) -> None:
        raise BadDog(self.name, "will not sit")

    @remote
    def divide(self, a: int, b: int) -> float:
        return a / b

    @remote
    def wag(self, n: int) -> str:
        ctx = Context.current()
        ctx.progress.total = n
        for _ in range(n):
            ctx.progress.completed += 1
            ctx.progress.details = f"wag {ctx.progress.completed}"
            ctx.progress.report()
        return "Yes master.  I will wag my tail because that is what dogs do."

    @remote
    def wait_for_cancel(self, seconds: float) -> str:
        ctx = Context.current()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ctx.cancelled():
                return "cancelled"
            time.sleep(0.05)
        return "not cancelled"

    @remote
    def nothing(self) -> None:
        return None

    @remote
    def unserializable(self) -> object:
        return object()

    @remote(secret="mycathas9lives")
    def secret_trick(self) -> str:
        return "trick"

    @remote(model=FORK)
    def forked_pid(self) -> int:
        return os.getpid()

    @fork
    @remote
    def forked_crash(self) -> None:
        os._exit(3)

    @remote(model="fork")
    def forked_wag(self, n: int) -> str:
        ctx = Context.current()
        ctx.progress.total = n
        for _ in range(n):
            ctx.progress.completed += 1
            ctx.progress.report()
        return "wagged in a child"

    @remote(model="fork")
    def forked_big(self, mib: int) -> str:
        return "x" * (mib * 1024 * 1024)

    def not_remote(self) -> str:
        return "hidden"

    @remote
    def _private(self) -> str:
        return "hidden"


@remote
def echo(something: object) -> object:
    return something
