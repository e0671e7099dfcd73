"""One plugin at work: its queue consumed, each request journaled, acknowledged and run.

The life of a request::

    broker ──get──▶ check (version, signature, fields) ──▶ journal (fsync)
           ◀──ack──                                        │
    caller ◀── accepted ───────────────────────────────────┘
           ◀── started, progress..., result ◀── worker pool (threads)
                                                  └── journal.finish

At most ``threads + backlog`` requests are held (journaled and accepted) at
once: a slot is taken before a message is read and given back when its
request ends, so beyond that bound back-pressure comes from the broker
(prefetch = threads + backlog: the next batch is on its way while one is
journaled). With every slot held, the consumer reads on (up to
``LOOKAHEAD`` messages, unacknowledged) for ``Admin`` calls, which run at
once on a thread of their own: ``Admin.cancel`` never waits behind the work
it is sent to cancel. The requests of a batch share one fsync and one acknowledgement
(``ack_many``). The backlog lets callers learn early that their
request is accepted, and lets ``Admin.cancel(criteria=...)`` reach requests
waiting for a worker; cancelling by serial number also works for requests
still in the broker's queue (the mark waits in the journal). A request that will not run
(malformed, not authentic, expired, cancelled) is answered ``rejected``
when it has a reply address, and logged either way. What a worker does with a
request it is handed (run, resend a kept result, answer interrupted, reject)
is decided in :mod:`gofer.agent.lifecycle`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gofer.agent import lifecycle
from gofer.agent.builtin import ADMIN
from gofer.agent.journal import MAX_BODY, Entry, Journal, JournalError
from gofer.agent.lifecycle import Step, carries_secrets
from gofer.agent.metrics import Metrics
from gofer.errors import (
    GoferError,
    NotFoundError,
    UnsupportedError,
)
from gofer.messaging.adapter.model import Address, Delivery, Queue, QueueType
from gofer.messaging.auth import Authenticator, validate
from gofer.messaging.connection import Connection, Reader
from gofer.rmi import wire
from gofer.rmi.dispatcher import Dispatcher
from gofer.rmi.serve import Refused, Replier, receive, run
from gofer.rmi.wire import Request, RequestRejected

log = logging.getLogger(__name__)

#: Seconds between checks that an idle plugin's queue still exists (for
#: brokers that do not tell a consumer its queue was deleted).
QUEUE_CHECK_INTERVAL = 30.0
#: Requests taken beyond the workers (at least this many, or ``threads``).
BACKLOG_MIN = 4
#: Messages read past a full backlog, and held unacknowledged, to find ``Admin`` calls.
LOOKAHEAD = 64
#: Seconds between looks ahead while every slot is held and nothing more came.
LOOK_AGAIN = 0.05
#: ``Admin`` calls taken from beyond a full backlog and not yet answered, at most.
ADMIN_HELD = 4
#: Back-off bounds (seconds) while a plugin's queue is missing.
REPAIR_DELAYS = (1.0, 30.0)


class PluginRunner:
    """Consumes one plugin's queue and runs its requests on the plugin's worker pool.

    Args:
        name: the plugin's name (recorded in the journal).
        queue: ``queue`` or ``exchange/queue`` the plugin consumes.
        connection: the (shared, reconnecting) broker connection.
        dispatcher: resolves and runs the plugin's requests.
        journal: where accepted requests are kept until answered.
        threads: worker threads (the backlog and the broker prefetch follow).
        latency: seconds a request waits before it starts (a cancel window).
        managed: 0 leaves the queue alone, 1 declares it, 2 also deletes it
            when the plugin is explicitly unloaded.
        expiration: seconds the queue lives on after the agent is gone.
        queue_type: ``classic`` or ``quorum`` (declared so when managed).
        authenticator: checks requests and signs replies, when given.
        on_fatal: called (with the reason) when the runner cannot go on
            without losing requests: the journal failed (disk full, read-only).
            goferd exits then, so that systemd restarts it.
    """

    def __init__(
        self,
        *,
        name: str,
        queue: str,
        connection: Connection,
        dispatcher: Dispatcher,
        journal: Journal,
        threads: int = 1,
        latency: float = 0.0,
        managed: int = 2,
        expiration: float | None = None,
        queue_type: QueueType = "classic",
        authenticator: Authenticator | None = None,
        on_fatal: Callable[[str], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.name = name
        self.address = Address.parse(queue)
        self.connection = connection
        self.dispatcher = dispatcher
        self.journal = journal
        self.threads = max(1, threads)
        self.latency = latency
        self.managed = managed
        self.expiration = expiration
        self.queue_type: QueueType = queue_type
        self.authenticator = authenticator
        self.metrics = metrics or Metrics()
        self.replier = Replier(connection.send, authenticator)
        self.backlog = max(BACKLOG_MIN, self.threads)
        #: Requests held at most: running, or accepted and waiting for a worker.
        self.held = self.threads + self.backlog
        self._slots = threading.BoundedSemaphore(self.held)
        # Admin calls read past a full backlog hold one of these instead.
        self._admin_slots = threading.BoundedSemaphore(ADMIN_HELD)
        self._admin_held: set[str] = set()
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=f"gofer-{name}")
        # Admin calls (cancel above all) never wait behind the plugin's work.
        self._admin_pool = ThreadPoolExecutor(1, thread_name_prefix=f"gofer-{name}-admin")
        self._on_fatal = on_fatal
        self._stopping = threading.Event()
        self._consumer: threading.Thread | None = None
        self._running: set[str] = set()
        # Taken (journaled, perhaps marked started) but never run: stopped first.
        self._unrun: set[str] = set()
        self._unmanageable = False
        self._lock = threading.Lock()
        # The consumer thread's own: its reader, its back-off, when it last saw its queue.
        self._reader: Reader | None = None
        # Plugin requests read past a full backlog: taken, in order, before any other.
        self._parked: deque[Delivery] = deque()
        self._delay = REPAIR_DELAYS[0]
        self._last_check = 0.0
        #: When (monotonic) the consumer thread last began a turn.
        self.last_turn = time.monotonic()

    @property
    def queue(self) -> str:
        return self.address.routing_key

    # -- life ---------------------------------------------------------------

    def start(self) -> None:
        """Prepare the queue (as managed) and start consuming."""
        self._consumer = threading.Thread(
            target=self._consume, name=f"gofer-consumer-{self.name}", daemon=True
        )
        self._consumer.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop consuming, and wait up to ``timeout`` for taken requests to end (:meth:`drain`).

        goferd stops all its runners' consumers first, then drains them
        under one deadline; this is both steps for one runner.
        """
        deadline = time.monotonic() + timeout
        self.stop_consuming(timeout)
        return self.drain(max(0.0, deadline - time.monotonic()))

    def stop_consuming(self, timeout: float = 5.0) -> None:
        """Stop taking new requests; those already taken go on."""
        self._stopping.set()
        if self._consumer is not None:
            self._consumer.join(timeout)

    def drain(self, timeout: float) -> bool:
        """Wait for taken requests to end; True if all did within ``timeout``.

        Requests that have not ended stay in the journal: they run again at
        the next start, and those never started (:meth:`unrun`) run on the
        runner that takes the plugin over after a reload.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    break
            time.sleep(0.05)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._admin_pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            left = sorted(self._running)
        if left:
            log.warning(
                "plugin %s: %d request(s) still running; kept for the next start: %s",
                self.name,
                len(left),
                ", ".join(left),
            )
        return not left

    def detach(self) -> None:
        """On explicit unload: with ``managed=2``, delete the plugin's queue."""
        if self.managed == 2:
            try:
                self.connection.delete_queue(self.queue)
                log.info("plugin %s: queue %s deleted", self.name, self.queue)
            except GoferError as exc:
                log.warning("plugin %s: queue %s not deleted: %s", self.name, self.queue, exc)

    # -- consuming ----------------------------------------------------------

    def _declare(self) -> None:
        """Declare (and bind) the queue, as far as the broker lets this adapter."""
        if self.managed < 1 or self._unmanageable:
            return
        try:
            self.connection.declare_queue(
                Queue(
                    self.queue,
                    durable=True,
                    expiration=self.expiration,
                    queue_type=self.queue_type,
                )
            )
            if self.address.exchange:
                self.connection.bind(self.queue, self.address.exchange, self.queue)
        except UnsupportedError as exc:
            # E.g. RabbitMQ over AMQP 1.0 cannot bind: consume what exists.
            self._unmanageable = True
            log.warning(
                "plugin %s: queue %s cannot be managed here (%s); consuming it as it is",
                self.name,
                self.address,
                exc,
            )

    def _consume(self) -> None:
        """The consumer thread: one :meth:`_turn` after another until stopped.

        Nothing ends it but :meth:`stop_consuming` or a failed journal (then
        goferd is told to exit): any other failure is logged, the messages not
        yet acknowledged go back to the broker, and it goes on after a pause.
        """
        self._delay = REPAIR_DELAYS[0]
        self._last_check = time.monotonic()
        while not self._stopping.is_set():
            self.last_turn = time.monotonic()
            try:
                self._turn()
            except JournalError as exc:
                if self._journal_failed(exc):
                    break
                self._pause("consuming failed: %s", exc, exc_info=exc)
            except Exception as exc:  # noqa: BLE001 - the consumer must outlive any one failure
                self._pause("consuming failed: %s", exc, exc_info=exc)
        self._close_reader()

    def _turn(self) -> None:
        """Take a free slot, read, and take what came; with none free, look ahead."""
        if not self._slots.acquire(blocking=False):
            self._look_ahead()
            return
        try:
            reader = self._open_reader()
            delivery = self._parked.popleft() if self._parked else reader.get(timeout=1.0)
        except NotFoundError as exc:
            self._slots.release()
            self._pause("queue %s unavailable: %s", self.queue, exc)
            return
        except GoferError as exc:
            self._slots.release()
            self._pause("%s", exc)
            return
        except BaseException:
            self._slots.release()
            raise
        self._delay = REPAIR_DELAYS[0]
        if delivery is None or self._stopping.is_set():
            # Stopping: not acknowledged, the delivery goes back with the reader.
            self._slots.release()
            if delivery is None and time.monotonic() - self._last_check > QUEUE_CHECK_INTERVAL:
                self._last_check = time.monotonic()
                self._check_queue()
            return
        self._last_check = time.monotonic()
        self._take(reader, [delivery, *self._more(reader)])

    def _open_reader(self) -> Reader:
        if self._reader is None:
            self._declare()
            # The broker holds a backlog's worth ahead of the slots, so that a
            # burst reaches the journal in batches of that size, and a look
            # ahead's worth more, so that Admin calls are seen past them.
            self._reader = self.connection.reader(self.queue, prefetch=self.held + LOOKAHEAD)
            log.info("plugin %s: consuming %s", self.name, self.address)
        return self._reader

    def _look_ahead(self) -> None:
        """Every slot is held: read on past the plugin's requests for ``Admin`` calls.

        ``Admin.cancel`` must not wait behind the work it is sent to cancel.
        An ``Admin`` call found here is taken at once (on an Admin slot of its
        own); a plugin request is parked, unacknowledged, until a slot frees.
        At most :data:`LOOKAHEAD` are parked and :data:`ADMIN_HELD` Admin
        calls held this way; beyond that, the consumer waits for a slot.
        """
        reader = self._reader
        if reader is not None and len(self._parked) < LOOKAHEAD:
            try:
                delivery = reader.get(timeout=0)
            except NotFoundError as exc:
                self._pause("queue %s unavailable: %s", self.queue, exc)
                return
            except GoferError as exc:
                self._pause("%s", exc)
                return
            if delivery is not None and not self._stopping.is_set():
                if _calls_admin(delivery.body) and self._admin_slots.acquire(blocking=False):
                    self._take(reader, [delivery], admin=True)
                else:
                    self._parked.append(delivery)
                return
        # Nothing more to read: wait for a slot, looking again every LOOK_AGAIN.
        if self._slots.acquire(timeout=LOOK_AGAIN):
            self._slots.release()

    def _pause(self, what: str, *args: object, exc_info: BaseException | None = None) -> None:
        """Close the reader, say why, wait (backing off) before consuming again.

        Closing the reader returns every message not yet acknowledged to the
        broker, which delivers it again; the journal tells whether it was taken.
        """
        self._close_reader()
        log.error(
            f"plugin %s: {what}; consuming again in %.0fs",
            self.name,
            *args,
            self._delay,
            exc_info=exc_info,
        )
        self._stopping.wait(self._delay)
        self._delay = min(self._delay * 2, REPAIR_DELAYS[1])

    def _journal_failed(self, exc: JournalError) -> bool:
        """True (and goferd told to exit) when the journal cannot write any more."""
        if not self.journal.failed:
            return False
        reason = f"plugin {self.name}: the journal cannot write ({exc}); nothing more is accepted"
        log.critical("%s", reason)
        if self._on_fatal is not None:
            self._on_fatal(reason)
        return True

    def _more(self, reader: Reader) -> list[Delivery]:
        """Deliveries already here, one free slot each: journaled with the first in one commit."""
        more: list[Delivery] = []
        while len(more) < self.held and self._slots.acquire(blocking=False):
            delivery = self._parked.popleft() if self._parked else reader.get(timeout=0)
            if delivery is None:
                self._slots.release()
                break
            more.append(delivery)
        return more

    def _check_queue(self) -> None:
        """Drop the reader if its queue vanished without the broker saying so."""
        try:
            if self.connection.queue_exists(self.queue):
                return
        except GoferError as exc:
            log.debug("plugin %s: queue check failed: %s", self.name, exc)
            return
        log.error("plugin %s: queue %s vanished; repairing", self.name, self.queue)
        self._close_reader()

    def _close_reader(self) -> None:
        """Close the reader (if any): what it has not acknowledged goes back to the broker."""
        reader, self._reader = self._reader, None
        self._parked.clear()  # not acknowledged: they go back with the reader
        if reader is not None:
            try:
                reader.close()
            except GoferError as exc:
                log.debug("closing reader: %s", exc)

    def _take(self, reader: Reader, deliveries: list[Delivery], *, admin: bool = False) -> None:
        """Check, journal and acknowledge messages (each holds a slot); hand their requests on.

        The requests of one batch are journaled in one commit: a backlog costs
        one fsync per batch, not per request. Whatever fails on the way, the
        slots of the requests not handed on are given back (and their
        messages, not acknowledged, go back to the broker with the reader).
        With ``admin``, the deliveries are Admin calls holding Admin slots.
        """
        slots = self._admin_slots if admin else self._slots
        held = len(deliveries)
        try:
            taken = self._checked_batch(reader, deliveries, slots)
            held = len(taken)
            if not taken:
                return
            received = time.time()
            # Requests that can start at once are journaled as started in the
            # same commit (one fsync instead of two per request).
            with self._lock:
                free = self.threads - len(self._running) if self.latency <= 0 and not admin else 0
                if admin:
                    self._admin_held.update(request.sn for _, request in taken)
            writes = [
                (Entry(request.sn, self.name, delivery.body, received), n < free)
                for n, (delivery, request) in enumerate(taken)
            ]
            self.journal.write_many(writes)
            reader.ack_many([delivery for delivery, _ in taken])
            for n, (_, request) in enumerate(taken):
                held -= 1
                self._accept(request, received, started=n < free)
        finally:
            for _ in range(held):
                slots.release()

    def _checked_batch(
        self, reader: Reader, deliveries: list[Delivery], slots: threading.BoundedSemaphore
    ) -> list[tuple[Delivery, Request]]:
        """The deliveries to journal, with their requests; the others are settled and let go."""
        taken: list[tuple[Delivery, Request]] = []
        seen: set[str] = set()
        for delivery in deliveries:
            try:
                request = self._receive(delivery)
            except GoferError:
                raise  # the broker or the journal: the consumer pauses and reads it again
            except Exception:  # one message must not block its queue for good
                log.exception(
                    "plugin %s: a message could not be read (%d bytes); dropped",
                    self.name,
                    len(delivery.body),
                )
                request = None
            if request is not None and (
                request.sn in seen
                or self.journal.is_finished(request.sn)
                or request.sn in self.journal
            ):
                log.info("request %s already taken; duplicate delivery dropped", request.sn)
                request = None
            if request is not None and len(delivery.body) > MAX_BODY:
                log.warning(
                    "plugin %s: request %s refused: %d bytes, more than the journal takes",
                    self.name,
                    request.sn,
                    len(delivery.body),
                )
                self.replier.reject(
                    request,
                    RequestRejected(
                        wire.TOO_LARGE,
                        f"request of {len(delivery.body)} bytes; at most {MAX_BODY} are taken",
                    ),
                )
                request = None
            if request is None:
                reader.ack(delivery)
                slots.release()
                continue
            seen.add(request.sn)
            taken.append((delivery, request))
        return taken

    def _accept(self, request: Request, received: float, started: bool) -> None:
        """Tell the caller a journaled request is accepted, and run it (it holds a slot)."""
        try:
            self.replier.accepted(request)
        except Exception:  # a journaled request runs whatever became of its status
            log.exception("plugin %s: request %s: accepted status failed", self.name, request.sn)
        self.submit(request, received, slot_taken=True, started=started)

    def _receive(self, delivery: Delivery) -> Request | None:
        self.metrics.received(self.name)
        try:
            return receive(delivery.body, self.authenticator, self.address)
        except Refused as refused:
            if refused.replay and delivery.redelivered:
                return self._redelivered(refused)
            log.warning(
                "plugin %s: request %s refused [%s]: %s%s",
                self.name,
                refused.sn,
                refused.rejected.code,
                refused,
                "" if refused.authentic else f" ({refused.rejected.details})",
            )
            self.metrics.finished(self.name, "unknown", "rejected", None)
            self.replier.refused(refused)
            return None

    def _redelivered(self, refused: Refused) -> Request | None:
        """A broker's redelivery of a message the replay guard saw: taken if it never was.

        The broker sets ``redelivered`` only on a message it delivered
        before; one checked here but never journaled (the reader was closed
        in between) must still run, since nobody acknowledged it.
        """
        request = refused.request
        if request is None or request.sn in self.journal or self.journal.is_finished(request.sn):
            log.info("request %s redelivered by the broker; already taken", refused.sn)
            return None
        log.info("request %s redelivered by the broker; never taken, so taken now", request.sn)
        return request

    # -- running ------------------------------------------------------------

    def submit(
        self,
        request: Request,
        received: float,
        *,
        slot_taken: bool = False,
        started: bool = False,
        replayed: bool = False,
        replier: Replier | None = None,
    ) -> None:
        """Run a journaled request on the worker pool.

        Args:
            request: the request.
            received: when it was received (its TTL counts from then).
            slot_taken: the caller holds a slot for it already.
            started: the journal marks it started already.
            replayed: it comes from the journal at start-up; if it had
                started before goferd stopped, it is not run again but
                answered with ``RequestInterruptedError``.
            replier: what answers it when not this runner's own: that of
                the runner that took it, whose broker its caller waits on.
        """
        if not slot_taken:
            self._slots.acquire()
        with self._lock:
            self._running.add(request.sn)
        pool = self._admin_pool if request.classname == ADMIN else self._pool
        try:
            future = pool.submit(
                self._work, request, received, started, replayed, replier or self.replier
            )
        except RuntimeError:  # the pool is shut down: the journal keeps it
            self._done(request.sn)
            return
        sn = request.sn
        future.add_done_callback(lambda done: self._dropped(sn) if done.cancelled() else None)

    def _dropped(self, sn: str) -> None:
        """A queued request the pool dropped at :meth:`drain`'s end: never run, still journaled."""
        with self._lock:
            self._unrun.add(sn)
        self._done(sn)

    def _done(self, sn: str) -> None:
        with self._lock:
            self._running.discard(sn)
            admin = sn in self._admin_held
            self._admin_held.discard(sn)
        (self._admin_slots if admin else self._slots).release()

    def _work(
        self, request: Request, received: float, started: bool, replayed: bool, replier: Replier
    ) -> None:
        try:
            self._run(request, received, started, replayed, replier)
        except Exception:
            log.exception("plugin %s: request %s failed in the agent", self.name, request.sn)
        finally:
            self._done(request.sn)

    def _run(
        self, request: Request, received: float, started: bool, replayed: bool, replier: Replier
    ) -> None:
        if self.latency > 0 and request.classname != ADMIN and not self._cancelled(request.sn):
            self._stopping.wait(self.latency)
        if self._stopping.is_set():
            # Stopping: the journal keeps it for the next start, or for the
            # runner that takes over the plugin after a reload (unrun()).
            with self._lock:
                self._unrun.add(request.sn)
            return
        decision = lifecycle.before_run(request, self.journal, received, replayed=replayed)
        method = f"{request.classname}.{request.method}"
        if decision.step is Step.RESEND:
            assert decision.kept is not None
            log.info("request %s: sending the result kept before goferd stopped", request.sn)
            replier.result(request, json.loads(decision.kept))
            self.metrics.finished(self.name, method, "resent", None)
        elif decision.step is Step.INTERRUPTED:
            log.warning("request %s was running when goferd stopped; not run again", request.sn)
            replier.result(request, lifecycle.interrupted_result(request))
            self.metrics.finished(self.name, method, "interrupted", None)
        elif decision.rejected is not None:
            log.info("request %s not run: %s", request.sn, decision.rejected.description)
            replier.reject(request, decision.rejected)
            self.metrics.finished(self.name, method, "rejected", None)
        else:
            log.debug("request %s: %s.%s() starts", request.sn, request.classname, request.method)
            if not started:
                self.journal.start(request.sn)
            began = time.monotonic()
            result = run(
                request,
                self.dispatcher,
                replier,
                lambda: self._cancelled(request.sn),
                keep=self._keeper(request),
            )
            outcome = "succeeded" if "retval" in result else "failed"
            self.metrics.finished(self.name, method, outcome, time.monotonic() - began)
        # Need not wait: until it is durable a replay resends the kept result.
        self.journal.finish(request.sn, wait=False, scrub=carries_secrets(request))

    def _keeper(self, request: Request) -> Callable[[dict[str, Any]], None] | None:
        """What keeps a request's result in the journal before it is sent.

        None for a request without a reply address: a result nobody is
        answered with need not be kept.
        """
        if not request.replyto:
            return None
        sn = request.sn
        return lambda result: self.journal.record_result(sn, json.dumps(result).encode())

    def _cancelled(self, sn: str) -> bool:
        """True once the request is cancelled (a journal lookup: cheap)."""
        return self.journal.is_cancelled(sn)

    def stuck(self, after: float) -> str | None:
        """Why this runner's consumer is wedged, or None when it is going.

        Going: its thread is alive and began a turn within ``after`` seconds,
        or it waits for the broker, which is down (reconnecting is its work
        then). A consumer that stopped on purpose is not stuck.
        """
        thread = self._consumer
        if thread is None or self._stopping.is_set():
            return None
        if not thread.is_alive():
            return f"plugin {self.name}: its consumer thread has ended"
        idle = time.monotonic() - self.last_turn
        if idle > after and self.connection.down_since is None:
            return f"plugin {self.name}: its consumer has not turned for {idle:.0f}s"
        return None

    def running(self) -> list[str]:
        with self._lock:
            return sorted(self._running)

    def unrun(self) -> list[str]:
        """Requests taken but never run because the runner stopped first (still journaled)."""
        with self._lock:
            return sorted(self._unrun)

    def describe(self) -> dict[str, Any]:
        return {"queue": str(self.address), "threads": self.threads, "running": self.running()}


def _calls_admin(body: bytes) -> bool:
    """Whether a message says it calls ``Admin``: unchecked, only to choose what to read first."""
    try:
        document = validate(None, body)
    except GoferError:
        return False
    request = document.get("request")
    return isinstance(request, dict) and request.get("classname") == ADMIN
