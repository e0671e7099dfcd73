"""Plugins: loading plugin modules from descriptors, and the ``Plugin`` object plugins see.

A plugin is a descriptor (``/etc/gofer/plugins/<name>.conf``) plus a Python
module: named by the descriptor's ``plugin=`` (a dotted path on the Python
path) or found as ``<name>.py`` in the plugin directories. Modules found in
the plugin directories are imported under a private name
(``gofer_plugins.<name>``), so a plugin called ``json`` or ``os`` shadows
nothing. The :class:`Plugin` of a module being imported is already known, so
the guide's ``plugin = Plugin.find(__name__)`` works at module level.

The compatibility façade ``Plugin.find()`` delegates to the running
container (goferd's); the container is an ordinary object passed around
everywhere else.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import re
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Protocol

from gofer.agent.config.descriptor import Descriptor, descriptor_from
from gofer.errors import GoferError
from gofer.messaging.url import Url
from gofer.rmi.catalog import Catalog, remote_class

log = logging.getLogger(__name__)

#: The package under which modules from the plugin directories are imported.
PRIVATE_PACKAGE = "gofer_plugins"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


class PluginError(GoferError):
    """A plugin could not be loaded, reloaded or unloaded."""


class Attachment(Protocol):
    """What moves a plugin between brokers and queues: goferd's runners."""

    def detach_plugin(self, plugin: Plugin, teardown: bool) -> None:
        """Stop consuming the plugin's queue (requests taken are kept)."""

    def attach_plugin(self, plugin: Plugin) -> None:
        """Consume the queue its descriptor names now."""

    def pending_of(self, plugin: Plugin) -> list[str]:
        """Serial numbers of its requests accepted and not answered yet."""


class Plugin:
    """A loaded plugin, as plugin code and goferd see it.

    Attributes:
        name: the plugin's name (descriptor ``[main] name`` or file name).
        descriptor: the parsed descriptor.
        module: the plugin's module (None while it is being imported).
        catalog: what the module offers remotely.
    """

    _container: ClassVar[PluginContainer | None] = None

    def __init__(self, descriptor: Descriptor) -> None:
        self.descriptor = descriptor
        self.name: str = descriptor.main.name
        self.module: ModuleType | None = None
        self.catalog = Catalog(self.name, {}, {}, [], [], [])
        self._extensions: list[Catalog] = []
        #: Set by the plugin (``plugin.authenticator = obj``): checks its
        #: requests and signs its replies instead of the descriptor's
        #: ``[messaging] authenticator`` (None: the descriptor's). goferd reads
        #: it when it makes the plugin's runner: once the ``@load`` hooks have
        #: run (so one set there serves from the start) and at each
        #: :meth:`attach`. The runner serving when it is set keeps the one it
        #: was made with, also for answering the requests it accepted. A
        #: reload makes a new Plugin: set it again in a ``@load`` hook.
        self.authenticator: Any = None
        self.scheduler = _Scheduler(self)

    @property
    def cfg(self) -> Any:
        """The descriptor's sections: ``plugin.cfg.foobar.timeout`` (or ``plugin.cfg()``...)."""
        return self.descriptor.cfg

    @property
    def enabled(self) -> bool:
        return bool(self.descriptor.main.enabled)

    @property
    def url(self) -> Url | None:
        """The broker URL (None when the plugin uses no broker)."""
        return self.descriptor.messaging.url

    @property
    def queue(self) -> str | None:
        queue: str | None = self.descriptor.model.queue
        return queue

    def detach(self, teardown: bool = True) -> None:
        """Stop consuming the plugin's queue; with ``teardown``, delete it when ``managed=2``.

        Requests already accepted are not lost: those running finish before
        this returns (within ``[main] drain_timeout``), those waiting stay
        journaled and run once the plugin is attached again. Each is answered
        on the broker it came from, even after a move to another one.
        """
        container = Plugin._container
        if container is not None and container.attachment is not None:
            container.attachment.detach_plugin(self, teardown)

    def attach(self) -> None:
        """Consume the broker and queue ``cfg.messaging`` and ``cfg.model`` name now.

        A plugin moves to another broker or queue by setting them
        (``plugin.cfg.model.queue = "new"``) and calling :meth:`detach` then
        ``attach()``, without a goferd restart; ``plugin.authenticator`` set
        before takes effect too.

        Raises:
            ConfigError: the changed settings are not valid.
        """
        self.descriptor = descriptor_from(
            self.descriptor.path, self.descriptor.cfg.raw(), self.descriptor.cfg
        )
        container = Plugin._container
        if container is not None and container.attachment is not None:
            container.attachment.attach_plugin(self)

    @staticmethod
    def find(name: str) -> Plugin | None:
        """The loaded plugin called ``name``, or whose module is called ``name``.

        Plugins call ``Plugin.find(__name__)`` to reach their own descriptor.
        """
        container = Plugin._container
        return container.find(name) if container is not None else None

    @staticmethod
    def all() -> list[Plugin]:
        """Every loaded plugin."""
        container = Plugin._container
        return container.plugins() if container is not None else []

    def __getitem__(self, name: str) -> Any:
        """A class or function of the plugin's module (``animals['Dog']``)."""
        if self.module is None or not hasattr(self.module, name):
            raise KeyError(f"plugin {self.name} has no {name!r}")
        return getattr(self.module, name)

    def __iadd__(self, other: object) -> Plugin:
        """Extend this plugin's remote API with another plugin's, or a class or function."""
        if isinstance(other, Plugin):
            self._extensions.append(other.catalog)
        elif isinstance(other, type):
            found = remote_class(other)
            self._extensions.append(Catalog(self.name, {other.__name__: found}, {}, [], [], []))
        elif callable(other):
            extra = Catalog.of_functions(self.name, [other])
            self._extensions.append(extra)
        else:
            raise TypeError(f"cannot extend plugin {self.name} with {other!r}")
        return self

    def merged_catalog(self) -> Catalog:
        """This plugin's catalog with everything it was extended with (its own wins)."""
        classes: dict[str, Any] = {}
        functions: dict[str, Any] = {}
        for catalog in [*self._extensions, self.catalog]:
            classes.update(catalog.classes)
            functions.update(catalog.functions)
        own = self.catalog
        return Catalog(self.name, classes, functions, own.actions, own.load_hooks, own.unload_hooks)

    def __repr__(self) -> str:
        return f"Plugin({self.name!r})"


