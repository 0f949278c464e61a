"""绑定: reach the assistant from WeChat and Telegram as one person."""

from __future__ import annotations

from common.i18n import N_, Text, _
from handlers.turn import FeatureRouter, Turn
from handlers.words import load_words
from services.linking import CODE_TTL, LinkError, issue_link_code, link_with_code

router = FeatureRouter("identity_link")

WORDS = load_words("identity_link_words")

LINK_ERRORS: dict[str, Text] = {
    "bad_code": N_("绑定码无效或已过期（10 分钟内有效），请在另一个渠道重新发送「绑定」获取。"),
    "same_person": N_("这两个账号已经是同一个人了。"),
    "both_registered": N_("两个账号都已实名注册，无法自动合并，请联系社区志愿服务站处理。"),
    "has_history": N_("另一个账号已有报名或时长记录，无法自动合并，请联系社区志愿服务站处理。"),
}


@router.command("link", words=WORDS["link"], takes_arg=True)
async def link(turn: Turn, arg: str) -> None:
    code = arg.strip()
    if not code:
        row = await issue_link_code(turn.session, person_id=turn.person.id, now=turn.now)
        minutes = int(CODE_TTL.total_seconds() // 60)
        turn.say(_("你的绑定码是 {code}，{minutes} 分钟内有效。请在另一个渠道（微信公众号或 Telegram）发送「绑定 {code}」。", code=row.code, minutes=minutes))
        return
    try:
        person = await link_with_code(turn.session, identity=turn.identity, code=code, now=turn.now)
    except LinkError as error:
        turn.say(LINK_ERRORS[error.reason])
        return
    turn.person = person
    name = person.name or turn.text(_("你"))
    turn.say(_("绑定成功！现在这两个渠道都是 {name} 的账号，报名和时长通用。", name=name))
