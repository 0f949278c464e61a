"""WeChat official account (公众号) callback ``GET/POST /wechat`` (registry entry: ``plugin.py``).

Verifies and decrypts (``security``), converts XML to the core's neutral ``Inbound`` and its replies
to one passive text reply (``convert``), keeps what does not fit for "下一页" (``pages``), and times
out. Everything the user can do is decided by the core.

Deadline: WeChat waits 5 s and then retries. The core runs as a task; when it has not answered
within ``reply_deadline`` (4 s) we answer ``success`` and its replies follow as a customer-service
message through the outbox: a ``Delivery`` row, sent right away with the outbox's own one-row path
(``OutboxDrainer.send_now``: the same result handling as every other send); when that is not
possible now the row stays for the drain loop or is held for the user's next reply.

Overload: the deadline counts from the request's arrival, estimated from the event loop's lag
(``bot.admission``). A message admission would not run in time — or any message while the process is
overloaded (the loop lags, too many requests are open) — is answered `success` once it is kept in the
durable inbound queue (``bot.inbox``: one group-committed write per batch, no turn); a background
worker runs it when the process has room and its reply follows through the outbox. A retry of a queued
message joins it. Only past the queue's bound (rows, age) does the user get "please resend".
Customer-service messages are rationed (5 per user in 48 h): when a user with queued messages writes again
and all of them fit the deadline, they run first, in order, and the new message's passive reply carries
every reply (``_run_behind_queued``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from aiohttp import web
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.admission import Admission, Decision, Job, LoopLag, OpenRequest
from bot.channels.wechat.convert import CHANNEL, MALFORMED, parse, render_replies, text_reply_xml, to_inbound
from bot.channels.wechat.pages import ReplyPageStore, asks_next_page, paginate
from bot.channels.wechat.security import Rejected, ReplayGuard, Security
from bot.channels.wechat.sender import WeChatSender, wechat_sender
from bot.inbox import Inbox
from bot.outbox import OutboxDrainer
from bot.runtime import Runtime
from common.i18n import _, render
from handlers.engine import Handled
from handlers.messages import Inbound, Reply
from models import utcnow
from models.wechat import WeChatTemplateJob
from services.inbound_queue import ClaimedItem, Queued, forget_in
from services.outbox_rows import identity_by_external_id, queue_late_reply
from services.wechat_replay import SignedCallback, answered_late, claim_late_answer
from services.wechat_state import record_template_job

log = logging.getLogger(__name__)
V = TypeVar("V")

PATH = "/wechat"
MAX_BODY_BYTES = 64 * 1024
REPLY_DEADLINE_SECONDS = 4.0
# how long we remember that a message was answered late (a WeChat retry then gets `success`)
LATE_MEMORY_SECONDS = 60.0
LATE_WRITE_ATTEMPTS = 3  # a late reply's outbox row, written again when SQLite says "database is locked"
SUCCESS = "success"
# admission expects a turn in time when it should finish within this share of the deadline (the
# estimate is a moving mean; the rest of the request needs time too)
ADMISSION_SHARE = 0.8
# shutdown waits this long beyond the queue's longest wait for admitted turns to finish
SHUTDOWN_GRACE_SECONDS = 10.0
BUSY_TEXT = _("现在找我的人太多了，请过一分钟再发一次。")


# a user's queued messages run ahead of their new one (answered passively together) up to this many: more
# would not fit the deadline anyway, and a longer backlog is the drain's
RUN_AHEAD_MAX = 4


@dataclass(frozen=True, slots=True)
class _TurnAnswer:
    pages: list[str]
    repeat: bool  # the core had handled this message id before (a WeChat retry)
    inbox_ids: tuple[int, ...] = ()  # the inbound queue's rows whose replies these pages carry too


class WeChatChannel:
    def __init__(self, runtime: Runtime, *, reply_deadline: float = REPLY_DEADLINE_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.reply_deadline = reply_deadline
        self.clock = clock
        self.security = Security(runtime.settings, clock=lambda: self.clock())  # follows a replaced clock
        self.replay = ReplayGuard(runtime.db, clock=lambda: self.clock(), write_slot=runtime.core.write_slot)
        self.pages = ReplyPageStore(runtime.sessions, runtime.core.cipher)
        self.sender: WeChatSender | None = None
        self.outbox: OutboxDrainer | None = None  # sends late replies, one row at a time
        settings = runtime.settings
        # turns queue here, bounded; the ones expected past the deadline are answered at once
        self.admission = Admission(channel=CHANNEL, concurrency=settings.core_concurrency,
                                   max_wait=settings.admission_max_wait, loop_lag=LoopLag(),
                                   slots=runtime.turn_slots, metrics=runtime.metrics)
        self._answered_late: dict[str, float] = {}  # in the order answered (``_forget_old_late_answers``)
        # the passive first page of a message answered with its user's queued ones (``_run_behind_queued``): a
        # WeChat retry of it (the reply did not arrive) gets the same page, not only its own message's replies
        self._answered_ahead: dict[str, tuple[str, float]] = {}
        # messages acknowledged under overload, handled when the process has room (replies via the outbox)
        self.inbox: Inbox[_TurnAnswer] = Inbox(
            channel=CHANNEL, database=runtime.db, cipher=runtime.core.cipher, admission=lambda: self.admission,
            run=self._turn, finish=self._finish_queued, clock=runtime.core.clock,
            write_slot=runtime.core.write_slot, precheck=self._remember_signed, metrics=runtime.metrics)

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self, _app: web.Application) -> None:
        if self.admission.loop_lag is not None:
            self.admission.loop_lag.start()
        self.inbox.start()
        self.sender = wechat_sender(self.runtime)
        if self.sender is None:
            log.warning("WECHAT_APP_ID/WECHAT_APP_SECRET not set: late replies wait in the outbox")
            return
        # outbox times on the core's clock, as its notices are
        self.outbox = OutboxDrainer(self.runtime.sessions, self.sender, clock=self.runtime.core.clock)

    async def stop(self, _app: web.Application) -> None:
        # queued rows not started stay in the inbound queue for the next start; the running ones finish
        await self.inbox.stop()
        # every admitted message was acknowledged: let the queue finish its replies before closing
        await self.admission.drain(grace=self.admission.max_wait + SHUTDOWN_GRACE_SECONDS)
        if self.admission.loop_lag is not None:
            self.admission.loop_lag.stop()
        if self.sender is not None:
            await self.sender.close()

    # ---- HTTP -------------------------------------------------------------------------------
    async def handle_get(self, request: web.Request) -> web.Response:
        """URL verification: echo ``echostr`` verbatim when the signature is ours."""
        try:
            self.security.check_url_signature(request.query)
        except Rejected as exc:
            log.info("wechat GET rejected: %s", exc.reason)
            return web.Response(status=exc.status, text=exc.reason)
        return web.Response(text=request.query.get("echostr", ""), content_type="text/plain")

    async def _read_body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise Rejected(413, "body too large")
        chunks, size = [], 0
        while chunk := await request.content.read(64 * 1024):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise Rejected(413, "body too large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def handle_post(self, request: web.Request) -> web.Response:
        opened = self.admission.open_request()  # dated back by the loop's lag; counts open requests
        try:
            return await self._handle_post(request, opened)
        finally:
            opened.close()

    async def _handle_post(self, request: web.Request, opened: OpenRequest) -> web.Response:
        try:
            body = await self._read_body(request)
            xml, encrypted = self.security.plaintext(body, request.query)
            overloaded = self.admission.overloaded()  # then no database work for this request
            if not overloaded:
                await self.replay.check(request.query, body)
            try:
                message = parse(xml)
                converted = to_inbound(message)
            except MALFORMED as exc:
                raise Rejected(400, f"malformed message ({exc.__class__.__name__}: {str(exc)[:80]})") from None
        except Rejected as exc:
            level = logging.WARNING if exc.status == 400 else logging.INFO
            log.log(level, "wechat POST from %s rejected (%s): %s", request.remote, exc.status, exc.reason)
            return web.Response(status=exc.status, text=exc.reason)

        if converted.template_job is not None:
            await self._record_template_job(converted.template_job)
        if converted.inbound is None:
            return self._success()
        if overloaded:
            try:
                content = await self._answer_overloaded(converted.inbound, request.query, body, opened)
            except Rejected as exc:
                log.info("wechat POST from %s rejected (%s): %s", request.remote, exc.status, exc.reason)
                return web.Response(status=exc.status, text=exc.reason)
        else:
            content = await self._answer(converted.inbound, opened)
        if content is None:
            return self._success()
        xml_out = text_reply_xml(to_user=message.source, from_user=message.target, content=content,
                                 create_time=int(self.clock()))
        if encrypted:
            xml_out = self.security.encrypt(xml_out, request.query["nonce"])
        return web.Response(text=xml_out, content_type="application/xml")

    @staticmethod
    def _success() -> web.Response:
        return web.Response(text=SUCCESS, content_type="text/plain")

    # ---- core -------------------------------------------------------------------------------
    async def _answer(self, inbound: Inbound, opened: OpenRequest) -> str | None:
        """The passive reply text, or None for `success`."""
        if asks_next_page(inbound.text):
            try:  # a short read, but never one that waits past the deadline on a busy pool
                async with asyncio.timeout(max(self.admission.time_left(opened, self.reply_deadline), 0.0)):
                    page = await self.pages.take_next(inbound.user_id, inbound.message_id or "")
            except TimeoutError:
                return render(BUSY_TEXT, inbound.language)
            if page is not None:
                return page
        return await self._run_core(inbound, opened)

    async def _answer_overloaded(self, inbound: Inbound, query: Mapping[str, str], body: bytes,
                                 opened: OpenRequest) -> str | None:
        """No turn now: a retry of a message queued or running here gets `success` (its reply follows
        through the outbox), as does a message answered late; anything else is kept in the inbound queue
        (`success`) or, past its bound, "please resend". Never reply content: the turn runs later."""
        key = inbound.message_id or ""
        self._forget_old_late_answers()
        if key in self._answered_ahead:
            return self._answered_ahead[key][0]
        job = self.admission.job(key)
        if key in self._answered_late or self.inbox.holds(key) or (job is not None and self.admission.make_late(job)):
            return None
        # the queued message runs later as this user: its body must be the one the signature was given for.
        # The signed pair is written with the queue's row (one write, on SQLite one wait for the writer)
        return await self._queue(inbound, opened, signed=self.replay.signed(query, body))

    async def _remember_signed(self, connection: AsyncConnection, callbacks: list[SignedCallback]) -> list[bool]:
        """The inbox's precheck: the replay guard's pairs, written in the queue's write slot on its connection."""
        stored = await self.replay.write_on(connection, callbacks)
        return [stored.get(callback.nonce_key) == callback.body_digest for callback in callbacks]

    async def _queue(self, inbound: Inbound, opened: OpenRequest, *, signed: SignedCallback | None = None) -> str | None:
        """Keep the message for a background turn (`success`), or "please resend" past the queue's bound.

        The request stops counting as open (``overloaded``'s bound): it waits only for its batch's commit, a
        short write per batch, not for a turn — counted, requests waiting for the commit kept the process
        "overloaded" and sent every next message to the queue as well. ``signed``: the request's signed pair,
        not checked yet; written in the same write as the row, and a replay (another body) is refused (403)."""
        opened.close()
        outcome = await self.inbox.put(inbound, check=signed)
        if outcome is Queued.REFUSED:
            raise Rejected(403, "signature already used for another body (replay)")
        if outcome is Queued.FULL:
            self.admission.refused()
            return render(BUSY_TEXT, inbound.language)
        self.admission.acknowledged()
        return None

    async def _run_core(self, inbound: Inbound, opened: OpenRequest) -> str | None:
        """The first page of the core's reply, or None when it will not be ready by the deadline
        (answered `success`; the reply follows as a customer-service message).

        Deliveries of one message queued or running in this process join its job; the database
        dedupe in the core covers deliveries that reach other processes.
        """
        # this process's recent late answers here; every process's (and before a restart) in the database
        key = inbound.message_id or ""
        self._forget_old_late_answers()
        if key in self._answered_ahead:
            return self._answered_ahead[key][0]
        if key in self._answered_late or self.inbox.holds(key):
            return None
        job = self.admission.job(key)
        if job is None:
            if self.inbox.holds_user(inbound.user_id):  # the user's queued messages come first: a dialog keeps its order
                return await self._run_behind_queued(inbound, opened)
            decision = self.admission.decide(self.admission.time_left(opened, self.reply_deadline) * ADMISSION_SHARE)
            if decision is not Decision.NOW:  # not in time: later, without taking a slot from the live turns
                return await self._queue(inbound, opened)
            job = self.admission.submit(
                key, lambda: self._turn(inbound), late=False,
                finish_late=lambda answer: self._deliver_late(key, inbound.user_id, answer))
        answer = await self.admission.wait(job, self.admission.time_left(opened, self.reply_deadline))
        return answer.pages[0] if answer is not None and answer.pages else None

    async def _run_behind_queued(self, inbound: Inbound, opened: OpenRequest) -> str | None:
        """A new message of a user with queued messages. Customer-service messages are rationed (5 in 48 h):
        when all of them and the new one fit the deadline, they run now in one slot, in order, and the new
        message's passive reply carries every reply (one CS message instead of one per message if it runs
        late after all). Otherwise — a queued one is running already, the backlog is long, or no time —
        the new message queues behind them."""
        key = inbound.message_id or ""
        waiting = self.inbox.queued_of(inbound.user_id)
        budget = self.admission.time_left(opened, self.reply_deadline) * ADMISSION_SHARE
        if waiting > RUN_AHEAD_MAX or self.admission.decide(budget, turns=waiting + 1) is not Decision.NOW:
            return await self._queue(inbound, opened)
        taken = await self.inbox.take_user(inbound.user_id, limit=RUN_AHEAD_MAX)
        if taken is None:
            return await self._queue(inbound, opened)
        job: Job[_TurnAnswer] = self.admission.submit(
            key, lambda: self._turns(inbound, [queued for _item, queued in taken], [item.id for item, _ in taken]),
            late=False, finish_late=lambda answer: self._deliver_late(key, inbound.user_id, answer))

        def settled(_task: object) -> None:
            ran = not job.task.cancelled() and job.task.exception() is None
            if ran and not job.late and taken:  # answered passively: the rows go (late: with the outbox row)
                self.inbox.forget_later([item.id for item, _ in taken])
            self.inbox.untake(taken, handled=ran)  # failed: the rows stay leased and run again as repeats

        job.task.add_done_callback(settled)
        answer = await self.admission.wait(job, self.admission.time_left(opened, self.reply_deadline))
        if answer is None or not answer.pages:
            return None
        if key and taken:
            self._answered_ahead.pop(key, None)  # to the end: the dict stays in the order answered
            self._answered_ahead[key] = (answer.pages[0], time.monotonic())
        return answer.pages[0]

    async def _turn(self, inbound: Inbound) -> _TurnAnswer:
        """One admitted turn: the core, then its pages (the ones after the first kept for "下一页")."""
        return await self._turns(inbound, [], [])

    async def _turns(self, inbound: Inbound, ahead: list[Inbound], inbox_ids: list[int]) -> _TurnAnswer:
        """The user's queued messages ``ahead`` (rows ``inbox_ids``) and then ``inbound``, one turn after
        the other, and the pages of all their replies (the ones after the first kept for "下一页")."""
        replies: list[Reply] = []
        for queued in ahead:
            replies += (await self._core_turn(queued))[0]
        own, repeat = await self._core_turn(inbound)
        replies += own
        pages = paginate(render_replies(replies), lang=replies[-1].lang) if replies else []
        if len(pages) > 1:  # the core's turn already dropped what an earlier long reply left
            await self.pages.replace(inbound.user_id, pages[1:])
        return _TurnAnswer(pages, repeat=repeat, inbox_ids=tuple(inbox_ids))

    async def _core_turn(self, inbound: Inbound) -> tuple[list[Reply], bool]:
        """The core's replies to one message and whether it was a repeat; none for a retry of a message whose
        reply already followed as a customer-service message."""
        handled: Handled = await self.runtime.core.handle_delivery(inbound)
        if handled.repeat and await self._late_in_database(inbound.message_id or ""):
            return [], True
        return handled.replies, handled.repeat

    def _forget_old_late_answers(self) -> None:
        """Drops what is older than ``LATE_MEMORY_SECONDS``. The dicts are in the order answered, so only their
        expired front is looked at: under overload they hold thousands of keys, and a scan of all of them on
        every request cost the loop more than the request itself."""
        horizon = time.monotonic() - LATE_MEMORY_SECONDS
        _drop_front(self._answered_late, lambda at: at < horizon)
        _drop_front(self._answered_ahead, lambda page_at: page_at[1] < horizon)

    async def wait_idle(self) -> None:
        """Until every admitted turn and its late delivery, and every message queued here, has finished (tests)."""
        await self.inbox.wait_idle()
        await self.admission.wait_idle()

    # ---- late replies through the outbox ----------------------------------------------------
    async def _late_in_database(self, key: str) -> bool:
        async with self.runtime.sessions() as session:
            return await answered_late(session, message_key=key)

    async def _finish_queued(self, item: ClaimedItem, inbound: Inbound, answer: _TurnAnswer) -> None:
        """A queued message's turn ran: its reply through the outbox, the queue's row deleted with it."""
        await self._deliver_late(item.message_key, inbound.user_id, answer, inbox_ids=(item.id,))

    async def _deliver_late(self, key: str, openid: str, answer: _TurnAnswer, *, inbox_ids: tuple[int, ...] = ()) -> None:
        """An outbox row like any notice, sent now through the outbox's one-row path (inside the
        turn's admission slot, so late deliveries never outnumber the database pool); the message is
        marked answered late in the same commit (a retry after a restart gets `success`). ``inbox_ids``, and
        the answer's own: the inbound queue's rows it answers, deleted in that commit."""
        inbox_ids = inbox_ids + answer.inbox_ids
        self._answered_late.pop(key, None)  # to the end: the dict stays in the order answered
        self._answered_late[key] = time.monotonic()
        # a retry of a message answered passively is answered passively again when in time, but its
        # reply is never pushed as a customer-service message as well. A queued row's repeat is different:
        # the row was answered `success`, so its reply goes out only from here. A repeat with pages means
        # no customer-service message was written for it (``_turn`` finds the late answer of the one that
        # was and returns none): an earlier run committed the turn and died before its outbox row. The
        # stored replies go now; ``claim_late_answer`` keeps it to one message when two workers race.
        if not answer.pages or (answer.repeat and not inbox_ids):
            for inbox_id in inbox_ids:
                await self.inbox.forget(inbox_id)
            return
        now = self.runtime.core.clock()  # outbox times on the core's clock, as its notices are
        for attempt in range(1, LATE_WRITE_ATTEMPTS + 1):
            try:
                row_id = await self._queue_late(key, openid, answer.pages[0], now, inbox_ids=inbox_ids)
                break
            except OperationalError as error:
                # SQLite under load: the write slot keeps this process's turns out of the way, but another
                # writer (the outbox drain, another process) can still hold the lock past the busy timeout, or
                # win it from a transaction that read first ("database is locked"); the reply must not be lost
                if attempt == LATE_WRITE_ATTEMPTS or "locked" not in str(error):
                    raise
                log.warning("late reply: the database was locked, writing again (attempt %s)", attempt + 1)
                await asyncio.sleep(0.05 * attempt)
        if self.outbox is not None and row_id is not None:
            await self.outbox.send_now(row_id)

    async def _queue_late(self, key: str, openid: str, text: str, now: datetime, *,
                          inbox_ids: tuple[int, ...] = ()) -> int | None:
        """The outbox row of a late reply (None: no such identity, or another process answers it). In the
        core's write slot, as the channel's other writes next to the turns (on SQLite: queued with them).
        ``inbox_ids``: the inbound queue's rows the reply answers, deleted in the same commit."""
        async with self.runtime.core.write_slot(), self.runtime.sessions() as session:
            await forget_in(session, ids=inbox_ids)
            identity = await identity_by_external_id(session, channel=CHANNEL, external_id=openid)
            if identity is None or identity.id is None:
                await session.commit()  # the queue's row, if any: nobody to send to
                return None
            if key and not await claim_late_answer(session, message_key=key, now=now):
                if inbox_ids:  # the claim's rollback undid the rows' delete
                    await forget_in(session, ids=inbox_ids)
                    await session.commit()
                return None  # another process answers this message late
            row = await queue_late_reply(session, identity_id=identity.id, channel=CHANNEL, text=text, now=now)
            await session.commit()
            return row.id

    async def _record_template_job(self, job: WeChatTemplateJob) -> None:
        async with self.runtime.sessions() as session:
            await record_template_job(session, msg_id=job.msg_id, openid=job.openid, status=job.status,
                                      now=utcnow())


def _drop_front(memory: dict[str, V], expired: Callable[[V], bool]) -> None:
    """Deletes ``memory``'s leading entries while ``expired`` (a dict in insertion order, oldest first)."""
    for key in [key for key, _value in itertools.takewhile(lambda item: expired(item[1]), memory.items())]:
        del memory[key]


WECHAT_CHANNEL_KEY = web.AppKey("wechat_channel", WeChatChannel)


async def setup(app: web.Application, runtime: Runtime, *, reply_deadline: float = REPLY_DEADLINE_SECONDS,
                clock: Callable[[], float] = time.time) -> None:
    """Adds ``/wechat`` when ``WECHAT_TOKEN`` is set; otherwise the channel is off."""
    if not runtime.settings.wechat_enabled:
        return
    channel = WeChatChannel(runtime, reply_deadline=reply_deadline, clock=clock)
    app[WECHAT_CHANNEL_KEY] = channel
    app.router.add_get(PATH, channel.handle_get)
    app.router.add_post(PATH, channel.handle_post)
    app.on_startup.append(channel.start)
    app.on_cleanup.append(channel.stop)
