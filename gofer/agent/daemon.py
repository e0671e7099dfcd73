"""goferd's core: plugins loaded, their runners consuming, the journal replayed, actions scheduled.

:class:`Goferd` is the running agent; the ``goferd`` command
(:mod:`gofer.cli.goferd`) builds one from the configuration, starts it and
turns signals into :meth:`Goferd.shutdown` and :meth:`Goferd.reload`.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from gofer.agent import lifecycle, pam
from gofer.agent.builtin import admin_catalog
from gofer.agent.config.agent_conf import AgentConfig
from gofer.agent.config.descriptor import (
    DESCRIPTOR_SUFFIXES,
    Descriptor,
    MessagingSection,
    load_descriptor,
    load_descriptors,
)
from gofer.agent.criteria import compile as compile_criteria
from gofer.agent.journal import Entry, Journal
from gofer.agent.lifecycle import Handover, carries_secrets
from gofer.agent.management import ManagementError, ManagementServer
from gofer.agent.metrics import Family, Metrics, process_families, render
from gofer.agent.monitor import Changes, DescriptorWatch
from gofer.agent.origins import Origins
from gofer.agent.paths import Paths
from gofer.agent.plugin import Plugin, PluginContainer, PluginError
from gofer.agent.runner import PluginRunner
from gofer.agent.scheduler import Scheduler
from gofer.errors import ConfigError, GoferError
from gofer.messaging import auth
from gofer.messaging.adapter.model import Broker
from gofer.messaging.connection import Connection
from gofer.messaging.retry import Backoff
from gofer.rmi import wire
from gofer.rmi.catalog import Catalog
from gofer.rmi.dispatcher import Dispatcher
from gofer.rmi.serve import Refused, Replier, receive
from gofer.rmi.wire import Request

log = logging.getLogger(__name__)

#: Seconds a plugin's consumer may go without a turn, its broker up, before
#: goferd counts as wedged (longer than the consumer's longest pause, 30 s).
STUCK_AFTER = 120.0

#: How often journaled requests of plugins that serve no queue are looked at.
ORPHAN_CHECK_INTERVAL = timedelta(seconds=30)
#: The scheduler's name for that check (no plugin name has a space).
ORPHAN_CHECK = "goferd orphaned requests"


class Goferd:
    """The agent: every plugin, runner, connection and the journal of one goferd.

    Args:
        paths: where everything lives.
        config: the agent configuration.
    """

    def __init__(self, paths: Paths, config: AgentConfig) -> None:
        self.paths = paths
        self.config = config
        self.container = PluginContainer(paths.plugin_dirs)
        self.container.attachment = self
        self.scheduler = Scheduler(splay=config.main.action_splay)
        self.metrics = Metrics()
        self.journal: Journal | None = None
        # Each plugin's broker settings, kept to answer its requests once it is gone.
        self.origins = Origins(paths.journal / "origins")
        self.runners: dict[str, PluginRunner] = {}
        self.connections: dict[tuple[Broker, Backoff], Connection] = {}
        self.management: ManagementServer | None = None
        self.watch: DescriptorWatch | None = None
        #: Called with a reason when goferd cannot go on (the journal failed);
        #: the ``goferd`` command then stops and exits non-zero.
        self.on_fatal: Callable[[str], None] = _log_fatal
        # Every descriptor last read, by plugin name (loaded or not), and
        # whether some descriptor did not parse: what tells a plugin that
        # failed to load from one removed for good.
        self._descriptors: dict[str, Descriptor] = {}
        self._unreadable_descriptors = False
        #: What failed to load, and why: a plugin by name, a descriptor by path.
        self.failed: dict[str, str] = {}
        # The last replier of each plugin that had a runner: answers its
        # orphaned requests once it is gone.
        self._repliers: dict[str, Replier] = {}
        # Journaled requests already said to wait for their plugin.
        self._kept: set[str] = set()
        # Plugins that detached themselves (plugin.detach()): no runner until they attach.
        self._detached: set[str] = set()
        # Plugins being loaded: an attach() from their @load hook waits for the load's end.
        self._loading: set[str] = set()
        self._lock = threading.RLock()
        # Loading, reloading and unloading plugins come from signals (main
        # thread), management commands and the descriptor watch: one at a time.
        self._plugins_lock = threading.RLock()
        # What a stopped runner leaves to the next, beside the journal.
        self._handover = Handover()
        self._started = False

    # -- life ---------------------------------------------------------------

    def start(self) -> None:
        """Load plugins, start consuming, replay the journal, start actions and management."""
        self.journal = Journal(self.paths.journal)
        # Taken before any runner consumes: what they journal from now on is theirs.
        left = self.journal.pending()
        self.container.activate()
        self._load_all()
        self._replay(left)
        self._started = True
        self.scheduler.add(ORPHAN_CHECK, self._sweep, ORPHAN_CHECK_INTERVAL, splay=False)
        self.scheduler.start()
        self._start_management()
        if self.config.main.monitor:
            self.watch = DescriptorWatch(
                self.paths.descriptors, self._descriptors_changed, DESCRIPTOR_SUFFIXES
            )
            self.watch.start()

    def stop(self, timeout: float | None = None) -> bool:
        """:meth:`shutdown`, as every long-lived component stops (docs/architecture.md)."""
        return self.shutdown(timeout)

    def shutdown(self, drain_timeout: float | None = None) -> bool:
        """Stop taking requests, let running ones end (within a bound), and close everything.

        Requests still running when the bound is reached stay in the
        journal and run again at the next start: nothing accepted is lost.
        True when every request and action under way ended within the bound.
        """
        timeout = self.config.main.drain_timeout if drain_timeout is None else drain_timeout
        if self.watch is not None:
            self.watch.stop()
        if self.management is not None:
            self.management.stop()
        runners = list(self.runners.values())
        for runner in runners:
            runner._stopping.set()
        for runner in runners:
            runner.stop_consuming()
        deadline = time.monotonic() + timeout
        drained = True
        for runner in runners:
            drained = runner.drain(max(0.0, deadline - time.monotonic())) and drained
        drained = self.scheduler.stop(5.0) and drained
        for plugin in self.container.plugins():
            self.container.unload(plugin.name)
        for connection in self.connections.values():
            connection.close()
        if self.journal is not None:
            self.journal.close()
        log.info("goferd stopped")
        return drained

    def health(self) -> tuple[bool, str]:
        """Whether goferd is going (not wedged), and a line saying what it is doing.

        Not going: a plugin's consumer thread ended or stopped turning while
        its broker is up, or the journal failed. A broker that is down is
        not a fault of goferd's (it reconnects): the line says since when.
        """
        with self._lock:
            runners = list(self.runners.values())
        problems = [why for why in (r.stuck(STUCK_AFTER) for r in runners) if why]
        if self.journal is not None and self.journal.failed:
            problems.append("the journal cannot write")
        running = sum(len(r.running()) for r in runners)
        parts = [f"{len(runners)} plugin{'s' if len(runners) != 1 else ''} serving"]
        if running:
            parts.append(f"{running} request{'s' if running != 1 else ''} running")
        with self._lock:
            connections = list(self.connections.values())
        for connection in connections:
            since = connection.down_since
            if since is not None:
                at = time.strftime("%H:%M:%S", time.localtime(since))
                parts.append(f"broker {connection.broker} down since {at}")
        parts.extend(problems)
        return not problems, ", ".join(parts)

    def metrics_text(self) -> str:
        """goferd's figures in the Prometheus text format (see :mod:`gofer.agent.metrics`)."""
        with self._lock:
            runners = sorted(self.runners.values(), key=lambda r: r.name)
        by_plugin = [(("plugin", r.name),) for r in runners]
        families = [
            *self.metrics.families(),
            Family.gauge(
                "gofer_requests_in_flight",
                "Requests accepted and not yet ended.",
                [(labels, len(r.running())) for labels, r in zip(by_plugin, runners)],
            ),
            Family.gauge(
                "gofer_journal_requests",
                "Requests in the journal, accepted and not yet answered.",
                [((), len(self.journal) if self.journal is not None else 0)],
            ),
            Family.gauge(
                "gofer_broker_connected",
                "1 while the plugin's broker connection is open.",
                [
                    (labels, 1 if r.connection.connected_to is not None else 0)
                    for labels, r in zip(by_plugin, runners)
                ],
            ),
            Family(
                "gofer_broker_reconnects_total",
                "counter",
                "Broker connections opened again after the first.",
                [
                    ("", labels, max(0, r.connection.generation - 1))
                    for labels, r in zip(by_plugin, runners)
                ],
            ),
            *process_families(self.metrics.started),
        ]
        return render(families)

    def reload(self) -> None:
        """Unload every plugin and load the descriptors again (SIGHUP)."""
        log.info("reloading plugins")
        with self._plugins_lock:
            for name in [p.name for p in self.container.plugins()]:
                self._unload(name, detach=False)
            self._load_all()
            self._sweep()

    def _descriptors_changed(self, changes: Changes) -> None:
        """``[main] monitor=1``: load, reload or unload the plugins whose descriptors changed.

        A removed descriptor unloads its plugin (its queue is kept, as by
        SIGHUP). A changed one reloads it; one that no longer parses leaves
        the plugin running as it was, and says why.
        """
        with self._plugins_lock:
            loaded = {Path(p.descriptor.path).resolve(): p.name for p in self.container.plugins()}
            for path in changes.removed:
                self.failed.pop(str(path), None)
                name = loaded.get(path.resolve())
                self._descriptors = {
                    n: d
                    for n, d in self._descriptors.items()
                    if Path(d.path).resolve() != path.resolve()
                }
                if name is not None:
                    log.info("descriptor %s removed: unloading plugin %s", path, name)
                    self._unload(name, detach=False)
            for path in changes.changed + changes.added:
                name = loaded.get(path.resolve())
                try:
                    descriptor = load_descriptor(path)
                except ConfigError as exc:
                    kept = f"; plugin {name} keeps running as it was" if name else ""
                    log.error("plugin descriptor not loaded: %s%s", exc, kept)
                    self.failed[str(path)] = f"{exc}{kept}"
                    continue
                self.failed.pop(str(path), None)
                if name is not None:
                    log.info("descriptor %s changed: reloading plugin %s", path, name)
                    self._unload(name, detach=False)
                self._descriptors[descriptor.main.name] = descriptor
                if descriptor.main.enabled:
                    self._load(descriptor)
                else:
                    log.info("plugin %s disabled (%s)", descriptor.main.name, path)
            self._rewire()
            self._sweep()

    # -- plugins ------------------------------------------------------------

    def _load_all(self) -> None:
        """Load every enabled plugin of the descriptor directory and start serving them."""
        descriptors, errors = load_descriptors(self.paths)
        self.failed = {}
        for error in errors:
            log.error("plugin descriptor skipped: %s", error)
            self.failed[str(getattr(error, "path", None) or error)] = str(error)
        self._descriptors = {d.main.name: d for d in descriptors}
        self._unreadable_descriptors = bool(errors)
        for descriptor in descriptors:
            if descriptor.main.enabled:
                self._load(descriptor)
            else:
                log.info("plugin %s disabled (%s)", descriptor.main.name, descriptor.path)
        self._rewire()

    def _load(self, descriptor: Descriptor) -> Plugin | None:
        self._detached.discard(descriptor.main.name)
        self._loading.add(descriptor.main.name)
        try:
            plugin = self.container.load(descriptor)
        except PluginError as exc:
            log.error("%s", exc)
            self.failed[descriptor.main.name] = str(exc)
            return None
        finally:
            self._loading.discard(descriptor.main.name)
        self.failed.pop(descriptor.main.name, None)
        for action in plugin.catalog.actions:
            self.scheduler.add(action.name, action.run, action.interval)
        return plugin

    def _unload(self, name: str, *, detach: bool) -> None:
        with self._lock:
            runner = self.runners.pop(name, None)
        if runner is not None:
            self._retire(runner)
            if detach:
                runner.detach()
        self.scheduler.remove_prefix(f"{name}.")
        self.container.unload(name)

    def _rewire(self) -> None:
        """Give every runner a dispatcher for the current plugins; start missing runners.

        A runner started once goferd runs (a plugin loaded or reloaded) also
        takes the requests its plugin left in the journal: those an earlier
        runner had accepted but not started when it was unloaded.
        """
        plugins = {plugin.name: plugin for plugin in self.container.plugins()}
        started: list[PluginRunner] = []
        with self._lock:
            for name in list(self.runners):
                if name not in plugins:
                    self.runners.pop(name).stop_consuming()
            for plugin in plugins.values():
                dispatcher = self._dispatcher(plugin, plugins)
                runner = self.runners.get(plugin.name)
                if runner is not None:
                    runner.dispatcher = dispatcher
                    continue
                if plugin.name in self._detached or plugin.name in self._loading:
                    continue
                try:
                    runner = self._runner(plugin, dispatcher)
                except ConfigError as exc:
                    log.error("plugin %s serves no queue: %s", plugin.name, exc)
                    continue
                if runner is not None:
                    self._keep_origin(plugin)
                    self.runners[plugin.name] = runner
                    self._repliers[plugin.name] = runner.replier
                    started.append(runner)
            # Taken before the new runners consume: what they journal is theirs.
            left = self._left_by({runner.name for runner in started}) if self._started else []
            for runner in started:
                runner.start()
        if left:
            self._replay(left)

    def _keep_origin(self, plugin: Plugin) -> None:
        """Keep the settings a plugin's requests are answered with, before it takes any."""
        try:
            self.origins.keep(plugin.name, plugin.descriptor.messaging)
        except (OSError, ValueError) as exc:  # ValueError: a name the journal takes neither
            log.error(
                "plugin %s: cannot keep its broker settings in %s (its requests cannot be"
                " answered if it is removed while goferd is stopped): %s",
                plugin.name,
                self.origins.directory,
                exc,
            )

    def _left_by(self, plugins: set[str]) -> list[Entry]:
        """The journaled requests of ``plugins`` that no runner holds."""
        if not plugins:
            return []
        assert self.journal is not None
        self.journal.flush()  # finishes on their way: not to be taken as left
        return self._handover.left(self.journal.pending(), plugins)

    def _dispatcher(self, plugin: Plugin, plugins: dict[str, Plugin]) -> Dispatcher:
        """The plugin's own API, what it may forward to, and its Admin (which nothing hides).

        A plugin whose descriptor says ``extends=<this plugin>`` adds its API
        to this one's (the user guide's "Plugin Extension"); this plugin's
        own classes win over an extension's of the same name.
        """
        catalogs: list[Catalog] = [
            other.merged_catalog()
            for other in plugins.values()
            if plugin.name in other.descriptor.main.extends and other is not plugin
        ]
        for name in plugin.descriptor.main.forward:
            other = plugins.get(name)
            accept = other.descriptor.main.accept if other is not None else ()
            if other is not None and (plugin.name in accept or "*" in accept):
                catalogs.append(other.merged_catalog())
            elif other is not None:
                log.warning("plugin %s forwards to %s, which does not accept it", plugin.name, name)
        catalogs.append(plugin.merged_catalog())
        served = [(c.namespace, c) for c in catalogs]
        catalogs.append(admin_catalog(_QueueAdmin(self, plugin.name, served)))
        return Dispatcher(catalogs, pam=self._pam)

    def _pam(self, user: str, password: str, service: str) -> None:
        pam.authenticate(user, password, service or self.config.pam.service)

    def _runner(self, plugin: Plugin, dispatcher: Dispatcher) -> PluginRunner | None:
        descriptor = plugin.descriptor
        broker = descriptor.messaging.broker()
        queue = descriptor.model.queue
        if broker is None or not queue:
            log.info(
                "plugin %s has no %s; it serves no queue",
                plugin.name,
                "url" if broker is None else "queue",
            )
            return None
        assert self.journal is not None
        return PluginRunner(
            name=plugin.name,
            queue=queue,
            connection=self._connection(broker, descriptor.messaging.reconnect()),
            dispatcher=dispatcher,
            journal=self.journal,
            threads=descriptor.main.threads,
            latency=descriptor.main.latency,
            managed=descriptor.model.managed,
            expiration=descriptor.model.expiration,
            queue_type=descriptor.model.queue_type,
            authenticator=plugin.authenticator
            or _authenticator(descriptor.messaging, str(descriptor.path)),
            on_fatal=self._fatal,
            metrics=self.metrics,
        )

    def _connection(self, broker: Broker, reconnect: Backoff) -> Connection:
        """One connection per broker (and TLS and reconnect settings), shared by its plugins.

        Its one reconnect loop serves them all: a broker's outage costs one
        connection attempt at a time, whatever the number of plugins.
        """
        with self._lock:
            connection = self.connections.get((broker, reconnect))
            if connection is None:
                connection = Connection(broker, reconnect=reconnect)
                self.connections[(broker, reconnect)] = connection
            return connection

    # -- requests -----------------------------------------------------------

    def _replay(self, pending: list[Entry]) -> None:
        """Run again journaled requests: accepted, not yet answered, held by no runner.

        Those of plugins that serve no queue now are left for :meth:`_sweep`.
        """
        assert self.journal is not None
        served = [entry for entry in pending if entry.plugin in self.runners]
        if served:
            log.info("replaying %d journaled request(s)", len(served))
        for entry in served:
            runner = self.runners[entry.plugin]
            request = self._journaled(entry)
            if request is None:
                continue
            self._kept.discard(entry.sn)
            unrun, replier = self._handover.take(entry.sn)
            if unrun:
                started = self.journal.is_started(entry.sn)
                runner.submit(request, entry.received, started=started, replier=replier)
            else:
                runner.submit(request, entry.received, replayed=True, replier=replier)

    def _journaled(self, entry: Entry) -> Request | None:
        """The request of a journal entry; None (and finished) if it cannot be read."""
        assert self.journal is not None
        try:
            # Checked (and signature-validated) when it was journaled.
            return receive(entry.body)
        except Refused as refused:
            log.error("journaled request %s unreadable: %s", entry.sn, refused)
            self.journal.finish(entry.sn)
            return None

    def _sweep(self) -> None:
        """Answer or keep the journaled requests of plugins that serve no queue now.

        A plugin that failed to load (or to serve its queue) keeps its
        requests until it loads again, when its runner takes them; the ones
        that expire meanwhile are answered ``request.expired``. The requests
        of a plugin removed for good (no descriptor names it, or it is
        disabled) are answered ``request.plugin``, on the broker it last
        served on when its descriptor is gone (:mod:`gofer.agent.origins`).
        Only a request no reply can be sent for (its plugin's broker is
        unknown: it never served a queue under a gofer that kept its
        settings) is dropped, logged.
        """
        with self._plugins_lock:
            if self.journal is None or not self._started:
                return
            with self._lock:
                unserved = {e.plugin for e in self.journal.pending()} - set(self.runners)
            for entry in self._left_by(unserved):
                # One an unloaded runner took but never ran is kept or answered
                # as any other: its plugin may be gone for good (test_orphans.py).
                if self.runners.get(entry.plugin) is not None:
                    continue
                request = self._journaled(entry)
                if request is not None:
                    self._orphaned(entry, request)
            self._forget_origins()

    def _forget_origins(self) -> None:
        """Drop the kept settings of plugins removed for good that have no request left."""
        assert self.journal is not None
        if self._unreadable_descriptors:
            return  # a plugin whose descriptor does not parse is not gone
        waiting = {entry.plugin for entry in self.journal.pending()}
        for name in self.origins.plugins():
            loaded = self.container.find(name) is not None
            if name not in self._descriptors and name not in waiting and not loaded:
                self.origins.forget(name)
                self._repliers.pop(name, None)

    def _orphaned(self, entry: Entry, request: Request) -> None:
        """Keep or answer one journaled request whose plugin serves no queue."""
        assert self.journal is not None
        descriptor = self._descriptors.get(entry.plugin)
        gone = descriptor is None and not self._unreadable_descriptors
        # A descriptor that does not parse may name it: not gone, then.
        enabled = None if gone else (descriptor is None or bool(descriptor.main.enabled))
        decision = lifecycle.without_runner(entry.plugin, request, entry.received, enabled=enabled)
        rejected = decision.rejected
        if rejected is None:
            if entry.sn not in self._kept:  # said once, not at every look
                self._kept.add(entry.sn)
                log.warning(
                    "journaled request %s kept until plugin %s loads again", entry.sn, entry.plugin
                )
            return
        replier = self._handover.replier(entry.sn) or self._replier_of(entry.plugin, descriptor)
        if replier is None and request.replyto and not gone:
            log.error(
                "request %s not answered (%s): no broker is known for plugin %s; kept",
                entry.sn,
                rejected.description,
                entry.plugin,
            )
            return
        if replier is None and request.replyto:
            log.error(
                "journaled request %s dropped unanswered (%s): no broker is known to answer on",
                entry.sn,
                rejected.description,
            )
        else:
            log.warning("journaled request %s not run: %s", entry.sn, rejected.description)
        if replier is not None:
            replier.reject(request, rejected)
        self._kept.discard(entry.sn)
        self._handover.finished(entry.sn)
        self.journal.finish(entry.sn, scrub=carries_secrets(request))

    def _replier_of(self, plugin: str, descriptor: Descriptor | None) -> Replier | None:
        """Where a plugin without a runner answers.

        Its last runner's replier; else its descriptor's broker; else, its
        descriptor gone, the broker it last served on (kept in :attr:`origins`).
        """
        replier = self._repliers.get(plugin)
        if replier is not None:
            return replier
        if descriptor is not None:
            messaging, source = descriptor.messaging, str(descriptor.path)
        else:
            kept = self.origins.of(plugin)
            if kept is None:
                return None
            messaging, source = kept, str(self.origins.path(plugin))
        broker = messaging.broker()
        if broker is None:
            return None
        try:
            authenticator = _authenticator(messaging, source)
        except ConfigError as exc:
            log.error("plugin %s: cannot answer its requests: %s", plugin, exc)
            return None
        connection = self._connection(broker, messaging.reconnect())
        replier = Replier(connection.send, authenticator)
        self._repliers[plugin] = replier
        return replier

    # -- plugins moving themselves (Plugin.detach/attach) ----------------------

    def detach_plugin(self, plugin: Plugin, teardown: bool) -> None:
        """Stop consuming a plugin's queue until it attaches again; its requests are kept."""
        with self._plugins_lock:
            self._detached.add(plugin.name)
            with self._lock:
                runner = self.runners.pop(plugin.name, None)
            if runner is None:
                return
            self._retire(runner)
            if teardown:
                runner.detach()
            log.info("plugin %s detached from %s", plugin.name, runner.address)

    def attach_plugin(self, plugin: Plugin) -> None:
        """Consume the queue a plugin's descriptor names now (its old runner stops first)."""
        with self._plugins_lock:
            if plugin.name in self._loading:
                self._detached.discard(plugin.name)
                return  # the load's end starts its runner, on the queue named by then
            if self.runners.get(plugin.name) is not None:
                self.detach_plugin(plugin, teardown=False)
            self._detached.discard(plugin.name)
            self._rewire()

    def pending_of(self, plugin: Plugin) -> list[str]:
        """Serial numbers of a plugin's journaled requests not answered yet."""
        if self.journal is None:
            return []
        return [e.sn for e in self.journal.pending() if e.plugin == plugin.name]

    def _retire(self, runner: PluginRunner) -> None:
        """Stop a runner: requests running finish (within the drain bound); the others stay."""
        runner.stop_consuming()
        runner.drain(self.config.main.drain_timeout)
        self._handover.retire(runner)

    def _fatal(self, reason: str) -> None:
        self.on_fatal(reason)

    def cancel(self, sn: str | None, criteria: object, plugin: str | None = None) -> list[str]:
        """Cancel a request by serial number, or every pending one whose data matches.

        Args:
            sn: the serial number of the request to cancel.
            criteria: what the ``data`` of the requests to cancel match.
            plugin: only requests taken from this plugin's queue (None: any,
                as the local management command may).
        """
        assert self.journal is not None
        if sn is not None:
            if not wire.valid_sn(sn):
                raise ValueError(f"not a serial number: {sn!r}"[:100])
            if plugin is not None and any(
                e.sn == sn and e.plugin != plugin for e in self.journal.pending()
            ):
                return []  # another plugin's request: not this queue's to cancel
            return [sn] if self.journal.cancel(sn) else []
        match = compile_criteria(criteria)
        cancelled = []
        for entry in self.journal.pending():
            if plugin is not None and entry.plugin != plugin:
                continue
            try:
                data = auth.validate(None, entry.body).get("data")
            except GoferError:
                continue
            if match(data) and self.journal.cancel(entry.sn):
                cancelled.append(entry.sn)
        return cancelled

    # -- management ---------------------------------------------------------

    def _start_management(self) -> None:
        settings = self.config.management
        tcp = (settings.host, settings.port) if settings.enabled else None
        if settings.socket is None and tcp is None:
            return
        self.management = ManagementServer(
            self.manage,
            socket_path=settings.socket,
            tcp=tcp,
            tcp_handler=self.manage_untrusted,
            allowed_uids=frozenset({0, os.geteuid()}),
        )
        self.management.start()

    def manage(self, command: str, args: dict[str, Any]) -> Any:
        """Handle one management command (``gofer mgt``)."""
        if command in ("load", "reload", "unload"):
            with self._plugins_lock:
                return self._manage(command, args)
        return self._manage(command, args)

    def manage_untrusted(self, command: str, args: dict[str, Any]) -> Any:
        """Handle a management command from the TCP port, where anyone local may connect.

        ``load`` and ``reload`` take only enabled descriptors of the
        descriptor directory: anything else would let any local user have
        goferd load a descriptor of their own (or one root loaded from a
        place they can write to, or one root disabled) and run an installed
        plugin's methods as root.
        """
        if command not in ("load", "reload"):
            return self.manage(command, args)
        # Checked and loaded under one lock, from the path as resolved when
        # checked: a link swapped in between must not change what loads.
        with self._plugins_lock:
            if command == "load":
                return self._manage_load(str(self._untrusted(command, Path(_text(args, "path")))))
            name = self._plugin_named(args)
            return self._reload(name, self._untrusted(command, self._descriptor_of(name)))

    def _untrusted(self, command: str, descriptor: Path) -> Path:
        """``descriptor`` resolved, if the TCP port may load it (else ManagementError)."""
        path = descriptor.resolve()
        directory = self.paths.descriptors.resolve()
        if directory not in path.parents:
            log.warning(
                "management over TCP: %s of %s refused (not in %s)", command, path, directory
            )
            raise ManagementError(
                f"over TCP, only descriptors in {directory} can be loaded;"
                " use the management socket (gofer mgt as root) for others"
            )
        try:
            enabled = load_descriptor(path).main.enabled
        except ConfigError as exc:
            raise ManagementError(str(exc)) from exc
        if not enabled:
            log.warning("management over TCP: %s of %s refused (enabled=0)", command, path)
            raise ManagementError(
                f"over TCP, {path} cannot be loaded: it says enabled=0;"
                " use the management socket (gofer mgt as root) to load it anyway"
            )
        return path

    def _manage(self, command: str, args: dict[str, Any]) -> Any:
        if command == "show":
            return self.show()
        if command == "load":
            return self._manage_load(_text(args, "path"))
        if command == "reload":
            name = self._plugin_named(args)
            return self._reload(name, self._descriptor_of(name))
        if command == "unload":
            name = self._plugin_named(args)
            self._unload(name, detach=True)
            self._descriptors.pop(name, None)  # gone for good: its requests are answered
            self._rewire()
            self._sweep()
            return {"unloaded": name}
        if command == "cancel":
            return {"cancelled": self.cancel(args.get("sn"), args.get("criteria"))}
        raise ManagementError(f"unknown command {command!r}")

    def _descriptor_of(self, name: str) -> Path:
        return Path(self.container.find(name).descriptor.path)  # type: ignore[union-attr]

    def _reload(self, name: str, path: Path) -> dict[str, Any]:
        self._unload(name, detach=False)
        return self._manage_load(str(path))

    def _manage_load(self, path: str) -> dict[str, Any]:
        try:
            descriptor = load_descriptor(path)
        except ConfigError as exc:
            raise ManagementError(str(exc)) from exc
        self._descriptors[descriptor.main.name] = descriptor
        plugin = self._load(descriptor)
        if plugin is None:
            raise ManagementError(f"plugin {descriptor.main.name} failed to load (see the log)")
        self._rewire()
        return {"loaded": plugin.name}

    def _plugin_named(self, args: dict[str, Any]) -> str:
        if args.get("path"):
            wanted = Path(str(args["path"])).resolve()
            for plugin in self.container.plugins():
                if Path(plugin.descriptor.path).resolve() == wanted:
                    return plugin.name
            raise ManagementError(f"no plugin was loaded from {wanted}")
        name = _text(args, "name")
        if self.container.find(name) is None:
            raise ManagementError(f"no plugin {name!r} is loaded")
        return name

    def show(self) -> dict[str, Any]:
        """What is loaded: plugins with their classes, methods, functions; actions."""
        plugins: list[dict[str, Any]] = []
        actions: list[dict[str, Any]] = []
        for plugin in self.container.plugins():
            catalog = plugin.merged_catalog()
            runner = self.runners.get(plugin.name)
            plugins.append(
                {
                    "name": plugin.name,
                    "enabled": plugin.enabled,
                    "url": str(plugin.descriptor.messaging.url or "") or None,
                    "queue": str(runner.address) if runner is not None else None,
                    "connected": _connected(runner),
                    "classes": [
                        {
                            "name": name,
                            "methods": [
                                m.signature()
                                for m in sorted(found.methods.values(), key=lambda m: m.name)
                            ],
                        }
                        for name, found in sorted(catalog.classes.items())
                    ],
                    "functions": [
                        m.signature()
                        for m in sorted(catalog.functions.values(), key=lambda m: m.name)
                    ],
                }
            )
            actions.extend(
                {"name": action.name, "interval": action.interval.total_seconds()}
                for action in catalog.actions
            )
        failed = [{"name": name, "error": error} for name, error in sorted(self.failed.items())]
        return {"plugins": plugins, "actions": actions, "failed": failed}


