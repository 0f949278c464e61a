"""WeChat official account (公众号) callback: ``GET/POST /wechat``.

Converts WeChat XML into the core's neutral ``Inbound`` and the core's replies into one passive
text reply (plaintext, compatible or safe mode). Everything the user can do is decided by the core;
this module only verifies, decrypts, converts, paginates and times out.

Deadline: WeChat waits 5 s and then retries. The core runs as a task; when it has not answered
within ``reply_deadline`` (4 s) we answer ``success`` and send its replies afterwards as a
customer-service message through the outbox (a ``Delivery`` row, sent right away by the WeChat
sender; if that is not possible now, the row stays for the outbox drain loop or is held for the
user's next reply).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from xml.parsers.expat import ExpatError

from aiohttp import web
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from wechatpy import events as wx_events
from wechatpy import messages as wx_messages
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from bot.channels.render import render_text
from bot.channels.wechat_api import WeChatApiClient, token_store_for
from bot.channels.wechat_sender import WeChatSender
from bot.runtime import Runtime
from bot.sender import OutboundMessage, SendResult
from common.lang import detect_language, to_simplified
from handlers.messages import Inbound, Location, Reply
from models import Delivery, Identity, utcnow
from models.db import SessionFactory
from models.wechat import WeChatReplyPages, WeChatTemplateJob

log = logging.getLogger(__name__)

CHANNEL = "wechat"
MAX_BODY_BYTES = 64 * 1024
REPLAY_WINDOW_SECONDS = 300
REPLY_DEADLINE_SECONDS = 4.0
# WeChat cuts passive text replies at about 2048 bytes: stay strictly below
PASSIVE_LIMIT_BYTES = 2047
NEXT_PAGE_WORDS = frozenset({"下一页", "下一頁", "next", "next page"})
# a late reply's outbox row is due only after this grace, so a drain loop leaves it to us meanwhile
LATE_REPLY_GRACE = timedelta(minutes=2)
# how long we remember that a message was answered late (a WeChat retry then gets `success`)
LATE_MEMORY_SECONDS = 60.0
SUCCESS = "success"
# characters XML 1.0 cannot carry at all (a reply containing one would not parse)
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_DECLARATIONS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_MEDIA_MESSAGES = (wx_messages.ImageMessage, wx_messages.LinkMessage, wx_messages.VideoMessage,
                   wx_messages.ShortVideoMessage, wx_messages.MiniProgramPageMessage)


class Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ---- XML out ----------------------------------------------------------------------------------
def cdata_safe(text: str) -> str:
    """Text for a CDATA section: ``]]>`` split across two sections, XML-illegal characters dropped."""
    return _INVALID_XML_CHARS.sub("", text).replace("]]>", "]]]]><![CDATA[>")


def text_reply_xml(*, to_user: str, from_user: str, content: str, create_time: int) -> str:
    reply = TextReply(target=cdata_safe(to_user), source=cdata_safe(from_user), content=cdata_safe(content),
                      time=create_time)
    return reply.render()


def more_hint(text: str) -> str:
    """The "reply 下一页" line, in the language the reply is written in."""
    if not re.search(r"[\u4e00-\u9fff]", text):
        return '(Reply "next" for more)'
    if detect_language(text) == "zh-Hant":
        return "（回覆「下一頁」查看更多）"
    return "（回复「下一页」查看更多）"


def _split_bytes(line: str, budget: int) -> list[str]:
    pieces, current, size = [], [], 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > budget:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    pieces.append("".join(current))
    return pieces


def paginate(text: str, *, limit: int = PASSIVE_LIMIT_BYTES) -> list[str]:
    """Pages of at most ``limit`` UTF-8 bytes, cut at line ends where possible; all but the last
    end with a "reply 下一页" hint in the text's language."""
    text = _INVALID_XML_CHARS.sub("", text)
    if len(text.encode("utf-8")) <= limit:
        return [text]
    hint = "\n\n" + more_hint(text)
    budget = limit - len(hint.encode("utf-8"))
    pages: list[str] = []
    lines: list[str] = []
    size = -1  # bytes of "\n".join(lines)
    for line in text.split("\n"):
        for piece in _split_bytes(line, budget) if len(line.encode("utf-8")) > budget else [line]:
            width = len(piece.encode("utf-8")) + 1
            if lines and size + width > budget:
                pages.append("\n".join(lines).rstrip("\n"))
                lines, size = [], -1
            lines.append(piece)
            size += width
    if lines:
        pages.append("\n".join(lines).strip("\n"))
    pages = [page for page in pages if page.strip()] or [text[:1]]
    return [page + hint for page in pages[:-1]] + [pages[-1]]


