"""Privacy by construction: personal data typed anywhere ends up encrypted or masked, never in clear.

The last test runs a whole lifecycle over the real WeChat and Telegram endpoints and the console,
then reads every column of every row of every table and looks for the plain ID number, phones,
address and birth date.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from sqlalchemy import select as core_select
from sqlmodel import SQLModel, select

from handlers.engine import Engine
from handlers.messages import Inbound
from handlers.privacy import FieldCipher
from models import Delivery, InboundSeen
from models.requests import ServiceRequest
from tests.conftest import TEST_KEY
from tests.conversation import ConsoleConversation, TelegramConversation, WeChatConversation, joined
from tests.fakes.telegram_api import FakeTelegramAPI
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.helpers import adult_id, make_coordinator, register, shown
from tests.telegram_harness import TelegramHarness
from tests.wechat_harness import WeChatHarness

STATION = "花家地社区志愿服务站"
ADDRESS = "北京市朝阳区花家地西里3号楼2单元501"
RESIDENT_PHONE = "13800138000"
SENTENCE = f"我家老人住在{ADDRESS}，腿脚不便，想请人每周六下午来陪他聊天，电话{RESIDENT_PHONE}"
MASKED = "北京市朝阳区花家地****"


def _cipher() -> FieldCipher:
    return FieldCipher(TEST_KEY)


async def test_stored_replies_are_sealed_and_a_retry_still_gets_them(core: Engine, sessions) -> None:
    message = Inbound(channel="test", user_id="u1", text="注册", message_id="m-1")
    first = await core.handle(message)
    async with sessions() as session:
        row = (await session.exec(select(InboundSeen))).one()
    assert isinstance(row.reply, str) and row.reply.startswith("v1:") and "姓名" not in row.reply
    assert "姓名" in json.dumps(json.loads(_cipher().decrypt(row.reply)), ensure_ascii=False)
    assert await core.handle(message) == first


async def _request_form(resident: ConsoleConversation) -> str:
    """The resident's first sentence, then what the form still asks; returns the submission's reply."""
    reply = joined(await resident.send(SENTENCE))
    assert "对吗" in reply
    await resident.press("对")
    assert "社区" in joined(resident.last) and "详细地址" not in joined(resident.last)
    reply = joined(await resident.send("花家地社区"))
    assert "联系电话" not in reply  # the phone came with the sentence
    await resident.send("王阿姨")
    summary = joined(await resident.send("没有"))
    assert MASKED in summary and "138****8000" in summary and "地址：已填写" in summary
    return joined(await resident.press("提交求助"))


async def test_an_address_and_phone_in_the_sentence_are_moved_and_masked(console, sessions) -> None:
    await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    resident = ConsoleConversation(console("resident"))
    assert "#1" in await _request_form(resident)
    async with sessions() as session:
        request = (await session.exec(select(ServiceRequest))).one()
        notices = list(await session.exec(select(Delivery)))
    assert MASKED in request.description and "138****8000" in request.description
    assert "花家地西里" not in request.description and RESIDENT_PHONE not in request.description
    assert _cipher().decrypt(request.address_enc or "") == ADDRESS
    assert _cipher().decrypt(request.phone_enc or "") == RESIDENT_PHONE and request.phone_masked == "138****8000"
    # the coordinator's notice shows the masked sentence
    (notice,) = [shown(n) for n in notices]
    assert "待审核" in notice and MASKED in notice and ADDRESS not in notice and RESIDENT_PHONE not in notice


def _plain(value: Any) -> str:
    """A column's value as text, JSON without \\u escapes (so Chinese is found as Chinese)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


async def _every_value(sessions) -> list[tuple[str, str, str]]:  # noqa: ANN001
    """(table, column, value) for every column of every row of every table."""
    found = []
    async with sessions() as session:
        connection = await session.connection()
        for table in SQLModel.metadata.sorted_tables:
            for row in (await connection.execute(core_select(table))).mappings():
                found += [(table.name, column, _plain(value)) for column, value in row.items() if value is not None]
    return found


