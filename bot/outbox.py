"""The outbox drain loop: due ``delivery`` rows of one channel → that channel's ``ChannelSender``.

Guarantees:
- a row is handed to the sender at most once. Rows are claimed (status ``claimed``) in small batches
  ahead of time, with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, and only one drainer per channel runs
  in a deployment (``bot.locks``). Each row is marked ``sending`` (committed) at the moment it is
  handed to the sender. After a crash, ``claimed`` rows go back to ``pending`` (they were never sent)
  and a row still ``sending`` has an unknown outcome: it is marked failed, not resent (a duplicate is
  worse than a gap, and the error says what happened). Those are the rows due within ~20 ms plus one
  write's time of the crash (rows are marked that far ahead of their slots, many per write) and the
  rows whose answer was not recorded yet (recorded with the next mark).
- the channel's rate (``rate_per_second``) and per-recipient spacing (``per_chat_interval``) are kept;
  a ``retry`` with ``pause_all`` (Telegram 429) pauses every send of the channel; other retries back
  off exponentially per row; ``blocked`` marks the identity inactive; ``failed`` never retries;
  ``held`` rows wait for the user's next message.
- quiet hours (default 21:30–08:00 local time): only urgent rows go out; the rest wait until morning.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from bot.outbox_options import Claimed, DrainStats, first_of, wait_or_stop
from bot.outbox_options import DrainOptions as DrainOptions
from bot.outbox_options import QuietHours as QuietHours
from bot.sender import ChannelSender, OutboundMessage, SendResult, lateness_credit, paced_start
from common.i18n import from_json, render
from models import Delivery, Identity, utcnow
from models.db import SessionFactory
from services.notify import notice_choices

log = logging.getLogger(__name__)

CLAIMED = "claimed"
SENDING = "sending"
UNKNOWN_OUTCOME = "outcome unknown: the sender stopped while sending; not resent to avoid a duplicate"
SEND_TIMEOUT = 60.0
MARK_WINDOW = 0.02  # rows are marked ``sending`` this long before their slot (plus one write's time)
MAX_MARK_AHEAD = 0.5  # seconds: a slow write never makes a mark reach further ahead than this


# the two statements of every mark write, built once: SQLAlchemy then reuses their cache key and
# compiled form instead of building and keying a new statement per write (the ids are one expanding
# parameter)
_DELIVERY = Delivery.__table__
_MARK_SENDING = (sa.update(_DELIVERY)
                 .where(_DELIVERY.c.id.in_(sa.bindparam("ids", expanding=True)), _DELIVERY.c.status == CLAIMED)
                 .values(status=SENDING).returning(_DELIVERY.c.id))
_RECORD_SENT = (sa.update(_DELIVERY)
                .where(_DELIVERY.c.id.in_(sa.bindparam("ids", expanding=True)),
                       _DELIVERY.c.status.in_((CLAIMED, SENDING)))
                .values(status="sent", sent_at=sa.bindparam("now", type_=_DELIVERY.c.sent_at.type), last_error=None,
                        claimed_at=None))

Result = tuple[Claimed, SendResult, bool]  # the row, what happened, whether the sender was called


class OutboxDrainer:
    def __init__(self, sessions: SessionFactory, sender: ChannelSender, *, options: DrainOptions | None = None,
                 clock: Callable[[], datetime] = utcnow, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.sessions = sessions
        # the drainer's statements are Core only: a plain connection per transaction, no ORM session
        self._engine: AsyncEngine = sessions.kw["bind"]
        self.sender = sender
        self.channel = sender.channel
        self.options = options or DrainOptions()
        self.clock = clock
        self.monotonic = monotonic
        self.stats = DrainStats()
        self._paused_until = 0.0
        self._next_slot = 0.0
        self._interval = 1.0 / sender.rate_per_second
        self._credit = lateness_credit(sender.rate_per_second)
        self._next_for_chat: dict[str, float] = {}
        self.in_flight = 0  # rows handed to the sender whose answer is not in yet (metrics)
        # After a start or a 429 pause, one send goes alone and the rest wait for its answer: a platform
        # still limiting us answers one call, not a burst that is already on the wire (None = next send probes)
        self._probe: asyncio.Event | None = None
        self._sending_to: dict[str, list[asyncio.Future[None]]] = {}  # recipients with a send in flight → waiters
        self._blocked: set[str] = set()  # recipients who refused a send (403): their later rows are not tried
        self._outstanding: list[asyncio.Task[Result]] = []  # sends whose answer is not recorded yet
        self._unrecorded: list[Result] = []  # answers taken out but not written (a write failed)
        # one drainer transaction at a time: on SQLite a second writer would wait in SQLite's busy handler,
        # which sleeps in steps of up to 100 ms, while a waiter here resumes as soon as the first commits
        self._writing = asyncio.Lock()
        # the sending pipeline (``_mark_ahead`` → ``_pace``): claimed rows by slot, not yet ``sending``;
        # rows marked (or not: the set says) waiting for their slot; how long the last mark write took
        self._unmarked: list[tuple[float, int, Claimed]] = []
        self._order = itertools.count()
        self._ready: deque[tuple[float, Claimed, set[int]]] = deque()
        self._mark_seconds = 0.0
        self._rows_added = asyncio.Event()
        self._rows_marked = asyncio.Event()
        self._room = asyncio.Event()  # the pipeline holds less than a batch: claim the next one
        self._closing = False

    # ---- pacing -----------------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        return max(1, min(self.options.max_batch, int(self.sender.rate_per_second * self.options.claim_window)))

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - self.monotonic())

    def _slot(self, external_id: str, now: float) -> float:
        """The next sending slot: one per 1/rate, and per recipient one per ``per_chat_interval``.
        The global schedule may lag ``now`` by up to a small credit (``lateness_credit``): a batch that
        started a few ms late catches up instead of pushing every later slot back for good."""
        start = max(paced_start(self._next_slot, now, self._interval, self._credit),
                    self._next_for_chat.get(external_id, 0.0))
        self._next_slot = start + self._interval
        if self.sender.per_chat_interval > 0:
            self._next_for_chat[external_id] = max(start, now) + self.sender.per_chat_interval
            if len(self._next_for_chat) > 20_000:
                self._next_for_chat = {k: v for k, v in self._next_for_chat.items() if v > now}
        return start

    # ---- database steps ---------------------------------------------------------------------
    async def recover_unknown(self) -> int:
        """After a drainer died (call under the lock): ``claimed`` rows were never handed to the sender
        and go back to ``pending``; rows left ``sending`` are failed with an explanation."""
        async with self._engine.begin() as conn:
            table = Delivery.__table__
            await conn.execute(
                sa.update(table).where(table.c.channel == self.channel, table.c.status == CLAIMED)
                .values(status="pending", claimed_at=None, attempts=table.c.attempts - 1)
            )
            result = await conn.execute(
                sa.update(table).where(table.c.channel == self.channel, table.c.status == SENDING)
                .values(status="failed", last_error=UNKNOWN_OUTCOME, claimed_at=None)
            )
        count = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if count:
            log.warning("%s outbox: %d row(s) were being sent when the last sender stopped; marked failed",
                        self.channel, count)
        self.stats.recovered_unknown += count
        return count

    async def _claim(self, conn: AsyncConnection, limit: int, *, only_id: int | None = None) -> list[Claimed]:
        now = self.clock()
        table = Delivery.__table__
        due = [table.c.status == "pending", table.c.channel == self.channel]
        if only_id is not None:  # one row, now (``send_now``): neither its due time nor quiet hours apply
            due.append(table.c.id == only_id)
        else:
            due.append(table.c.due_at <= now)
            if self.options.quiet is not None and self.options.quiet.active(now):
                due.append(table.c.urgent == sa.true())
        ids = (sa.select(table.c.id).where(*due).order_by(table.c.due_at, table.c.id).limit(limit)
               .with_for_update(skip_locked=True))
        claimed = await conn.execute(
            sa.update(table).where(table.c.id.in_(ids.scalar_subquery()))
            .values(status=CLAIMED, claimed_at=now, attempts=table.c.attempts + 1)
            .returning(table.c.id)
        )
        claimed_ids = [row[0] for row in claimed]
        if not claimed_ids:
            return []
        # message and choices as their JSON text: a broadcast's rows share both, so each distinct one is
        # decoded and rendered once per batch and language, not once per row
        rows = await conn.execute(
            sa.select(col(Delivery.id), col(Delivery.identity_id), col(Identity.external_id), col(Delivery.text),
                      sa.cast(col(Delivery.choices), sa.Text), col(Delivery.attempts),
                      col(Identity.last_inbound_at), sa.cast(col(Delivery.message), sa.Text), col(Identity.language))
            .join(Identity, col(Identity.id) == col(Delivery.identity_id))
            .where(col(Delivery.id).in_(claimed_ids))
            .order_by(col(Delivery.due_at), col(Delivery.id))
        )
        texts: dict[tuple[str, str | None], str] = {}
        choice_lists: dict[tuple[str | None, str | None], list[dict[str, str]]] = {}
        claimed_rows: list[Claimed] = []
        for row_id, identity_id, external_id, text, choices, attempts, last_inbound_at, message, language in rows:
            if message is not None and message != "null":  # a notice stored as a message id: rendered now,
                key = (message, language)                  # in the recipient's current language
                if (rendered := texts.get(key)) is None:
                    rendered = texts[key] = render(from_json(json.loads(message)), language)
                text = rendered
            if (labels := choice_lists.get((choices, language))) is None:
                labels = choice_lists[choices, language] = notice_choices(json.loads(choices or "[]") or [], language)
            claimed_rows.append(Claimed(row_id, identity_id, external_id, text, labels, attempts, last_inbound_at))
        return claimed_rows

    async def _record(self, conn: AsyncConnection, results: list[Result]) -> None:
        now = self.clock()
        table = Delivery.__table__
        mine = [table.c.status.in_((CLAIMED, SENDING))]
        sent_ids = [row.id for row, result, _ in results if result.outcome == "sent"]
        if sent_ids:
            await conn.execute(_RECORD_SENT, {"ids": sent_ids, "now": now})
            self.stats.sent += len(sent_ids)
        for row, result, attempted in results:
            outcome = result.outcome
            self.stats.outcomes[outcome] = self.stats.outcomes.get(outcome, 0) + 1
            error = (result.error or outcome)[:500]
            values: dict[str, object]
            if outcome == "sent":
                continue
            if outcome == "retry":
                attempts = row.attempts
                if result.pause_all or not attempted:
                    attempts -= 1  # the channel was paused: not this row's failure
                if attempts >= self.options.max_attempts:
                    values = {"status": "failed", "last_error": f"gave up after {attempts} attempts: {error}"[:500]}
                    self.stats.failed += 1
                else:
                    backoff = min(self.options.max_backoff, self.options.base_backoff * 2 ** max(attempts - 1, 0))
                    if result.pause_all:
                        # due when the channel's pause ends (its end is known here; ``retry_after`` was
                        # read when the answer came, and the write may come a while later)
                        delay = self.paused_for
                    else:
                        delay = max(result.retry_after or 0.0, backoff)
                    values = {"status": "pending", "attempts": attempts, "last_error": error,
                              "due_at": now + timedelta(seconds=delay or 0.0)}
                    self.stats.retried += 1
            elif outcome == "held":
                values = {"status": "held", "last_error": error}
                self.stats.held += 1
            elif outcome == "blocked":
                values = {"status": "failed", "last_error": f"blocked: {error}"[:500]}
                self.stats.blocked += 1
                await conn.execute(sa.update(Identity.__table__).where(Identity.__table__.c.id == row.identity_id)
                                      .values(active=False))
                # the rest of this recipient's queue would only be refused again
                await conn.execute(
                    sa.update(table).where(table.c.identity_id == row.identity_id, table.c.status == "pending")
                    .values(status="failed", last_error="recipient blocked the bot / unfollowed"))
            else:
                values = {"status": "failed", "last_error": error}
                self.stats.failed += 1
            await conn.execute(sa.update(table).where(table.c.id == row.id, *mine)
                                  .values(claimed_at=None, **values))

    # ---- sending ----------------------------------------------------------------------------
    async def _send_one(self, row: Claimed, marked: set[int]) -> Result:
        """Started at the row's slot (``_pace`` paces, not each send: one timer per wake-up instead
        of one sleeping task per row)."""
        if self._probe is not None and not self._probe.is_set():
            await self._probe.wait()
        while row.external_id in self._sending_to:  # one send per recipient at a time: its answer may be 403
            waiter = asyncio.get_running_loop().create_future()
            self._sending_to[row.external_id].append(waiter)
            await waiter
        if row.external_id in self._blocked:
            return row, SendResult("blocked", error="recipient blocked the bot (an earlier send was refused)"), False
        if self.paused_for > 0:
            return row, SendResult("retry", retry_after=self.paused_for, pause_all=True, error="channel paused"), False
        if row.id not in marked:
            return row, SendResult("retry", error="row was taken back before sending"), False
        message = OutboundMessage(
            delivery_id=row.id, channel=self.channel, external_id=row.external_id, text=row.text,
            choices=row.choices,
            last_inbound_at_ts=row.last_inbound_at.timestamp() if row.last_inbound_at else None,
        )
        self.stats.handed += 1
        self.in_flight += 1
        self._sending_to[row.external_id] = []
        probe = None
        if self._probe is None:  # the first send after a start or a pause goes alone (see __init__)
            probe = self._probe = asyncio.Event()
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                result = await self.sender.send(message)
        except Exception as exc:  # a sender bug or a hung call must not stop the channel
            log.exception("%s sender raised on delivery %s", self.channel, row.id)
            result = SendResult("retry", error=f"{exc.__class__.__name__}: {exc}"[:500])
        finally:
            self.in_flight -= 1
            if probe is not None:
                probe.set()
            for waiter in self._sending_to.pop(row.external_id):
                waiter.set_result(None)
        if result.outcome == "blocked":
            if len(self._blocked) > 10_000:
                self._blocked.clear()
            self._blocked.add(row.external_id)
        if result.outcome == "retry" and result.pause_all:
            self._probe = None
            seconds = result.retry_after or 1.0
            if self.monotonic() + seconds > self._paused_until:
                self.stats.pauses += 1
                log.warning("%s: pausing every send for %.1fs (%s)", self.channel, seconds, result.error)
            self._paused_until = max(self._paused_until, self.monotonic() + seconds)
        return row, result, True

    def _take_done(self) -> list[Result]:
        """Answers that are in, taken out of the outstanding sends (to be recorded once)."""
        done = [task for task in self._outstanding if task.done()]
        if not done:
            return []
        self._outstanding = [task for task in self._outstanding if not task.done()]
        return [task.result() for task in done]

    async def _mark_sending(self, ids: list[int]) -> set[int]:
        """Committed just before the platform calls: after a crash these rows are known to be in doubt.
        The answers that came in since the last write are recorded in the same transaction, so a row
        stays ``sending`` only until the next window is marked (one commit per window, not two)."""
        results = self._take_done() + self._unrecorded
        self._unrecorded = []
        try:
            async with self._writing, self._engine.begin() as conn:
                if results:
                    await self._record(conn, results)
                marked = {row[0] for row in await conn.execute(_MARK_SENDING, {"ids": ids})}
        except Exception:
            self._unrecorded = results + self._unrecorded  # recorded on the next write that works
            raise
        return marked

    def _enqueue(self, rows: list[Claimed]) -> None:
        """Claimed rows into the pipeline, each with its sending slot (``_slot``)."""
        now = self.monotonic()
        for row in rows:
            heapq.heappush(self._unmarked, (self._slot(row.external_id, now), next(self._order), row))
        self._rows_added.set()

    def _in_hand(self) -> int:
        return len(self._unmarked) + len(self._ready)

    async def _mark_ahead(self) -> None:
        """Mark rows ``sending`` shortly before their slots, many rows per write: every row whose slot
        comes within ``MARK_WINDOW`` plus the time the last write took. A write takes a few ms on an idle
        machine and tens of ms on a busy one; a fixed window per write would then fall behind the slots
        (at 1,000/s a 20 ms window needs 50 writes a second), while this one covers what the next write
        will need, so the rows in doubt after a crash stay those of about one write's time."""
        while True:
            if not self._unmarked:
                if self._closing:
                    return
                self._rows_added.clear()
                await self._rows_added.wait()
                continue
            wait = self._unmarked[0][0] - MARK_WINDOW - self.monotonic()
            if wait > 0:  # a newer row may come due earlier (a recipient's interval delays some)
                self._rows_added.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._rows_added.wait(), wait)
                continue
            horizon = self.monotonic() + MARK_WINDOW + min(self._mark_seconds, MAX_MARK_AHEAD)
            chunk: list[tuple[float, Claimed]] = []
            while self._unmarked and (not chunk or self._unmarked[0][0] <= horizon):
                slot, _, row = heapq.heappop(self._unmarked)
                chunk.append((slot, row))
            if self._in_hand() < self.batch_size:
                self._room.set()
            marked: set[int] = set()
            if self.paused_for <= 0:
                started = self.monotonic()
                try:
                    marked = await self._mark_sending([row.id for _, row in chunk])
                except Exception:
                    # the database went away: these rows stay ``claimed`` and answer "not sent"
                    log.exception("%s outbox: marking rows sending failed", self.channel)
                self._mark_seconds = self.monotonic() - started
            self._ready.extend((slot, row, marked) for slot, row in chunk)
            self._rows_marked.set()

    async def _pace(self, marker: asyncio.Task[None]) -> None:
        """Start each marked row's send at its slot: one timer per wake-up, not one sleeping task per
        row (a timer fires about a millisecond late, which at 1,000/s is a row: the rows whose slots
        passed meanwhile start together, none before its slot)."""
        while True:
            if not self._ready:
                if marker.done():
                    return
                self._rows_marked.clear()
                await first_of(self._rows_marked, marker)
                continue
            slot, row, marked = self._ready.popleft()
            wait = slot - self.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._outstanding.append(asyncio.create_task(self._send_one(row, marked)))
            if not self._ready and not self._unmarked:
                self._room.set()

    async def send_now(self, delivery_id: int) -> SendResult | None:
        """Send one pending row right away (e.g. a WeChat reply that missed the passive-reply deadline),
        with the same claim → ``sending`` → send → record steps as the drain loop, so the result
        handling (retry backoff, ``blocked`` → identity inactive, ``held``, ``failed``) is the same.
        None when the row is not pending any more (a drain loop took it first: it is sent once)."""
        async with self._engine.begin() as conn:
            rows = await self._claim(conn, 1, only_id=delivery_id)
        if not rows:
            return None
        async with self._engine.begin() as conn:
            table = Delivery.__table__
            marked = {row[0] for row in await conn.execute(sa.update(table).where(
                table.c.id == rows[0].id, table.c.status == CLAIMED).values(status=SENDING).returning(table.c.id))}
        result = await self._send_one(rows[0], marked)
        async with self._engine.begin() as conn:
            await self._record(conn, [result])
        return result[1]

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until ``stop`` is set; call ``recover_unknown`` first (under the channel lock)."""
        await self._drain(stop, until_idle=False)

    async def drain_until_idle(self, *, max_seconds: float = 60.0) -> DrainStats:
        """Send until no row is due (tests, ``outbox drain --until-empty``); waits out pauses."""
        await self._drain(None, until_idle=True, max_seconds=max_seconds)
        return self.stats

    async def pending_count(self) -> int:
        """Rows of this channel waiting to be sent (queue depth, for metrics; an index-only count)."""
        async with self._engine.begin() as conn:
            table = Delivery.__table__
            result = await conn.execute(sa.select(sa.func.count()).select_from(table)
                                    .where(table.c.status == "pending", table.c.channel == self.channel))
            return int(result.scalar_one())

    async def _drain(self, stop: asyncio.Event | None, *, until_idle: bool, max_seconds: float | None = None) -> None:
        """A pipeline: while the claimed rows are marked (``_mark_ahead``) and handed to the sender at
        their slots (``_pace``), the next batch is claimed once less than a batch is in hand, together
        with recording the answers that came in; nothing waits for the answers of the rows before.
        Only rows actually handed to the sender are ``sending``; the rest of a claimed batch goes back
        to ``pending`` after a crash."""
        deadline = None if max_seconds is None else self.monotonic() + max_seconds
        self._closing = False
        marker = asyncio.create_task(self._mark_ahead())
        pacer = asyncio.create_task(self._pace(marker))

        def stopping() -> bool:
            return (stop is not None and stop.is_set()) or (deadline is not None and self.monotonic() >= deadline)

        try:
            while not stopping():
                claim = self.paused_for <= 0 and self._in_hand() < self.batch_size
                results = self._take_done() + self._unrecorded
                self._unrecorded = []
                rows: list[Claimed] = []
                if claim or results:
                    try:
                        async with self._writing, self._engine.begin() as conn:
                            if results:
                                await self._record(conn, results)
                            if claim:
                                rows = await self._claim(conn, self.batch_size)
                    except Exception:
                        self._unrecorded = results + self._unrecorded
                        if until_idle:
                            raise
                        # the database went away: the answers in ``_unrecorded`` are recorded on the next try
                        log.exception("%s outbox drain failed; retrying in 5 s", self.channel)
                        await wait_or_stop(stop, 5.0)
                        continue
                if rows:
                    self._room.clear()
                    self._enqueue(rows)
                if self._in_hand():
                    if not rows or self._in_hand() >= self.batch_size:
                        # rows still to be sent: look again once the pipeline has room for a batch
                        self._room.clear()
                        await first_of(self._room, stop, pacer)
                elif self._outstanding:
                    await asyncio.wait(self._outstanding, return_when=asyncio.FIRST_COMPLETED)
                elif self._unrecorded:
                    continue  # record them before looking again
                elif self.paused_for > 0:
                    await wait_or_stop(stop, self.paused_for)
                elif until_idle:
                    break
                else:
                    await wait_or_stop(stop, self.options.idle_poll)
        finally:
            # the rows in hand are still sent (their answers recorded) before the drain returns
            self._closing = True
            self._rows_added.set()
            await asyncio.wait([marker, pacer])
            if self._outstanding:
                await asyncio.wait(self._outstanding)
            results = self._take_done() + self._unrecorded
            self._unrecorded = []
            if results:
                async with self._engine.begin() as conn:
                    await self._record(conn, results)

