"""``GET /verify/<number>`` (the page the certificate's QR code opens) and ``GET /certificate/<token>``
(the signed 7-day download link WeChat and console users get), mounted on ``serve``'s web app.

The verification page is plain HTML for a phone in the notice pages' look (bot/web/templates/public.html
and its stylesheet): every value escaped, no script, nothing loaded from elsewhere (a Content-Security-Policy
says so). It shows what the certificate says (ID number masked),
or that the number is unknown, or that the certificate was revoked and why.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web

from bot.certificates.pdf import render_pdf
from bot.config import Settings
from bot.texts import bilingual
from bot.web.core import Texts, environment
from common.i18n import SOURCE_LANGUAGE, Text, _, render
from handlers.activity_words import list_of_names
from handlers.messages import Document
from models.db import SessionFactory
from services.certificates import CertificateFacts, facts_of, find_certificate, format_number, open_download

HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'none'; style-src 'self'",
           "X-Content-Type-Options": "nosniff"}
PAGES = environment()  # the web console's templates: the verification page looks like a notice page


def _zh(text: Text) -> str:
    return render(text, SOURCE_LANGUAGE)


def verify_url(settings: Settings, number: str) -> str:
    base = settings.public_base_url.rstrip("/")
    return f"{base}/verify/{number}" if base else ""


class CertificateFiles:
    """Loads a certificate's facts and renders its PDF; also the Telegram adapter's document source."""

    def __init__(self, sessions: SessionFactory, settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    async def facts(self, number: str) -> CertificateFacts | None:
        async with self.sessions() as session:
            certificate = await find_certificate(session, number=number)
        return None if certificate is None else facts_of(certificate, timezone=self.settings.timezone)

    async def pdf(self, facts: CertificateFacts) -> bytes:
        return await asyncio.to_thread(render_pdf, facts, verify_url=verify_url(self.settings, facts.number),
                                       font_path=self.settings.certificate_font)

    async def load(self, document: Document) -> bytes | None:
        """The file behind a reply's document, or None (unknown kind, unknown or revoked certificate)."""
        if document.kind != "certificate":
            return None
        facts = await self.facts(document.ref)
        if facts is None or facts.revoked_at is not None:
            return None
        return await self.pdf(facts)


def _page(context: dict[str, object], *, status: int = 200) -> web.Response:
    """The page in the look of the notice pages (bot/web/templates/verify.html, every value escaped)."""
    text = PAGES.get_template("verify.html").render(T=Texts(SOURCE_LANGUAGE), lang=SOURCE_LANGUAGE, **context)
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=HEADERS)


def _facts(facts: CertificateFacts) -> dict[str, object]:
    items = [(_("证明编号"), format_number(facts.number)), (_("姓名"), facts.name),
             (_("身份证号（脱敏）"), facts.id_masked or "-"),
             (_("服务时间"), f"{facts.start} – {facts.end}"),
             (_("累计志愿服务时长"), _zh(_("{hours} 小时（{count} 条记录）", hours=f"{facts.total_hours:g}",
                                          count=len(facts.lines))))]
    items += [(_("出具组织"), _zh(_("{org}（记录人：{names}）", org=org, names=list_of_names(names) or org)))
              for org, names in facts.issuers]
    items.append((_("出具日期"), str(facts.issued_on)))
    return {"items": [(_zh(label), str(value)) for label, value in items],
            "header": [_zh(h) for h in (_("日期"), _("服务内容"), _("组织"), _("时长（小时）"), _("记录人"))],
            "rows": [(str(line.served_on), line.what or _zh(_("志愿服务")), line.organization or "-", f"{line.hours:g}",
                      line.recorder or "-") for line in facts.lines]}


def setup(app: web.Application, sessions: SessionFactory, settings: Settings,
          clock: Callable[[], datetime]) -> None:
    files = CertificateFiles(sessions, settings)
    heading = _zh(_("志愿服务证明核验"))

    async def verify(request: web.Request) -> web.Response:
        raw = request.match_info["number"]
        facts = await files.facts(raw)
        if facts is None:
            message = _zh(_("没有找到编号为 {number} 的志愿服务证明。请核对编号。", number=raw[:40]))
            return _page({"heading": heading, "valid": False, "status": message,
                          "english": "Unknown certificate number."}, status=404)
        if facts.revoked_at is not None:
            when = facts.revoked_at.astimezone(ZoneInfo(settings.timezone)).date()
            status = _zh(_("该证明已于 {date} 撤销，不再有效。原因：{reason}", date=when,
                           reason=facts.revoked_reason or "-"))
            return _page({"heading": heading, "valid": False, "status": status,
                          "english": "Revoked: no longer valid.", **_facts(facts)})
        valid = _zh(_("有效：本证明由志愿助手出具，以下信息与证明一致。"))
        return _page({"heading": heading, "valid": True, "status": valid, **_facts(facts)})

    async def download(request: web.Request) -> web.Response:
        check = open_download(request.match_info["token"], secret=settings.id_encryption_key, now=clock())
        if check.number is None:
            return web.Response(status=403, text=bilingual(_("链接无效或已过期")) + "\n", headers=HEADERS)
        if check.expired:
            return web.Response(status=410, text=bilingual(_("链接已过期，请在聊天中重新开具志愿服务证明。")) + "\n",
                                headers=HEADERS)
        facts = await files.facts(check.number)
        if facts is None or facts.revoked_at is not None:
            return web.Response(status=410, text=bilingual(_("该证明已撤销。")) + "\n", headers=HEADERS)
        body = await files.pdf(facts)
        return web.Response(body=body, content_type="application/pdf", headers={
            **HEADERS, "Content-Disposition": f'attachment; filename="certificate-{facts.number}.pdf"'})

    app.router.add_get("/verify/{number}", verify)
    app.router.add_get("/certificate/{token}", download)