async def test_no_table_holds_plain_personal_data_after_a_whole_lifecycle(core, sessions, db_url, console) -> None:
    volunteer_id = adult_id(21, birth="19900307")
    volunteer_phone = "13700137000"
    async with FakeWeChatAPI() as wx_api, WeChatHarness(core, sessions, wx_api) as wx, \
            FakeTelegramAPI() as tg_api, TelegramHarness(tg_api, core, sessions, db_url, webhook=True) as tg:
        coordinator = TelegramConversation(tg, 7001)
        await make_coordinator(sessions, channel="telegram", user="7001", org=STATION)
        volunteer = WeChatConversation(wx, "o_volunteer")
        resident = ConsoleConversation(console("resident"))

        # a volunteer registers on WeChat (ID number, phone) and links a console account
        assert "注册成功" in await register(volunteer, "王小丽", serial=21, birth="19900307", phone=volunteer_phone,
                                             skills="1")
        code = re.search(r"绑定码是 (\d{6})", joined(await volunteer.send("绑定"))).group(1)
        second = ConsoleConversation(console("volunteer-console"))
        assert "已发出绑定请求" in joined(await second.send(f"绑定 {code}"))
        assert "绑定成功" in joined(await volunteer.send("确认绑定"))

        # a resident asks, with the address and phone in the first sentence
        assert "#1" in await _request_form(resident)

        # the coordinator reviews on Telegram (the masked sentence) and approves
        await coordinator.send("待审核求助")
        detail = joined(await coordinator.send("1"))
        assert MASKED in detail and ADDRESS not in detail and RESIDENT_PHONE not in detail
        assert "推送给 1 位" in joined(await coordinator.send("通过"))

        # the volunteer takes it (sees the details), serves, and the resident confirms
        taken = joined(await volunteer.send("接单"))
        assert "接单成功" in taken and ADDRESS in taken and RESIDENT_PHONE in taken
        await volunteer.send("服务完成")
        assert "2 小时" in joined(await volunteer.send("2"))
        assert "打分" in joined(await resident.send("确认完成"))
        await resident.send("5")
        await resident.send("跳过")
        assert "我的资料" in joined(await second.send("我的资料"))

    secrets = {
        "volunteer's ID number": volunteer_id,
        "volunteer's phone": volunteer_phone,
        "resident's phone": RESIDENT_PHONE,
        "resident's address": "花家地西里",
        "door number": "3号楼2单元501",
        "birth date": "19900307",
        "birth date (ISO)": date(1990, 3, 7).isoformat(),
    }
    values = await _every_value(sessions)
    tables = {table for table, _column, _value in values}
    assert {"person", "identity", "service_request", "delivery", "inbound_seen", "hour_record"} <= tables
    leaks = [(name, table, column) for table, column, value in values
             for name, secret in secrets.items() if secret in value]
    assert leaks == []


async def test_migration_0008_keeps_only_the_birth_year(db_url: str) -> None:
    """Down to 0007 (birth_date), a registered person and a plain stored reply, then up again."""
    from alembic import command
    from sqlalchemy import text

    from bot.runtime import alembic_config
    from models.db import create_engine

    def migrate(connection, target: str, down: bool = False) -> None:  # noqa: ANN001
        config = alembic_config(db_url)
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)

    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrate, "0007", True)
            await conn.execute(text("INSERT INTO person (name, skills, status, birth_date, created_at) "
                                    "VALUES ('甲', '', 'active', :born, :now)"),
                               {"born": date(1990, 3, 7), "now": date(2026, 3, 1)})
            await conn.execute(text("INSERT INTO inbound_seen (channel, message_key, reply, created_at) "
                                    "VALUES ('wechat', 'm1', :reply, :now)"),
                               {"reply": json.dumps([{"text": "地址：花家地西里3号楼"}]), "now": date(2026, 3, 1)})
            await conn.run_sync(migrate, "heads")
            years = (await conn.execute(text("SELECT birth_year FROM person"))).scalars().all()
            replies = (await conn.execute(text("SELECT reply FROM inbound_seen"))).scalars().all()
    finally:
        await engine.dispose()
    assert years == [1990]
    assert [r if isinstance(r, list) else json.loads(r) for r in replies] == [[]]
