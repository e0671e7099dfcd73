"""Running external commands from plugin methods, with progress, cancellation and a timeout.

Example::

    from gofer.rmi.shell import Shell

    @remote
    def update(self, *names):
        status, output = Shell().run("dnf", "-y", "update", *names)
        if status != 0:
            raise UpdateFailed(status, output)
        return output

The lines the command prints (stdout and stderr, merged) are sent to the caller
as the ``details`` of progress reports when a remote call is running: at most
one report each ``REPORT_INTERVAL`` seconds, holding the lines printed since
the last one (joined by newlines; the last line always goes), and a
cancelled call stops the command. The command runs in a process group of its
own, so stopping it also stops whatever it started.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

from gofer.rmi.context import Context, NoContextError

log = logging.getLogger(__name__)

#: Seconds between checks for cancellation (and the timeout) while a command runs.
POLL_INTERVAL = 0.2
#: Shortest time between two progress reports of output lines: a command
#: printing thousands of lines must not send thousands of messages.
REPORT_INTERVAL = 0.25
#: Seconds a process group has between SIGTERM and SIGKILL.
TERMINATE_GRACE = 2.0
#: Status for a command that ran out of time (as timeout(1) reports it).
TIMED_OUT = 124
#: Status for a command that exists but cannot be run (as sh(1) reports it).
CANNOT_EXECUTE = 126
#: Status for a command that does not exist (as sh(1) reports it).
NOT_FOUND = 127

_CHUNK = 65536
_CANCELLED = -1  # internal: stopped on cancel; the status is the command's own, but non-zero


class Shell:
    """Runs external commands on behalf of a plugin.

    Args:
        grace: seconds a cancelled or timed-out command has to exit after
            SIGTERM before its process group gets SIGKILL.
    """

    def __init__(self, grace: float = TERMINATE_GRACE) -> None:
        self.grace = grace

    def run(
        self,
        *command: str | Sequence[str],
        shell: bool = False,
        timeout: float | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> tuple[int, str]:
        """Run a command to its end, reporting its output as progress.

        The command is an argument vector run without a shell: ``run("ls",
        "-l", path)``, or ``run(["ls", "-l", path])``. Only ``run("ls -l | wc",
        shell=True)`` goes through ``/bin/sh``; never pass text from a request
        that way.

        Args:
            command: the program and its arguments, or one list of them.
            shell: run a single command string through ``/bin/sh -c``.
            timeout: seconds the command may run; None for no limit.
            cwd: working directory of the command.
            env: the command's whole environment; None to inherit ours.

        Returns:
            ``(status, output)``: the exit status (128 + N when killed by
            signal N, ``TIMED_OUT`` after the timeout, never 0 when
            cancelled, ``NOT_FOUND`` or ``CANNOT_EXECUTE`` when it could not
            start) and the merged stdout and stderr text, so far when stopped.

        Raises:
            ValueError: for no command, or ``shell=True`` with more than one
                argument.
        """
        args = _arguments(command, shell)
        try:
            process = subprocess.Popen(  # noqa: S603 - an argument vector; a shell only on request
                args,
                shell=shell,  # True only when the caller asked for it
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=cwd,
                env=env,
            )
        except OSError as exc:
            return _not_started(args, exc)
        log.debug("started %r (pid %d)", args, process.pid)
        with process:
            return _Run(process, _current_context(), timeout, self.grace).finish()


def _arguments(command: tuple[str | Sequence[str], ...], shell: bool) -> str | list[str]:
    words: Sequence[str | Sequence[str]] = command
    if len(command) == 1 and not isinstance(command[0], str):
        words = list(command[0])
    if not words:
        raise ValueError("no command to run")
    if shell:
        if len(words) != 1 or not isinstance(words[0], str):
            raise ValueError("shell=True takes exactly one command string")
        return words[0]
    return [os.fspath(word) if isinstance(word, os.PathLike) else str(word) for word in words]


def _not_started(args: str | list[str], exc: OSError) -> tuple[int, str]:
    program = exc.filename if exc.filename is not None else args
    status = NOT_FOUND if isinstance(exc, FileNotFoundError) else CANNOT_EXECUTE
    log.debug("cannot run %r: %s", args, exc)
    return status, f"cannot run {program!r}: {exc.strerror or exc}"


def _current_context() -> Context | None:
    try:
        return Context.current()
    except NoContextError:
        return None


class _Run:
    """Pumps one started command's output until it ends or must be stopped."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        context: Context | None,
        timeout: float | None,
        grace: float,
    ) -> None:
        assert process.stdout is not None  # Popen was given stdout=PIPE
        self.process = process
        self.fd = process.stdout.fileno()
        self.context = context
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.grace = grace
        self.lines = _Lines(context)

    def finish(self) -> tuple[int, str]:
        """Pump, reap, and tell how it went."""
        forced: int | None = None
        done = False
        try:
            forced = self._pump()
            done = True
        finally:
            if not done and not wait_exited(self.process.pid):
                # Unwinding (e.g. a fork-model cancel raised in here): stop it now.
                _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.lines.close()
        status = _status(self.process.returncode)
        if forced == _CANCELLED:
            return status or 1, self.lines.text()
        return forced or status, self.lines.text()

    def _pump(self) -> int | None:
        """Read output until the command ends; a status to force when it had to be stopped."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.fd, selectors.EVENT_READ)
            while True:
                if selector.select(POLL_INTERVAL) and not self._read():
                    return self._await_exit()
                self.lines.tick()
                forced = self._stop_status()
                if forced is not None:
                    kill_group(self.process.pid, self.grace)
                    self._drain(selector)
                    return forced
                if wait_exited(self.process.pid):
                    # The pipe may still be held by something the command left behind.
                    self._drain(selector)
                    return None

    def _read(self) -> bool:
        """Read one chunk; False at the end of the output."""
        chunk = os.read(self.fd, _CHUNK)
        if chunk:
            self.lines.feed(chunk)
        return bool(chunk)

    def _drain(self, selector: selectors.BaseSelector) -> None:
        """Read what is already in the pipe, for at most one poll interval."""
        deadline = time.monotonic() + POLL_INTERVAL
        while time.monotonic() < deadline and selector.select(0) and self._read():
            pass

    def _await_exit(self) -> int | None:
        while not wait_exited(self.process.pid, POLL_INTERVAL):
            forced = self._stop_status()
            if forced is not None:
                kill_group(self.process.pid, self.grace)
                return forced
        return None

    def _stop_status(self) -> int | None:
        """None to go on, ``TIMED_OUT``, or ``_CANCELLED``."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            log.info("command %r timed out", self.process.args)
            return TIMED_OUT
        if self.context is not None and self.context.cancelled():
            log.info("command %r cancelled (request %s)", self.process.args, self.context.sn)
            return _CANCELLED
        return None


