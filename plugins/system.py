"""The system plugin: halt or reboot the host, control services, run commands and scripts.

Everything here runs as goferd's user (root), so the plugin ships disabled
(``/etc/gofer/plugins/system.conf``) and is careful with what callers send:

``System.halt(when)``, ``System.reboot(when)``, ``System.cancel()``
    Run ``shutdown``. ``when`` must be ``now``, ``+N`` (minutes from now) or
    ``HH:MM``; anything else is refused before a command runs.
``Service(name).start()``, ``stop()``, ``restart()``, ``status()``
    Run ``systemctl <verb> -- <name>``. ``name`` must match
    ``[A-Za-z0-9@._:-]+`` and not start with ``-`` (no options, no globs).
    goferd's own unit is stopped or restarted with ``--no-block``: waiting
    for it would wait for this very call to end.
``Shell.run(cmd)``, ``Script.run(content, *args)``
    Run whatever the caller sends: remote code execution as root, by design.
    They want the shared secret set as ``[system] secret=`` in this plugin's
    descriptor, which is read when each call arrives; **with no secret set
    they refuse every call.** Callers send it as ``agent.Shell(secret=...)``.

No command goes through a shell: commands are argument vectors, and
``Shell.run("ls -l /tmp")`` is split with :func:`shlex.split`. Output is
streamed to the caller as progress, and cancelling the request stops the
command (see :mod:`gofer.rmi.shell`).

``System`` and ``Service`` take no secret: their arguments are checked, and
who may halt a host is decided by who may send to this plugin's queue.
Restrict that on the broker (per-user permissions on the queue) or sign
requests (``[messaging] authenticator``). The secret travels inside the
request: use ``amqps://``, and keep the descriptor readable by root only.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from gofer.agent.plugin import Plugin
from gofer.decorators import remote
from gofer.errors import GoferError
from gofer.rmi import shell

log = logging.getLogger(__name__)

#: ``now``, ``+N`` minutes (up to five digits) or ``HH:MM``: all ``shutdown`` gets from a caller.
WHEN = re.compile(r"now|\+[0-9]{1,5}|(?:[01]?[0-9]|2[0-3]):[0-5][0-9]")
#: A systemd unit name as a caller may give it (templates ``name@arg``, suffixes, no globs).
SERVICE = re.compile(r"[A-Za-z0-9@._:-]+")
#: Longest unit name systemd accepts.
SERVICE_MAX = 256
#: Names of goferd's own unit: stopping or restarting it must not wait for the call to end.
OWN_UNIT = frozenset({"goferd", "goferd.service"})
#: Lines of output kept in the message of a :class:`CommandError`.
TAIL_LINES = 20


class CommandError(GoferError):
    """A command run for the caller ended with a non-zero status.

    Attributes:
        status: the exit status.
        output: the last lines of its output.
    """

    def __init__(self, message: str, status: int | None = None, output: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.output = output


def execute(argv: Sequence[str]) -> tuple[int, str]:
    """Run an argument vector (never a shell): output streams as progress, a cancel stops it.

    Returns:
        ``(status, output)`` as :meth:`gofer.rmi.shell.Shell.run` gives them.
    """
    return shell.Shell().run(list(argv))


def checked(argv: Sequence[str]) -> dict[str, Any]:
    """Run ``argv``; ``{"status": 0, "output": text}`` when it succeeds.

    Raises:
        CommandError: it exited with another status (the message ends with its output's tail).
    """
    status, output = execute(argv)
    if status != 0:
        tail = "\n".join(output.rstrip("\n").splitlines()[-TAIL_LINES:])
        raise CommandError(f"{shlex.join(argv)} failed with status {status}:\n{tail}", status, tail)
    return {"status": status, "output": output}


def checked_when(when: Any) -> str:
    """``when`` as ``shutdown`` takes it: ``now``, ``+N`` or ``HH:MM`` (an int N means ``+N``).

    Raises:
        ValueError: anything else (it never reaches a command line).
    """
    if isinstance(when, int) and not isinstance(when, bool) and 0 <= when <= 99999:
        return f"+{when}"
    if isinstance(when, str) and WHEN.fullmatch(when):
        return when
    raise ValueError(f"when must be 'now', '+N' (minutes) or 'HH:MM', not {when!r}")


def checked_service(name: Any) -> str:
    """``name`` when it is a plain systemd unit name.

    Raises:
        ValueError: not a string, empty, too long, an option (``-...``) or
            with characters outside ``[A-Za-z0-9@._:-]``.
    """
    if (
        not isinstance(name, str)
        or len(name) > SERVICE_MAX
        or name.startswith("-")
        or not SERVICE.fullmatch(name)
    ):
        raise ValueError(f"not a service name: {name!r}")
    return name


def _setting(section: str, key: str) -> str | None:
    """``[section] key`` of this plugin's descriptor; None when unset or not run by goferd."""
    plugin = Plugin.find(__name__)
    value = plugin.cfg[section][key] if plugin is not None else None
    text = "" if value is None else str(value).strip()
    return text or None


def configured_secret() -> str | list[str]:
    """The secret ``Shell.run`` and ``Script.run`` want: ``[system] secret``.

    Returns:
        The secret; an empty list (which no caller's secret matches) when none is set.
    """
    secret = _setting("system", "secret")
    if secret is None:
        log.warning("refusing a Shell or Script call: no [system] secret is configured")
        return []
    return secret


class System:
    """The host as a whole: halt, reboot, or cancel a pending halt or reboot."""

    @remote
    def halt(self, when: str = "+1") -> dict[str, Any]:
        """Power the host off at ``when`` (``now``, ``+N`` minutes, ``HH:MM``)."""
        argv = ["shutdown", "-h", checked_when(when)]  # -h: power off (systemd and sysvinit)
        log.warning("halting the host: %s", shlex.join(argv))
        return checked(argv)

    @remote
    def reboot(self, when: str = "+1") -> dict[str, Any]:
        """Reboot the host at ``when`` (``now``, ``+N`` minutes, ``HH:MM``)."""
        argv = ["shutdown", "-r", checked_when(when)]
        log.warning("rebooting the host: %s", shlex.join(argv))
        return checked(argv)

    @remote
    def cancel(self) -> dict[str, Any]:
        """Cancel a halt or reboot scheduled for later."""
        log.warning("cancelling a scheduled halt or reboot")
        return checked(["shutdown", "-c"])


class Service:
    """One systemd service, e.g. ``agent.Service("httpd").restart()``.

    Args:
        name: the unit, e.g. ``httpd`` or ``getty@tty1.service``.

    Raises:
        ValueError: ``name`` is not a plain unit name (see :func:`checked_service`).
    """

    def __init__(self, name: str) -> None:
        self.name = checked_service(name)

    @remote
    def start(self) -> dict[str, Any]:
        """Start the service."""
        return checked(self._argv("start"))

    @remote
    def stop(self) -> dict[str, Any]:
        """Stop the service."""
        return checked(self._argv("stop"))

    @remote
    def restart(self) -> dict[str, Any]:
        """Restart the service."""
        return checked(self._argv("restart"))

    @remote
    def status(self) -> dict[str, Any]:
        """``systemctl status``: ``{"status": n, "output": text}``; n is 3 when not running."""
        status, output = execute(self._argv("status"))
        return {"status": status, "output": output}

    def _argv(self, verb: str) -> list[str]:
        options = ["--no-pager"]
        if self.name in OWN_UNIT and verb in ("stop", "restart"):
            options.append("--no-block")  # the job waits for this call: queue it and answer
        log.info("systemctl %s %s", verb, self.name)
        return ["systemctl", *options, verb, "--", self.name]


class Shell:
    """Any command, as root. Wants the configured ``[system] secret``."""

    @remote(secret=configured_secret)
    def run(self, cmd: str | list[str]) -> tuple[int, str]:
        """Run a command without a shell.

        Args:
            cmd: an argument vector, or a string split like a shell would
                split words (``"ls -l /tmp"``; no pipes, globs or ``$``).

        Returns:
            ``(status, output)``: the exit status and the merged stdout and stderr.
        """
        argv = command_argv(cmd)
        log.info("Shell.run: %s with %d argument(s)", argv[0], len(argv) - 1)
        return execute(argv)


class Script:
    """Any script, as root. Wants the configured ``[system] secret``."""

    @remote(secret=configured_secret)
    def run(self, content: str, *args: str) -> tuple[int, str]:
        """Run a script, from a private temporary file removed afterwards.

        The script is written to a file of mode 0700 in a new directory of
        mode 0700, both with unpredictable names (:func:`tempfile.mkdtemp`,
        :func:`tempfile.mkstemp`; ``TMPDIR`` chooses where), and run through
        the interpreter of its ``#!`` line, ``/bin/sh`` without one. Going
        through the interpreter rather than executing the file works on a
        ``noexec`` /tmp and cannot fail with "text file busy" when a fork-model
        call forks while the file is open.

        Args:
            content: the script.
            args: its arguments.

        Returns:
            ``(status, output)``: the exit status and the merged stdout and stderr.
        """
        if not isinstance(content, str) or not content:
            raise ValueError("the script must be non-empty text")
        interpreter = script_interpreter(content)
        arguments = [_word(arg) for arg in args]
        directory = tempfile.mkdtemp(prefix="gofer-script-")
        try:
            fd, path = tempfile.mkstemp(dir=directory, suffix=".script")
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                os.fchmod(file.fileno(), 0o700)
                file.write(content)
            log.info("Script.run: %s with %d argument(s)", interpreter[0], len(arguments))
            return execute([*interpreter, path, *arguments])
        finally:
            shutil.rmtree(directory, ignore_errors=True)


def command_argv(cmd: Any) -> list[str]:
    """The argument vector of ``Shell.run``'s ``cmd`` (a list, or a string to split).

    Raises:
        ValueError: empty, or a string :func:`shlex.split` cannot split.
        TypeError: neither a string nor a list of strings and numbers.
    """
    if isinstance(cmd, str):
        argv = shlex.split(cmd)
    elif isinstance(cmd, (list, tuple)):
        argv = [_word(word) for word in cmd]
    else:
        raise TypeError(f"cmd must be a string or a list of strings, not {type(cmd).__name__}")
    if not argv:
        raise ValueError("no command to run")
    return argv


def script_interpreter(content: str) -> list[str]:
    """The program and its one optional argument from the script's ``#!`` line, as Linux reads it.

    Raises:
        ValueError: the ``#!`` line names no absolute path.
    """
    if not content.startswith("#!"):
        return ["/bin/sh"]
    words = content[2:].partition("\n")[0].strip().split(None, 1)
    if not words or not words[0].startswith("/"):
        raise ValueError("the #! line of the script must name an absolute path")
    return words


def _word(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"arguments must be strings or numbers, not {type(value).__name__}")
