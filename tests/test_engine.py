"""The neutral core: dedupe of retries (also concurrent), choices by number, limits, events."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import func, select

from common.i18n import default_catalogs
from common.lang import to_simplified
from handlers.engine import Engine
from handlers.messages import Inbound
from models import Identity, InboundSeen, Signup
from tests.helpers import add_activity, make_coordinator, register


def msg(text: str | None = None, *, user: str = "u1", message_id: str | None = None, **kw: object) -> Inbound:
    return Inbound(channel="test", user_id=user, text=text, message_id=message_id, **kw)


async def test_same_message_id_twice_has_one_effect_and_the_same_answer(core: Engine, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="c", user="c", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), capacity=1)
    from bot.channels.console import ConsoleChannel

    await register(ConsoleChannel(core, user="u1"), "韩梅梅", serial=80)
    async with sessions() as session:
        identity = (await session.exec(select(Identity).where(Identity.external_id == "u1"))).one()
        identity.channel = "test"  # the console registration now answers for the "test" channel id
        session.add(identity)
        await session.commit()
    first = await core.handle(msg(payload=f"join:{activity.id}", message_id="m-1"))
    second = await core.handle(msg(payload=f"join:{activity.id}", message_id="m-1"))
    assert first == second and "报名成功" in first[0].text
    # a different message id is a new message: now "already signed up"
    third = await core.handle(msg(payload=f"join:{activity.id}", message_id="m-2"))
    assert "已经报名" in third[0].text


async def test_concurrent_duplicates_have_one_effect(core: Engine, sessions) -> None:
    deliveries = [core.handle(msg("注册", message_id="dup-1")) for _ in range(3)]
    results = await asyncio.gather(*deliveries)
    assert results[0] == results[1] == results[2]
    assert "姓名" in results[0][-1].text
    # the dialog advanced once: the next answer is taken as the name
    reply = await core.handle(msg("李雷", message_id="dup-2"))
    assert "身份证号" in reply[-1].text
    async with sessions() as session:
        seen = (await session.exec(select(func.count()).select_from(InboundSeen))).one()
        identities = (await session.exec(select(func.count()).select_from(Identity))).one()
    assert seen == 2 and identities == 1


async def test_concurrent_first_contacts_from_many_users(core: Engine, sessions) -> None:
    results = await asyncio.gather(*(core.handle(msg("你好", user=f"p{i}", message_id=f"x{i}")) for i in range(8)))
    assert all("志愿助手" in r[-1].text for r in results)
    async with sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Identity))).one() == 8


async def test_a_failed_first_delivery_is_processed_again_by_the_retry(core: Engine, sessions, monkeypatch) -> None:
    calls = {"n": 0}
    original = core._dispatch

    async def flaky(turn):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database hiccup")
        await original(turn)

    monkeypatch.setattr(core, "_dispatch", flaky)
    first = await core.handle(msg("帮助", message_id="r-1"))  # an apology and the menu (a second turn)
    assert "出了点问题" in first[0].text and calls["n"] == 2
    reply = await core.handle(msg("帮助", message_id="r-1"))
    assert "出了点问题" not in reply[0].text and "志愿助手" in reply[-1].text and calls["n"] == 3


async def test_choice_by_number_or_label_and_expired_buttons(core: Engine) -> None:
    menu = await core.handle(msg("帮助"))
    assert [c.value for c in menu[-1].choices][:2] == ["reg", "acts:1"]
    assert "姓名" in (await core.handle(msg("1")))[-1].text
    await core.handle(msg("取消"))
    assert "过期" in (await core.handle(msg(payload="a:yes")))[0].text


async def test_overlong_message_gets_a_clear_answer_and_keeps_the_dialog(core: Engine) -> None:
    await core.handle(msg("注册"))
    reply = await core.handle(msg("长" * 5000))
    assert "太长" in reply[0].text
    assert "身份证号" in (await core.handle(msg("李雷")))[-1].text


async def test_unknown_events_and_unsubscribe(core: Engine, sessions) -> None:
    assert await core.handle(msg(event="something_new")) == []
    await core.handle(msg(event="unsubscribe"))
    async with sessions() as session:
        assert (await session.exec(select(Identity))).one().active is False
    welcome = await core.handle(msg(event="subscribe"))
    assert "欢迎关注" in welcome[0].text
    async with sessions() as session:
        assert (await session.exec(select(Identity))).one().active is True


async def test_language_follows_platform_hint(core: Engine) -> None:
    assert "I'm the volunteer assistant" in (await core.handle(msg("/help", language="en-US")))[0].text
    assert "志願" in (await core.handle(msg("/help", user="tw", language="zh-hant")))[0].text
    assert "志愿助手" in (await core.handle(msg("/help", user="cn", language="zh-hans")))[0].text


async def test_capacity_holds_under_concurrent_joins(core: Engine, sessions, clock) -> None:
    from bot.channels.console import ConsoleChannel

    org = await make_coordinator(sessions, channel="c", user="c", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=1), capacity=2)
    names = ("甲乙", "丙丁", "戊己", "庚辛", "壬癸")
    for i, name in enumerate(names):
        await register(ConsoleChannel(core, user=f"v{i}"), name, serial=90 + i)
    await asyncio.gather(*(
        core.handle(Inbound(channel="console", user_id=f"v{i}", payload=f"join:{activity.id}", message_id=f"j{i}"))
        for i in range(len(names))
    ))
    async with sessions() as session:
        statuses = [s.status for s in await session.exec(select(Signup))]
    assert statuses.count("confirmed") == 2 and statuses.count("waitlist") == 3


async def test_replies_follow_the_language_the_user_writes(core: Engine) -> None:
    assert "I'm the volunteer assistant" in (await core.handle(msg("help", user="e1")))[0].text
    assert "志愿助手" in (await core.handle(msg("ok", user="z1")))[-1].text  # too thin to switch
    assert "志願" in (await core.handle(msg("幫助", user="t1")))[0].text
    # the language sticks for later messages, numbers included
    await core.handle(msg("help", user="e2"))
    assert "full legal name" in (await core.handle(msg("1", user="e2")))[-1].text


async def test_old_dedupe_keys_are_pruned_and_recent_ones_kept(core: Engine, sessions, clock) -> None:
    from services.maintenance import prune_dedupe_keys

    await core.handle(msg("帮助", message_id="old"))
    clock.advance(days=8)
    await core.handle(msg("帮助", message_id="new"))
    async with sessions() as session:
        assert await prune_dedupe_keys(session, now=clock.now) == 1
        await session.commit()
        keys = [row.message_key for row in await session.exec(select(InboundSeen))]
    assert keys == ["new"]


def test_traditional_texts_use_standard_forms() -> None:
    """回复 (reply) is 回覆 in every 繁體 text of the catalogs, never zhconv's 回復."""
    catalog = default_catalogs().messages("zh-Hant")
    replying = {msgid: text for msgid, text in catalog.items() if isinstance(text, str) and "回复" in msgid}
    assert replying and all("回覆" in text and "回復" not in text for text in replying.values())


