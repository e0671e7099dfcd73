"""The fault suites' plugin: every execution is recorded by serial number in the marks directory.

Each run appends ``start <sn> <tag>`` before the work and ``end <sn> <tag>``
after it to ``<marks>/executions`` (one ``O_APPEND`` write per line, so
lines from concurrent workers never interleave, and a SIGKILL loses nothing
already written). A test reads the file to tell how often a request ran.
"""

import os
import time
from pathlib import Path

from gofer.agent.plugin import Plugin
from gofer.agent.rmi import Context
from gofer.decorators import fork, remote

plugin = Plugin.find(__name__)


def _record(event, sn, tag):
    path = Path(plugin.cfg.faults.marks) / "executions"
    line = f"{event} {sn} {tag}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class Fault:
    @remote
    def work(self, tag, seconds=0.0):
        """Record the run, take ``seconds``, return ``tag``."""
        sn = Context.current().sn
        tag = str(tag).replace(" ", "_")
        _record("start", sn, tag)
        if seconds:
            time.sleep(float(seconds))
        _record("end", sn, tag)
        return tag

    @remote
    @fork
    def forked(self, tag, seconds=0.0):
        """As ``work``, in a child process; its pid goes to ``<marks>/children``."""
        path = Path(plugin.cfg.faults.marks) / "children"
        with path.open("a") as children:
            children.write(f"{os.getpid()}\n")
        return self.work(tag, seconds)
