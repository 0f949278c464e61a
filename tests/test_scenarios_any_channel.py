"""The same scenarios on every channel, through one ``Conversation`` API (tests/conversation.py):
console (the core directly), WeChat (signed XML to the real /wechat endpoint) and Telegram (updates
to the real webhook, inline buttons pressed as callback queries)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from models import Identity, Person, Signup
from models.requests import ServiceRequest
from tests.conversation import Conversation, joined
from tests.helpers import add_activity, adult_id, make_coordinator, person_of, register

NEED = "我家老人一个人住，想请志愿者每周来陪他聊天"
ADDRESS = "3号楼2单元401"
TITLE = "社区敬老院探访"


def masked(id_number: str) -> str:
    return id_number[:4] + "*" * 10 + id_number[-4:]


def assert_never_shown(conv: Conversation, *secrets: str) -> None:
    for secret in secrets:
        leaked = [text for text in conv.replies if secret in text]
        assert not leaked, f"{secret} shown on {conv.channel}: {leaked}"


async def test_register_join_hours_and_the_waitlist(conversation_factory, sessions, clock) -> None:  # noqa: ANN001
    org = await make_coordinator(sessions, channel="console", user="coord", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=3), capacity=1, title=TITLE)
    amy, ben = conversation_factory("amy"), conversation_factory("ben")

    assert "注册成功" in await register(amy, "艾米", serial=20, phone="13512345678")
    summary = joined(amy.history[-2].replies)  # the step before "确认提交"
    assert "姓名：艾米" in summary and masked(adult_id(20)) in summary and "135****5678" in summary
    assert set(amy.buttons) >= {"看看活动", "我的资料"}
    person = await person_of(sessions, amy.channel, amy.user)
    assert (person.name, person.status) == ("艾米", "active")

    listing = joined(await amy.send("活动"))
    assert "近期志愿活动" in listing and TITLE in listing and TITLE in amy.buttons
    details = joined(await amy.press(TITLE))
    assert "名额：0/1" in details and "报名参加" in amy.buttons
    joined_reply = joined(await amy.press("报名参加"))
    assert f"报名成功！「{TITLE}」" in joined_reply and "取消报名" in amy.buttons
    hours = joined(await amy.send("我的时长"))
    assert "累计志愿服务时长：0 小时" in hours

    assert "注册成功" in await register(ben, "本杰", serial=21)
    await ben.send("活动")
    full = joined(await ben.press(TITLE))
    assert "名额：1/1（已满，可候补）" in full and "报名参加" not in ben.buttons
    waitlisted = joined(await ben.press("加入候补"))
    assert "候补名单（第 1 位）" in waitlisted and "取消候补" in ben.buttons

    async with sessions() as session:
        signups = {s.person_id: s.status for s in await session.exec(
            select(Signup).where(Signup.activity_id == activity.id))}
    ben_person = await person_of(sessions, ben.channel, ben.user)
    assert signups == {person.id: "confirmed", ben_person.id: "waitlist"}
    # the ID number and the phone went in in full and never came back in full
    assert_never_shown(amy, adult_id(20), "13512345678")
    assert_never_shown(ben, adult_id(21), "13800138000")


async def test_a_resident_request_asks_for_the_next_missing_piece(conversation_factory, sessions) -> None:  # noqa: ANN001
    grandma = conversation_factory("grandma")
    understood = joined(await grandma.send(NEED))
    assert "助老服务" in understood and "对吗" in understood and "对" in grandma.buttons
    assert "哪个社区" in joined(await grandma.press("对"))
    assert "详细地址" in joined(await grandma.send("花家地社区"))
    # "每周" was in the first sentence: the time is not asked for; the phone is next
    phone_question = joined(await grandma.send(ADDRESS))
    assert "联系电话" in phone_question and "什么时间" not in phone_question
    assert "11 位" in joined(await grandma.send("12345"))  # a wrong phone is asked for again
    assert "怎么称呼" in joined(await grandma.send("139 1234 5678"))
    assert_never_shown(grandma, ADDRESS)
    async with sessions() as session:
        assert (await session.exec(select(ServiceRequest))).all() == []  # nothing submitted yet


async def test_cancel_leaves_a_dialog(conversation_factory, sessions) -> None:  # noqa: ANN001
    carol = conversation_factory("carol")
    assert "姓名" in joined(await carol.send("注册"))
    assert "已取消" in joined(await carol.send("取消"))
    # the name question is gone: a name is no longer taken as the answer
    after = joined(await carol.send("赵六"))
    assert "身份证号" not in after
    # with no dialog open, 取消 shows what the assistant can do
    idle = joined(await carol.send("取消"))
    assert "已取消" not in idle and "我是志愿助手" in idle and "我要求助" in carol.buttons

    await carol.send(NEED)
    await carol.press("对")
    assert "详细地址" in joined(await carol.send("花家地社区"))
    assert "已取消" in joined(await carol.send("取消"))
    assert "联系电话" not in joined(await carol.send(ADDRESS))
    async with sessions() as session:
        assert (await session.exec(select(ServiceRequest))).all() == []
        identity = (await session.exec(select(Identity).where(
            Identity.channel == carol.channel, Identity.external_id == carol.user))).one()
        person = await session.get(Person, identity.person_id)
    assert person is not None and person.name is None  # the registration never completed
    assert_never_shown(carol, ADDRESS)


async def test_pressing_a_button_the_last_reply_does_not_have_fails(conversation_factory) -> None:  # noqa: ANN001
    dave = conversation_factory("dave")
    await dave.send("帮助")
    assert "我要求助" in dave.buttons
    with pytest.raises(AssertionError, match="no button"):
        await dave.press("报名参加")
    # a button can be pressed by its value too (the number on text channels, callback_data on Telegram)
    assert "需要什么帮助" in joined(await dave.press(dave.buttons["我要求助"]))
