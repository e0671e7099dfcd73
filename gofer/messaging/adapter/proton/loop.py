"""The reactor thread of one AMQP 1.0 connection, and how other threads hand it work.

proton's engine objects (connection, sessions, links, deliveries) are not
thread-safe. A :class:`Loop` runs one ``proton.reactor.Container`` in one
daemon thread, and that thread is the only one that ever touches them. Other
threads call :meth:`Loop.submit` with a function to run *in* the loop
thread; the function gets a :class:`concurrent.futures.Future` and settles it
at once or later, from an event handler (a link attached, a delivery
settled). The caller waits on the future with a timeout.

The hand-over is a queue plus a pipe that the reactor's ``select`` watches
(the same idea as ``proton.reactor.EventInjector``, which it replaces so that
a submitted function runs directly, without a made-up event type).

At interpreter exit every loop is ended before python-qpid-proton's own
``atexit`` hook frees the Python objects its pending events point to (a
loop thread still running then aborts the process); see :func:`_end_all`.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar, cast

from proton import Event, Handler
from proton.reactor import Container, EventInjector

from gofer import owned
from gofer.errors import ConnectError, ConnectionLostError, MessagingError, OperationTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest ``select`` of an idle loop; heartbeats and timers wake it sooner.
IDLE_WAIT = 5.0

Start = Callable[["Future[Any]"], None]


class _Waker:
    """A pipe the reactor selects on; writing a byte makes the loop run the queued work."""

    def __init__(self, run: Callable[[], None]) -> None:
        self._read_fd, self._write_fd = owned.pipe()  # goferd's: no forked child keeps it
        os.set_blocking(self._read_fd, False)
        self._run = run
        self._selectable: Any = None
        # proton's IOHandler also sees this selectable's events and looks here.
        self._transport = None

    def fileno(self) -> int:
        return self._read_fd

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # closed: the loop has ended
            os.write(self._write_fd, b"!")

    def terminate(self) -> None:
        """Leave the reactor's interest set (call in the loop thread)."""
        if self._selectable is not None:
            self._selectable.terminate()
            self._selectable.update()
            self._selectable = None

    def close(self) -> None:
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                owned.close(fd)

    # -- reactor events of the selectable ----------------------------------

    def on_selectable_init(self, event: Event) -> None:
        self._selectable = event.context
        self._selectable.reading = True
        self._selectable.update()

    def on_selectable_readable(self, event: Event) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._read_fd, 4096)
        self._run()

    def on_selectable_final(self, event: Event) -> None:
        self.close()


