"""The WeChat push sender for outbox rows (reminders, broadcasts, late replies).

Inside 48 h of the user's last message: a customer-service text. Outside it (or when WeChat says
45015/45047): a template message when ``WECHAT_TEMPLATE_ID`` is set, else the notice is held and
the engine prepends it to the user's next reply. A template message carries short fields (≤ 20
characters, one line each: ``WECHAT_TEMPLATE_FIELDS`` names them) and, with ``PUBLIC_BASE_URL``,
the link to ``/n/<token>``: a page with the whole notice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import aiohttp

from bot.channels.render import render_text
from bot.channels.wechat.api import WeChatApiClient, WeChatApiError, api_client
from bot.runtime import Runtime
from bot.sender import OutboundMessage, SendResult
from handlers.messages import Choice, Reply
from models import utcnow
from services.notice_links import short_field, sign_notice

log = logging.getLogger(__name__)

CHANNEL = "wechat"
SERVICE_WINDOW_SECONDS = 48 * 3600
# 45015: outside the 48 h window; 45047: customer-service quota for this user used up
WINDOW_CLOSED = frozenset({45015, 45047})
# 43004: the user unfollowed; 43019: the user blocked the account; 40003: not an openid of ours
BLOCKED = frozenset({43004, 43019})
# -1 system busy; 45009 daily API quota; 45011 API frequency limit
TRY_LATER = {-1: 5.0, 45009: 3600.0, 45011: 60.0}
TEXT_LIMIT_BYTES = 2000
# what a template field may be filled with (WECHAT_TEMPLATE_FIELDS maps the template's keys to these)
TEMPLATE_SOURCES = ("title", "summary", "time")


def parse_template_fields(spec: str) -> dict[str, str]:
    """``thing1=title,time2=time`` → {"thing1": "title", "time2": "time"}; unknown sources are refused."""
    fields: dict[str, str] = {}
    for item in spec.split(","):
        key, sep, source = (part.strip() for part in item.partition("="))
        if not item.strip():
            continue
        if not sep or not key or source not in TEMPLATE_SOURCES:
            raise ValueError(f"WECHAT_TEMPLATE_FIELDS entry {item!r} must look like key=title|summary|time")
        fields[key] = source
    return fields


def clip_utf8(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", errors="ignore") + "…"


class WeChatSender:
    channel = CHANNEL
    rate_per_second = 20.0
    per_chat_interval = 0.0

    def __init__(self, api: WeChatApiClient, *, template_id: str = "",
                 clock: Callable[[], float] | None = None, template_fields: str = "thing1=title,time2=time",
                 base_url: str = "", secret: str = "", timezone: str = "Asia/Shanghai") -> None:
        self.api = api
        self.template_id = template_id
        self.clock = clock or (lambda: utcnow().timestamp())
        self.template_fields = parse_template_fields(template_fields)
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.tz = ZoneInfo(timezone)

    def template_data(self, message: OutboundMessage) -> dict[str, dict[str, str]]:
        """The template's fields: one line of at most 20 characters each (WeChat shows no more)."""
        text = render_text(Reply(text=message.text))
        first, _sep, rest = text.strip().partition("\n")
        now = datetime.fromtimestamp(self.clock(), tz=UTC).astimezone(self.tz)
        values = {"title": short_field(first), "summary": short_field(rest or first),
                  "time": f"{now:%Y-%m-%d %H:%M}"}
        return {key: {"value": values[source]} for key, source in self.template_fields.items()}

    def notice_url(self, message: OutboundMessage) -> str | None:
        if not self.base_url or not self.secret:
            return None
        now = datetime.fromtimestamp(self.clock(), tz=UTC)
        return f"{self.base_url}/n/{sign_notice(message.delivery_id, secret=self.secret, now=now)}"

    @staticmethod
    def render(message: OutboundMessage) -> str:
        choices = [Choice(label=c["label"], value=c["value"]) for c in message.choices]
        return clip_utf8(render_text(Reply(text=message.text, choices=choices)), TEXT_LIMIT_BYTES)

    def in_service_window(self, message: OutboundMessage) -> bool:
        last = message.last_inbound_at_ts
        return last is not None and self.clock() - last < SERVICE_WINDOW_SECONDS

    async def send(self, message: OutboundMessage) -> SendResult:
        if self.in_service_window(message):
            try:
                await self.api.send_text(message.external_id, self.render(message))
                return SendResult("sent")
            except WeChatApiError as exc:
                if exc.errcode not in WINDOW_CLOSED:
                    return self._outcome(exc)
                log.info("customer-service message refused (%s); trying the fallback", exc.errcode)
            except (aiohttp.ClientError, TimeoutError) as exc:
                return SendResult("retry", retry_after=5.0, error=f"network: {exc!r}"[:300])
        return await self._outside_window(message)

    async def _outside_window(self, message: OutboundMessage) -> SendResult:
        if not self.template_id:
            return SendResult("held", error="outside the 48 h customer-service window")
        try:
            await self.api.send_template(message.external_id, self.template_id, self.template_data(message),
                                         url=self.notice_url(message))
        except WeChatApiError as exc:
            if exc.errcode in WINDOW_CLOSED:
                return SendResult("held", error=str(exc))
            return self._outcome(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return SendResult("retry", retry_after=5.0, error=f"network: {exc!r}"[:300])
        return SendResult("sent")

    @staticmethod
    def _outcome(exc: WeChatApiError) -> SendResult:
        if exc.errcode in BLOCKED:
            return SendResult("blocked", error=str(exc))
        if exc.errcode in TRY_LATER:
            return SendResult("retry", retry_after=TRY_LATER[exc.errcode], error=str(exc))
        if exc.errcode in (40001, 40014, 42001):  # the token would not stick even after refreshing
            return SendResult("retry", retry_after=30.0, error=str(exc))
        return SendResult("failed", error=str(exc))

    async def close(self) -> None:
        await self.api.close()


def wechat_sender(runtime: Runtime) -> WeChatSender | None:
    """The push sender (outbox drainer, late replies); None when the API is not configured.
    The 48 h window is measured on the core's clock, which stamps ``last_inbound_at``."""
    api = api_client(runtime.settings, runtime.sessions)
    if api is None:
        return None
    core_clock = runtime.core.clock
    settings = runtime.settings
    return WeChatSender(api, template_id=settings.wechat_template_id, clock=lambda: core_clock().timestamp(),
                        template_fields=settings.wechat_template_fields, base_url=settings.public_base_url,
                        secret=settings.id_encryption_key, timezone=settings.timezone)
