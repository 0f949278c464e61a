"""The menus a user looks at: the help text per role, the WeChat custom menu and Telegram's command list
mention the commands that exist, every entry works, and each fits its channel."""

from __future__ import annotations

import json

from bot.channels.telegram.channel import MENU_COMMANDS
from bot.commands.wechat import MENU_FILE
from handlers.engine import Engine
from tests.conversation import WeChatConversation
from tests.helpers import make_coordinator, register
from tests.wechat_harness import WeChatHarness

MENU = json.loads(MENU_FILE.read_text(encoding="utf-8"))
EXPIRED = "这个选项已经过期了"
UNKNOWN = "我还不太明白"
VOLUNTEER_WORDS = ("我的记录", "申请更正", "开志愿服务证明", "搜索活动", "更换组织")
COORDINATOR_WORDS = ("修改活动", "取消活动", "查看名单", "志愿者名单", "待审核更正", "更正时长", "导出台账")


def test_wechat_menu_fits_wechat_limits() -> None:
    # WeChat: at most 3 buttons of at most 5 entries; names ≤ 16 bytes at the top, ≤ 60 below
    assert len(MENU["button"]) <= 3
    for top in MENU["button"]:
        assert len(top["name"].encode()) <= 16
        assert 1 <= len(top.get("sub_button", [])) <= 5
        assert all(len(entry["name"].encode()) <= 60 for entry in top["sub_button"])


async def test_every_wechat_menu_entry_answers(wx: WeChatHarness, sessions) -> None:  # noqa: ANN001
    await make_coordinator(sessions, channel="wechat", user="o_coord", org="花家地社区")
    assert "注册成功" in await register(WeChatConversation(wx, "o_alice"), "王小丽")
    for openid in ("o_alice", "o_coord", "o_new"):
        for top in MENU["button"]:
            for entry in top["sub_button"]:
                answer = await wx.event(openid, "CLICK", entry["key"])
                text = answer.content or ""
                await wx.say(openid, "取消")  # leave whatever dialog the entry opened
                assert text and EXPIRED not in text and UNKNOWN not in text, (openid, entry, text)
                assert len(answer.body.encode()) < 2048


async def test_help_names_the_commands_of_each_role_on_one_wechat_page(wx: WeChatHarness, sessions) -> None:  # noqa: ANN001
    await make_coordinator(sessions, channel="wechat", user="o_coord", org="花家地社区")
    volunteer = await wx.say("o_alice", "帮助")
    coordinator = await wx.say("o_coord", "帮助")
    assert all(word in volunteer for word in VOLUNTEER_WORDS)
    assert not any(word in volunteer for word in COORDINATOR_WORDS)
    assert all(word in coordinator for word in VOLUNTEER_WORDS + COORDINATOR_WORDS)
    assert "下一页" not in coordinator and len(coordinator.encode()) < 2048
    english = await wx.say("o_bob", "help")
    assert "my records" in english and "certificate" in english


def test_telegram_commands_are_typed_words_of_the_core(core: Engine) -> None:
    for name in set(MENU_COMMANDS) - {"cancel"}:  # 取消 / /cancel is the engine's own, before any command
        assert f"/{name}" in core.words, name
    assert {"records", "certificate", "search", "myorg"} <= set(MENU_COMMANDS)
