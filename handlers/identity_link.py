"""绑定: reach the assistant from WeChat and Telegram as one person.

The code is asked for on one account, entered on the other, and confirmed back on the first
(``services.linking`` explains why): whoever enters a code only *asks*; the code's owner decides.
"""

from __future__ import annotations

from common.i18n import N_, Text, _
from handlers.turn import FeatureRouter, Turn
from handlers.words import load_words
from models import Identity
from services.linking import (
    CODE_TTL,
    LinkError,
    claim_link_code,
    confirm_link,
    issue_link_code,
    refuse_link,
)
from services.notify import notify_person

router = FeatureRouter("identity_link")

WORDS = load_words("identity_link_words")

LINK_ERRORS: dict[str, Text] = {
    "same_person": N_("这两个账号已经是同一个人了。"),
    "both_registered": N_("两个账号都已实名注册，无法自动合并，请联系社区志愿服务站处理。"),
    "has_history": N_("另一个账号已有报名或时长记录，无法自动合并，请联系社区志愿服务站处理。"),
}
CHANNEL_NAMES: dict[str, Text] = {"wechat": N_("微信"), "telegram": "Telegram", "console": N_("控制台")}
CONFIRM, REFUSE = "linkok", "linkno"


def _minutes() -> int:
    return int(CODE_TTL.total_seconds() // 60)


def _who(identity: Identity) -> Text:
    """How the owner is told who asked: the channel and the name it shows (never more)."""
    name: Text = identity.display_name or _("尾号 {tail}", tail=identity.external_id[-4:])
    return _("{channel} 用户「{name}」", channel=CHANNEL_NAMES.get(identity.channel, identity.channel), name=name)


@router.command("link", words=WORDS["link"], takes_arg=True)
async def link(turn: Turn, arg: str) -> None:
    code = arg.strip()
    if not code:
        row = await issue_link_code(turn.session, person_id=turn.person.id, now=turn.now)
        turn.say(_("你的绑定码是 {code}，{minutes} 分钟内有效。请在另一个渠道（微信公众号或 Telegram）发送「绑定 {code}」，"
                   "然后回到这里确认。绑定码不要告诉别人。", code=row.code, minutes=_minutes()))
        return
    try:
        row = await claim_link_code(turn.session, identity=turn.identity, code=code, now=turn.now)
    except LinkError as error:
        if error.reason == "locked" and error.until is not None:
            turn.say(_("错误次数过多，绑定已锁定 1 小时，请 {time} 后再试。", time=f"{turn.local(error.until):%H:%M}"))
        elif error.reason == "bad_code":
            turn.say(_("绑定码无效或已过期（{minutes} 分钟内有效），请在另一个渠道重新发送「绑定」获取。还可以再试 {left} 次。",
                       minutes=_minutes(), left=error.left))
        else:
            turn.say(LINK_ERRORS[error.reason])
        return
    await notify_person(
        turn.session, person_id=row.person_id, now=turn.now, source="link", urgent=True,
        message=_("{who}输入了你的绑定码，想和你的账号绑定（绑定后两个账号算同一个人）。是你本人吗？"
                  "是请回复「确认绑定」；不是请回复「拒绝绑定」，也不要把绑定码告诉别人。", who=_who(turn.identity)),
        choices=[(_("确认绑定"), CONFIRM), (_("拒绝绑定"), REFUSE)],
    )
    turn.say(_("已发出绑定请求。请回到发出绑定码的账号，回复「确认绑定」（{minutes} 分钟内有效）。确认后这里会收到通知。",
               minutes=_minutes()))


@router.command(CONFIRM, words=WORDS["confirm"])
async def confirm(turn: Turn, _arg: str) -> None:
    try:
        person, claimant = await confirm_link(turn.session, person_id=turn.person.id, now=turn.now)
    except LinkError as error:
        if error.reason == "no_pending":
            turn.say(_("现在没有等你确认的绑定请求（请求 {minutes} 分钟内有效）。", minutes=_minutes()))
        else:
            turn.say(LINK_ERRORS[error.reason])
        return
    turn.person = person
    done = _("绑定成功！现在这两个渠道都是 {name} 的账号，报名和时长通用。", name=person.name or _("你"))
    if claimant.id != turn.identity.id:
        await notify_person(turn.session, person_id=person.id, now=turn.now, source="link", message=done,
                            identity_ids={claimant.id})
    turn.say(done)


@router.command(REFUSE, words=WORDS["refuse"])
async def refuse(turn: Turn, _arg: str) -> None:
    claimant = await refuse_link(turn.session, person_id=turn.person.id, now=turn.now)
    if claimant is None:
        turn.say(_("现在没有等你确认的绑定请求（请求 {minutes} 分钟内有效）。", minutes=_minutes()))
        return
    await notify_person(turn.session, person_id=claimant.person_id, now=turn.now, source="link",
                        message=_("对方没有确认，绑定没有完成。"), identity_ids={claimant.id})
    turn.say(_("已拒绝，对方的账号没有绑定到你。如果绑定码不是你自己发出去的，请不要把它告诉别人。"))
