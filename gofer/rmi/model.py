"""Execution models: run a plugin's remote method in the calling thread or in a child process.

The dispatcher resolves a request to an :class:`Invocation` and hands it to
:func:`run` with the call's :class:`~gofer.rmi.context.Context`; it gets back
an :class:`Outcome` holding the return value or a :class:`RemoteFailure`, the
plain data of an exception reply. :func:`run` does not raise for anything the
call does.

``direct``
    The method runs in the calling (worker) thread with its context active.
    Cancellation is cooperative: the method sees ``Context.cancelled()``
    become True and decides what to do.

``fork``
    The method runs in a child process made with :func:`os.fork`, so a crash,
    a leak or a hang stays out of the agent. The child sends progress and
    then its result over a pipe; the calling thread forwards the progress,
    polls for cancellation and, on cancel, stops the child's whole process
    group (SIGTERM, then SIGKILL after ``grace`` seconds). In the child,
    SIGTERM makes ``Context.cancelled()`` True and raises
    :class:`CancelledError` in the method, so its ``finally`` blocks run. A
    child that dies without a result gives a :class:`ChildDiedError` failure,
    never a success. Things the method started in the background are left
    alone when it returns normally.

Why ``os.fork`` and why that is safe enough
-------------------------------------------
The method is usually a bound method of a plugin object that the agent built
from a file it loaded by path; a ``spawn`` or ``forkserver`` child could not
import it by name, and would have to load the plugin again and lose the
object's state, at a cost of tens of milliseconds and a fresh interpreter
per call. Forking keeps the object as it is, for a few milliseconds.

Forking a threaded process copies only the forking thread, and a lock that
another thread held at that moment stays locked in the child forever. The
child is therefore kept small: it puts its standard input on ``/dev/null``
(and a closed fd 1 or 2 too, so that no file lands there: :mod:`gofer.rmi.stdio`),
holds none of the agent's descriptors but its own result pipe (the agent's
files, locks and pipes, the other children's pipes among them, close at
fork: :mod:`gofer.owned`; its sockets and event descriptors, logging's
excepted, by kind: :func:`_close_inherited`), so that a child outliving a
killed agent holds nothing the next agent needs, while the plugin's own
files stay open for its method; it resets inherited signal
handlers and the signal wake-up fd (so the agent's own shutdown handlers never run in it),
puts fresh ``sys.stdout``/``sys.stderr`` objects over fds 1 and 2 (so it
neither blocks on a buffer lock nor repeats the agent's unflushed output),
runs the method, writes to its pipe, and leaves with :func:`os._exit` (no
atexit handlers, no second flush of the agent's buffers). CPython itself
re-initialises the GIL, the import lock, :mod:`threading` and the locks of
:mod:`logging` and its handlers in a forked child, so logging from the child
is safe (short of a stream handler whose stream another thread was writing
at that very moment). What remains is the plugin's own business: a method
run with the fork model must not use locks or connections that other agent
threads use (for example the agent's broker connections), exactly as in
gofer 2.x. A child that hangs anyway is stopped by cancellation.

The parent never waits for end-of-file alone, because something forked
meanwhile may hold this call's pipe open (a plugin's subprocess, say; other
fork-model children close it at fork): it also polls
whether its child has exited (without reaping it, so the process group id
stays reserved until the group has been signalled), then drains the pipe.
Every pipe end is closed and every child reaped, whatever happens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import pickle
import re
import reprlib
import selectors
import signal
import stat
import struct
import sys
import time
import traceback
import types
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NoReturn, TextIO

from gofer import owned
from gofer.errors import RmiError
from gofer.rmi import stdio
from gofer.rmi.context import Context, activate
from gofer.rmi.shell import TERMINATE_GRACE, kill_group, wait_exited

log = logging.getLogger(__name__)

DIRECT = "direct"
FORK = "fork"
MODELS = (DIRECT, FORK)

#: Seconds between checks for cancellation and a dead child in the fork model.
POLL_INTERVAL = 0.1

_HEADER = struct.Struct("!Q")
_CHUNK = 1 << 20
_PROGRESS = "progress"
_RESULT = "result"
_FAILURE = "failure"
_EX_SOFTWARE = 70  # the child's exit status when it could not send a result

# Bounds for making exception data JSON-safe: nesting, container items, repr text.
_MAX_DEPTH = 32
_MAX_ITEMS = 10_000
_repr = reprlib.Repr()
_repr.maxlevel = 3
_repr.maxstring = _repr.maxother = 2048


class ModelError(RmiError):
    """An execution model could not carry a call to its end."""


class CancelledError(ModelError):
    """The request was cancelled while its method ran, and the method was stopped."""


class ChildDiedError(ModelError):
    """The fork-model child process ended without sending a result."""


class TransferError(ModelError):
    """A return value could not be carried from the child process to the agent."""


class UnknownModelError(ModelError, ValueError):
    """No execution model has the name asked for."""


@dataclasses.dataclass(frozen=True)
class Invocation:
    """A resolved remote call: what an execution model runs (callers have ``policy.Call``).

    Attributes:
        target: the plugin's bound method or function.
        args: positional arguments.
        kwargs: keyword arguments.
    """

    target: Callable[..., Any]
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class RemoteFailure:
    """An exception as plain, JSON-safe data: what an exception reply carries.

    Attributes:
        xmodule: the exception class's module.
        xclass: the exception class's name.
        xargs: the exception's ``args``.
        xstate: the exception's ``__dict__`` plus ``"trace"``, the traceback text.
        exval: the traceback text.
    """

    xmodule: str
    xclass: str
    xargs: list[Any]
    xstate: dict[str, Any]
    exval: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> RemoteFailure:
        """Describe ``exc``; anything JSON cannot carry becomes its (bounded) ``repr()``."""
        trace = _traceback_text(exc)
        state = json_safe(dict(getattr(exc, "__dict__", {})))
        state["trace"] = trace
        return cls(
            xmodule=type(exc).__module__,
            xclass=type(exc).__name__,
            xargs=json_safe(list(exc.args)),
            xstate=state,
            exval=trace,
        )

    def result(self) -> dict[str, Any]:
        """The ``result`` object of an exception reply (see WIRE.md)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a call ended: ``retval`` when ``error`` is None, else ``error``."""

    retval: Any = None
    error: RemoteFailure | None = None

    @property
    def failed(self) -> bool:
        """True when the call raised, was cancelled, or its child died."""
        return self.error is not None


def run(
    model: str, call: Invocation, context: Context, *, grace: float = TERMINATE_GRACE
) -> Outcome:
    """Run ``call`` with the execution model named ``model``.

    Args:
        model: ``DIRECT`` or ``FORK``.
        call: the method and its arguments.
        context: the call's context; current while the method runs.
        grace: fork model: seconds a cancelled child has between SIGTERM and SIGKILL.

    Returns:
        The return value, or the failure: the method's exception, or
        ``CancelledError``, ``ChildDiedError`` or ``TransferError`` from the
        fork model.

    Raises:
        UnknownModelError: for a model name other than ``DIRECT`` or ``FORK``.
    """
    if model == DIRECT:
        return _invoke(call, context)
    if model == FORK:
        return _fork_call(call, context, grace)
    raise UnknownModelError(f"unknown execution model {model!r}; expected one of {MODELS}")


def _invoke(call: Invocation, context: Context) -> Outcome:
    with activate(context):
        try:
            retval = call.target(*call.args, **call.kwargs)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - every failure becomes a reply
            log.debug("request %s raised %s", context.sn, type(exc).__name__)
            return _failure(exc)
        finally:
            context.progress.flush()
    return Outcome(retval=retval)


def _failure(exc: BaseException) -> Outcome:
    return Outcome(error=RemoteFailure.from_exception(exc))


def _traceback_text(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:  # noqa: BLE001 - a hostile exception must still be reported
        return f"{type(exc).__module__}.{type(exc).__name__}: <traceback unavailable>\n"


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that :func:`json.dumps` (and pickle) can always handle.

    Lists, tuples and dicts are copied with exact built-in types; other
    values become their ``repr()``, cut to 2 KiB. Nesting deeper than 32,
    containers beyond 10,000 items in all, and cycles are cut off the same
    way. Strings are kept whole, however long.

    Args:
        value: anything.

    Returns:
        JSON-safe data.
    """
    return _Sanitizer().convert(value, 0)


