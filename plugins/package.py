"""The package plugin: install, update and remove packages with the host's package manager.

The manager is found when each call runs: ``dnf``, else ``yum``, else
``apt-get``. It runs non-interactively (``-y``; for apt-get also
``DEBIAN_FRONTEND=noninteractive`` and keeping changed configuration files),
with no shell, in a child process of its own per call (the fork model), so
that a hung transaction can be cancelled and nothing it leaks stays in goferd.
Its output streams to the caller as progress.

Every name is checked before anything runs: it starts with a letter or digit
and holds only ``A-Z a-z 0-9 + . _ : ~ -``, so it can be neither an option
(``--help``) nor a pattern. ``name=version`` asks for a version; it becomes
``name-version`` for dnf and yum and stays ``name=version`` for apt-get.

::

    agent.Package().install("zsh", "tmux=3.3a-3")
    agent.Package().update()                # everything
    agent.Package().remove("zsh")
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from typing import Any

from gofer.decorators import fork, remote
from gofer.errors import GoferError
from gofer.rmi.shell import Shell

log = logging.getLogger(__name__)

#: A package name or version: no leading ``-`` (an option), no globs, no spaces.
WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._:~-]*")
#: Longest name (or version) accepted.
WORD_MAX = 255
#: Lines of output kept in a :class:`PackageError`.
TAIL_LINES = 20


class PackageError(GoferError):
    """The package manager failed, or there is none.

    Attributes:
        status: the manager's exit status (None when none was found).
        output: the last lines of its output.
    """

    def __init__(self, message: str, status: int | None = None, output: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.output = output


@dataclasses.dataclass(frozen=True)
class Manager:
    """How to drive one package manager.

    Attributes:
        program: its command name.
        install: arguments installing the names that follow.
        update: arguments updating the names that follow.
        update_all: arguments updating everything.
        remove: arguments removing the names that follow.
        refresh: arguments refreshing its package lists first (install, update), if needed.
        env: variables added to the environment.
        version_separator: what joins a name and a version.
    """

    program: str
    install: tuple[str, ...]
    update: tuple[str, ...]
    update_all: tuple[str, ...]
    remove: tuple[str, ...]
    refresh: tuple[str, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    version_separator: str = "-"


_DPKG = ("-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold")

#: The managers looked for, in order of preference.
MANAGERS = (
    Manager("dnf", ("-y", "install"), ("-y", "upgrade"), ("-y", "upgrade"), ("-y", "remove")),
    Manager("yum", ("-y", "install"), ("-y", "update"), ("-y", "update"), ("-y", "remove")),
    Manager(
        "apt-get",
        install=("-y", *_DPKG, "install"),
        update=("-y", *_DPKG, "install", "--only-upgrade"),
        update_all=("-y", *_DPKG, "upgrade"),
        remove=("-y", "remove"),
        refresh=("-q", "update"),
        env={"DEBIAN_FRONTEND": "noninteractive"},
        version_separator="=",
    ),
)


def manager() -> Manager:
    """The host's package manager, looked for on ``PATH`` now.

    Raises:
        PackageError: none of dnf, yum and apt-get is installed.
    """
    for candidate in MANAGERS:
        if shutil.which(candidate.program):
            return candidate
    raise PackageError("no package manager found (dnf, yum or apt-get)")


def checked_names(names: Sequence[Any], separator: str) -> list[str]:
    """The names as the manager takes them; a list argument counts as its names.

    Args:
        names: ``name`` or ``name=version`` strings, or lists of them.
        separator: what the manager puts between a name and a version.

    Raises:
        ValueError: a name or version that is empty, too long, starts with
            ``-`` or holds other characters than ``A-Z a-z 0-9 + . _ : ~ -``.
        TypeError: something else than a string or a list of strings.
    """
    flat: list[Any] = []
    for name in names:
        flat.extend(name if isinstance(name, (list, tuple)) else [name])
    checked = []
    for name in flat:
        if not isinstance(name, str):
            raise TypeError(f"package names are strings, not {type(name).__name__}")
        package, equals, version = name.partition("=")
        if not _word(package) or (equals and not _word(version)):
            raise ValueError(f"not a package name: {name!r}")
        checked.append(f"{package}{separator}{version}" if equals else package)
    return checked


def _word(text: str) -> bool:
    return len(text) <= WORD_MAX and WORD.fullmatch(text) is not None


def execute(argv: Sequence[str], env: Mapping[str, str] | None) -> tuple[int, str]:
    """Run an argument vector with ``env`` added to ours; output streams as progress."""
    environment = {**os.environ, **env} if env else None
    return Shell().run(list(argv), env=environment)


def _run(
    pm: Manager, arguments: tuple[str, ...], names: list[str], refresh: bool = True
) -> dict[str, Any]:
    """Run the manager, first refreshing its package lists when it needs that and ``refresh``.

    Returns:
        ``{"status": 0, "output": text}``.

    Raises:
        PackageError: a command exited with a non-zero status.
    """
    output = ""
    if refresh and pm.refresh:
        output = _checked([pm.program, *pm.refresh], pm.env)
    output += _checked([pm.program, *arguments, *names], pm.env)
    return {"status": 0, "output": output}


def _checked(argv: list[str], env: Mapping[str, str]) -> str:
    log.info("running %s", shlex.join(argv))
    status, output = execute(argv, env)
    if status != 0:
        tail = "\n".join(output.rstrip("\n").splitlines()[-TAIL_LINES:])
        raise PackageError(f"{shlex.join(argv)} failed with status {status}:\n{tail}", status, tail)
    return output


class Package:
    """Packages of the host. Each call runs in a child process of its own."""

    @fork
    @remote
    def install(self, *names: str) -> dict[str, Any]:
        """Install packages (``name`` or ``name=version``).

        Returns:
            ``{"status": 0, "output": text}``.

        Raises:
            ValueError: no names, or a name that is not one.
            PackageError: the package manager failed (or there is none).
        """
        pm = manager()
        checked = checked_names(names, pm.version_separator)
        if not checked:
            raise ValueError("install what? no package names were given")
        return _run(pm, pm.install, checked)

    @fork
    @remote
    def update(self, *names: str) -> dict[str, Any]:
        """Update the named packages; with no names, every package.

        Returns:
            ``{"status": 0, "output": text}``.

        Raises:
            ValueError: a name that is not one.
            PackageError: the package manager failed (or there is none).
        """
        pm = manager()
        checked = checked_names(names, pm.version_separator)
        return _run(pm, pm.update if checked else pm.update_all, checked)

    @fork
    @remote
    def remove(self, *names: str) -> dict[str, Any]:
        """Remove packages.

        Returns:
            ``{"status": 0, "output": text}``.

        Raises:
            ValueError: no names, or a name that is not one.
            PackageError: the package manager failed (or there is none).
        """
        pm = manager()
        checked = checked_names(names, pm.version_separator)
        if not checked:
            raise ValueError("remove what? no package names were given")
        return _run(pm, pm.remove, checked, refresh=False)
