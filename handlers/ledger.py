"""导出台账: a coordinator gets a signed 24-hour link to their organizations' hours ledger (CSV)."""

from __future__ import annotations

from datetime import date, timedelta

from handlers.messages import Link
from handlers.turn import FeatureRouter, Turn
from services.ledger import LINK_TTL, ExportGrant, sign_export
from services.people import managed_organizations

router = FeatureRouter("ledger")
LEDGER_TEXT_COMMANDS = {"导出台账": "export", "台账": "export", "导出时长": "export", "/export": "export",
                        "export hours": "export"}


def period(turn: Turn, code: str) -> tuple[date, date]:
    today = turn.today
    if code == "month":
        return today.replace(day=1), today
    if code == "lastmonth":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    return date(today.year, 1, 1), today


@router.command("export")
async def export(turn: Turn, arg: str) -> None:
    orgs = await managed_organizations(turn.session, person_id=turn.person.id, admin=await turn.admin())
    if not orgs:
        turn.say("抱歉，只有协调员或管理员可以导出台账。", "Sorry, only coordinators or admins can export the ledger.")
        return
    if arg not in ("year", "month", "lastmonth"):
        turn.say("导出哪段时间的服务时长台账？", "Export the hours ledger for which period?", [
            turn.choice("今年", "This year", "export:year"),
            turn.choice("本月", "This month", "export:month"),
            turn.choice("上个月", "Last month", "export:lastmonth"),
        ])
        return
    if not turn.options.public_base_url:
        turn.say("服务器还没有设置 PUBLIC_BASE_URL，无法生成下载链接。请管理员在服务器上运行 "
                 "`volunteer-bot ledger export` 导出。",
                 "PUBLIC_BASE_URL is not set, so no download link can be made. An admin can run "
                 "`volunteer-bot ledger export` on the server.")
        return
    start, end = period(turn, arg)
    grant = ExportGrant(organization_ids=[o.id for o in orgs if o.id is not None], start=start, end=end,
                        expires_at=turn.now + LINK_TTL)
    token = sign_export(grant, secret=turn.options.encryption_key)
    url = f"{turn.options.public_base_url}/ledger.csv?token={token}"
    names = "、".join(o.name for o in orgs)
    reply = turn.say(f"台账（{names}，{start} 至 {end}）已生成，链接 24 小时内有效，身份证号和手机号已脱敏：",
                     f"The ledger ({names}, {start} to {end}) is ready; the link works for 24 hours, "
                     "ID numbers and phones are masked:")
    reply.links.append(Link(label=turn.t("下载台账（CSV，可用 Excel 打开）", "Download (CSV, opens in Excel)"), url=url))
