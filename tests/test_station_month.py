"""A month at a station, through the console on both databases: the features of issue 12 one after the other
as a station's coordinator, its volunteers and the center above it would use them."""

from __future__ import annotations

import dataclasses
import io
import re

import openpyxl
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bot.app import create_app
from bot.channels.console import ConsoleChannel
from bot.config import Settings
from bot.runtime import Runtime
from handlers.engine import Engine
from models import Activity, HourRecord, Signup
from models.certificates import Certificate
from services.people import get_or_create_organization
from tests.conftest import TEST_KEY
from tests.helpers import make_coordinator, person_of, register

BASE = "https://bot.example.org"
CENTER = "朝阳区志愿服务中心"
STATION = "花家地社区服务站"


async def test_a_month_at_a_station(db_url, sessions, options, clock) -> None:  # noqa: ANN001, PLR0915
    # Sunday 2026-03-01 10:00 in Beijing: a center with one station; a coordinator for each
    core = Engine(sessions, dataclasses.replace(options, public_base_url=BASE), clock=clock)
    async with sessions() as session:
        center = await get_or_create_organization(session, name=CENTER, kind="center")
        station = await get_or_create_organization(session, name=STATION, parent_id=center.id)
        await session.commit()
        station_id = station.id
    await make_coordinator(sessions, channel="console", user="coord", org=STATION)
    await make_coordinator(sessions, channel="console", user="boss", org=CENTER)
    coord, boss = ConsoleChannel(core, user="coord"), ConsoleChannel(core, user="boss")

    # 1. the coordinator publishes with a Chinese time phrase, then moves it by a day
    await coord.send("发布活动")
    for answer in ("敬老院探访", "陪老人聊天、读报", "1", "幸福敬老院", "跳过"):
        await coord.send(answer)
    assert "2026-03-14（周六）14:30，对吗？" in await coord.send("3月14日 下午2点半")
    await coord.send("对")
    await coord.send("下午5点")
    summary = await coord.send("3")
    assert "2026-03-14(周六) 14:30–17:00" in summary and "名额：3" in summary
    published = await coord.send("确认发布")
    assert "活动已发布" in published, published
    async with sessions() as session:
        activity = (await session.exec(select(Activity))).one()
    assert activity.organization_id == station_id
    assert "要改哪一项" in await coord.send(f"修改活动 {activity.id}")
    await coord.send("时间")
    assert "2026-03-15（周日）09:00–12:00，对吗？" in await coord.send("3月15日 上午9点到12点")
    await coord.send("对")
    assert "已修改「敬老院探访」的时间" in await coord.send("确认修改")

    # 2. three volunteers register (members of the station by their community) and join
    people = {"alice": ("王小丽", 41), "bob": ("赵大刚", 42), "carol": ("钱晓燕", 43)}
    volunteers = {user: ConsoleChannel(core, user=user) for user in people}
    for user, (name, serial) in people.items():
        confirmed = await register(volunteers[user], name, serial=serial, area="花家地社区服务站")
        assert "注册成功" in confirmed, confirmed
        assert "报名成功" in await volunteers[user].send(f"/join {activity.id}")
    roll = await coord.send("志愿者名单")
    assert all(name in roll for name, _serial in people.values()), roll

    # 3. the day: alice checks in and out, bob checks in and forgets to check out, carol does not come
    clock.advance(days=14, hours=-1)  # Sunday 2026-03-15 09:00
    code = activity.checkin_code
    assert "签到成功" in await volunteers["alice"].send(f"/checkin {code}")
    assert "签到成功" in await volunteers["bob"].send(f"/checkin {code}")
    clock.advance(hours=3)  # 12:00
    assert "记录服务时长 3 小时" in await volunteers["alice"].send(f"/checkout {code}")
    clock.advance(hours=1)
    roster = await coord.send(f"查看名单 {activity.id}")
    assert "签到 03-15 09:00 · 签退 03-15 12:00 · 3 小时" in roster and "标记缺席：钱晓燕" in roster
    assert "已标记缺席" in await coord.send("标记缺席：钱晓燕")
    # bob's hours by hand: the activity's length for those still without hours
    await coord.send(f"/rec {activity.id}")
    recorded = await coord.send("1")
    assert "已为 赵大刚 记录 3 小时" in recorded and "钱晓燕" not in recorded, recorded  # not the no-show

    # 4. alice says in plain words that she left early; the coordinator approves
    clock.advance(days=1)
    assert "请简单说明原因" in await volunteers["alice"].send("3月15日那次应该是两个半小时")
    assert "更正为：2.5 小时" in await volunteers["alice"].send("十一点半就提前走了，签退晚了")
    assert "更正申请已提交" in await volunteers["alice"].send("1")
    assert "3 小时 → 2.5 小时" in await coord.send("待审核更正")
    await coord.send("1")
    assert "已批准更正 #1" in await coord.send("批准")
    mine = await volunteers["alice"].send("我的时长")
    assert "现在计 2.5 小时" in mine and "累计志愿服务时长：2.5 小时" in mine

    # 5. the ledger export, read back: alice's line counts 2.5 h and shows the correction
    await coord.send("导出台账")
    xlsx_url, _csv_url = re.findall(r"(https://\S+)", await coord.send("今年"))
    settings = Settings(_env_file=None, database_url=db_url, id_encryption_key=TEST_KEY)
    runtime = Runtime(settings=settings, db=sessions.kw["bind"], sessions=sessions, core=core)
    async with TestClient(TestServer(await create_app(runtime))) as client:
        response = await client.get(xlsx_url.removeprefix(BASE))
        assert response.status == 200
        sheet = openpyxl.load_workbook(io.BytesIO(await response.read())).active
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, (c.value for c in row), strict=True)) for row in sheet.iter_rows(min_row=2)]
    lines = {row["姓名"]: row for row in rows if row["姓名"]}
    assert set(lines) == {"王小丽", "赵大刚"}  # carol was absent
    assert lines["王小丽"]["时长（小时）"] == 2.5 and lines["王小丽"]["原时长（小时）"] == 3
    assert lines["王小丽"]["更正原因"] == "十一点半就提前走了，签退晚了" and lines["王小丽"]["更正"]
    assert lines["赵大刚"]["时长（小时）"] == 3 and not lines["赵大刚"]["更正"]
    assert rows[-1]["日期"] == "合计"

    # 6. the center's coordinator sees the station's roster (and its volunteers)
    center_roster = await boss.send(f"查看名单 {activity.id}")
    assert "王小丽" in center_roster and "缺席" in center_roster and "只有该组织的协调员" not in center_roster
    assert "钱晓燕" in await boss.send("志愿者名单")

    # 7. alice's certificate states the corrected total
    certificate = await volunteers["alice"].send("开志愿服务证明")
    assert "志愿服务证明已开具" in certificate and "累计志愿服务时长：2.5 小时（1 条记录）" in certificate
    alice = await person_of(sessions, "console", "alice")
    async with sessions() as session:
        issued = (await session.exec(select(Certificate).where(Certificate.person_id == alice.id))).one()
        records = list(await session.exec(select(HourRecord)))
        signups = {s.person_id: s for s in await session.exec(select(Signup))}
    assert issued.total_hours == 2.5
    assert sorted(r.hours for r in records) == [3.0, 3.0]  # the originals are kept
    carol = await person_of(sessions, "console", "carol")
    assert signups[carol.id].no_show_at is not None
