"""志愿者名单: a coordinator's volunteers (the members of the organizations they manage, and below them).

Each line shows the masked phone only, the skills, the approved hours of this year and the last activity;
a page stays well under WeChat's 2048 bytes.
"""

from __future__ import annotations

import math
from datetime import date

from common.i18n import Text, _, join
from handlers.payloads import Payload, payload
from handlers.registration import skills_shown
from handlers.turn import FeatureRouter, Role, Turn
from handlers.words import load_words
from services.members import VolunteerRow, volunteer_page
from services.orgs import managed_org_ids

router = FeatureRouter("members")
WORDS = load_words("members_words")
PAGE_SIZE = 6
SKILLS_SHOWN = 3


@payload("vols")
class VolunteerPage(Payload):
    page: int


def _line(turn: Turn, index: int, row: VolunteerRow) -> Text:
    skills = skills_shown(row.skills[:SKILLS_SHOWN]) or "-"
    if len(row.skills) > SKILLS_SHOWN:
        skills = _("{skills}等", skills=skills)
    last = (_("{title}（{day}）", title=row.last_activity[:20], day=f"{turn.local(row.last_activity_at):%m-%d}")
            if row.last_activity and row.last_activity_at else _("暂无"))
    return _("{index}. {name}｜{phone}｜{org}\n   技能：{skills}｜今年 {hours} 小时｜最近活动：{last}",
             index=index, name=row.name[:16], phone=row.phone_masked or "-", org=row.organization[:20],
             skills=skills, hours=f"{row.hours_this_year:g}", last=last)


@router.command("vols", words=WORDS["vols"], payload=VolunteerPage, optional=True, requires=Role.COORDINATOR)
async def volunteer_list(turn: Turn, requested: VolunteerPage | None) -> None:
    org_ids = None if await turn.admin() else sorted(await managed_org_ids(turn.session, person_id=turn.person.id))
    page = max(requested.page, 1) if requested else 1
    year_start = date(turn.today.year, 1, 1)
    rows, total = await volunteer_page(turn.session, organization_ids=org_ids, year_start=year_start, now=turn.now,
                                       offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    if total == 0:
        turn.say(_("你管理的组织还没有志愿者成员。志愿者注册时选择组织，或发送「更换组织」加入后，会出现在这里。"))
        return
    pages = math.ceil(total / PAGE_SIZE)
    if not rows:  # a page past the end (the list shrank): the last page
        page = pages
        rows, total = await volunteer_page(turn.session, organization_ids=org_ids, year_start=year_start,
                                           now=turn.now, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    start = (page - 1) * PAGE_SIZE
    text = join([_("志愿者名单（共 {total} 人，第 {page}/{pages} 页）：", total=total, page=page, pages=pages),
                 *(_line(turn, start + i, row) for i, row in enumerate(rows, 1))])
    choices = []
    if page > 1:
        choices.append(turn.choice(_("上一页"), VolunteerPage(page - 1).pack()))
    if page < pages:
        choices.append(turn.choice(_("下一页"), VolunteerPage(page + 1).pack()))
    turn.say(text, choices)