class _Scheduler:
    """``plugin.scheduler``: what the existing gofer's plugins read of their request queue."""

    def __init__(self, plugin: Plugin) -> None:
        self._plugin = plugin

    @property
    def pending(self) -> list[str]:
        """Serial numbers of the plugin's requests accepted and not yet answered."""
        container = Plugin._container
        if container is None or container.attachment is None:
            return []
        return container.attachment.pending_of(self._plugin)


class PluginContainer:
    """The loaded plugins of one goferd, by name and by module name. Thread-safe.

    Attributes:
        attachment: goferd, which moves plugins between queues for
            ``Plugin.detach``/``attach``; None outside goferd.
    """

    def __init__(self, plugin_dirs: tuple[Path, ...]) -> None:
        self.plugin_dirs = plugin_dirs
        self.attachment: Attachment | None = None
        self._plugins: dict[str, Plugin] = {}
        self._by_module: dict[str, Plugin] = {}
        self._lock = threading.RLock()

    def activate(self) -> None:
        """Make this the container ``Plugin.find`` delegates to."""
        Plugin._container = self

    def find(self, name: str) -> Plugin | None:
        with self._lock:
            return self._plugins.get(name) or self._by_module.get(name)

    def plugins(self) -> list[Plugin]:
        with self._lock:
            return list(self._plugins.values())

    def load(self, descriptor: Descriptor) -> Plugin:
        """Import the plugin's module, build its catalog and run its ``@load`` hooks.

        Raises:
            PluginError: the name is taken or invalid, the module cannot be
                found or fails to import, or a load hook fails.
        """
        plugin = Plugin(descriptor)
        if not _NAME.match(plugin.name):
            raise PluginError(f"plugin name {plugin.name!r} is not a valid Python name")
        with self._lock:
            if plugin.name in self._plugins:
                raise PluginError(f"plugin {plugin.name} is already loaded")
            self._plugins[plugin.name] = plugin
        try:
            module = self._import(plugin)
            plugin.module = module
            plugin.catalog = Catalog.of_module(module, plugin.name)
            for hook in plugin.catalog.load_hooks:
                hook()
        except BaseException as exc:
            self._forget(plugin)
            if isinstance(exc, PluginError):
                raise
            if not isinstance(exc, Exception):
                raise
            raise PluginError(f"plugin {plugin.name} failed to load: {exc!r}") from exc
        log.info(
            "plugin %s loaded from %s: %d classes, %d functions, %d actions",
            plugin.name,
            getattr(module, "__file__", module.__name__),
            len(plugin.catalog.classes),
            len(plugin.catalog.functions),
            len(plugin.catalog.actions),
        )
        return plugin

    def unload(self, name: str) -> Plugin:
        """Run the plugin's ``@unload`` hooks and forget it.

        Raises:
            PluginError: no plugin of that name.
        """
        plugin = self.find(name)
        if plugin is None:
            raise PluginError(f"no plugin {name!r} is loaded")
        for hook in plugin.catalog.unload_hooks:
            try:
                hook()
            except Exception:
                log.exception("unload hook of plugin %s failed", plugin.name)
        self._forget(plugin)
        log.info("plugin %s unloaded", plugin.name)
        return plugin

    def _forget(self, plugin: Plugin) -> None:
        with self._lock:
            self._plugins.pop(plugin.name, None)
            for module_name, known in list(self._by_module.items()):
                if known is not plugin:
                    continue
                del self._by_module[module_name]
                if module_name.startswith(PRIVATE_PACKAGE + "."):
                    sys.modules.pop(module_name, None)

    def _import(self, plugin: Plugin) -> ModuleType:
        dotted = plugin.descriptor.main.plugin
        if dotted:
            with self._lock:
                self._by_module[dotted] = plugin
            if dotted in sys.modules:
                return importlib.reload(sys.modules[dotted])
            return importlib.import_module(dotted)
        path = self._locate(plugin.name)
        module_name = f"{PRIVATE_PACKAGE}.{plugin.name}"
        _ensure_private_package()
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"cannot import plugin {plugin.name} from {path}")
        module = importlib.util.module_from_spec(spec)
        with self._lock:
            self._by_module[module_name] = plugin
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        return module

    def _locate(self, name: str) -> Path:
        for directory in self.plugin_dirs:
            candidate = directory / f"{name}.py"
            if candidate.is_file():
                return candidate
        searched = ", ".join(str(d) for d in self.plugin_dirs)
        raise PluginError(f"plugin {name}: no module {name}.py in {searched}")


def _ensure_private_package() -> None:
    if PRIVATE_PACKAGE not in sys.modules:
        package = ModuleType(PRIVATE_PACKAGE, "Plugin modules loaded by goferd from plugin dirs.")
        package.__path__ = []
        sys.modules[PRIVATE_PACKAGE] = package
