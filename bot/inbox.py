"""Acknowledge now, finish later: a channel's durable inbound queue and its low-priority drain.

When admission would not run a message in time (``bot.admission``), a webhook channel answers at once
(WeChat: ``success``) and ``put``s the message here instead of asking the user to send it again. The
request waits only for the row's commit (the message survives a restart), and the rows that arrive
while one write is queued or running are written together by the next one (``bot.group_commit``, as the
replay guard's nonces): under a burst that is one short transaction per batch, not one per message.

A background task (``run``) takes rows while admission has idle slots and the loop does not lag (the
live requests come first), at most ``slots`` at once, oldest first, one user's messages in order. Each
row's turn runs in an admission slot (so live decisions see it); the channel's ``finish`` delivers the
reply (WeChat: through the outbox) and deletes the row in that transaction. A row whose worker died is
taken again when its lease ends; the core's message dedupe keeps that to one effect.

A user's queued rows may also run ahead of their next message, in that message's slot (``take_user``):
the channel answers them together (WeChat: one passive reply instead of one customer-service message each).

Bounded by rows and age (``services.inbound_queue``): past the bound ``put`` says ``FULL`` and the
channel answers "please resend" — the honest answer when even the queue cannot keep up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.admission import Admission, Job
from bot.group_commit import GroupCommit
from bot.metrics import Metrics
from handlers.messages import Inbound, Location
from handlers.privacy import FieldCipher, open_json, seal_json
from services.inbound_queue import ClaimedItem, Queued, QueueItem, claim, claim_user, enqueue, forget

log = logging.getLogger(__name__)

T = TypeVar("T")
# per channel: a bound on the table (the age bound below is the one that holds when the drain is slow)
MAX_ROWS = 20000
MAX_AGE = timedelta(minutes=5)  # an older oldest row: the drain is not keeping up, refuse new ones
LEASE = timedelta(minutes=2)  # a claimed row's turn and delivery take seconds; past this it is taken again
DRAIN_MAX_LAG = 0.1  # the drain takes rows only while the loop's lag stays under this (seconds)
BUSY_POLL = 0.1  # at most this long between looks for idle slots while rows wait (a finished row wakes it)
LIVE_SLOTS = 2  # admission slots the drain leaves to live turns (it takes the others only while they idle)
IDLE_POLL = 5.0  # seconds between looks for rows queued by another worker (or before a restart)
STOP_GRACE = 10.0  # shutdown waits this long for running rows; the rest keep their lease


def user_key(cipher: FieldCipher, channel: str, user_id: str) -> str:
    """A keyed digest of the sender: orders one user's rows without the table naming the user."""
    return cipher.digest(f"{channel}:{user_id}")


def inbound_to_json(inbound: Inbound) -> dict[str, Any]:
    location = inbound.location
    return {"channel": inbound.channel, "user_id": inbound.user_id, "text": inbound.text, "payload": inbound.payload,
            "event": inbound.event, "message_id": inbound.message_id, "language": inbound.language,
            "display_name": inbound.display_name, "conversation_id": inbound.conversation_id,
            "is_group": inbound.is_group,
            "location": None if location is None else [location.latitude, location.longitude, location.label]}


def inbound_from_json(data: dict[str, Any]) -> Inbound:
    location = data.pop("location", None)
    return Inbound(**data, location=None if location is None else Location(*location))


@dataclass(slots=True)
class _Waiting:
    """One request's row for the next write (a retry of the same message too: it joins in ``enqueue``)."""
    item: QueueItem
    check: Any  # for ``precheck`` (None: nothing to check)


# ``precheck``: written in the queue's write (its write slot and connection, before the rows), one verdict per
# check in order; False refuses that request (``REFUSED``, not kept). WeChat: the replay guard's nonces
Precheck = Callable[[AsyncConnection, list[Any]], Awaitable[list[bool]]]