class _Lines:
    """Decodes output, keeps it, and reports its lines as progress, a few times a second."""

    def __init__(self, context: Context | None) -> None:
        self.context = context
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.parts: list[str] = []
        self.partial = ""
        self.held: list[str] = []
        self.reported = float("-inf")

    def feed(self, chunk: bytes) -> None:
        self._add(self.decoder.decode(chunk))
        self.tick()

    def tick(self) -> None:
        """Report the lines held back, once ``REPORT_INTERVAL`` has passed since the last report."""
        if self.held and time.monotonic() - self.reported >= REPORT_INTERVAL:
            self._report()

    def close(self) -> None:
        """Report what is left, the last line even when it has no newline."""
        self._add(self.decoder.decode(b"", final=True))
        if self.partial:
            self.held.append(self.partial)
            self.partial = ""
        if self.held:
            self._report()

    def text(self) -> str:
        return "".join(self.parts)

    def _add(self, text: str) -> None:
        if not text:
            return
        self.parts.append(text)
        *complete, self.partial = (self.partial + text).split("\n")
        if self.context is not None:
            self.held.extend(line.rstrip("\r") for line in complete)

    def _report(self) -> None:
        lines, self.held = self.held, []
        self.reported = time.monotonic()
        if self.context is not None:
            progress = self.context.progress
            progress.relay(progress.total, progress.completed, "\n".join(lines))


def _status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def wait_exited(pid: int, timeout: float = 0.0) -> bool:
    """Wait up to ``timeout`` seconds for our child ``pid`` to exit, without reaping it.

    Leaving the child a zombie keeps its pid, and so its process group id,
    from being reused until the caller reaps it: signalling the group stays
    safe in between.

    Args:
        pid: a child of this process.
        timeout: seconds to wait; 0 to just look.

    Returns:
        True when the child has exited (or is no longer ours to wait for).
    """
    deadline = time.monotonic() + timeout
    pause = 0.0005  # doubled up to 20 ms: a child that is just exiting is seen at once
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, 0.02)


def kill_group(pid: int, grace: float) -> None:
    """Stop the process group led by our (unreaped) child ``pid``: SIGTERM, then SIGKILL.

    SIGKILL goes to the group after the grace period even when the leader
    has exited, so that whatever it started and ignored SIGTERM dies too.

    Args:
        pid: the group leader, a child of this process not reaped yet.
        grace: seconds between SIGTERM and SIGKILL (cut short when the
            leader exits).
    """
    _signal_group(pid, signal.SIGTERM)
    wait_exited(pid, grace)
    _signal_group(pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