def render_replies(replies: list[Reply]) -> str:
    return "\n\n".join(render_text(reply) for reply in replies)


# ---- XML in -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Converted:
    """What a WeChat message means: an inbound for the core, a template report, or nothing."""

    inbound: Inbound | None = None
    template_job: WeChatTemplateJob | None = None


def _scene_payload(scene: str | None) -> str | None:
    scene = (scene or "").strip()
    return f"start:{scene}" if scene else None


def to_inbound(message: wx_messages.BaseMessage) -> Converted:
    """wechatpy message → neutral inbound. Raises ValueError/TypeError on malformed field values."""
    openid = str(message.source or "")
    if not openid:
        raise ValueError("no FromUserName")
    if isinstance(message, wx_events.BaseEvent):
        key = f"{openid}:{message.time}:{message.event}"

        def event(name: str, **fields: object) -> Converted:
            return Converted(Inbound(channel=CHANNEL, user_id=openid, event=name, message_id=key, **fields))  # type: ignore[arg-type]

        if isinstance(message, wx_events.SubscribeScanEvent):
            return event("subscribe", payload=_scene_payload(message.scene_id))
        if isinstance(message, wx_events.SubscribeEvent):
            return event("subscribe")
        if isinstance(message, wx_events.ScanEvent):
            return event("scan", payload=_scene_payload(message.scene_id))
        if isinstance(message, wx_events.ClickEvent):
            return event("menu", payload=str(message.key or "").strip() or None)
        if isinstance(message, wx_events.LocationEvent):
            return event("location", location=Location(float(message.latitude), float(message.longitude)))
        if isinstance(message, wx_events.UnsubscribeEvent):
            return event("unsubscribe")
        if isinstance(message, wx_events.TemplateSendJobFinishEvent):
            return Converted(template_job=WeChatTemplateJob(msg_id=int(message.id), openid=openid,
                                                            status=str(message.status or "")[:64]))
        return Converted()  # VIEW, mass-send reports, popups…: acknowledged, nothing to do
    if isinstance(message, wx_messages.UnknownMessage):
        return Converted()
    message_id = str(int(message.id))
    base = {"channel": CHANNEL, "user_id": openid, "message_id": message_id}
    if isinstance(message, wx_messages.TextMessage):
        return Converted(Inbound(text=str(message.content or ""), **base))  # type: ignore[arg-type]
    if isinstance(message, wx_messages.VoiceMessage):
        # without speech recognition the core gets no text and asks for a text message
        return Converted(Inbound(text=(message.recognition or None), **base))  # type: ignore[arg-type]
    if isinstance(message, wx_messages.LocationMessage):
        location = Location(float(message.location_x), float(message.location_y), message.label or None)
        return Converted(Inbound(event="location", location=location, **base))  # type: ignore[arg-type]
    if isinstance(message, _MEDIA_MESSAGES):
        return Converted(Inbound(**base))  # type: ignore[arg-type]  # no text: the core asks for text
    return Converted()