class Inbox(Generic[T]):
    def __init__(self, *, channel: str, database: AsyncEngine, cipher: FieldCipher,
                 admission: Callable[[], Admission], run: Callable[[Inbound], Awaitable[T]],
                 finish: Callable[[ClaimedItem, Inbound, T], Awaitable[None]],
                 clock: Callable[[], datetime],
                 write_slot: Callable[[], contextlib.AbstractAsyncContextManager[None]] = contextlib.nullcontext,
                 precheck: Precheck | None = None, metrics: Metrics | None = None, max_rows: int = MAX_ROWS,
                 max_age: timedelta = MAX_AGE, lease: timedelta = LEASE, slots: int | None = None, max_lag: float = DRAIN_MAX_LAG,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.channel = channel
        self.database = database  # connections, not sessions: the rows are never ORM objects
        self.cipher = cipher
        self.admission = admission  # read at each use: the channel (or a test) may replace its admission
        self.run_turn = run
        self.finish = finish
        self.clock = clock
        self.write_slot = write_slot
        self.precheck = precheck
        self.metrics = metrics
        self.max_rows = max_rows
        self.max_age = max_age
        self.lease = lease
        self.slots = slots  # None: admission's slots but LIVE_SLOTS (at least one)
        self.max_lag = max_lag
        self.monotonic = monotonic
        # this process's rows not yet handled: a retry joins without the database, a user's next message
        # queues behind them (rows another worker takes are forgotten after max_age + lease)
        self._local: dict[str, tuple[str, float]] = {}
        self._local_users: Counter[str] = Counter()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()  # the drain looks for rows again
        self._changed = asyncio.Event()  # a row was handled or a write ended (``wait_idle``)
        # the request path's writes; the slot read at each write (the channel, or a test, may replace it)
        self._commits: GroupCommit[_Waiting, Queued] = GroupCommit(
            self._write_batch, slot=lambda: self.write_slot(), settled=self._changed.set,
            name=f"{channel}-inbox-writer")
        self._maybe_rows = True  # at start: rows left by a previous process
        self._drain: asyncio.Task[None] | None = None
        self._forgetting: set[asyncio.Task[None]] = set()  # deletes of rows answered ahead (``forget_later``)

    # ---- queueing (the request path) --------------------------------------------------------------
    def holds(self, message_key: str) -> bool:
        """The message is queued here already (its retry gets `success` and joins it)."""
        return message_key in self._local

    def holds_user(self, user_id: str) -> bool:
        """A message of this user is queued here: the next one queues behind it (the order of a dialog)."""
        return bool(self._local_users) and self._local_users[user_key(self.cipher, self.channel, user_id)] > 0

    def queued_of(self, user_id: str) -> int:
        """How many of this user's messages this process has queued (and not yet handled)."""
        if not self._local_users:
            return 0
        return self._local_users[user_key(self.cipher, self.channel, user_id)]

    async def take_user(self, user_id: str, *, limit: int) -> list[tuple[ClaimedItem, Inbound]] | None:
        """The user's queued rows, oldest first, leased to the caller to run ahead of their new message (then
        ``untake`` them); None when that would break their order (``services.inbound_queue.claim_user``)."""
        async with self.write_slot(), self.database.connect() as connection:
            items = await claim_user(connection, channel=self.channel,
                                     user_key=user_key(self.cipher, self.channel, user_id), now=self.clock(),
                                     lease=self.lease, limit=limit)
        if items is None:
            return None
        taken: list[tuple[ClaimedItem, Inbound]] = []
        for item in items:
            try:
                taken.append((item, inbound_from_json(open_json(self.cipher, item.payload))))
            except Exception:  # e.g. sealed under another key: it can never run
                log.error("%s: queued message %s cannot be read; dropped", self.channel, item.id)
                await self._forget(item.id)
                self._unlocal(item.message_key)
        return taken

    def untake(self, items: list[tuple[ClaimedItem, Inbound]], *, handled: bool) -> None:
        """Rows taken with ``take_user`` are no longer this process's to wait for; ``handled``: their turns ran
        (their rows go with the reply's outbox row, or ``forget_later``), else they stay leased and run again."""
        for item, _inbound in items:
            self._unlocal(item.message_key)
        if handled and items and self.metrics is not None:
            self.metrics.inbound.labels(self.channel, "handled").inc(len(items))
            self.metrics.inbound.labels(self.channel, "ahead").inc(len(items))
        self._maybe_rows = True
        self._wake.set()
        self._changed.set()

    def forget_later(self, ids: list[int]) -> None:
        """Deletes rows whose replies went out passively, without holding up that reply: if the process dies
        first, the rows run again as repeats and their stored replies follow as a customer-service message."""
        task = asyncio.create_task(self._forget_quietly(ids), name=f"{self.channel}-inbox-forget")
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)  # also when cancelled before it ran

    async def _forget_quietly(self, ids: list[int]) -> None:
        try:
            async with self.write_slot(), self.database.connect() as connection:
                await forget(connection, ids=ids)
        except Exception:
            log.exception("%s: answered queued messages %s not deleted; they run again after their lease",
                          self.channel, ids)
        finally:
            current = asyncio.current_task()
            if current is not None:
                self._forgetting.discard(current)  # before the wake-up: ``wait_idle`` must see it gone
            self._changed.set()

    async def put(self, inbound: Inbound, *, check: Any = None) -> Queued:
        """Keeps the message (committed when this returns ``QUEUED`` or ``JOINED``), or ``FULL``. ``check``:
        written by ``precheck`` in the same write (on SQLite one wait for the writer, not two); ``REFUSED``
        when it fails. A retry the process holds already joins at once (its check was written before)."""
        key = inbound.message_id or f"noid-{uuid.uuid4().hex}"  # no id: nothing can join it anyway
        if key in self._local and check is None:
            return Queued.JOINED
        item = QueueItem(key, user_key(self.cipher, self.channel, inbound.user_id),
                         seal_json(self.cipher, inbound_to_json(inbound)))
        outcome = await self._commits.submit(_Waiting(item, check))
        if self.metrics is not None and outcome is not Queued.REFUSED:  # a refused one is the channel's to count
            self.metrics.inbound.labels(self.channel, outcome.value).inc()
        return outcome

    async def _write_batch(self, batch: list[_Waiting]) -> list[Queued | Exception]:
        """One write for the batch (``GroupCommit``): the checks first, then the rows of the requests that passed."""
        refused: set[int] = set()  # places in the batch
        try:
            async with self.database.connect() as connection:
                refused = await self._refused(connection, batch)
                kept = [waiting for place, waiting in enumerate(batch) if place not in refused]
                outcomes = await enqueue(connection, channel=self.channel, items=[waiting.item for waiting in kept],
                                         now=self.clock(), max_rows=self.max_rows,
                                         max_age=self.max_age) if kept else {}
        except Exception as exc:
            if not refused:
                raise  # every request of the batch fails, as its own write would have
            # the refused ones were answered by their checks, written before the rows failed: they stay refused
            return [Queued.REFUSED if place in refused else exc for place in range(len(batch))]
        now = self.monotonic()
        answers: list[Queued | Exception] = []
        for place, waiting in enumerate(batch):
            if place in refused:
                answers.append(Queued.REFUSED)
                continue
            key = waiting.item.message_key
            outcome = outcomes.get(key[:160], Queued.JOINED)
            if outcome is Queued.QUEUED and key not in self._local:  # a retry in the batch: once
                self._local[key] = (waiting.item.user_key, now)
                self._local_users[waiting.item.user_key] += 1
            answers.append(outcome)
        if any(outcome is Queued.QUEUED for outcome in outcomes.values()):
            self._maybe_rows = True
            self._wake.set()
        return answers

    async def _refused(self, connection: AsyncConnection, batch: list[_Waiting]) -> set[int]:
        """The places of the requests whose checks fail (written first, same slot): answered ``REFUSED``."""
        checked = [place for place, waiting in enumerate(batch) if waiting.check is not None]
        if not checked or self.precheck is None:
            return set()
        verdicts = await self.precheck(connection, [batch[place].check for place in checked])
        return {place for place, passed in zip(checked, verdicts, strict=True) if not passed}

    # ---- draining (background) ---------------------------------------------------------------------
    def start(self) -> None:
        if self._drain is None:
            self._drain = asyncio.create_task(self._run(), name=f"{self.channel}-inbox-drain")

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stops taking rows and waits ``grace`` seconds for the running ones; the rest finish in admission's
        drain or keep their lease (taken again after a restart)."""
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
            self._drain = None
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=grace)
        # what was not taken stays in the table for the next start (or another worker): no longer ours to wait for
        self._local.clear()
        self._local_users.clear()
        self._changed.set()

    def _free_slots(self) -> int:
        admission = self.admission()
        slots = self.slots if self.slots is not None else max(1, admission.concurrency - LIVE_SLOTS)
        return min(slots - len(self._running), admission.idle_slots(self.max_lag))

    async def _run(self) -> None:
        while True:
            if not self._maybe_rows:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL)
                self._wake.clear()
                self._maybe_rows = True
                continue
            free = self._free_slots()
            if free <= 0:  # woken by a finished row of ours; admission's own slots are looked at again soon
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), BUSY_POLL)
                self._wake.clear()
                continue
            try:
                async with self.write_slot(), self.database.connect() as connection:
                    items = await claim(connection, channel=self.channel, now=self.clock(), lease=self.lease,
                                        limit=free)
            except Exception:
                log.exception("%s: could not take queued messages; trying again in %.0f s", self.channel, IDLE_POLL)
                self._maybe_rows = False
                continue
            if not items:
                self._maybe_rows = False  # until a new row, a finished row (its user's next) or the poll
                continue
            self._forget_stale()
            for item in items:
                self._running[item.id] = asyncio.create_task(self._handle(item), name=f"{self.channel}-queued-{item.id}")

    async def _handle(self, item: ClaimedItem) -> None:
        try:
            try:
                inbound = inbound_from_json(open_json(self.cipher, item.payload))
            except Exception:  # e.g. sealed under another key: it can never run
                log.error("%s: queued message %s cannot be read; dropped", self.channel, item.id)
                await self._forget(item.id)
                return
            admission = self.admission()
            job: Job[T] | None = admission.job(item.message_key)
            if job is not None:  # the same message is being handled live: its reply comes from there
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await job.task
                await self._forget(item.id)
                return
            job = admission.submit(item.message_key, lambda: self.run_turn(inbound), late=True,
                                   finish_late=_nothing, background=True)
            try:
                result = await job.task
                await self.finish(item, inbound, result)
            except Exception:  # the row stays leased: taken again after the lease (the core dedupes the turn)
                log.exception("%s: queued message %s failed; taken again after its lease", self.channel, item.id)
                return
            if self.metrics is not None:
                self.metrics.inbound.labels(self.channel, "handled").inc()
        finally:
            self._running.pop(item.id, None)
            self._unlocal(item.message_key)
            self._maybe_rows = True
            self._wake.set()
            self._changed.set()

    async def _forget(self, row_id: int) -> None:
        async with self.write_slot(), self.database.connect() as connection:
            await forget(connection, ids=[row_id])

    async def forget(self, row_id: int) -> None:
        """The channel's ``finish`` had nothing to deliver: the row goes."""
        await self._forget(row_id)

    def _unlocal(self, key: str) -> None:
        local = self._local.pop(key, None)
        if local is not None:
            self._local_users[local[0]] -= 1
            if self._local_users[local[0]] <= 0:
                del self._local_users[local[0]]

    def _forget_stale(self) -> None:
        """Rows of this process that another worker took (or that failed) are not ours to wait for."""
        horizon = self.monotonic() - (self.max_age + self.lease).total_seconds()
        for key in [key for key, (_, since) in self._local.items() if since < horizon]:
            self._unlocal(key)

    async def wait_idle(self) -> None:
        """Until every row this process queued has been handled (tests); with the drain stopped, until the
        writes and running rows have ended."""
        while self._running or self._commits.pending or self._forgetting or (self._local and self._drain is not None):
            self._changed.clear()
            await self._changed.wait()


async def _nothing(_result: Any) -> None:
    """A background job's result is delivered by the inbox's ``finish``, after the slot."""
