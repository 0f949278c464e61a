"""One volunteer on two channels: a link code joins the identities to one person."""

from __future__ import annotations

import re

from sqlmodel import select

from models import Identity
from tests.helpers import register


async def test_link_a_second_channel_to_the_registered_person(console, core, clock, sessions) -> None:
    from bot.channels.console import ConsoleChannel

    alice = console("alice")
    await register(alice, "王小丽", serial=11)
    other = ConsoleChannel(core, user="alice-phone")
    reply = await other.send("绑定")
    code = re.search(r"绑定码是 (\d{6})", reply)
    assert code
    assert "绑定成功" in await alice.send(f"绑定 {code.group(1)}")
    async with sessions() as session:
        identities = list(await session.exec(select(Identity)))
    assert len({i.person_id for i in identities}) == 1
    # the second channel now sees the registered profile
    assert "王小丽" in await other.send("我的资料")
    # codes are single use and expire
    again = await other.send("绑定")
    clock.advance(minutes=11)
    assert "已过期" in await console("carl").send("绑定 " + re.search(r"(\d{6})", again).group(1))


async def test_two_registered_people_are_not_merged(console, core) -> None:
    await register(console("a"), "甲乙", serial=12)
    await register(console("b"), "丙丁", serial=13)
    code = re.search(r"(\d{6})", await console("a").send("绑定")).group(1)
    assert "无法自动合并" in await console("b").send(f"绑定 {code}")
