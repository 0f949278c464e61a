"""Activities that change, through the console: a coordinator edits a field or cancels with a reason;
everyone signed up or waitlisted is told; a raised capacity promotes; reminders follow the new time."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select

from models import Activity, Delivery, Signup
from models.activity_changes import ActivityChange
from models.reminders import ReminderKey
from services.reminders import queue_activity_reminders
from tests.helpers import add_activity, make_coordinator, register, shown

TZ = ZoneInfo("Asia/Shanghai")


async def _reminders(sessions, now) -> int:  # noqa: ANN001
    async with sessions() as session:
        count = await queue_activity_reminders(session, now=now, tz=TZ)
        await session.commit()
        return count


async def _volunteers(console, activity_id: int, *names: str):  # noqa: ANN001, ANN202
    """Register and join each, in order (the first ones confirmed, the rest on the waitlist)."""
    people = []
    for serial, name in enumerate(names, start=60):
        conv = console(f"v{serial}")
        assert "注册成功" in await register(conv, name, serial=serial)
        assert "报名成功" in (reply := await conv.send(f"/join {activity_id}")) or "候补" in reply
        people.append(conv)
    return people


async def test_edit_time_tells_signed_up_and_waitlisted_and_reminders_follow(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="花家地社区")
    # Mar 2 12:00 in Beijing: 26 hours from now
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(hours=26), capacity=1)
    amy, ben = await _volunteers(console, activity.id, "艾米", "本杰")
    clock.advance(hours=3)  # the 24 h reminder for the old time is due and written (held for the console)
    assert await _reminders(sessions, clock.now) == 1

    coord = console("coord")
    menu = await coord.send(f"修改活动 {activity.id}")
    assert "要改哪一项" in menu and "名额" in menu and "介绍" in menu
    assert "开始时间" in await coord.send("时间")
    assert "2026-03-03（周二）14:00–16:00，对吗？" in await coord.send("3月3日 下午2点到4点")
    summary = await coord.send("对")
    assert "→" in summary and "2026-03-02" in summary and "2026-03-03" in summary and "14:00–16:00" in summary
    done = await coord.send("确认修改")
    assert "已修改「社区敬老院探访」的时间" in done and "2 个账号" in done

    for person in (amy, ben):
        reply = await person.send("你好")
        assert reply.startswith("你有 1 条新通知") and "「社区敬老院探访」时间改为 3月3日 14:00–16:00" in reply
        assert "原定 3月2日 12:00–15:00" in reply and "活动提醒" not in reply  # the old time's reminder is gone
    async with sessions() as session:
        stored = (await session.get(Activity, activity.id))
        change = (await session.exec(select(ActivityChange))).one()
        keys = list(await session.exec(select(ReminderKey)))
    assert stored is not None and stored.start_at == clock.now + timedelta(hours=49)
    assert change.field == "time" and change.old_value.startswith("2026-03-02 12:00") and not keys

    assert await _reminders(sessions, clock.now) == 0  # the new time is two days away
    clock.advance(hours=26)
    assert await _reminders(sessions, clock.now) == 1  # amy only: ben waits on the list
    reply = await amy.send("你好")
    assert "活动提醒" in reply and "3月3日 14:00" in reply
    assert "活动提醒" not in await ben.send("你好")


async def test_capacity_raise_promotes_in_order_and_lowering_below_sign_ups_is_refused(console, sessions,
                                                                                       clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="花家地社区")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=3), capacity=1)
    amy, ben, cat = await _volunteers(console, activity.id, "艾米", "本杰", "凯特")
    coord = console("coord")
    await coord.send(f"修改活动 {activity.id}")
    assert "新的名额" in await coord.send("名额")
    assert "1 → 2" in await coord.send("2")
    done = await coord.send("确认修改")
    assert "3 个账号" in done and "候补名单上的 1 人已转为正式参加" in done

    ben_reply = await ben.send("你好")
    assert "你有 2 条新通知" in ben_reply and "名额改为 2 人" in ben_reply and "已从候补转为正式参加" in ben_reply
    cat_reply = await cat.send("你好")
    assert "名额改为 2 人" in cat_reply and "转为正式" not in cat_reply
    async with sessions() as session:
        statuses = [s.status for s in await session.exec(select(Signup).order_by(Signup.id))]
    assert statuses == ["confirmed", "confirmed", "waitlist"]

    await coord.send(f"修改活动 {activity.id}")
    await coord.send("名额")
    refused = await coord.send("1")
    assert "已有 2 人报名，名额不能少于 2" in refused
    assert "1 → 1" not in refused
    await coord.send("取消")
    async with sessions() as session:
        stored = await session.get(Activity, activity.id)
    assert stored is not None and stored.capacity == 2


async def test_cancel_with_reason_tells_everyone_and_the_activity_cannot_be_joined(console, sessions,
                                                                                   clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="花家地社区")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(hours=20), capacity=1)
    amy, ben = await _volunteers(console, activity.id, "艾米", "本杰")
    assert await _reminders(sessions, clock.now) == 1  # amy's 24 h reminder, held for her next message

    coord = console("coord")
    await coord.send("活动")
    details = await coord.send("1")
    assert "修改活动" in details and "取消活动" in details
    assert "请输入取消「社区敬老院探访」的原因" in await coord.send("取消活动")
    assert "原因需要" in await coord.send("雨")
    summary = await coord.send("敬老院临时封闭消毒")
    assert "已报名 1 人、候补 1 人会收到通知" in summary
    assert "已取消「社区敬老院探访」" in await coord.send("确认取消活动")

    for person in (amy, ben):
        reply = await person.send("你好")
        assert "你有 1 条新通知" in reply and "已取消" in reply and "原因：敬老院临时封闭消毒" in reply
        assert "活动提醒" not in reply
    assert "近期还没有志愿活动" in await amy.send("活动")
    assert "没有报名的活动" in await amy.send("我的报名")
    cat = console("cat")
    await register(cat, "凯特", serial=70)
    assert "关闭报名" in await cat.send(f"/join {activity.id}")
    assert "已经取消" in await cat.send(f"/checkin {activity.checkin_code}")
    assert "已经取消" in await coord.send(f"修改活动 {activity.id}")
    clock.advance(hours=19)
    assert await _reminders(sessions, clock.now) == 0
    async with sessions() as session:
        change = (await session.exec(select(ActivityChange))).one()
        stored = await session.get(Activity, activity.id)
    assert change.kind == "cancel" and change.reason == "敬老院临时封闭消毒"
    assert stored is not None and stored.status == "cancelled"


async def test_another_organizations_coordinator_and_a_volunteer_are_refused(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="花家地社区")
    await make_coordinator(sessions, channel="console", user="other", org="望京街道")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=2))
    (amy,) = await _volunteers(console, activity.id, "艾米")
    other = console("other")
    assert "只有该组织的协调员" in await other.send(f"修改活动 {activity.id}")
    assert "只有该组织的协调员" in await other.send(f"取消活动 {activity.id}")
    assert "只有该组织的协调员" in await other.send(f"查看名单 {activity.id}")
    assert "社区敬老院探访" not in await other.send("修改活动")  # the chooser lists only its own activities
    assert "只有协调员或管理员" in await amy.send(f"修改活动 {activity.id}")
    assert "只有该组织的协调员" in await amy.send(f"取消活动 {activity.id}")
    assert "我的报名" in await amy.send("取消活动")  # a volunteer's own sign-up
    assert "只有协调员或管理员" in await amy.send(f"/edact {activity.id}")
    async with sessions() as session:
        stored = await session.get(Activity, activity.id)
        deliveries = list(await session.exec(select(Delivery).where(Delivery.source == "activity_change")))
    assert stored is not None and stored.status == "open" and not deliveries


async def test_coordinator_edits_title_place_and_description_from_the_chooser(console, sessions, clock) -> None:
    org = await make_coordinator(sessions, channel="console", user="coord", org="花家地社区")
    activity = await add_activity(sessions, org_id=org, start=clock.now + timedelta(days=2))
    (amy,) = await _volunteers(console, activity.id, "艾米")
    coord = console("coord")
    chooser = await coord.send("修改活动")
    assert "要修改哪个活动" in chooser and "社区敬老院探访" in chooser
    await coord.send("1")
    await coord.send("地点")
    assert "幸福敬老院 → 花家地社区活动中心" in await coord.send("花家地社区活动中心")
    await coord.send("确认修改")
    await coord.send(f"修改活动 {activity.id}")
    await coord.send("名称")
    await coord.send("重阳节敬老院探访")
    await coord.send("确认修改")
    notices = await amy.send("你好")
    assert "地点改为 花家地社区活动中心（原定 幸福敬老院）" in notices
    assert "活动「社区敬老院探访」改名为「重阳节敬老院探访」" in notices
    async with sessions() as session:
        rows = list(await session.exec(select(Delivery).where(Delivery.source == "activity_change")))
    assert len(rows) == 2 and all("查看活动" in str(r.choices) for r in rows)
    assert any("重阳节" in shown(r, "en") for r in rows)