class _Sanitizer:
    """One pass of :func:`json_safe`, with its item budget and the path for cycles."""

    def __init__(self) -> None:
        self.budget = _MAX_ITEMS
        self.path: set[int] = set()

    def convert(self, value: Any, depth: int) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, int):
            return int.__int__(value)
        if isinstance(value, float):
            number = float.__float__(value)
            return number if math.isfinite(number) else repr(number)
        if (
            isinstance(value, (list, tuple, dict))
            and depth < _MAX_DEPTH
            and id(value) not in self.path
        ):
            self.path.add(id(value))
            try:
                return self._container(value, depth + 1)
            finally:
                self.path.discard(id(value))
        return _repr.repr(value)

    def _container(self, value: list[Any] | tuple[Any, ...] | dict[Any, Any], depth: int) -> Any:
        if isinstance(value, dict):
            return {
                self._key(key): self.convert(item, depth)
                for key, item in self._within_budget(dict.items(value))
            }
        return [self.convert(item, depth) for item in self._within_budget(value)]

    def _within_budget(self, items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            if self.budget <= 0:
                return
            self.budget -= 1
            yield item

    def _key(self, key: Any) -> Any:
        # At the depth limit nothing is a container: a key comes back a scalar or a repr.
        return self.convert(key, _MAX_DEPTH)


def _fork_call(call: Invocation, context: Context, grace: float) -> Outcome:
    try:
        # Owned: a child forked for another call meanwhile does not keep either end.
        read_fd, write_fd = owned.pipe()
    except OSError as exc:
        log.error("cannot make a pipe for request %s: %s", context.sn, exc)
        return _failure(exc)
    try:
        with owned.child_keeps(write_fd):  # the read end closes in the child with goferd's
            pid, mask = _fork()
    except OSError as exc:
        owned.close(read_fd)
        owned.close(write_fd)
        log.error("cannot fork for request %s: %s", context.sn, exc)
        return _failure(exc)
    if pid == 0:
        _child(write_fd, call, context, mask)
    owned.close(write_fd)
    _set_group(pid)
    log.debug("request %s runs in child process %d", context.sn, pid)
    return _Supervisor(pid, read_fd, context, grace).supervise()


def _fork() -> tuple[int, Iterable[int]]:
    """``os.fork()`` with every signal held back until the child has its own handlers.

    Returns:
        The child's pid (0 in the child), and the signal mask to restore there.
    """
    if sys.version_info >= (3, 12):
        _ignore_fork_warning()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise
    if pid != 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return pid, mask


def _ignore_fork_warning() -> None:
    """Silence 3.12's warning about fork() in a threaded process, for this module only.

    The module docstring says why this child is safe. The filter is put first
    before every fork, not once: test runners reset the filters between tests,
    and :func:`warnings.catch_warnings` would not be thread-safe.
    """
    message = r".*use of fork\(\) may lead to deadlocks"
    module = re.escape(__name__) + r"\Z"
    first = warnings.filters[0] if warnings.filters else None
    if first is None or first[0] != "ignore" or getattr(first[3], "pattern", None) != module:
        warnings.filterwarnings("ignore", message, DeprecationWarning, module)


def _set_group(pid: int) -> None:
    """Make the child lead its own process group (it does so too: whoever runs first wins)."""
    try:
        os.setpgid(pid, pid)
    except OSError as exc:  # it may have exited already
        log.debug("setpgid(%d) failed: %s", pid, exc)


def _child(write_fd: int, call: Invocation, context: Context, mask: Iterable[int]) -> NoReturn:
    """Run the call in the forked child and leave; never returns into the agent's code.

    goferd's own descriptors (:mod:`gofer.owned`) are closed already, its
    other children's pipes included.
    """
    status = _EX_SOFTWARE
    try:
        write_fd = stdio.for_child(write_fd)
        _close_inherited(keep={write_fd})
        os.setpgid(0, 0)
        _reset_signals()
        streams = _fresh_std_streams()
        status = _child_call(write_fd, call, context, mask)
        for stream in streams:
            stream.flush()
    finally:
        os._exit(status)


def _child_call(write_fd: int, call: Invocation, context: Context, mask: Iterable[int]) -> int:
    channel = _Channel(write_fd)
    cancellation = _Cancellation()
    own = Context(context.sn, context.data, channel.progress, cancellation.requested)
    signal.signal(signal.SIGTERM, cancellation.handle)
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        outcome = _invoke(call, own)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    channel.send_outcome(outcome)
    return 0


def _close_inherited(keep: set[int]) -> None:
    """Close the sockets and event descriptors the child inherited (its logging's excepted).

    goferd's own files and pipes closed at fork (:mod:`gofer.owned`); these
    are the descriptors its libraries opened, which it cannot list, told by
    their kind. Sockets: a child that outlives a killed agent would otherwise
    hold its broker connections (and the messages they were delivered) and
    its management listener; the plugin's own sockets close with them, as
    they always have. Event descriptors (epoll sets, eventfd, inotify,
    signalfd, timerfd): each is one kernel object shared with the agent, whose
    threads wait on it; a method reading one would take the agent's events.
    Everything else the plugin opened stays open: its method may use it.
    """
    keep = keep | {0, 1, 2} | _logging_fds()
    for fd in _open_fds():
        if fd not in keep and _inherited_kind(fd):
            with contextlib.suppress(OSError):
                os.close(fd)


#: ``/proc/self/fd`` link targets of event descriptors (``anon_inode:<name>``).
_EVENT_INODES = frozenset(
    ("[eventpoll]", "[eventfd]", "inotify", "[signalfd]", "[timerfd]", "[fanotify]")
)


def _inherited_kind(fd: int) -> bool:
    """True if ``fd`` is a socket or an event descriptor."""
    try:
        if stat.S_ISSOCK(os.fstat(fd).st_mode):
            return True
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # closed meanwhile, or no /proc: sockets only
        return False
    kind, _, name = target.partition(":")
    return kind == "anon_inode" and name in _EVENT_INODES


def _open_fds() -> list[int]:
    """The process's open descriptors (from /proc; every possible one without it)."""
    try:
        return sorted(int(name) for name in os.listdir("/proc/self/fd"))
    except OSError:
        return list(range(3, min(os.sysconf("SC_OPEN_MAX"), 65536)))


def _logging_fds() -> set[int]:
    """The descriptors logging handlers write to (the child may log, as the agent does)."""
    loggers = [logging.getLogger()] + [
        found
        for found in logging.Logger.manager.loggerDict.values()
        if isinstance(found, logging.Logger)
    ]
    fds: set[int] = set()
    for logger in loggers:
        for handler in logger.handlers:
            for attribute in ("stream", "socket", "_socket", "sock"):
                fileno = getattr(getattr(handler, attribute, None), "fileno", None)
                if callable(fileno):
                    with contextlib.suppress(Exception):
                        fds.add(int(fileno()))
    return fds


def _reset_signals() -> None:
    """Give back the default action to every signal the agent handles in Python."""
    for signum in signal.valid_signals():
        try:
            if callable(signal.getsignal(signum)):
                signal.signal(signum, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL, SIGSTOP and the like
            continue
    signal.set_wakeup_fd(-1)


def _fresh_std_streams() -> list[TextIO]:
    """New ``sys.stdout`` and ``sys.stderr`` over fds 1 and 2; the ones made."""
    streams: list[TextIO] = []
    for name, fd in (("stdout", 1), ("stderr", 2)):
        old = getattr(sys, name)
        encoding = getattr(old, "encoding", None) or "utf-8"
        try:
            stream = open(  # noqa: SIM115 - lives until os._exit
                fd, "w", buffering=1, encoding=encoding, errors="backslashreplace", closefd=False
            )
        except OSError:  # the agent runs with this fd closed
            continue
        setattr(sys, name, stream)
        streams.append(stream)
    return streams


class _Cancellation:
    """In the child: SIGTERM from the agent means the request was cancelled."""

    def __init__(self) -> None:
        self.cancelled = False

    def requested(self) -> bool:
        return self.cancelled

    def handle(self, signum: int, frame: types.FrameType | None) -> None:
        self.cancelled = True
        raise CancelledError("the request was cancelled")


class _Channel:
    """In the child: length-prefixed pickles to the parent."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def progress(self, total: int, completed: int, details: Any) -> None:
        # JSON-safe, as the wire needs it anyway, so that the parent can always unpickle it.
        report = json_safe((total, completed, details))
        with contextlib.suppress(BrokenPipeError):  # the parent stopped listening: a cancel
            self._send(_dumps((_PROGRESS, *report)))

    def send_outcome(self, outcome: Outcome) -> None:
        if outcome.error is not None:
            self._send(_dumps((_FAILURE, outcome.error)))
            return
        try:
            payload = _dumps((_RESULT, outcome.retval))
        except Exception as exc:  # noqa: BLE001 - pickle fails in many ways
            kind = type(outcome.retval).__name__
            failure = TransferError(f"the return value ({kind}) could not be transferred: {exc}")
            payload = _dumps((_FAILURE, RemoteFailure.from_exception(failure)))
        self._send(payload)

    def _send(self, payload: bytes) -> None:
        _write_all(self.fd, _HEADER.pack(len(payload)))
        _write_all(self.fd, payload)


def _dumps(message: tuple[Any, ...]) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Frames:
    """In the parent: reassembles length-prefixed frames from pipe reads."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buffer)
            end = _HEADER.size + size
            if len(self.buffer) < end:
                break
            with memoryview(self.buffer) as view:
                frames.append(view[_HEADER.size : end].tobytes())
            del self.buffer[:end]
        return frames


class _Supervisor:
    """In the parent: relays one child's progress and result; stops and reaps it."""

    def __init__(self, pid: int, fd: int, context: Context, grace: float) -> None:
        self.pid = pid
        self.fd = fd
        self.closed = False
        self.context = context
        self.grace = grace
        self.frames = _Frames()
        self.status: int | None = None

    def supervise(self) -> Outcome:
        try:
            return self._watch()
        finally:
            self._close()
            self._reap()

    def _watch(self) -> Outcome:
        next_check = time.monotonic() + POLL_INTERVAL
        with selectors.DefaultSelector() as selector:
            selector.register(self.fd, selectors.EVENT_READ)
            while True:
                if selector.select(POLL_INTERVAL):
                    chunk = os.read(self.fd, _CHUNK)
                    outcome = self._take(chunk)
                    if outcome is not None:
                        return outcome
                    if not chunk:
                        return self._died()
                    if time.monotonic() < next_check:
                        continue
                next_check = time.monotonic() + POLL_INTERVAL
                if self.context.cancelled():
                    return self._cancel()
                if wait_exited(self.pid):
                    return self._drain(selector) or self._died()

    def _take(self, chunk: bytes) -> Outcome | None:
        """Handle the frames completed by ``chunk``; the outcome once it has come."""
        for frame in self.frames.feed(chunk):
            try:
                kind, *body = pickle.loads(frame)  # noqa: S301 - written by our own child
            except Exception as exc:  # noqa: BLE001 - unpickling fails in many ways
                return _failure(TransferError(f"a message from the child was unreadable: {exc}"))
            if kind == _PROGRESS:
                self._forward(*body)
            elif kind == _RESULT:
                return Outcome(retval=body[0])
            else:
                return Outcome(error=body[0])
        return None

    def _forward(self, total: int, completed: int, details: Any) -> None:
        self.context.progress.relay(total, completed, details)

    def _drain(self, selector: selectors.BaseSelector) -> Outcome | None:
        """After the child exited: read what it left in the pipe (briefly: others may hold it)."""
        deadline = time.monotonic() + POLL_INTERVAL
        while time.monotonic() < deadline and selector.select(0):
            chunk = os.read(self.fd, _CHUNK)
            outcome = self._take(chunk)
            if outcome is not None or not chunk:
                return outcome
        return None

    def _cancel(self) -> Outcome:
        log.info("request %s cancelled: stopping child process %d", self.context.sn, self.pid)
        self._close()  # its last writes now fail at once instead of filling the pipe
        kill_group(self.pid, self.grace)
        return _failure(CancelledError(f"request {self.context.sn} was cancelled"))

    def _died(self) -> Outcome:
        how = _describe_status(self._reap())
        log.warning("child process %d of request %s %s", self.pid, self.context.sn, how)
        return _failure(ChildDiedError(f"the child process ({self.pid}) {how} without a result"))

    def _close(self) -> None:
        if not self.closed:
            owned.close(self.fd)
            self.closed = True

    def _reap(self) -> int:
        """Wait for the child (killed first if it does not exit in time); its wait status."""
        if self.status is not None:
            return self.status
        if not wait_exited(self.pid, self.grace):
            log.warning("child process %d did not exit: killing it", self.pid)
            kill_group(self.pid, self.grace)
        try:
            self.status = os.waitpid(self.pid, 0)[1]
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored?): status unknown
            self.status = -1
        return self.status


def _describe_status(status: int) -> str:
    if status == -1:
        return "ended"
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        return f"was killed by signal {name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"
