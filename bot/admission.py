"""Admission control in front of the core: acknowledge in time, finish later.

A webhook platform waits a few seconds for its answer (WeChat 5 s, we keep 4 s). Each process runs at
most ``concurrency`` turns at once (so turns never queue for database connections) — one pool of slots
(``TurnSlots``) shared by its channels — and keeps a bounded queue of admitted turns per channel. For each new message the expected time to its answer is

    ceil((queued + running + 1) / concurrency) × recent mean turn time

- ``NOW``: within the budget → run it and wait for it (up to the deadline);
- ``LATE``: past the budget → admit it and answer at once; the channel delivers the result later
  (WeChat: a customer-service message through the outbox) — the turn's ``finish_late`` step runs in
  the same slot, so late deliveries are bounded by ``concurrency`` too;
- ``BUSY``: past ``max_wait`` (or ``max_queue`` turns waiting) → not admitted; the channel says so.

A turn that was expected in time but runs past the deadline becomes late the same way (``wait``).
Deliveries of one message that is queued or running join its job (``job(key)``) instead of queueing again.
Usable by any channel that must answer an HTTP request in time (``submit`` + ``wait``).

The event loop itself: under overload a request waits in the loop (accept, reading, parsing) before
its handler — and so admission — sees it, and the answer waits again on its way out. ``LoopLag``
measures how late the loop runs a timer; ``open_request`` dates a request back by a few such lags
(``PRE_HANDLER_ROUNDS``), ``time_left`` is what remains of its deadline after the lag of the way out,
and ``expected_wait`` includes that lag. When admission would refuse anyway, or too many requests
are open at once, ``overloaded`` says so before the channel does any database work for a request.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bot.metrics import Metrics

log = logging.getLogger(__name__)

T = TypeVar("T")
INITIAL_TURN_SECONDS = 0.05  # the mean before the first turn is measured
MEAN_WEIGHT = 0.1  # weight of the newest turn in the moving mean
LOG_EVERY_SECONDS = 10.0  # at most one "answered early" log line per this many seconds
LAG_INTERVAL = 0.05  # the loop-lag timer's period, seconds
LAG_WEIGHT = 0.2  # weight of the newest lateness in the loop lag's moving mean
# a request passes the loop this many times before its handler runs (accept, connection_made, reading
# and parsing the request): its age at the handler is estimated as this many times the loop's lag
PRE_HANDLER_ROUNDS = 3
# default bound on requests open at once (reading, checking, waiting for their turn's answer): this many
# per turn slot, at least MIN_OPEN_REQUESTS
OPEN_REQUESTS_PER_SLOT = 8
MIN_OPEN_REQUESTS = 64
# past this loop lag new messages are refused before any work: every request then already waits seconds in
# the loop, and every admitted turn (its late delivery too) takes CPU the loop needs to answer at all
MAX_LOOP_LAG = 0.5


class Decision(enum.Enum):
    NOW = "now"
    LATE = "late"
    BUSY = "busy"


@dataclass(eq=False)
class Job(Generic[T]):
    key: str
    late: bool = False  # answered already; ``finish_late`` delivers the result
    started: bool = False  # holds a slot (until then it counts as waiting)
    task: asyncio.Task[T] = field(init=False)


class LoopLag:
    """How late the event loop runs what is due: a timer every ``interval`` s notes its lateness; ``seconds``
    is their moving mean. A loop busy with many requests is late at every tick (each of its rounds is
    long); one long blocking call moves the mean once (weight ``LAG_WEIGHT``), and the next ticks bring it
    down again."""

    def __init__(self, *, interval: float = LAG_INTERVAL, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.monotonic = monotonic
        self.seconds = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def observe(self, due: float) -> None:
        """A callback due at ``due`` (this clock) runs now."""
        self.seconds += LAG_WEIGHT * (max(0.0, self.monotonic() - due) - self.seconds)

    def start(self) -> None:
        if self._timer is None:
            self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        due = self.monotonic() + self.interval
        self._timer = asyncio.get_running_loop().call_later(self.interval, self._fire, due)

    def _fire(self, due: float) -> None:
        self.observe(due)
        self._schedule()


@dataclass(eq=False)
class OpenRequest:
    """One HTTP request being answered: its estimated arrival (``arrived``, the admission's clock)."""
    arrived: float
    admission: Admission
    closed: bool = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.admission._open_requests -= 1


class TurnSlots:
    """The turn slots of one process, shared by its channels' admissions (``Runtime.turn_slots``): WeChat and
    Telegram together run at most ``concurrency`` turns (the database pool is sized for one such set, not
    one per channel), and each channel's expected wait counts the other's turns too."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = max(1, concurrency)
        self.semaphore = asyncio.Semaphore(self.concurrency)
        self.waiting = 0  # every channel's turns admitted and waiting for a slot
        self.running = 0


class Admission:
    def __init__(self, *, channel: str, concurrency: int, max_wait: float, max_queue: int = 5000,
                 max_open_requests: int | None = None, loop_lag: LoopLag | None = None,
                 max_lag: float = MAX_LOOP_LAG, slots: TurnSlots | None = None,
                 metrics: Metrics | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        """``slots``: the process's shared turn slots (then ``concurrency`` is theirs); None: this channel's own."""
        self.channel = channel
        self.pool = slots if slots is not None else TurnSlots(concurrency)
        self.concurrency = self.pool.concurrency
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.max_open_requests = max_open_requests or max(MIN_OPEN_REQUESTS,
                                                           self.concurrency * OPEN_REQUESTS_PER_SLOT)
        self.loop_lag = loop_lag
        self.max_lag = max_lag
        self.metrics = metrics
        # the channel's metric children, looked up once: ``labels()`` hashes and locks on every call, and a
        # request would do it three times (queued up, turn time, queued down)
        self._queued_gauge = metrics.queued.labels(channel) if metrics is not None else None
        self._turn_seconds = metrics.turn_seconds.labels(channel) if metrics is not None else None
        self.monotonic = monotonic
        self._open_requests = 0
        self.mean_turn = INITIAL_TURN_SECONDS
        self._jobs: dict[str, Job] = {}
        self._waiting = 0
        self._running = 0
        self._early_since_log = 0
        self._refused_since_log = 0
        self._last_log = -math.inf

    # ---- deciding ---------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._jobs)

    def lag(self) -> float:
        """The event loop's recent lag, seconds (0 without a ``LoopLag``)."""
        return self.loop_lag.seconds if self.loop_lag is not None else 0.0

    def expected_wait(self, turns: int = 1) -> float:
        """Seconds until a message admitted now would be answered (its answer's way out through the loop too).
        ``turns``: its job runs that many turns one after the other in its slot (a user's queued messages first)."""
        rounds = math.ceil((self.pool.waiting + self.pool.running + 1) / self.concurrency)
        return (rounds + max(turns, 1) - 1) * self.mean_turn + self.lag()

    def decide(self, budget: float, turns: int = 1) -> Decision:
        if self._waiting >= self.max_queue:
            return Decision.BUSY
        expected = self.expected_wait(turns)
        if expected > self.max_wait:
            return Decision.BUSY
        return Decision.NOW if expected <= budget else Decision.LATE

    # ---- the HTTP request around a message ---------------------------------------------------------
    def open_request(self) -> OpenRequest:
        """Call first thing in the handler; ``close()`` the result when the answer is written. The request
        is dated back by the loop's lag: it waited in the loop before its handler ran."""
        self._open_requests += 1
        return OpenRequest(self.monotonic() - PRE_HANDLER_ROUNDS * self.lag(), self)

    def time_left(self, request: OpenRequest, deadline: float) -> float:
        """Seconds of ``deadline`` (counted from the request's arrival) left to compute its answer: the
        answer's way out through the loop takes the loop's lag as well."""
        return deadline - (self.monotonic() - request.arrived) - self.lag()

    def overloaded(self) -> bool:
        """Refuse before any work: the queue would refuse anyway, too many requests are open at once (they
        would only wait in the loop and the database pool, and answer late), or the loop lags past
        ``max_lag`` (shedding until it catches up)."""
        return (self.decide(math.inf) is Decision.BUSY or self._open_requests > self.max_open_requests
                or self.lag() > self.max_lag)

    def make_late(self, job: Job) -> bool:
        """A job not finished yet is answered late (its result follows through ``finish_late``); False when it
        has finished already."""
        if job.task.done():
            return False
        if not job.late:
            job.late = True
            self._answered_early()
        return True

    def job(self, key: str) -> Job | None:
        """The queued or running job of this message, if any (a redelivery joins it)."""
        return self._jobs.get(key)

    # ---- running ----------------------------------------------------------------------------
    def idle_slots(self, max_lag: float) -> int:
        """Slots free for background work (a queued message's turn): none while any turn waits for a slot
        or the loop lags past ``max_lag`` (the live requests need the CPU first)."""
        if self.pool.waiting or self.lag() > max_lag:
            return 0
        return self.concurrency - self.pool.running

    def submit(self, key: str, work: Callable[[], Awaitable[T]], *, late: bool,
               finish_late: Callable[[T], Awaitable[None]], background: bool = False) -> Job[T]:
        """``background``: a turn of a message answered earlier (not counted as answered early again)."""
        job: Job[T] = Job(key, late=late or background)
        self._waiting += 1  # counted now: several messages may arrive before the first task runs
        self.pool.waiting += 1
        if late and not background:
            self._answered_early()
        job.task = asyncio.create_task(self._run(job, work, finish_late), name=f"{self.channel}-turn-{key}")
        self._jobs[key] = job
        if self._queued_gauge is not None:
            self._queued_gauge.inc()
        job.task.add_done_callback(lambda task: self._done(job))
        return job

    async def _run(self, job: Job[T], work: Callable[[], Awaitable[T]],
                   finish_late: Callable[[T], Awaitable[None]]) -> T:
        async with self.pool.semaphore:
            job.started = True
            self._waiting -= 1
            self._running += 1
            self.pool.waiting -= 1
            self.pool.running += 1
            started = self.monotonic()
            try:
                result = await work()
                if self._turn_seconds is not None:
                    self._turn_seconds.observe(self.monotonic() - started)
                if job.late:  # no await between the check and the return: wait() cannot slip in
                    await finish_late(result)
                return result
            finally:
                self._running -= 1
                self.pool.running -= 1
                # the whole slot (a late delivery too) is what the next message waits for
                self.mean_turn += MEAN_WEIGHT * (self.monotonic() - started - self.mean_turn)

    def _done(self, job: Job) -> None:
        if self._jobs.get(job.key) is job:
            del self._jobs[job.key]
        if not job.started:
            self._waiting -= 1  # cancelled while queued
            self.pool.waiting -= 1
        if self._queued_gauge is not None:
            self._queued_gauge.dec()
        # read the outcome without raising here: a done callback must not raise (a cancelled task's
        # exception() raises CancelledError)
        if job.task.cancelled():
            if job.late:
                log.warning("%s: turn %s was cancelled after it had been answered", self.channel, job.key)
            return
        error = job.task.exception()
        if error is not None and job.late:
            log.error("%s: turn %s failed after it had been answered", self.channel, job.key, exc_info=error)

    async def wait(self, job: Job[T], deadline: float) -> T | None:
        """The job's result within ``deadline`` seconds, or None: then it is late and finishes on its own."""
        if job.late:
            return None
        done, _ = await asyncio.wait({job.task}, timeout=max(deadline, 0.0))
        if job.late:  # made late meanwhile (``make_late``): its result follows through ``finish_late``
            return None
        if not done:
            job.late = True
            if self.metrics is not None:
                self.metrics.deadline_misses.labels(self.channel).inc()
            log.info("%s: turn %s missed the deadline; its reply follows", self.channel, job.key)
            return None
        return job.task.result()

    def acknowledged(self) -> None:
        """The channel answered a message at once and keeps it for later (e.g. in a durable queue)."""
        self._answered_early()

    def _answered_early(self) -> None:
        if self.metrics is not None:
            self.metrics.answered_early.labels(self.channel).inc()
        self._early_since_log += 1
        self._log_overload()

    def refused(self) -> None:
        """The channel turned a message away after ``decide`` said BUSY."""
        if self.metrics is not None:
            self.metrics.refused.labels(self.channel).inc()
        self._refused_since_log += 1
        self._log_overload()

    def _log_overload(self) -> None:
        now = self.monotonic()
        if now - self._last_log < LOG_EVERY_SECONDS:
            return
        log.warning("%s overloaded: %d message(s) answered at once (replies follow through the outbox), "
                    "%d refused (please resend); queued %d, running %d, mean turn %.3f s, expected wait %.1f s", self.channel,
                    self._early_since_log, self._refused_since_log, self._waiting, self._running, self.mean_turn,
                    self.expected_wait())
        self._early_since_log = self._refused_since_log = 0
        self._last_log = now

    async def drain(self, grace: float) -> int:
        """Let admitted turns finish (shutdown); after ``grace`` seconds the rest is cancelled. Returns how
        many were cancelled."""
        pending = {job.task for job in self._jobs.values()}
        if not pending:
            return 0
        _, still = await asyncio.wait(pending, timeout=grace)
        for task in still:
            task.cancel()
        if still:
            await asyncio.wait(still)
            log.error("%s: %d turn(s) still queued at shutdown were cancelled", self.channel, len(still))
        return len(still)

    async def wait_idle(self) -> None:
        """Until every admitted job has finished (tests)."""
        while self._jobs:
            await asyncio.gather(*[job.task for job in list(self._jobs.values())], return_exceptions=True)