class Loop:
    """One proton Container running in its own thread.

    Args:
        name: the thread's name.
        handler: the container's handler (reactor-level events).

    Threading rule: :meth:`submit`, :meth:`call` and :meth:`stop` may be
    called from any thread. :meth:`track` and :meth:`end` belong to the loop
    thread (or to the owner before :meth:`start`); every function submitted
    runs in the loop thread.
    """

    def __init__(self, name: str, handler: Handler) -> None:
        self.container = Container(handler)
        self.container.container_id = f"gofer-{os.getpid()}-{id(self):x}"
        self._waker = _Waker(self._run_tasks)
        self._lock = threading.Lock()
        self._tasks: list[tuple[Start, Future[Any]]] = []
        self._pending: set[Future[Any]] = set()
        self._ended: MessagingError | None = None
        self._reason: MessagingError | None = None
        #: The exception that killed the loop thread, if one did.
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def in_loop(self) -> bool:
        """True when called from the loop thread itself."""
        return threading.current_thread() is self.thread

    @property
    def ended(self) -> MessagingError | None:
        """Why the loop ended, once it has."""
        return self._ended

    def start(self) -> None:
        """Start the thread; submitted work runs from then on.

        Raises:
            ConnectError: the interpreter is exiting.
        """
        with _live_lock:
            if _exiting:
                raise ConnectError("not connecting: the process is exiting")
            _live.add(self)
        # Typed for EventInjector, which _Waker stands in for.
        self.container.selectable(cast("EventInjector", self._waker))
        self.thread.start()

    def submit(self, start: Callable[[Future[T]], None]) -> Future[T]:
        """Run ``start(future)`` in the loop thread; it (or a later event) settles the future.

        The future fails with the loop's end error if the loop ends first.
        """
        future: Future[T] = Future()
        with self._lock:
            if self._ended is not None:
                future.set_exception(self._ended)
                return future
            self._tasks.append((start, future))
        self._waker.wake()
        return future

    def call(self, function: Callable[[], T], timeout: float) -> T:
        """Run ``function()`` in the loop thread and return its result.

        Raises:
            OperationTimeoutError: the loop did not get to it in time.
            Whatever ``function`` raised.
        """

        def start(future: Future[T]) -> None:
            future.set_result(function())

        return wait(self.submit(start), timeout, "the AMQP 1.0 I/O thread")

    def track(self, future: Future[Any]) -> None:
        """Fail ``future`` if the loop ends before it is settled."""
        if not future.done():
            self._pending.add(future)
            future.add_done_callback(self._pending.discard)

    def end(self, reason: MessagingError) -> None:
        """Stop the loop for ``reason``; pending and later work fails with it (loop thread)."""
        if self._reason is None:
            self._reason = reason
        self._fail_pending(reason)
        self._waker.terminate()
        self.container.stop()

    def stop(self) -> None:
        """End the loop from any thread; a no-op once it has ended."""

        def start(future: Future[None]) -> None:
            future.set_result(None)
            self.end(ConnectionLostError("the AMQP 1.0 connection is closed"))

        self.submit(start)

    def join(self, timeout: float) -> None:
        """Wait for the loop thread to end (not from the loop thread itself)."""
        if not self.in_loop and self.thread.is_alive():
            self.thread.join(timeout)

    # -- the loop thread ------------------------------------------------------

    def _run_tasks(self) -> None:
        with self._lock:
            tasks, self._tasks = self._tasks, []
        for start, future in tasks:
            if not future.set_running_or_notify_cancel():
                continue
            self.track(future)
            try:
                start(future)
            except Exception as exc:  # noqa: BLE001 - handed to the waiting thread
                if not future.done():
                    future.set_exception(exc)

    def _run(self) -> None:
        try:
            self._serve()
        except Exception as exc:  # every failure ends the loop
            log.debug("AMQP 1.0 I/O thread failed", exc_info=True)
            self.failure = exc
            self._reason = self._reason or ConnectionLostError(
                f"the AMQP 1.0 I/O thread failed: {exc!r}"
            )
        finally:
            self._finish(self._reason or ConnectionLostError("the AMQP 1.0 connection is closed"))

    def _serve(self) -> None:
        # Container.run() without its fixed 3.14 s select timeout.
        container = self.container
        container.timeout = IDLE_WAIT
        container.start()
        while container.process():
            pass
        container.stop()
        container.process()

    def _fail_pending(self, error: MessagingError) -> None:
        for future in list(self._pending):
            if not future.done():
                future.set_exception(error)

    def _finish(self, error: MessagingError) -> None:
        with self._lock:
            self._ended = error
            tasks, self._tasks = self._tasks, []
        for _, future in tasks:
            if future.set_running_or_notify_cancel():
                future.set_exception(error)
        self._fail_pending(error)
        self._waker.close()


def wait(future: Future[T], timeout: float | None, what: str) -> T:
    """The future's result, or OperationTimeoutError after ``timeout`` seconds.

    Raises:
        OperationTimeoutError: no result in time.
        Whatever the future holds.
    """
    try:
        return future.result(timeout)
    except FutureTimeout:  # TimeoutError itself from Python 3.11 on
        raise OperationTimeoutError(f"no answer from {what} within {timeout:g}s") from None


_live: weakref.WeakSet[Loop] = weakref.WeakSet()
_live_lock = threading.Lock()
_exiting = False


@atexit.register
def _end_all() -> None:
    """End every loop at exit, and start no more.

    python-qpid-proton registers an ``atexit`` hook that frees the handles of
    the Python objects its events refer to; a loop thread still handling
    events afterwards makes the interpreter abort. This module is imported
    after proton, so this hook runs before that one.
    """
    global _exiting  # noqa: PLW0603 - one flag for the whole process
    with _live_lock:
        _exiting = True
        loops = list(_live)
    for loop in loops:
        loop.stop()
    for loop in loops:
        loop.join(2.0)
