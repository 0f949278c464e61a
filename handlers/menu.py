"""Help, welcome and small talk (residents' requests live in handlers/requests.py)."""

from __future__ import annotations

import re

from common.i18n import Lines, _
from handlers.turn import FeatureRouter, Turn
from handlers.words import load_words

router = FeatureRouter("menu")
# typed words and the thanks / greeting patterns are data (handlers/data/menu_words.json);
# English words must stand alone there: "this" is no greeting
WORDS = load_words("menu_words")
THANKS = re.compile(WORDS["thanks"])
GREETING = re.compile(WORDS["greeting"])


async def main_choices(turn: Turn, *, manager: bool | None = None) -> list:
    choices = [
        turn.choice(_("活动报名"), "acts:1"),
        turn.choice(_("我的时长"), "hrs"),
        turn.choice(_("我要求助"), "req"),
    ]
    if turn.person.status == "active":
        choices.insert(0, turn.choice(_("我的资料"), "profile"))
    else:
        choices.insert(0, turn.choice(_("志愿者注册"), "reg"))
    if manager is None:
        manager = await turn.admin() or await turn.coordinates_any()
    if manager:
        choices += [
            turn.choice(_("发布活动"), "newact"),
            turn.choice(_("记录时长"), "rec"),
        ]
    return choices


@router.command("help", "menu", words=WORDS["commands"]["help"])
async def help_(turn: Turn, _arg: str) -> None:
    """One screen, grouped: what everyone can type, then what coordinators (and admins) can."""
    admin = await turn.admin()
    manager = admin or await turn.coordinates_any()
    parts = [
        _("我是志愿助手，可以帮你："),
        _("· 志愿者：注册成为志愿者（实名）、我的资料、更换组织"),
        _("· 活动：近期活动、搜索活动（如「周末的助老活动」）、报名参加、我的报名"),
        _("· 时长：我的时长、我的记录（有误可申请更正，如「12月3日那次应该是3小时」）"),
        _("· 开志愿服务证明（免费 PDF）"),
        _("· 居民求助：直接说需要什么（如「想请人陪老人聊天」），我的求助"),
    ]
    if manager:
        parts += [
            _("协调员："),
            _("· 活动：发布活动、修改活动、取消活动、查看名单"),
            _("· 时长：记录时长、待审核时长、待审核更正、更正时长"),
            _("· 志愿者名单、群发、待审核求助、导出台账、管理后台"),
        ]
    if admin:
        parts.append(_("· 管理员：以上命令对所有组织有效"))
    parts.append(_("回复数字选择，或直接用一句话告诉我你想做什么。随时发送「取消」可以退出当前操作。"))
    turn.say(Lines(tuple(parts)), await main_choices(turn, manager=manager))


@router.command("welcome", words=WORDS["commands"]["welcome"])
async def welcome(turn: Turn, _arg: str) -> None:
    turn.say(_("欢迎关注！学雷锋，做志愿，我们一起让社区更温暖。"))
    await help_(turn, "")


@router.command("smalltalk")
async def smalltalk(turn: Turn, text: str) -> None:
    lowered = text.lower()
    if THANKS.search(lowered):
        turn.say(_("不客气！有需要随时找我。"))
        return
    if GREETING.search(lowered):
        turn.say(_("你好！我是志愿助手。"))
    else:
        turn.say(_("我还不太明白你的意思。"))
    await help_(turn, "")
