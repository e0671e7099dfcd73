"""Every file and directory goferd uses, in one place, relocatable under a root.

Packaged goferd uses the system locations (root ``/``); tests, containers
and unprivileged trials move the whole tree by giving another root, either
explicitly or through the ``GOFER_ROOT`` environment variable. Nothing else
in gofer spells these paths out: it asks a :class:`Paths`.

Example::

    >>> paths = Paths.under("/tmp/trial")
    >>> str(paths.config)
    '/tmp/trial/etc/gofer/agent.conf'
    >>> str(Paths.under().socket)
    '/run/gofer/goferd.sock'
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

#: The environment variable naming the root when none is given.
ROOT_VARIABLE = "GOFER_ROOT"

#: Where plugin modules are searched when a descriptor names no ``plugin``,
#: in the old gofer's order.
PLUGIN_DIRS = (
    "usr/share/gofer/plugins",
    "usr/lib/gofer/plugins",
    "usr/lib64/gofer/plugins",
    "opt/gofer/plugins",
)


@dataclasses.dataclass(frozen=True)
class Paths:
    """The locations goferd reads and writes, all below ``root``.

    Attributes:
        root: the directory everything else is relative to (``/`` when installed).
        config: the agent configuration, ``etc/gofer/agent.conf``.
        config_dir: drop-in files merged over it, ``etc/gofer/conf.d``.
        descriptors: plugin descriptors, ``etc/gofer/plugins``.
        plugin_dirs: where plugin modules are searched, in order.
        state: persistent state, ``var/lib/gofer``.
        journal: accepted requests not yet answered, ``var/lib/gofer/journal``.
        run: runtime files, ``run/gofer``.
        pidfile: goferd's process id, ``run/gofer/goferd.pid``.
        socket: the local management socket, ``run/gofer/goferd.sock``.
    """

    root: Path
    config: Path
    config_dir: Path
    descriptors: Path
    plugin_dirs: tuple[Path, ...]
    state: Path
    journal: Path
    run: Path
    pidfile: Path
    socket: Path

    @classmethod
    def under(cls, root: str | Path = "/") -> Paths:
        """The locations below ``root``.

        Args:
            root: the root directory; a relative one is made absolute now, so
                the paths stay valid if the process changes directory later.

        Returns:
            The paths.
        """
        base = Path(os.path.abspath(root))
        etc = base / "etc/gofer"
        state = base / "var/lib/gofer"
        run = base / "run/gofer"
        return cls(
            root=base,
            config=etc / "agent.conf",
            config_dir=etc / "conf.d",
            descriptors=etc / "plugins",
            plugin_dirs=tuple(base / directory for directory in PLUGIN_DIRS),
            state=state,
            journal=state / "journal",
            run=run,
            pidfile=run / "goferd.pid",
            socket=run / "goferd.sock",
        )

    @classmethod
    def from_environment(cls, root: str | None = None) -> Paths:
        """The locations below ``root``, else ``$GOFER_ROOT``, else ``/``.

        Args:
            root: an explicit root (a command-line option, say); wins when given.

        Returns:
            The paths. An empty ``GOFER_ROOT`` counts as unset.
        """
        chosen = root or os.environ.get(ROOT_VARIABLE) or "/"
        return cls.under(chosen)
