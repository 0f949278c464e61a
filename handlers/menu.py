"""Help, welcome and small talk (residents' requests live in handlers/requests.py)."""

from __future__ import annotations

import re

from common.i18n import _
from handlers.turn import FeatureRouter, Turn
from handlers.words import load_words

router = FeatureRouter("menu")
# typed words and the thanks / greeting patterns are data (handlers/data/menu_words.json);
# English words must stand alone there: "this" is no greeting
WORDS = load_words("menu_words")
THANKS = re.compile(WORDS["thanks"])
GREETING = re.compile(WORDS["greeting"])


async def main_choices(turn: Turn) -> list:
    choices = [
        turn.choice(_("活动报名"), "acts:1"),
        turn.choice(_("我的时长"), "hrs"),
        turn.choice(_("我要求助"), "req"),
    ]
    if turn.person.status == "active":
        choices.insert(0, turn.choice(_("我的资料"), "profile"))
    else:
        choices.insert(0, turn.choice(_("志愿者注册"), "reg"))
    admin = await turn.admin()
    if admin or await turn.coordinates_any():
        choices += [
            turn.choice(_("发布活动"), "newact"),
            turn.choice(_("记录时长"), "rec"),
        ]
    return choices


@router.command("help", "menu", words=WORDS["commands"]["help"])
async def help_(turn: Turn, _arg: str) -> None:
    turn.say(
        _("我是志愿助手，可以帮你：\n· 注册成为志愿者（实名）\n· 查看、报名、取消志愿活动\n· 查询志愿时长和星级\n· 社区居民求助（如陪老人聊天、维修家电）\n回复数字选择，或直接用一句话告诉我你想做什么。随时发送「取消」可以退出当前操作。"),
        await main_choices(turn),
    )


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
