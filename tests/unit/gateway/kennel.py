"""A plugin for the gateway's unit tests: results, failures, progress and cancellation."""

import time

from gofer.agent.rmi import Context
from gofer.decorators import remote


class Dog:
    @remote
    def bark(self, text, times=1):
        return " ".join([f"woof {text}"] * times)

    @remote
    def bite(self):
        raise ValueError("the dog bites")

    @remote
    def fetch(self, n):
        ctx = Context.current()
        ctx.progress.total = n
        for _ in range(n):
            ctx.progress.completed += 1
            ctx.progress.report()
        return f"fetched {n}"

    @remote
    def walk(self, steps, pause):
        ctx = Context.current()
        ctx.progress.total = steps
        for _ in range(steps):
            time.sleep(pause)
            ctx.progress.completed += 1
            ctx.progress.report()
        return f"walked {steps}"

    @remote
    def sleep(self, seconds):
        ctx = Context.current()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ctx.cancelled():
                return "woken"
            time.sleep(0.02)
        return "slept"


class Cat:
    @remote
    def purr(self):
        return "purr"
