"""A plugin for the end-to-end tests, written as the user guide shows plugins."""

import os
import time
from pathlib import Path

from gofer.agent.plugin import Plugin
from gofer.agent.rmi import Context
from gofer.decorators import action, fork, load, remote, unload

plugin = Plugin.find(__name__)


def _marks_dir() -> Path:
    return Path(Plugin.find(__name__).cfg.farm.marks)


@load
def loaded():
    (_marks_dir() / "loaded").write_text(str(os.getpid()))


@unload
def unloaded():
    (_marks_dir() / "unloaded").write_text(str(os.getpid()))


@action(seconds=1)
def tick():
    with open(_marks_dir() / "ticks", "a") as ticks:
        ticks.write(f"{time.time()}\n")


class Cow:
    def __init__(self, name="daisy"):
        self.name = name

    @remote
    def moo(self, times=1):
        return " ".join(["moo"] * times) + f" from {self.name}"

    @remote
    def kick(self):
        raise ValueError(f"{self.name} kicks")

    @remote
    def chew(self, seconds):
        ctx = Context.current()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if ctx.cancelled():
                return "stopped chewing"
            time.sleep(0.05)
        return "chewed"

    @remote
    def graze(self, n):
        ctx = Context.current()
        ctx.progress.total = n
        for _ in range(n):
            ctx.progress.completed += 1
            ctx.progress.report()
        return "grazed"

    @remote
    def milk(self, tag, seconds):
        with open(_marks_dir() / "milked", "a") as runs:
            runs.write(f"{tag}\n")
        time.sleep(seconds)
        return "milked"

    @fork
    @remote
    def sleep_in_child(self, seconds):
        time.sleep(seconds)
        return os.getpid()

    @remote
    def config_value(self):
        return plugin.cfg.farm.greeting


@remote
def whoami():
    return os.getpid()
