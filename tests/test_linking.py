"""One volunteer on two channels: a code asked for on one account, entered on the other, confirmed
back on the first. Wrong codes are limited per identity."""

from __future__ import annotations

import re

from sqlmodel import select

from handlers.engine import Engine
from handlers.messages import Inbound
from models import Delivery, Identity
from services.linking import MAX_WRONG_CODES
from tests.conversation import ConsoleConversation, Conversation, joined
from tests.helpers import register, shown


async def _persons(sessions) -> dict[tuple[str, str], int]:  # noqa: ANN001
    async with sessions() as session:
        return {(i.channel, i.external_id): i.person_id for i in await session.exec(select(Identity))}


async def _notices(sessions, conv: Conversation) -> list[str]:  # noqa: ANN001
    """The outbox rows waiting for one account, as its reader sees them."""
    async with sessions() as session:
        rows = await session.exec(
            select(Delivery).join(Identity, Identity.id == Delivery.identity_id)
            .where(Identity.channel == conv.channel, Identity.external_id == conv.user).order_by(Delivery.id))
        return [shown(row) for row in rows]


async def _code(conv: Conversation) -> str:
    match = re.search(r"绑定码是 (\d{6})", joined(await conv.send("绑定")))
    assert match, conv.last
    return match.group(1)


def _wrong(code: str, n: int) -> str:
    return f"{(int(code) + 1 + n) % 10**6:06d}"


async def test_the_link_happens_only_when_the_owner_confirms(conversation_factory, console, sessions) -> None:
    owner = conversation_factory("anna")  # registered on WeChat / Telegram / the console
    other = ConsoleConversation(console("anna-console"))
    await register(owner, "王小丽", serial=11)
    code = await _code(owner)

    assert "已发出绑定请求" in joined(await other.send(f"绑定 {code}"))
    persons = await _persons(sessions)
    assert persons[(owner.channel, owner.user)] != persons[("console", "anna-console")]  # nothing linked yet
    # the owner is asked, naming the channel and account that entered the code
    asked = [n for n in await _notices(sessions, owner) if "输入了你的绑定码" in n]
    assert len(asked) == 1 and "控制台 用户" in asked[0] and "确认绑定" in asked[0]

    assert "绑定成功" in joined(await owner.send("确认绑定"))
    persons = await _persons(sessions)
    assert persons[(owner.channel, owner.user)] == persons[("console", "anna-console")]
    # the other account is told (its notice comes with its next reply) and sees the registered profile
    reply = joined(await other.send("我的资料"))
    assert "绑定成功" in reply and "王小丽" in reply
    # the code was used up
    assert "没有等你确认" in joined(await owner.send("确认绑定"))


async def test_the_owner_can_refuse_and_a_request_expires_with_its_code(console, sessions, clock) -> None:
    owner, other, third = (ConsoleConversation(console(u)) for u in ("olga", "oscar", "otto"))
    await register(owner, "李小红", serial=12)

    code = await _code(owner)
    await other.send(f"绑定 {code}")
    # a claimed code is not open to a second account
    assert "无效或已过期" in joined(await third.send(f"绑定 {code}"))
    reply = joined(await owner.send("拒绝绑定"))
    assert "已拒绝" in reply and "输入了你的绑定码" in reply  # the held request came with this reply
    assert "对方没有确认" in joined(await other.send("你好"))
    assert "没有等你确认" in joined(await owner.send("确认绑定"))

    code = await _code(owner)
    await other.send(f"绑定 {code}")
    clock.advance(minutes=11)
    assert "没有等你确认" in joined(await owner.send("确认绑定"))
    persons = await _persons(sessions)
    assert len({persons[("console", u)] for u in ("olga", "oscar", "otto")}) == 3


async def test_a_guesser_is_locked_after_five_wrong_codes(conversation_factory, console, sessions, options,
                                                           clock) -> None:
    owner = ConsoleConversation(console("vera"))
    guesser = conversation_factory("mallory")
    await register(owner, "赵小兰", serial=13)
    code = await _code(owner)

    for n in range(MAX_WRONG_CODES - 1):
        assert f"还可以再试 {MAX_WRONG_CODES - 1 - n} 次" in joined(await guesser.send(f"绑定 {_wrong(code, n)}"))
    locked = joined(await guesser.send(f"绑定 {_wrong(code, 9)}"))
    assert "错误次数过多" in locked and "11:00 后再试" in locked  # 10:00 in Beijing + 1 hour
    # the right code is refused too, and the owner is not asked
    assert "错误次数过多" in joined(await guesser.send(f"绑定 {code}"))
    assert not [n for n in await _notices(sessions, owner) if "输入了你的绑定码" in n]
    # the count is in the database: another process refuses the guesser as well
    other_process = Engine(sessions, options, clock=clock)
    replies = await other_process.handle(Inbound(channel=guesser.channel, user_id=guesser.user, text=f"绑定 {code}"))
    assert "错误次数过多" in replies[-1].text
    # the lock belongs to the guesser's identity, not to every account
    assert "已发出绑定请求" in joined(await ConsoleConversation(console("vera-2")).send(f"绑定 {code}"))
    await owner.send("拒绝绑定")

    clock.advance(minutes=61)
    code = await _code(owner)
    assert "已发出绑定请求" in joined(await guesser.send(f"绑定 {code}"))


def test_only_wrong_codes_within_an_hour_lock() -> None:
    from datetime import UTC, datetime, timedelta

    from services.linking import LOCK_DURATION, lock_state

    start = datetime(2026, 3, 1, tzinfo=UTC)
    slow = [start + timedelta(minutes=20 * n) for n in range(MAX_WRONG_CODES)]  # 5 in 80 minutes
    assert lock_state(slow)[0] is None
    fast = [start + timedelta(seconds=n) for n in range(MAX_WRONG_CODES)]
    until, streak = lock_state(fast)
    assert until == fast[-1] + LOCK_DURATION and streak == []
    # after the lock, counting starts afresh
    assert lock_state([*fast, until + timedelta(seconds=1)]) == (until, [until + timedelta(seconds=1)])
