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
import stat
from collections.abc import Collection
from pathlib import Path

from gofer.errors import ConfigError

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


def make_directory(directory: Path, mode: int) -> None:
    """Create ``directory`` with exactly ``mode``, and its missing parents with 0755.

    ``Path.mkdir(mode=...)`` gives the mode less the process umask, and
    parents the umask's default: an agent started with ``umask 077`` would
    make directories other tools cannot walk, one with ``umask 000``
    directories anyone can write to. An existing directory is left as it is.

    Raises:
        OSError: a directory cannot be created.
    """
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:  # made meanwhile by someone else: theirs to set
            continue
        os.chmod(path, mode if path == directory else 0o755)


def fsync_directory(directory: Path) -> None:
    """Make the entries of ``directory`` durable (after a create, rename or unlink in it).

    Raises:
        OSError: it cannot be opened or synced.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class UnsafeDirectoryError(ConfigError):
    """goferd refuses a directory of its own that another user owns or may write to.

    A configuration error, as restarting goferd does not fix it: goferd
    exits 78, which its unit does not restart on.
    """


def unsafe_directory(directory: Path, owners: Collection[int]) -> str | None:
    """Why goferd must not keep its files in ``directory``; None when it may.

    It must belong to one of ``owners``, and no other user may write to it
    (or they could replace goferd's files, or plant links in their place).

    Raises:
        OSError: it cannot be examined.
    """
    info = os.stat(directory)
    if not stat.S_ISDIR(info.st_mode):
        return f"{directory} is not a directory"
    if info.st_uid not in owners:
        return f"{directory} is owned by uid {info.st_uid}, not by goferd's user"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (
            f"{directory} has mode {stat.S_IMODE(info.st_mode):04o}: other users could"
            " replace its files (use 0755 or stricter)"
        )
    return None