# ---- pages waiting for "下一页" -----------------------------------------------------------------
class ReplyPageStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    async def replace(self, openid: str, pages: list[str]) -> None:
        """The pages after the one just sent; none → forget what an earlier long reply left."""
        async with self.sessions() as session:
            if not pages:
                # most replies fit one page: look before deleting, so they cost no write (SQLite's
                # single write lock is the bottleneck under load)
                if await session.get(WeChatReplyPages, openid) is not None:
                    await session.exec(delete(WeChatReplyPages).where(WeChatReplyPages.openid == openid))  # type: ignore[call-overload]
                    await session.commit()
                return
            row = await session.get(WeChatReplyPages, openid)
            if row is None:
                session.add(WeChatReplyPages(openid=openid, pages=pages, updated_at=utcnow()))
            else:
                row.pages, row.last_message_key, row.last_page = pages, None, None
                row.version += 1
                row.updated_at = utcnow()
                session.add(row)
            try:
                await session.commit()
            except IntegrityError:  # a concurrent first write for this user: take theirs over
                await session.rollback()
                await session.exec(update(WeChatReplyPages).where(WeChatReplyPages.openid == openid).values(  # type: ignore[call-overload]
                    pages=pages, last_message_key=None, last_page=None, version=WeChatReplyPages.version + 1,
                    updated_at=utcnow()))
                await session.commit()

    async def take_next(self, openid: str, message_key: str) -> str | None:
        """The next page; a retry of the same "下一页" message gets the same page again."""
        for _ in range(5):
            async with self.sessions() as session:
                row = await session.get(WeChatReplyPages, openid)
                if row is None:
                    return None
                if row.last_message_key == message_key:
                    return row.last_page
                if not row.pages:
                    return None
                page = row.pages[0]
                result = await session.exec(  # type: ignore[call-overload]
                    update(WeChatReplyPages)
                    .where(WeChatReplyPages.openid == openid, WeChatReplyPages.version == row.version)
                    .values(pages=row.pages[1:], last_message_key=message_key, last_page=page,
                            version=row.version + 1, updated_at=utcnow()))
                await session.commit()
                if result.rowcount == 1:
                    return page
        return None


# ---- the channel ------------------------------------------------------------------------------
@dataclass
class _CoreRun:
    task: asyncio.Task[list[Reply]]
    late: bool = False  # the passive-reply deadline passed: the replies follow as customer-service text


