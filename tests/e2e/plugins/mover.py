"""A plugin written against the existing gofer 3.0 plugin API, as production plugins are.

It follows a file naming its queue (gofer.pmon.PathMonitor), and moves
itself there by rewriting plugin.cfg.model.queue and calling detach() and
attach(): once in its @load hook, then each time the file changes. A file
holding a broker URL before the queue name ("amqp://host/vhost queue")
moves it to that broker as well, by rewriting plugin.cfg.messaging.url.
"""

import os
import time

from gofer.agent.plugin import Plugin
from gofer.decorators import fork, load, remote, unload
from gofer.pmon import PathMonitor

plugin = Plugin.find(__name__)
monitor = PathMonitor(precision=0.1)


def retarget(path):
    with open(path) as f:
        words = f.read().split()
    if not words:
        return
    queue = words[-1]
    url = words[0] if len(words) > 1 else plugin.cfg.messaging.url
    if (url, queue) != (plugin.cfg.messaging.url, plugin.cfg.model.queue):
        plugin.cfg.messaging.url = url
        plugin.cfg.model.queue = queue
        plugin.detach(False)
        plugin.attach()


@load
def watch():
    path = plugin.cfg.mover.watch
    if os.path.exists(path):
        retarget(path)
    monitor.add(path, retarget)
    monitor.start()


@unload
def stop_watching():
    monitor.shutdown()


class Mover:
    @remote
    def where(self):
        return plugin.cfg.model.queue

    @remote
    @fork
    def child(self):
        return os.getpid()

    @remote
    def slow(self, tag, seconds):
        marks = plugin.cfg.mover.marks
        if marks:
            with open(os.path.join(marks, tag), "w") as f:
                f.write("started")
        time.sleep(seconds)
        return tag
