"""导出台账 and 导出名单 N: a coordinator gets signed 24-hour links to their organizations' hours ledger, or to an
activity's roster, as Excel (.xlsx) and CSV files (served by bot/downloads.py)."""

from __future__ import annotations

from datetime import date, timedelta

from common.i18n import Text, _
from handlers.activities_common import managed_activity
from handlers.activity_payloads import ExportPeriod, ExportRoster, optional
from handlers.activity_words import list_of_names, words
from handlers.messages import Link
from handlers.payloads import InvalidPayload
from handlers.permissions import DENIED
from handlers.turn import FeatureRouter, Role, Turn
from services.exports import EXPORT_LANGUAGE
from services.ledger import LINK_TTL, ExportGrant, sign_export
from services.people import managed_organizations
from services.roster_export import sign_roster

router = FeatureRouter("ledger")
PERIODS = ("year", "month", "lastmonth")


def period(turn: Turn, code: str) -> tuple[date, date]:
    today = turn.today
    if code == "month":
        return today.replace(day=1), today
    if code == "lastmonth":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    return date(today.year, 1, 1), today


@router.command("export", words=words("ledger", "export"), requires=Role.COORDINATOR)
async def export(turn: Turn, arg: str) -> None:
    orgs = await managed_organizations(turn.session, person_id=turn.person.id, admin=await turn.admin())
    if not orgs:
        turn.say(DENIED)
        return
    try:
        chosen = optional(ExportPeriod, arg)
    except InvalidPayload:
        chosen = None
    if chosen is None or chosen.period not in PERIODS:
        turn.say(_("导出哪段时间的服务时长台账？"), [
            turn.choice(_("今年"), ExportPeriod("year").pack()),
            turn.choice(_("本月"), ExportPeriod("month").pack()),
            turn.choice(_("上个月"), ExportPeriod("lastmonth").pack()),
        ])
        return
    if not _can_link(turn, "volunteer-bot ledger export"):
        return
    start, end = period(turn, chosen.period)
    grant = ExportGrant(organization_ids=[o.id for o in orgs if o.id is not None], start=start, end=end,
                        expires_at=turn.now + LINK_TTL)
    token = sign_export(grant, secret=turn.options.encryption_key)
    names = list_of_names([o.name for o in orgs])
    reply = turn.say(_("台账（{names}，{start} 至 {end}）已生成，链接 24 小时内有效，身份证号和手机号已脱敏：",
                       names=names, start=start, end=end))
    reply.links += _links(turn, "ledger", token, _("下载台账（Excel）"), _("下载台账（CSV）"))


@router.command("rosterx", words=words("ledger", "rosterx"), takes_arg=True, payload=ExportRoster, optional=True,
                requires=Role.COORDINATOR)
async def export_roster(turn: Turn, p: ExportRoster | None) -> None:
    if p is None:
        turn.say(_("导出哪个活动的名单？请发送「导出名单」加活动编号，例如「导出名单 12」。"))
        return
    activity = await managed_activity(turn, p.activity_id)
    if activity is None or not _can_link(turn, f"volunteer-bot ledger roster --activity {activity.id}"):
        return
    token = sign_roster(p.activity_id, expires_at=turn.now + LINK_TTL, secret=turn.options.encryption_key)
    reply = turn.say(_("「{title}」的报名名单已生成，链接 24 小时内有效，手机号已脱敏：", title=activity.title))
    reply.links += _links(turn, "roster", token, _("下载名单（Excel）"), _("下载名单（CSV）"))


def _can_link(turn: Turn, cli: str) -> bool:
    if not turn.options.public_base_url:
        turn.say(_("服务器还没有设置 PUBLIC_BASE_URL，无法生成下载链接。请管理员在服务器上运行 `{command}` 导出。",
                   command=cli))
        return False
    return True


def _links(turn: Turn, path: str, token: str, excel: Text, csv: Text) -> list[Link]:
    """The same file as Excel first (coordinators' offices run Excel / WPS), then as CSV."""
    base = turn.options.public_base_url
    # the file's headers and source names in the coordinator's language (简体 when they write 简体)
    lang = "" if turn.lang == EXPORT_LANGUAGE else f"&lang={turn.lang}"
    return [Link(label=turn.text(excel), url=f"{base}/{path}.xlsx?token={token}{lang}"),
            Link(label=turn.text(csv), url=f"{base}/{path}.csv?token={token}{lang}")]