class WeChatChannel:
    def __init__(self, runtime: Runtime, *, reply_deadline: float = REPLY_DEADLINE_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.token = settings.wechat_token
        self.app_id = settings.wechat_app_id
        self.crypto = (WeChatCrypto(settings.wechat_token, settings.wechat_encoding_aes_key, settings.wechat_app_id)
                       if settings.wechat_encoding_aes_key else None)
        self.reply_deadline = reply_deadline
        self.clock = clock
        self.pages = ReplyPageStore(runtime.sessions)
        self.api: WeChatApiClient | None = None
        self.sender: WeChatSender | None = None
        self._runs: dict[str, _CoreRun] = {}
        self._answered_late: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()

    # ---- lifecycle ----------------------------------------------------------------------------
    async def start(self, _app: web.Application) -> None:
        settings = self.runtime.settings
        if settings.wechat_app_id and settings.wechat_app_secret:
            tokens = token_store_for(sessions=self.runtime.sessions, app_id=settings.wechat_app_id,
                                     redis_url=settings.redis_url)
            self.api = WeChatApiClient(app_id=settings.wechat_app_id, app_secret=settings.wechat_app_secret,
                                       tokens=tokens, api_base=settings.wechat_api_base,
                                       mp_base=settings.wechat_mp_base)
            # the 48 h window is measured on the core's clock, which stamped last_inbound_at
            core_clock = self.runtime.core.clock
            self.sender = WeChatSender(self.api, template_id=settings.wechat_template_id,
                                       clock=lambda: core_clock().timestamp())
        else:
            log.warning("WECHAT_APP_ID/WECHAT_APP_SECRET not set: late replies wait in the outbox")

    async def stop(self, _app: web.Application) -> None:
        if self._background:
            await asyncio.wait(self._background, timeout=10)
        if self.sender is not None:
            await self.sender.close()

    # ---- HTTP -------------------------------------------------------------------------------
    def _check_timestamp(self, timestamp: str) -> None:
        try:
            age = self.clock() - int(timestamp)
        except ValueError:
            raise Rejected(403, "bad timestamp") from None
        if abs(age) > REPLAY_WINDOW_SECONDS:
            raise Rejected(403, f"timestamp outside the {REPLAY_WINDOW_SECONDS} s window")

    def _check_url_signature(self, query: Mapping[str, str]) -> None:
        signature, timestamp, nonce = query.get("signature"), query.get("timestamp"), query.get("nonce")
        if not (signature and timestamp and nonce):
            raise Rejected(403, "missing signature")
        try:
            check_signature(self.token, signature, timestamp, nonce)
        except InvalidSignatureException:
            raise Rejected(403, "bad signature") from None
        self._check_timestamp(timestamp)

    async def handle_get(self, request: web.Request) -> web.Response:
        """URL verification: echo ``echostr`` verbatim when the signature is ours."""
        try:
            self._check_url_signature(request.query)
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

    def _plaintext(self, body: bytes, query: Mapping[str, str]) -> tuple[bytes, bool]:
        """The message XML, and whether the reply must be encrypted (safe / compatible mode)."""
        if _DECLARATIONS.search(body):
            raise Rejected(400, "XML declarations (DOCTYPE/ENTITY) are not accepted")
        if query.get("encrypt_type", "raw").lower() != "aes":
            self._check_url_signature(query)
            return body, False
        if self.crypto is None:
            raise Rejected(400, "encrypted message but WECHAT_ENCODING_AES_KEY is not set")
        msg_signature, timestamp, nonce = query.get("msg_signature"), query.get("timestamp"), query.get("nonce")
        if not (msg_signature and timestamp and nonce):
            raise Rejected(403, "missing msg_signature")
        self._check_timestamp(timestamp)
        try:
            plain = self.crypto.decrypt_message(body.decode("utf-8"), msg_signature, timestamp, nonce)
        except InvalidSignatureException:
            raise Rejected(403, "bad msg_signature") from None
        except InvalidAppIdException:
            raise Rejected(403, "message for another app id") from None
        except (ExpatError, KeyError, ValueError, TypeError, IndexError, UnicodeError) as exc:
            raise Rejected(400, f"cannot decrypt ({exc.__class__.__name__})") from None
        data = plain.encode("utf-8")
        if _DECLARATIONS.search(data):
            raise Rejected(400, "XML declarations (DOCTYPE/ENTITY) are not accepted")
        return data, True

    async def handle_post(self, request: web.Request) -> web.Response:
        try:
            body = await self._read_body(request)
            xml, encrypted = self._plaintext(body, request.query)
            try:
                message = parse_message(xml.decode("utf-8"))
                if message is None:
                    raise ValueError("empty body")
                converted = to_inbound(message)
            except (ExpatError, KeyError, ValueError, TypeError, AttributeError, UnicodeError) as exc:
                raise Rejected(400, f"malformed message ({exc.__class__.__name__}: {str(exc)[:80]})") from None
        except Rejected as exc:
            level = logging.WARNING if exc.status == 400 else logging.INFO
            log.log(level, "wechat POST from %s rejected (%s): %s", request.remote, exc.status, exc.reason)
            return web.Response(status=exc.status, text=exc.reason)

        if converted.template_job is not None:
            await self._record_template_job(converted.template_job)
        if converted.inbound is None:
            return self._success()
        content = await self._answer(converted.inbound)
        if content is None:
            return self._success()
        xml_out = text_reply_xml(to_user=message.source, from_user=message.target, content=content,
                                 create_time=int(self.clock()))
        if encrypted:
            assert self.crypto is not None
            xml_out = self.crypto.encrypt_message(xml_out, request.query["nonce"], str(int(self.clock())))
        return web.Response(text=xml_out, content_type="application/xml")

    @staticmethod
    def _success() -> web.Response:
        return web.Response(text=SUCCESS, content_type="text/plain")

    # ---- core -------------------------------------------------------------------------------
    async def _answer(self, inbound: Inbound) -> str | None:
        """The passive reply text, or None for `success`."""
        if inbound.text is not None and to_simplified(inbound.text.strip()).lower() in NEXT_PAGE_WORDS:
            page = await self.pages.take_next(inbound.user_id, inbound.message_id or "")
            if page is not None:
                return page
        replies = await self._run_core(inbound)
        if replies is None:
            return None
        pages = paginate(render_replies(replies)) if replies else []
        await self.pages.replace(inbound.user_id, pages[1:])
        return pages[0] if pages else None

    async def _run_core(self, inbound: Inbound) -> list[Reply] | None:
        """The core's replies, or None when it missed the deadline (they follow as a CS message).

        Concurrent deliveries of one message in this process share one core run; the database
        dedupe in the core covers deliveries that reach other processes.
        """
        key = inbound.message_id or ""
        self._forget_old_late_answers()
        if key in self._answered_late:
            return None
        run = self._runs.get(key)
        if run is None:
            run = _CoreRun(asyncio.create_task(self.runtime.core.handle(inbound)))
            self._runs[key] = run
            run.task.add_done_callback(lambda task: self._core_done(key, inbound.user_id, run))
        elif run.late:
            return None
        done, _ = await asyncio.wait({run.task}, timeout=self.reply_deadline)
        if not done:
            if not run.late:
                log.info("core missed the %.1f s deadline for %s; the reply follows as a CS message",
                         self.reply_deadline, key)
            run.late = True
            return None
        return run.task.result()

    def _core_done(self, key: str, openid: str, run: _CoreRun) -> None:
        self._runs.pop(key, None)
        if not run.late:
            return
        self._answered_late[key] = time.monotonic()
        if run.task.cancelled() or run.task.exception() is not None:
            log.error("core failed on %s after the deadline", key, exc_info=run.task.exception())
            return
        replies = run.task.result()
        if replies:
            task = asyncio.create_task(self._deliver_late(openid, replies))
            self._background.add(task)
            task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("late reply delivery failed", exc_info=task.exception())

    def _forget_old_late_answers(self) -> None:
        horizon = time.monotonic() - LATE_MEMORY_SECONDS
        for key in [k for k, at in self._answered_late.items() if at < horizon]:
            del self._answered_late[key]

    async def wait_idle(self) -> None:
        """Until every core run and late delivery has finished (tests, shutdown)."""
        while self._runs or self._background:
            await asyncio.gather(*[r.task for r in self._runs.values()], *self._background, return_exceptions=True)

    # ---- late replies through the outbox ----------------------------------------------------
    async def _deliver_late(self, openid: str, replies: list[Reply]) -> None:
        pages = paginate(render_replies(replies))
        await self.pages.replace(openid, pages[1:])
        now = self.runtime.core.clock()  # outbox times on the core's clock, as its notices are
        async with self.runtime.sessions() as session:
            identity = (await session.exec(select(Identity).where(
                Identity.channel == CHANNEL, Identity.external_id == openid))).first()
            if identity is None or identity.id is None:
                return
            row = Delivery(identity_id=identity.id, channel=CHANNEL, text=pages[0][:8000], choices=[],
                           source="late_reply", due_at=now + LATE_REPLY_GRACE if self.sender else now,
                           status="pending", created_at=now)
            session.add(row)
            await session.commit()
            last_inbound = identity.last_inbound_at
        if self.sender is None or row.id is None:
            return
        message = OutboundMessage(delivery_id=row.id, channel=CHANNEL, external_id=openid, text=row.text,
                                  last_inbound_at_ts=last_inbound.timestamp() if last_inbound else None)
        try:
            result = await self.sender.send(message)
        except Exception as exc:  # the row stays pending for the drain loop
            log.exception("late reply to %s not sent", openid)
            result = SendResult("retry", retry_after=30.0, error=repr(exc)[:300])
        await self._settle(row.id, result)

    async def _settle(self, delivery_id: int, result: SendResult) -> None:
        now = self.runtime.core.clock()
        values: dict[str, object] = {"attempts": Delivery.attempts + 1, "last_error": result.error}
        if result.outcome == "sent":
            values.update(status="sent", sent_at=now)
        elif result.outcome == "held":
            values.update(status="held", due_at=now)  # shown with the user's next reply
        elif result.outcome == "retry":
            values.update(due_at=now + timedelta(seconds=result.retry_after or 30.0))
        else:
            values.update(status="failed")
        async with self.runtime.sessions() as session:
            await session.exec(update(Delivery).where(  # type: ignore[call-overload]
                Delivery.id == delivery_id, Delivery.status == "pending").values(**values))
            await session.commit()

    async def _record_template_job(self, job: WeChatTemplateJob) -> None:
        async with self.runtime.sessions() as session:
            if await session.get(WeChatTemplateJob, job.msg_id) is not None:
                return  # a retry of the same report
            job.reported_at = utcnow()
            session.add(job)
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()


WECHAT_CHANNEL_KEY = web.AppKey("wechat_channel", WeChatChannel)


async def setup(app: web.Application, runtime: Runtime, *, reply_deadline: float = REPLY_DEADLINE_SECONDS,
                clock: Callable[[], float] = time.time) -> None:
    """Adds ``/wechat`` when ``WECHAT_TOKEN`` is set; otherwise the channel is off."""
    if not runtime.settings.wechat_token:
        return
    channel = WeChatChannel(runtime, reply_deadline=reply_deadline, clock=clock)
    app[WECHAT_CHANNEL_KEY] = channel
    app.router.add_get("/wechat", channel.handle_get)
    app.router.add_post("/wechat", channel.handle_post)
    app.on_startup.append(channel.start)
    app.on_cleanup.append(channel.stop)
