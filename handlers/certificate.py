"""开志愿服务证明: a volunteer gets a free certificate of their service (办法 Art 14–15) as a PDF.

Typed: 「开志愿服务证明」 (the whole history), 「开志愿服务证明 今年」 / 「去年」, or two dates
(「开志愿服务证明 2026-01-01至2026-06-30」); ``/certificate`` the same. The reply states the facts and
carries the PDF as a :class:`Document`: Telegram sends the file, WeChat and the console show a signed
download link (7 days).
"""

from __future__ import annotations

from datetime import date

from common.i18n import Text, _, join
from common.timeparse import find_day, parse_period
from handlers.messages import Document
from handlers.turn import FeatureRouter, Turn
from handlers.words import load_words
from services.certificates import (
    LINK_TTL,
    CertificateError,
    format_number,
    issue_certificate,
    sign_download,
)

router = FeatureRouter("certificate")
WORDS = load_words("certificate_words")
PERIOD_WORDS = {word: code for code, words in WORDS["periods"].items() for word in words}
# channels whose adapter sends a Document as a file (the others need the signed link)
FILE_CHANNELS = frozenset({"telegram"})


def read_period(text: str, *, today: date) -> tuple[date | None, date] | None:
    """(first day or None for the whole history, last day), or None when the text names no period:
    two days (「2026-01-01至2026-06-30」) or a period (今年, 去年, 上个月, 2025年…), read as past."""
    text = text.strip().lower()
    code = PERIOD_WORDS.get(text) if text else "all"
    if code == "all":
        return None, today
    if code == "year":
        return date(today.year, 1, 1), today
    if code == "lastyear":
        return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)
    first = find_day(text, today=today, past=True)
    if first is not None:
        second = find_day(text[first[2]:], today=today, past=True)
        if second is not None:
            return min(first[0], second[0]), max(first[0], second[0])
    return parse_period(text, today=today, past=True)


def verify_url(turn: Turn, number: str) -> str:
    return f"{turn.options.public_base_url}/verify/{number}" if turn.options.public_base_url else ""


@router.command("certificate", words=WORDS["certificate"], takes_arg=True)
async def certificate(turn: Turn, arg: str) -> None:
    period = read_period(arg, today=turn.today)
    if period is None:
        turn.say(_("没看懂这个时间段。可以发送「开志愿服务证明」（全部记录）、「开志愿服务证明 今年」，"
                   "或写两个日期，如「开志愿服务证明 2026-01-01至2026-06-30」。"))
        return
    start, end = period
    end = min(end, turn.today)
    assert turn.person.id is not None
    try:
        issued = await issue_certificate(turn.session, person_id=turn.person.id, start=start, end=end,
                                         now=turn.now)
    except CertificateError as error:
        if error.reason == "not_registered":
            turn.say(_("开具志愿服务证明需要先完成实名注册。发送「注册」开始。"),
                     [turn.choice(_("志愿者注册"), "reg")])
        elif start is None:
            turn.say(_("还没有审核通过的服务记录，暂时无法开具证明。参加活动并记录时长后再来吧。"))
        else:
            turn.say(_("{start} 至 {end} 没有审核通过的服务记录，无法开具这段时间的证明。", start=start, end=end),
                     [turn.choice(_("全部记录"), "certificate:all")])
        return
    number = issued.number
    rows: list[Text] = [
        _("志愿服务证明已开具（免费）："),
        _("姓名：{name}", name=turn.person.name or ""),
        _("服务时间：{start} 至 {end}", start=issued.period_start, end=issued.period_end),
        _("累计志愿服务时长：{hours} 小时（{count} 条记录）", hours=f"{issued.total_hours:g}", count=issued.record_count),
        _("证明编号：{number}", number=format_number(number)),
    ]
    if turn.options.public_base_url:
        rows.append(_("核验网址：{url}", url=verify_url(turn, number)))
    url = ""
    if turn.options.public_base_url:
        token = sign_download(number, expires_at=turn.now + LINK_TTL, secret=turn.options.encryption_key)
        url = f"{turn.options.public_base_url}/certificate/{token}"
        if turn.inbound.channel not in FILE_CHANNELS:
            rows.append(_("下载链接 7 天内有效，身份证号已脱敏。"))
    elif turn.inbound.channel not in FILE_CHANNELS:
        rows.append(_("服务器还没有设置 PUBLIC_BASE_URL，无法生成下载链接。请协调员在服务器上运行 "
                      "`volunteer-bot certificate` 导出 PDF。"))
    others = [turn.choice(label, f"certificate:{code}") for label, code in (
        (_("只开今年"), "year"), (_("只开去年"), "lastyear"), (_("全部记录"), "all"))
        if (code == "all") != (start is None)]
    reply = turn.say(join(rows), others)
    reply.documents.append(Document(kind="certificate", ref=number, filename=f"certificate-{number}.pdf",
                                    label=turn.text(_("志愿服务证明（PDF）")), url=url))