async def test_small_talk_greets_only_real_greetings(core: Engine) -> None:
    assert "Hello!" in (await core.handle(msg("hi there", user="g1")))[0].text
    assert "not sure" in (await core.handle(msg("this is a test", user="g2")))[0].text
    assert "不客气" in (await core.handle(msg("谢谢你们!", user="g3")))[0].text


async def test_money_in_free_text_gets_the_no_charging_rule(console) -> None:
    from tests.helpers import register

    volunteer = console("vm")
    await register(volunteer, "钱多多", serial=44)
    assert "第二十一条" in await volunteer.send("居民非要给我红包，我能收吗")
    resident = console("rm")
    assert "无偿" in await resident.send("上门修电视的志愿者问我要钱")
    assert "Volunteer service is free" in await console("em").send("does the volunteer charge money?")
    assert "第二十一条" not in await console("ok").send("我想报名参加植树活动")


async def test_chinese_that_reads_the_same_in_both_scripts_keeps_the_users_script(console) -> None:
    tw = console("tw-writer")
    assert "時長" in await tw.send("我的時數")  # 繁體: the answer follows in 繁體
    reply = await tw.send("我要求助")  # the same in 简体 and 繁體: no reason to switch
    assert reply and to_simplified(reply) != reply, reply
    assert "请" not in reply and "請" in reply, reply
    # a 简体 writer sending the same words stays in 简体
    cn = console("cn-writer")
    await cn.send("我的时长")
    assert "请" in await cn.send("我要求助")
    # someone answered in English who writes Chinese is answered in Chinese (简体 when it does not tell)
    en = console("en-writer")
    assert "I'm the volunteer assistant" in await en.send("help")
    assert "请" in await en.send("我要求助")