def _connected(runner: PluginRunner | None) -> str | None:
    """The broker (of its URL's) a runner's connection is open to now; None if none."""
    broker = runner.connection.connected_to if runner is not None else None
    return str(broker) if broker is not None else None


class _QueueAdmin:
    """What the ``Admin`` of one plugin's queue sees: that queue's plugins and requests.

    Args:
        goferd: the agent.
        plugin: the plugin whose queue it answers on.
        served: the name and catalog of each plugin that queue serves (the
            plugin and those it forwards to).
    """

    def __init__(self, goferd: Goferd, plugin: str, served: list[tuple[str, Catalog]]) -> None:
        self._goferd = goferd
        self._plugin = plugin
        self._served = served

    def catalogs(self) -> list[tuple[str, Catalog]]:
        return list(self._served)

    def cancel(self, sn: str | None, criteria: object) -> list[str]:
        return self._goferd.cancel(sn, criteria, plugin=self._plugin)


def _log_fatal(reason: str) -> None:
    log.critical("goferd cannot go on: %s", reason)


def _text(args: dict[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise ManagementError(f"{key} is required")
    return value


def _authenticator(messaging: MessagingSection, source: str) -> auth.Authenticator | None:
    """The ``[messaging] authenticator`` (a dotted path to a class or object) of ``source``."""
    dotted = messaging.authenticator
    if not dotted:
        return None
    module_name, _, attribute = dotted.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
        made = found() if isinstance(found, type) else found
    except Exception as exc:
        raise ConfigError(
            f"authenticator {dotted!r} cannot be loaded: {exc}",
            source,
            "messaging",
            "authenticator",
        ) from exc
    if not isinstance(made, auth.Authenticator):
        raise ConfigError(
            f"{dotted!r} is not an Authenticator",
            source,
            "messaging",
            "authenticator",
        )
    return made


__all__ = ["Goferd"]
