"""Check-in and check-out by an activity's code (a QR scene, a /start deep link, or ``/checkin CODE``)."""

from __future__ import annotations

from common.i18n import Text, _
from handlers.activities_common import router
from handlers.activity_words import words
from handlers.turn import Turn
from services.checkin import CheckError, check_in, check_out


def _refusal(error: CheckError) -> Text:
    title = error.activity.title if error.activity is not None else ""
    return {
        "bad_code": _("签到码无效。"),
        "cancelled": _("「{title}」已经取消了。", title=title),
        "not_signed_up": _("你没有报名「{title}」，无法签到。", title=title),
        "outside_window": _("现在不在这个活动的签到时间内。"),
        "not_checked_in": _("你还没有签到，请先扫签到码。"),
    }[error.reason]


@router.command("checkin", words=words("activities", "checkin"), takes_arg=True)
async def checkin(turn: Turn, arg: str) -> None:
    await check(turn, "checkin", arg)


@router.command("checkout", words=words("activities", "checkout"), takes_arg=True)
async def checkout(turn: Turn, arg: str) -> None:
    await check(turn, "checkout", arg)


async def check(turn: Turn, action: str, code: str) -> None:
    try:
        if action == "checkin":
            result = await check_in(turn.session, code=code, person_id=turn.person.id, now=turn.now)
        else:
            result = await check_out(turn.session, code=code, person_id=turn.person.id, now=turn.now, tz=turn.tz)
    except CheckError as error:
        turn.say(_refusal(error))
        return
    if action == "checkin":
        assert result.signup.checkin_at is not None
        turn.say(_("签到成功：「{title}」，{strftime}。", title=result.activity.title,
                   strftime=turn.local(result.signup.checkin_at).strftime("%H:%M")))
    elif result.hours <= 0:
        turn.say(_("已签退，本次没有可记录的服务时长。"))
    elif not result.recorded:
        turn.say(_("已签退，但时长没能自动记录，请联系协调员。"))
    else:
        turn.say(_("签退成功，本次记录服务时长 {hours} 小时。辛苦了！", hours=f"{result.hours:g}"))
